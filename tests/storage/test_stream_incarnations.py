"""Stream incarnations (``streamstore.py`` rules 4 and 6): each stream's files live in the
directory of the incarnation its definition records; what no definition names goes at open, an
incarnation is never given twice, and a directory of the layout before incarnations is moved
into its stream's."""

from __future__ import annotations

import posixpath

from minibroker.message import Message, Properties
from minibroker.storage import DurableStore
from minibroker.storage.definitions import QueueDefinition
from minibroker.storage.simdisk import SimDisk
from minibroker.storage.streams import DiskStream, StreamSettings, stream_digest
from minibroker.storage.writer import GroupCommit
from tests.storage.helpers import DATA, open_store, settle_down

SETTINGS = StreamSettings(max_segment_size=200)
STREAMS = f"{DATA}/streams"


def _declare(store: DurableStore, name: str = "s", vhost: str = "/") -> DiskStream:
    """As the server does: the core opens the log, the journal's DECLARE follows."""
    stream = store.streams.open(vhost, name, SETTINGS)
    store.declare_queue(QueueDefinition(name, vhost, type="stream",
                                        arguments={"x-queue-type": "stream"}))
    return stream


def _append(stream: DiskStream, *bodies: bytes) -> None:
    for body in bodies:
        stream.append(Message("", "s", body, Properties()), 0.0, object())


def _bodies(store: DurableStore, name: str = "s", vhost: str = "/") -> list[bytes]:
    stream = store.streams.open(vhost, name, SETTINGS)
    reader = stream.reader(stream.first_offset)
    got: list[bytes] = []
    while batch := reader.read(max_messages=50):
        got.extend(bytes(m.body) for _, m in batch)
    reader.close()
    return got


def test_a_stream_lives_in_the_directory_of_its_definition_s_incarnation() -> None:
    disk = SimDisk()
    store = open_store(disk)
    stream = _declare(store)
    _append(stream, b"a", b"b")
    settle_down(store)
    store.close()
    store = open_store(disk)
    try:
        incarnation = store.recovered.queues[("/", "s")].incarnation
        assert posixpath.basename(stream.directory) == f"{stream_digest('/', 's')}-{incarnation}"
        assert _bodies(store) == [b"a", b"b"]
    finally:
        store.close()


def test_a_new_stream_whose_declaration_was_lost_leaves_nothing_and_its_number_is_not_reused(
        ) -> None:
    disk = SimDisk()
    store = open_store(disk)
    settle_down(store)
    stream = _declare(store)
    _append(stream, b"lost")
    store.flush()
    for name in disk.listdir(STREAMS):  # the stream's files reached the disk, not the DECLARE
        disk.sync_dir(f"{STREAMS}/{name}")
    disk.power_cut(lambda path, unsynced: unsynced if "/streams/" in path else 0)
    incarnation = int(posixpath.basename(stream.directory).rpartition("-")[2])
    store = open_store(disk)
    try:
        assert store.definitions().queues == ()
        assert disk.listdir(STREAMS) == []
        assert store.last_seq >= incarnation
        again = _declare(store)
        assert again.directory != stream.directory and _bodies(store) == []
    finally:
        store.close()


def test_a_vhost_deleted_before_its_stream_was_declared_in_the_store() -> None:
    """The vhost's journal is dropped with the DECLARE of its stream: the stream's incarnation
    is never claimed, and a stream of the name made later gets its own."""
    disk = SimDisk()
    store = open_store(disk)
    first = store.streams.open("v", "s", SETTINGS)  # its DECLARE never reaches the store
    _append(first, b"gone")
    store.streams.delete("v", "s")  # the vhost is deleted (``Durability.delete_vhost``)
    store.streams.forget_vhost("v")
    settle_down(store)
    assert not disk.exists(first.directory)
    second = _declare(store, vhost="v")
    _append(second, b"kept")
    settle_down(store)
    store.abandon()
    disk.power_cut()
    store = open_store(disk)
    try:
        assert _bodies(store, vhost="v") == [b"kept"]
    finally:
        store.close()


def test_a_directory_of_the_layout_before_incarnations_is_moved_into_its_stream_s() -> None:
    disk = SimDisk()
    store = open_store(disk)
    stream = _declare(store)
    _append(stream, *(b"m%d" % n for n in range(30)))  # several segments
    store.flush()
    stream.store_offset("billing", 7)
    settle_down(store)
    directory = stream.directory
    store.close()
    legacy = f"{STREAMS}/{stream_digest('/', 's')}"  # as the broker wrote it before
    disk.makedirs(legacy)
    for name in disk.listdir(directory):
        disk.rename(f"{directory}/{name}", f"{legacy}/{name}")
    disk.sync_dir(legacy)
    disk.sync_dir(directory)
    disk.remove_dir(directory)
    orphan = f"{STREAMS}/{'0' * 64}"  # a deleted stream's, in the layout before
    disk.makedirs(orphan)
    disk.open_append(f"{orphan}/{0:020d}.seg").write(b"left behind")
    store = open_store(disk)
    try:
        assert _bodies(store) == [b"m%d" % n for n in range(30)]
        assert store.streams.streams[("/", "s")].offsets == {"billing": 7}
        assert disk.listdir(STREAMS) == [posixpath.basename(directory)]
    finally:
        store.close()


def _round_at_each_new_file(store: DurableStore) -> GroupCommit:
    """The worker thread may take its round at any instant: here right after each time the
    store tells it that a file was made in a directory."""
    writer = store._writer
    told = writer.created

    def created_then_round(directory: str) -> None:
        told(directory)
        writer.run_round()

    writer.created = created_then_round  # type: ignore[method-assign]
    return writer


def test_the_worker_running_while_the_first_stream_is_opened_does_not_fail_the_store() -> None:
    # Told about a new directory before it existed, the worker synced a directory that was not
    # there yet: the store failed and every publisher stayed blocked (seen on a
    # loaded machine: a persistent publish in a vhost with a new stream was never confirmed).
    disk = SimDisk()
    store = open_store(disk)
    writer = _round_at_each_new_file(store)
    try:
        stream = _declare(store, vhost="orders")
        _append(stream, b"a")
        settle_down(store)
        assert writer.failure is None
        assert _bodies(store, vhost="orders") == [b"a"]
    finally:
        store.close()


def test_a_segment_created_while_the_worker_runs_a_round_keeps_its_name_after_a_power_cut() -> None:
    # A round that synced the stream's directory between "a file was created there" and the
    # file's creation left the new segment's name not durable: its confirmed messages were
    # gone after a power cut.
    disk = SimDisk()
    store = open_store(disk)
    _round_at_each_new_file(store)
    stream = _declare(store)
    _append(stream, b"a", b"b")
    settle_down(store)
    disk.power_cut()
    store = open_store(disk)
    try:
        assert _bodies(store) == [b"a", b"b"]
    finally:
        store.close()
