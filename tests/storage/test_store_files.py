"""The store's whole-file writes (``storage/jobs.py``): a definitions log that grew mostly out
of deleted objects is rewritten next to the old one and renamed over it by the worker, and a
temporary file a crash left behind does not stop the next whole-file write."""

from __future__ import annotations

from minibroker.storage import QueueDefinition
from minibroker.storage.simdisk import SimDisk

from .helpers import DATA, open_store, settle_down

DEFINITIONS = f"{DATA}/definitions.log"


def test_a_definitions_log_of_deleted_objects_is_rewritten_and_still_recovers() -> None:
    disk = SimDisk()
    store = open_store(disk)
    store.declare(QueueDefinition("kept"))
    for number in range(100):  # 200 records for one live object
        store.declare(QueueDefinition(f"gone{number}"))
        store.delete_queue("/", f"gone{number}")
    settle_down(store)
    grown = len(disk.read(DEFINITIONS))
    store.maintain()
    settle_down(store)  # the worker renames the synced rewrite over the log
    assert len(disk.read(DEFINITIONS)) < grown / 10
    assert not disk.exists(f"{DATA}/definitions.next")
    store.declare(QueueDefinition("after"))  # appended to the rewritten log
    settle_down(store)
    disk.process_crash()
    store = open_store(disk)
    assert store.recovered.definitions.queues == (QueueDefinition("kept"),
                                                  QueueDefinition("after"))


def test_a_temporary_file_left_by_a_crash_is_replaced() -> None:
    disk = SimDisk()
    store = open_store(disk)
    left = disk.open_append(f"{DATA}/clean-shutdown.tmp")  # a crash in the middle of a write
    left.write(b"half a marker")
    left.sync()
    left.close()
    store.close()  # writes the clean-shutdown marker through the temporary name
    assert not disk.exists(f"{DATA}/clean-shutdown.tmp")
    assert open_store(disk).recovered.report.clean
