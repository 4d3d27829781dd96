"""Group commit: one fdatasync per batch, off the calling thread, durable marks in order."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from minibroker.storage.files import AppendFile
from minibroker.storage.simdisk import SimDisk
from minibroker.storage.writer import GroupCommit


class Handle:
    """A file handle whose ``sync`` the test replaces."""

    def __init__(self, inner: AppendFile, sync: Callable[[], None] | None = None) -> None:
        self.inner = inner
        self.path = inner.path
        self.sync = sync or inner.sync

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.inner.write(data)

    def close(self) -> None:
        self.inner.close()


class GatedDisk(SimDisk):
    """A disk whose file syncs wait for the test to open a gate, to hold a sync "in flight"."""

    def __init__(self) -> None:
        super().__init__()
        self.makedirs("/d")
        self.entered = threading.Event()
        self.gate = threading.Event()

    def open_append(self, path: str) -> AppendFile:
        handle = super().open_append(path)

        def sync() -> None:
            self.entered.set()
            assert self.gate.wait(10), "the test never opened the gate"
            handle.sync()

        return Handle(handle, sync)


def test_records_written_during_a_sync_are_covered_by_the_next_one() -> None:
    disk = GatedDisk()
    durable: list[int] = []
    reported = threading.Condition()

    def on_durable(seq: int) -> None:
        with reported:
            durable.append(seq)
            reported.notify_all()

    group = GroupCommit(disk, on_durable=on_durable)
    file = disk.open_append("/d/log")
    group.start()
    file.write(b"1")
    group.written(1, file)
    assert disk.entered.wait(10)  # the first sync is running, blocked on the gate
    for seq in range(2, 101):  # 99 records arrive meanwhile
        file.write(b"x")
        group.written(seq, file)
    syncs_before = disk.syncs
    disk.gate.set()
    with reported:
        assert reported.wait_for(lambda: durable and durable[-1] == 100, timeout=10)
    group.stop()
    assert durable == [1, 100]  # two syncs for 100 records: the second covered 99 of them
    assert disk.syncs - syncs_before == 2


def test_nothing_is_reported_before_its_sync() -> None:
    disk = SimDisk()
    disk.makedirs("/d")
    durable: list[int] = []
    group = GroupCommit(disk, on_durable=durable.append)
    file = disk.open_append("/d/log")
    file.write(b"abc")
    group.written(3, file)
    assert durable == [] and group.durable_seq == 0
    assert group.run_round()
    assert durable == [3] and group.durable_seq == 3
    assert not group.run_round()  # nothing new: no sync, no report


def test_sync_never_reports_at_once_and_never_syncs() -> None:
    disk = SimDisk()
    disk.makedirs("/d")
    durable: list[int] = []
    group = GroupCommit(disk, sync="never", on_durable=durable.append)
    file = disk.open_append("/d/log")
    file.write(b"abc")
    group.written(7, file)
    assert durable == [7]
    group.stop()
    assert disk.syncs == 0


def test_a_new_file_has_its_directory_synced_before_its_records_are_durable() -> None:
    disk = SimDisk()
    disk.makedirs("/d")
    group = GroupCommit(disk, on_durable=lambda seq: None)
    group.created("/d")
    file = disk.open_append("/d/new")
    file.write(b"record")
    group.written(1, file)
    group.run_round()
    disk.power_cut()
    assert disk.read("/d/new") == b"record"


def test_a_failed_sync_stops_everything_and_is_reported_once() -> None:
    disk = SimDisk()
    disk.makedirs("/d")
    errors: list[BaseException] = []
    durable: list[int] = []
    group = GroupCommit(disk, on_durable=durable.append, on_error=errors.append)

    def broken_sync() -> None:
        raise OSError(5, "Input/output error")

    file = Handle(disk.open_append("/d/log"), broken_sync)
    group.written(1, file)
    assert not group.run_round()
    group.written(2, file)
    assert not group.run_round()
    assert durable == [] and len(errors) == 1 and isinstance(group.failure, OSError)


def test_jobs_run_after_the_records_before_them_are_durable() -> None:
    disk = SimDisk()
    disk.makedirs("/d")
    seen: list[int] = []

    class Job:
        def run(self, fs: object, sync: bool) -> str:
            seen.append(group.durable_seq)
            return "done"

    group = GroupCommit(disk, on_durable=lambda seq: None)
    file = disk.open_append("/d/log")
    group.written(5, file)
    job = Job()
    group.submit(job)
    group.run_round()
    assert seen == [5]
    assert group.take_completions() == [(job, "done")]


def test_bad_sync_mode_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'sometimes'"):
        GroupCommit(SimDisk(), sync="sometimes", on_durable=print)  # type: ignore[arg-type]
