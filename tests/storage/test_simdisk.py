"""The simulated disk loses exactly what a real one may lose."""

from __future__ import annotations

import pytest

from minibroker.storage.errors import DataDirLocked
from minibroker.storage.simdisk import SimDisk


def disk_with_dir() -> SimDisk:
    disk = SimDisk()
    disk.makedirs("/d")
    return disk


def test_a_power_cut_drops_unsynced_bytes_and_unsynced_names() -> None:
    disk = disk_with_dir()
    file = disk.open_append("/d/a")
    file.write(b"durable")
    file.sync()
    disk.sync_dir("/d")
    file.write(b"+lost")
    disk.open_append("/d/b").write(b"never named durably")
    disk.power_cut()
    assert disk.read("/d/a") == b"durable"
    assert not disk.exists("/d/b")


def test_a_power_cut_may_keep_a_torn_prefix_and_garble_it() -> None:
    disk = disk_with_dir()
    file = disk.open_append("/d/a")
    file.write(b"abc")
    file.sync()
    disk.sync_dir("/d")
    file.write(b"defgh")
    disk.power_cut(keep=lambda path, unsynced: 2, flip=True)
    assert disk.read("/d/a") == b"abcd" + bytes([ord("e") ^ 0xFF])


def test_renames_and_removes_are_undone_unless_the_directory_was_synced() -> None:
    disk = disk_with_dir()
    for name in ("/d/old", "/d/tmp"):
        handle = disk.open_append(name)
        handle.write(name.encode())
        handle.sync()
    disk.sync_dir("/d")
    disk.rename("/d/tmp", "/d/old")
    disk.power_cut()
    assert disk.read("/d/old") == b"/d/old" and disk.exists("/d/tmp")
    disk.rename("/d/tmp", "/d/old")
    disk.sync_dir("/d")
    disk.remove("/d/old")
    disk.power_cut()
    assert disk.read("/d/old") == b"/d/tmp"


def test_a_process_crash_keeps_everything_written() -> None:
    disk = disk_with_dir()
    disk.open_append("/d/a").write(b"in the page cache")
    disk.process_crash()
    assert disk.read("/d/a") == b"in the page cache"


def test_handles_die_with_the_process_and_locks_are_released() -> None:
    disk = disk_with_dir()
    handle = disk.open_append("/d/a")
    disk.lock("/d/LOCK")
    with pytest.raises(DataDirLocked, match="/d"):
        disk.lock("/d/LOCK")
    disk.process_crash()
    with pytest.raises(RuntimeError, match="after a simulated crash"):
        handle.write(b"x")
    disk.lock("/d/LOCK").release()
