"""The stream log on its own: chunks, segments, the sparse index's cost, readers, retention —
and a hypothesis model: whatever is appended, retained and read, a reader yields exactly the
retained messages it asked for, in offset order."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from minibroker.core.streamargs import OffsetSpec, StreamLimits
from minibroker.core.streamlog import CHUNK_MESSAGES, StreamLog, filter_value
from minibroker.message import Message, Properties


def message(body: bytes = b"x", value: str | None = None) -> Message:
    headers = None if value is None else {"x-stream-filter-value": value}
    return Message("", "s", body, Properties(headers=headers))


def wall(now: float) -> float:
    return 1_000_000.0 + now


def build(segments: int, per_segment: int = 1, chunk: int = 1) -> StreamLog:
    """A log of ``segments`` closed segments of ``per_segment`` one-byte messages, each input
    (chunk) ``chunk`` messages, one second apart."""
    log = StreamLog(StreamLimits(max_segment_size=per_segment))
    inputs = segments * per_segment // chunk
    for i in range(inputs):
        key = object()
        for _ in range(chunk):
            log.append(message(), float(i), wall, key)
    return log


def test_one_input_is_one_chunk_up_to_the_limit() -> None:
    log = StreamLog(StreamLimits())
    key = object()
    for _ in range(CHUNK_MESSAGES + 2):
        log.append(message(), 0.0, wall, key)
    log.append(message(), 0.0, wall, object())
    (segment,) = log.segments
    assert [chunk.first for chunk in segment.chunks] == [0, CHUNK_MESSAGES, CHUNK_MESSAGES + 2]
    assert log.seek(OffsetSpec("last"), 0.0) == CHUNK_MESSAGES + 2


def test_chunk_times_never_go_back() -> None:
    log = StreamLog(StreamLimits())
    log.append(message(), 5.0, wall, object())
    log.append(message(), 3.0, wall, object())  # a clock that stepped back
    assert [chunk.wall for chunk in log.segments[0].chunks] == [wall(5.0), wall(5.0)]


def test_a_segment_closes_at_a_chunk_boundary_once_full() -> None:
    log = StreamLog(StreamLimits(max_segment_size=3))
    key = object()
    closes = [log.append(message(b"ab"), 0.0, wall, key) for _ in range(3)]
    closes.append(log.append(message(b"ab"), 0.0, wall, object()))
    assert closes == [False, False, False, True]
    assert [(s.first, s.bytes) for s in log.segments] == [(0, 6), (3, 2)]


def comparisons(log: StreamLog, spec: OffsetSpec) -> int:
    before = log.comparisons
    log.seek(spec, wall(1e9))
    return log.comparisons - before


def test_seeking_an_offset_costs_log_segments_probes() -> None:
    for count in (16, 1024, 65536):
        log = build(count)
        probes = []
        for offset in (0, 1, count // 3, count - 2, count - 1):
            before = log.comparisons
            reader = log.reader(log.seek(OffsetSpec("offset", offset), 0.0))
            item = reader.take()  # the first read finds the segment
            assert item is not None and item[0] == offset
            probes.append(log.comparisons - before)
        assert 0 < max(probes) <= math.ceil(math.log2(count + 1)) + 1, (count, probes)


def test_seeking_a_timestamp_costs_log_segments_plus_log_chunks_probes() -> None:
    for count, per_segment in ((16, 64), (1024, 64), (16384, 4)):
        log = build(count, per_segment)
        chunks = per_segment
        bound = math.ceil(math.log2(count + 1)) + math.ceil(math.log2(chunks + 1)) + 2
        for second in (0, count * per_segment // 2 + 0.5, count * per_segment - 1):
            assert comparisons(log, OffsetSpec("timestamp", wall(second))) <= bound
        assert log.seek(OffsetSpec("timestamp", wall(count * per_segment // 2 + 0.5)), 0) == (
            count * per_segment // 2 + 1)


def test_retention_never_removes_the_open_segment() -> None:
    log = StreamLog(StreamLimits(max_segment_size=1, max_length_bytes=0, max_age=1))
    log.append(message(), 0.0, wall, object())
    assert log.retain(100.0) == 0
    assert log.append(message(), 1.0, wall, object())
    assert log.retain(100.0) > 0
    assert (log.first_offset, log.next_offset, [s.first for s in log.segments]) == (1, 2, [1])


def test_a_reader_moves_past_removed_segments() -> None:
    log = build(4, per_segment=2)  # segments [0,1] [2,3] [4,5] [6,7] (the last is open)
    reader = log.reader(1)
    assert reader.take() == (1, log.segments[0].messages[1])
    log.max_bytes = 4  # 8 bytes: the two oldest segments go
    log.retain(0.0)
    assert log.first_offset == 4
    item = reader.take()
    assert item is not None and item[0] == 4


def test_a_filtered_reader_skips_chunks_its_values_cannot_be_in() -> None:
    log = StreamLog(StreamLimits())
    for value in ("eu", "us", "apac", "eu"):
        key = object()
        for _ in range(100):
            log.append(message(value=value), 0.0, wall, key)
    reader = log.reader(0, ("eu",))
    got = []
    while (item := reader.take()) is not None:
        got.append(item[0])
    assert got == [*range(0, 100), *range(300, 400)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[StreamLimits, list[tuple[int, float, list[str | None]]]]:
    limits = StreamLimits(
        max_segment_size=draw(st.integers(0, 12)),
        max_length_bytes=draw(st.one_of(st.none(), st.integers(0, 40))),
        max_age=draw(st.one_of(st.none(), st.integers(1, 6))),
    )
    values = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
    inputs = draw(st.lists(st.tuples(
        st.integers(1, 3), st.floats(0, 2), st.lists(values, min_size=1, max_size=4),
    ), max_size=25))
    return limits, inputs


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.integers(-2, 60), st.sampled_from([None, ("a",), ("a", "b"), ()]),
       st.booleans())
def test_readers_yield_exactly_the_retained_matching_messages(
    scenario: tuple[StreamLimits, list[tuple[int, float, list[str | None]]]], start: int,
    values: tuple[str, ...] | None, unfiltered: bool,
) -> None:
    limits, inputs = scenario
    log = StreamLog(limits)
    model: list[tuple[int, Message]] = []
    reader = log.reader(max(start, 0), values, unfiltered)
    read: list[int] = []
    now = 0.0
    for size, step, batch in inputs:
        now += step
        key = object()
        for value in batch:
            item = message(b"x" * size, value)
            model.append((log.next_offset, item))
            if log.append(item, now, wall, key):
                log.retain(now)
        while (got := reader.take()) is not None:
            read.append(got[0])
        assert sum(len(m.body) for o, m in model if o >= log.first_offset) == log.bytes
    assert all(first.chunks for first in log.segments[:-1])
    # Everything a reader got is in offset order; what it skipped was either removed before
    # it got there or did not match; what is still retained past its start all reached it.
    assert read == sorted(set(read))

    def wanted(offset: int, item: Message) -> bool:
        if values is None:
            return True
        value = filter_value(item)
        return value in values if value is not None else unfiltered

    retained = [o for o, m in model if o >= max(start, log.first_offset) and wanted(o, m)]
    assert [o for o in read if o >= log.first_offset] == retained
    assert all(wanted(o, m) for o, m in model if o in set(read))
    assert log.seek(OffsetSpec("first"), 0) == log.first_offset
    assert list(dict(log.read(log.first_offset))) == [
        o for o, _ in model if o >= log.first_offset]
