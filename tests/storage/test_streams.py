"""Streams on disk (``storage/streams.py``, ``storage/streamstore.py``) on the simulated disk:
appends, reads, the sparse index and its cost, retention, recovery and what a power cut keeps."""

from __future__ import annotations

import math
import posixpath
from itertools import pairwise

import pytest

from minibroker.core.streamlog import bloom_mask as core_bloom_mask
from minibroker.message import Message, Properties
from minibroker.storage.messagelog import Sequencer
from minibroker.storage.simdisk import SimDisk
from minibroker.storage.streams import (
    INDEX_INTERVAL,
    DiskStream,
    StreamSettings,
    bloom_mask,
    stream_directory,
)
from minibroker.storage.streamstore import StreamStore
from minibroker.storage.writer import GroupCommit

ROOT = "/data"


class Rig:
    """A stream store on a simulated disk, its worker run by hand."""

    def __init__(self, disk: SimDisk | None = None, **settings: object) -> None:
        self.disk = disk or SimDisk()
        self.disk.makedirs(ROOT)
        self.durable: list[int] = []
        self.writer = GroupCommit(self.disk, on_durable=self.durable.append)
        self.store = StreamStore(self.disk, ROOT, self.writer, Sequencer(0))
        self.settings = StreamSettings(**settings)  # type: ignore[arg-type]
        self.stream = self.store.open("/", "s", self.settings)

    def append(self, *bodies: bytes, wall: float = 0.0, value: str | None = None) -> list[int]:
        """One input: one chunk."""
        key = object()
        headers = None if value is None else {"x-stream-filter-value": value}
        return [self.stream.append(Message("x", "k", body, Properties(headers=headers)),
                                   wall, key) for body in bodies]

    def commit(self) -> None:
        self.store.flush()
        while self.writer.run_round():
            pass
        if self.durable:
            self.store.durable(self.durable[-1])

    def reopen(self) -> Rig:
        return Rig(self.disk, **{name: getattr(self.settings, name)
                                 for name in StreamSettings.__dataclass_fields__})


def read_all(stream: DiskStream, start: int = 0, **options: object) -> list[tuple[int, bytes]]:
    reader = stream.reader(start, **options)  # type: ignore[arg-type]
    got = []
    while batch := reader.read(max_messages=7):
        got.extend((offset, message.body) for offset, message in batch)
    reader.close()
    return got


def test_messages_come_back_in_order_with_their_properties() -> None:
    rig = Rig(max_segment_size=200)
    assert rig.append(b"a", b"b") == [0, 1]
    rig.stream.append(Message("ex", "rk", b"c", Properties(content_type="text/plain",
                                                            headers={"n": 1})), 1.0, object())
    rig.commit()
    (segment, *_) = rig.stream.segments
    assert segment.path.startswith(rig.stream.directory)
    assert rig.stream.directory.startswith(posixpath.dirname(stream_directory(ROOT, "/", "s", 0)))
    reader = rig.stream.reader(1)
    (one, two) = reader.read()
    assert one[0] == 1 and one[1].body == b"b"
    assert two[1] == Message("ex", "rk", b"c", Properties(content_type="text/plain",
                                                          headers={"n": 1}))
    assert reader.read() == []


def test_chunks_fill_segments_that_close_at_a_chunk_boundary() -> None:
    rig = Rig(max_segment_size=300)
    for n in range(40):
        rig.append(*(b"%03d" % (n * 3 + i) for i in range(3)))
        rig.commit()
    segments = rig.stream.segments
    assert len(segments) > 3
    assert all(a.end == b.first for a, b in pairwise(segments))
    assert all(segment.first % 3 == 0 for segment in segments)  # never inside a chunk
    assert read_all(rig.stream, 50) == [(n, b"%03d" % n) for n in range(50, 120)]


def test_the_index_grows_with_bytes_not_messages() -> None:
    rig = Rig()
    for n in range(2000):
        rig.append(*(b"x" * 16 for _ in range(10)), wall=float(n))
    rig.commit()
    (segment,) = rig.stream.segments
    entries = len(segment.offsets)
    assert entries <= segment.size // INDEX_INTERVAL + 1
    assert entries >= segment.size // (INDEX_INTERVAL + 1024) - 1
    assert 20_000 / entries > 50  # far fewer entries than messages


def test_seeks_cost_log_segments_probes() -> None:
    for count in (8, 256, 2048):
        rig = Rig(max_segment_size=1)
        for n in range(count):
            rig.append(b"m", wall=float(n))
        rig.commit()
        stream = rig.stream
        bound = math.ceil(math.log2(count + 1)) + 1
        for target in (0, count // 3, count - 1):
            before = stream.comparisons
            segment = stream.segment_for(target)
            assert segment is not None and segment.first == target
            assert stream.comparisons - before <= bound
            before = stream.comparisons
            assert stream.at_timestamp(target - 0.5) == target
            assert stream.comparisons - before <= bound + 1


def test_timestamps_find_the_first_chunk_at_or_after() -> None:
    rig = Rig(max_segment_size=100)
    for n in range(300):
        rig.append(b"x" * 10, b"y" * 10, wall=1000.0 + n)
    rig.commit()
    assert rig.stream.at_timestamp(1100.5) == 202
    assert rig.stream.at_timestamp(0) == 0
    assert rig.stream.at_timestamp(5000) == rig.stream.written


def test_a_filtered_reader_skips_chunks_and_checks_messages() -> None:
    rig = Rig()
    for value in ("eu", "us", None, "eu"):
        rig.append(*(value.encode() if value else b"-" for _ in range(3)), value=value)
    rig.commit()
    assert [offset for offset, _ in read_all(rig.stream, values=("eu",))] == [0, 1, 2, 9, 10, 11]
    unfiltered = read_all(rig.stream, values=("us",), match_unfiltered=True)
    assert [offset for offset, _ in unfiltered] == [3, 4, 5, 6, 7, 8]


def test_the_bloom_filter_on_disk_is_the_core_s() -> None:
    for value in ("eu", "a much longer filter value", "é"):
        for size in (16, 64, 255):
            assert bloom_mask(value, size) == core_bloom_mask(value, size)


def test_retention_removes_closed_files_and_readers_move_on() -> None:
    rig = Rig(max_segment_size=100, max_length_bytes=250)
    reader = rig.stream.reader(0)
    for n in range(30):
        rig.append(b"%02d" % n + b"x" * 30, wall=float(n))
        rig.commit()
    assert reader.read(max_messages=1)[0][0] == 0
    rig.store.retain(0.0)
    rig.commit()  # the deletion jobs run after what was written before is durable
    stream = rig.stream
    assert stream.bytes <= 250 + 100
    assert len(rig.disk.listdir(stream.directory)) == len(stream.segments)
    assert reader.read(max_messages=1)[0][0] == stream.first_offset
    aged = Rig(max_segment_size=1, max_age=10)
    for n in range(5):
        aged.append(b"x", wall=float(n))
    aged.commit()
    aged.store.retain(12.5)  # chunks of t=0, 1, 2 are 10 s old; t=4's segment is open
    assert aged.stream.first_offset == 3


def test_recovery_gives_back_what_was_written() -> None:
    rig = Rig(max_segment_size=150)
    for n in range(50):
        rig.append(b"%02d" % n, b"%02d+" % n, wall=float(n))
        rig.commit()
    before = read_all(rig.stream)
    again = rig.reopen()
    assert read_all(again.stream) == before
    assert again.stream.next_offset == 100
    assert again.append(b"new") == [100]  # offsets go on; a new segment is started
    again.commit()
    assert read_all(again.stream, 99) == [(99, b"49+"), (100, b"new")]
    assert again.stream.at_timestamp(25) == 50


def test_a_power_cut_keeps_the_durable_appends_and_cuts_a_torn_tail() -> None:
    rig = Rig(max_segment_size=10_000)
    rig.append(b"durable", b"too")
    rig.commit()
    assert rig.store.durable_end[rig.stream] == 2
    rig.append(b"lost")
    rig.store.flush()  # written, not yet synced
    rig.disk.power_cut(keep=lambda path, unsynced: unsynced - 3)  # a torn write
    again = rig.reopen()
    assert read_all(again.stream) == [(0, b"durable"), (1, b"too")]
    (damage,) = again.stream.damage
    assert "runs past the end" in damage.reason and damage.length > 0


def test_damage_in_a_closed_segment_is_cut_and_skipped() -> None:
    rig = Rig(max_segment_size=200)
    for n in range(12):
        rig.append(b"%02d" % n + b"." * 20)
        rig.commit()
    first = rig.stream.segments[0]
    data = rig.disk.names[first.path].data
    data[-5] ^= 0xFF  # the segment's last record no longer checks
    rig.disk.process_crash()
    again = rig.reopen()
    offsets = [offset for offset, _ in read_all(again.stream)]
    assert offsets[0] == 0 and offsets == sorted(set(offsets))
    assert first.end - first.first > 1  # the damaged segment keeps its first records
    assert first.end - 1 not in offsets and len(offsets) == 11
    assert "CRC" in again.stream.damage[0].line()


def test_an_empty_segment_left_by_a_crash_is_removed() -> None:
    rig = Rig(max_segment_size=1)
    rig.append(b"a")
    rig.commit()
    path = posixpath.join(rig.stream.directory, "00000000000000000001.seg")
    header = rig.disk.read(rig.stream.segments[0].path)[:24]
    file = rig.disk.open_append(path)
    file.write(header[:4] + header[4:])  # a header of segment 0, under the name of 1
    rig.disk.process_crash()
    again = rig.reopen()
    assert [s.first for s in again.stream.segments] == [0]
    assert again.append(b"b") == [1]


@pytest.mark.parametrize("streams", [1, 5])
def test_one_mark_covers_every_stream_of_a_flush(streams: int) -> None:
    rig = Rig()
    others = [rig.store.open("/", f"o{n}", rig.settings) for n in range(streams - 1)]
    rig.append(b"a")
    for other in others:
        other.append(Message("", "k", b"b"), 0.0, object())
    mark = rig.store.flush()
    syncs = rig.disk.syncs
    while rig.writer.run_round():
        pass
    assert rig.disk.syncs - syncs == streams  # one fdatasync per file written
    moved = rig.store.durable(mark)
    assert set(moved) == {rig.stream, *others} and set(moved.values()) == {1}


def test_deleting_a_stream_removes_its_files() -> None:
    rig = Rig(max_segment_size=1)
    for _ in range(3):
        rig.append(b"x")
    rig.commit()
    directory = rig.stream.directory
    rig.store.delete("/", "s")
    rig.commit()
    assert not rig.disk.exists(directory)
