"""A stream deleted just before a power cut (``streamstore.py`` rule 5): its files are never
removed before its DELETE record can be durable, so when that record is lost the stream comes
back whole, never empty or with holes; when the record is kept the stream stays deleted, its
directory gone."""

from __future__ import annotations

from minibroker.message import Message, Properties
from minibroker.storage import DurableStore
from minibroker.storage.definitions import QueueDefinition
from minibroker.storage.simdisk import SimDisk
from minibroker.storage.streams import DiskStream, StreamSettings

DATA = "/data"
SETTINGS = StreamSettings(max_segment_size=300)


def _open(disk: SimDisk) -> DurableStore:
    return DurableStore(DATA, fs=disk, threaded=False)


def _bodies(stream: DiskStream) -> list[bytes]:
    reader = stream.reader(0)
    got = []
    while batch := reader.read(max_messages=50):
        got.extend(bytes(message.body) for _, message in batch)
    reader.close()
    return got


def _stream_with_messages(disk: SimDisk) -> DurableStore:
    store = _open(disk)
    store.declare_queue(QueueDefinition("s", type="stream"))
    stream = store.streams.open("/", "s", SETTINGS)
    for n in range(40):  # several segments
        stream.append(Message("", "s", b"m%d" % n, Properties()), 0.0, object())
    store.flush()
    while store.run_worker():
        pass
    assert len(stream.segments) > 2
    return store


def _reopened(disk: SimDisk) -> list[bytes] | None:
    store = _open(disk)
    try:
        if ("queue", "/", "s") not in {("queue", q.vhost, q.name)
                                       for q in store.definitions().queues}:
            return None
        return _bodies(store.streams.open("/", "s", SETTINGS))
    finally:
        store.close()


def _delete(store: DurableStore) -> None:
    """As the server deletes a stream: its log's files, then (flushed later) its definition."""
    store.streams.delete("/", "s")
    store.run_worker()  # the worker may wake before the loop flushes the DELETE record


def test_a_stream_whose_delete_was_lost_comes_back_whole() -> None:
    disk = SimDisk()
    store = _stream_with_messages(disk)
    _delete(store)
    store.delete_queue("/", "s")
    store.flush()  # the DELETE record is written, not synced: the power goes now
    disk.power_cut()
    assert _reopened(disk) == [b"m%d" % n for n in range(40)]


def test_a_sync_of_its_directory_before_the_delete_is_durable_changes_nothing() -> None:
    disk = SimDisk()
    store = _stream_with_messages(disk)
    directory = store.streams.streams[("/", "s")].directory
    _delete(store)
    disk.sync_dir(directory)  # whatever might sync it: nothing in it changed
    store.abandon()
    disk.power_cut()
    assert _reopened(disk) == [b"m%d" % n for n in range(40)]


def test_a_stream_whose_delete_is_durable_stays_deleted_with_its_files() -> None:
    disk = SimDisk()
    store = _stream_with_messages(disk)
    directory = store.streams.streams[("/", "s")].directory
    _delete(store)
    store.delete_queue("/", "s")
    store.flush()
    while store.run_worker():
        pass
    store.abandon()
    disk.power_cut()
    assert _reopened(disk) is None
    assert not disk.exists(directory)
