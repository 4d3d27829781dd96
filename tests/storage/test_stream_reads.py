"""Reading a stream from disk at its edges (``storage/streamreader.py``): a chunk larger than
one read block, a byte budget that ends a read inside a chunk (the next read goes on from
there), a filtered read across segments, and a record whose bytes changed on disk, which is
an error naming the file and the byte instead of a wrong message; packed reads (runs of the
stored encoding) against plain ones, and ``append_many`` against ``append``."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibroker.message import Message, Properties
from minibroker.storage.intents import EMPTY_BLOB
from minibroker.storage.streamreader import RUN_ENVELOPE
from minibroker.storage.streamsegments import READ_BLOCK
from tests.storage.test_streams import Rig, read_all


def test_a_chunk_larger_than_a_read_block_reads_back_whole() -> None:
    rig = Rig()
    big = bytes(range(256)) * (READ_BLOCK // 256 + 10)
    rig.append(b"small")
    rig.append(big, b"after")
    rig.commit()
    assert read_all(rig.stream) == [(0, b"small"), (1, big), (2, b"after")]


def test_a_byte_budget_ends_a_read_inside_a_chunk() -> None:
    rig = Rig()
    rig.append(b"a" * 10, b"b" * 10, b"c" * 10)  # one chunk
    rig.commit()
    reader = rig.stream.reader(0)
    assert [offset for offset, _ in reader.read(max_bytes=15)] == [0, 1]
    assert [offset for offset, _ in reader.read(max_bytes=15)] == [2]
    assert reader.read() == []
    reader.close()


def test_a_filtered_read_goes_on_across_segments() -> None:
    rig = Rig(max_segment_size=100)
    for number in range(30):
        rig.append(b"%02d" % number, value="even" if number % 2 == 0 else "odd")
    rig.commit()
    assert len(rig.stream.segments) > 3
    assert [body for _, body in read_all(rig.stream, values=("odd",))] == [
        b"%02d" % number for number in range(1, 30, 2)]


def test_a_record_changed_on_disk_is_an_error_naming_the_file() -> None:
    rig = Rig()
    rig.append(b"payload-0123456789")
    rig.commit()
    (segment,) = rig.stream.segments
    image = bytearray(rig.disk.read(segment.path))
    spot = image.rindex(b"payload")
    image[spot] ^= 0xFF  # one flipped byte in the body
    rig.disk._get(segment.path).data[:] = image  # (the simulated disk's bytes)
    reader = rig.stream.reader(0)
    with pytest.raises(OSError, match=rf"^{segment.path}: record CRC mismatch at byte \d+$"):
        reader.read()
    reader.close()


# --- packed reads (rule 5): runs of the stored encoding ----------------------------------------


def _unpacked(runs: list[tuple[int, int, bytes]]) -> list[tuple[int, bytes]]:
    got = []
    for first, count, data in runs:
        entries = msgpack.unpackb(data)
        assert len(entries) == count
        assert all(entry[:3] == ["x", "k", EMPTY_BLOB] for entry in entries)
        got.extend((first + index, entry[3]) for index, entry in enumerate(entries))
    return got


def test_whole_chunks_are_passed_on_as_stored() -> None:
    rig = Rig()
    rig.append(b"a", b"b")
    rig.append(b"c")
    rig.commit()
    (segment,) = rig.stream.segments
    image = rig.disk.read(segment.path)
    reader = rig.stream.reader(0)
    runs = reader.read_packed(100, 1 << 20, 1 << 20)
    assert [(first, count) for first, count, _ in runs] == [(0, 2), (2, 1)]
    assert all(data in image for _, _, data in runs)  # the very bytes of the file
    assert reader.read_packed(100, 1 << 20, 1 << 20) == []
    reader.close()


def test_a_packed_read_begun_inside_a_chunk_takes_its_rest() -> None:
    rig = Rig()
    rig.append(b"a", b"b", b"c")
    rig.append(b"d")
    rig.commit()
    reader = rig.stream.reader(1)
    assert _unpacked(reader.read_packed(100, 1 << 20, 1 << 20)) == [
        (1, b"b"), (2, b"c"), (3, b"d")]
    reader.close()


chunks = st.lists(st.lists(st.binary(max_size=12), min_size=1, max_size=9), min_size=1,
                  max_size=12)


@settings(max_examples=60, deadline=None)
@given(chunks, st.integers(0, 120), st.integers(0, 30), st.integers(1, 12),
       st.integers(1, 60), st.sampled_from([40, 90, 1 << 20]))
def test_packed_reads_take_what_reads_take(
        chunked: list[list[bytes]], segment_size: int, start: int, max_messages: int,
        max_bytes: int, budget: int) -> None:
    """Without a budget a packed read returns exactly what ``read`` returns under the same
    limits; with one, each read stays within it (a single message excepted) and together
    they return every message once, in order."""
    rig = Rig(max_segment_size=segment_size)
    for bodies in chunked:
        rig.append(*bodies)
    rig.commit()
    everything = read_all(rig.stream, start)
    plain, packed = rig.stream.reader(start), rig.stream.reader(start)
    got: list[tuple[int, bytes]] = []
    while runs := packed.read_packed(max_messages, max_bytes, budget):
        taken = _unpacked(runs)
        assert 1 <= len(taken) <= max_messages
        assert sum(len(body) for _, body in taken[:-1]) < max_bytes
        if len(taken) > 1:
            assert sum(len(data) + RUN_ENVELOPE for _, _, data in runs) <= budget
        if budget == 1 << 20:
            assert taken == [(offset, message.body) for offset, message
                             in plain.read(max_messages, max_bytes)]
        got.extend(taken)
    assert got == everything
    plain.close()
    packed.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.binary(max_size=8), min_size=1, max_size=40),
                          st.sampled_from([None, "eu", "us"])), min_size=1, max_size=6),
       st.integers(0, 100))
def test_append_many_writes_the_bytes_appends_write(
        inputs: list[tuple[list[bytes], str | None]], segment_size: int) -> None:
    """``DiskStream.append_many`` (one call an input) leaves the very files that ``append``
    of each message leaves."""
    one, many = Rig(max_segment_size=segment_size), Rig(max_segment_size=segment_size)
    for bodies, value in inputs:
        properties = Properties(headers=None if value is None else {
            "x-stream-filter-value": value})
        messages = [Message("x", "k", body, properties) for body in bodies]
        key = object()
        for message in messages:
            one.stream.append(message, 1.5, key)
        many.stream.append_many(messages, 1.5, key)
        one.commit()
        many.commit()
    assert [(s.path, one.disk.read(s.path)) for s in one.stream.segments] == [
        (s.path, many.disk.read(s.path)) for s in many.stream.segments]
