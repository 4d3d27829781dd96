"""The core's view of a durable stream (``persistence/streams.py``) on a simulated disk: the
tail before a flush, the files after it, cursors across the boundary, filters read ahead,
retention and stored offsets."""

from __future__ import annotations

from minibroker.core.streamargs import OffsetSpec, StreamLimits
from minibroker.message import Message, Properties
from minibroker.persistence.streams import READ_AHEAD, DiskLog, DiskLogs
from minibroker.storage.messagelog import Sequencer
from minibroker.storage.simdisk import SimDisk
from minibroker.storage.streamstore import StreamStore
from minibroker.storage.writer import GroupCommit

ROOT = "/data"


def wall_time(now: float) -> float:
    return now + 1_000_000.0


class Rig:
    def __init__(self, disk: SimDisk | None = None, **limits: object) -> None:
        self.disk = disk or SimDisk()
        self.disk.makedirs(ROOT)
        self.writer = GroupCommit(self.disk, on_durable=lambda seq: None)
        self.store = StreamStore(self.disk, ROOT, self.writer, Sequencer(0))
        self.limits = StreamLimits(**limits)  # type: ignore[arg-type]
        self.log: DiskLog = DiskLogs(self.store, "/", wall_time)("s", self.limits)

    def append(self, *bodies: str, now: float = 0.0, value: str | None = None) -> None:
        key = object()  # one input
        headers = None if value is None else {"x-stream-filter-value": value}
        for body in bodies:
            self.log.append(Message("", "s", body.encode(), Properties(headers=headers)), now,
                            wall_time, key)

    def flush(self) -> None:
        self.store.flush()
        while self.writer.run_round():
            pass

    def reopen(self) -> Rig:
        self.store.close()
        return Rig(self.disk, **{name: getattr(self.limits, name)
                                 for name in StreamLimits.__dataclass_fields__})


def bodies(items: list[tuple[int, Message]]) -> list[tuple[int, str]]:
    return [(offset, message.body.decode()) for offset, message in items]


def test_a_cursor_reads_the_files_then_the_tail_and_the_log_is_not_metered() -> None:
    rig = Rig()
    rig.append("a", "b")
    rig.flush()
    rig.append("c")  # not flushed: the tail
    log = rig.log
    assert not log.metered and len(log) == 3 and log.first_offset == 0
    cursor = log.reader(0)
    assert cursor.take_run(10) == (0, [m for _, m in list(log.read(0))[:2]])
    offset, run = cursor.take_run(10)
    assert (offset, [m.body for m in run]) == (2, [b"c"])
    assert cursor.take_run(10) == (3, [])
    rig.flush()
    assert bodies(list(log.read(0))) == [(0, "a"), (1, "b"), (2, "c")]
    assert log.tail == []  # what the files hold is not kept in memory


def test_seek_first_last_next_offset_and_timestamp_across_a_restart() -> None:
    rig = Rig()
    rig.append("a", "b", now=10.0)
    rig.append("c", "d", now=20.0)
    rig.flush()
    rig.append("e", now=30.0)
    log = rig.log
    spec = OffsetSpec
    assert log.seek(spec("last"), 0.0) == 4  # the pending chunk
    assert log.seek(spec("timestamp", wall_time(15.0)), 0.0) == 2
    assert log.seek(spec("timestamp", wall_time(25.0)), 0.0) == 4
    rig.flush()
    rig = rig.reopen()
    log = rig.log
    assert (log.first_offset, log.next_offset) == (0, 5)
    assert log.seek(spec("last"), 0.0) == 4
    assert log.seek(spec("next"), 0.0) == 5
    assert log.seek(spec("offset", 3), 0.0) == 3
    assert log.seek(spec("timestamp", wall_time(15.0)), 0.0) == 2
    assert bodies(list(log.read(3))) == [(3, "d"), (4, "e")]


def test_a_filtered_cursor_reads_ahead_and_goes_on_into_the_tail() -> None:
    rig = Rig()
    count = READ_AHEAD * 3
    for n in range(count):
        rig.append(f"m{n}", value="eu" if n % 2 else "us")
    rig.flush()
    rig.append("late", value="eu")
    cursor = rig.log.reader(0, ("eu",))
    got = []
    while (item := cursor.take()) is not None:
        got.append(item)
    assert bodies(got) == [(n, f"m{n}") for n in range(1, count, 2)] + [(count, "late")]
    assert cursor.offset == count + 1


def test_retention_moves_a_cursor_to_the_first_offset_kept() -> None:
    rig = Rig(max_segment_size=1, max_length_bytes=100)
    for _ in range(10):
        rig.append("x" * 40)  # a chunk each, a segment each
        rig.flush()
    cursor = rig.log.reader(0)
    rig.log.retain(0.0)
    first = rig.log.first_offset
    assert first > 0
    offset, run = cursor.take_run(100)
    assert offset == first and offset + len(run) <= 10


def test_offsets_are_stored_and_a_deleted_stream_forgets_them() -> None:
    rig = Rig()
    rig.log.store_offset("billing", 42)
    rig = rig.reopen()
    assert rig.log.stored_offsets() == {"billing": 42}
    rig.log.clear()
    rig.flush()
    again = Rig(rig.disk)
    assert again.log.stored_offsets() == {} and len(again.log) == 0
