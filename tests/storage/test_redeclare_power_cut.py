"""A queue or a stream deleted *and declared again* under the same name (with other arguments)
just before a power cut: after the restart the broker shows a state that existed, consistent
with what was confirmed — the old definition with its own messages, or the new one with only
its own messages (every confirmed one among them), or, should the log keep the DELETE and not
the DECLARE after it, no queue at all; never the old definition over the new messages.

Each case runs over the ways the power cut can land: with the store's worker waking after every
hand-over of written records (as its thread may) or not at all, and keeping none, all or some of
the unsynced bytes of the stream files and of the definitions log, with or without the stream
directories synced by some later operation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from minibroker.message import Message, Properties
from minibroker.storage import DurableStore
from minibroker.storage.definitions import QueueDefinition
from minibroker.storage.simdisk import SimDisk
from minibroker.storage.streams import DiskStream, StreamSettings
from tests.storage.helpers import DATA, message, open_store

SETTINGS = StreamSettings(max_segment_size=300)
OLD = [b"old%d" % n for n in range(40)]
NEW = [b"new%d" % n for n in range(5)]
A = {"x-max-age": "1D"}
B = {"x-max-age": "2D"}

KEEPS: dict[str, Callable[[str, int], int] | None] = {
    "nothing": None,
    "everything": lambda _path, unsynced: unsynced,
    "stream files": lambda path, unsynced: unsynced if "/streams/" in path else 0,
    "message files": lambda path, unsynced: unsynced if "/messages/" in path else 0,
    "definitions": lambda path, unsynced: unsynced if "definitions" in path else 0,
    "halves": lambda _path, unsynced: unsynced // 2,
}


@contextmanager
def eager_worker(store: DurableStore, eager: bool) -> Iterator[None]:
    """The worker thread may run a round as soon as it is told that something was written:
    model that by running one after every hand-over."""
    if not eager:
        yield
        return
    writer = store._writer
    handed_over = writer.written

    def written(seq: int, *files: object) -> None:
        handed_over(seq, *files)  # type: ignore[arg-type]
        writer.run_round()

    writer.written = written  # type: ignore[method-assign]
    try:
        yield
    finally:
        del writer.written


def _sync_stream_directories(disk: SimDisk) -> None:
    """Some later operation (a new segment, a retention job) syncs the stream directories."""
    base = f"{DATA}/streams"
    if disk.exists(base):
        for name in disk.listdir(base):
            disk.sync_dir(f"{base}/{name}")


def _append(stream: DiskStream, bodies: list[bytes]) -> None:
    for body in bodies:
        stream.append(Message("", "s", body, Properties()), 0.0, object())


def _stream_bodies(stream: DiskStream) -> list[bytes]:
    reader = stream.reader(stream.first_offset)
    got: list[bytes] = []
    while batch := reader.read(max_messages=50):
        got.extend(bytes(m.body) for _, m in batch)
    reader.close()
    return got


def _declare_stream(store: DurableStore, arguments: dict[str, object]) -> DiskStream:
    """As the server declares a stream: the core opens its log, then the journal's DECLARE
    reaches the store."""
    stream = store.streams.open("/", "s", SETTINGS)
    store.declare_queue(QueueDefinition("s", arguments={"x-queue-type": "stream", **arguments},
                                        type="stream"))
    return stream


def _settle(store: DurableStore) -> None:
    store.flush()
    while store.run_worker():
        pass


def _check(found: QueueDefinition | None, got: list[bytes], confirmed: bool,
           old: list[bytes], new: list[bytes]) -> None:
    if found is None:  # the DELETE was kept, the DECLARE after it was not
        assert not confirmed
        return
    if found.arguments.get("x-max-age") == A["x-max-age"]:
        assert not confirmed, "the new definition was confirmed, the old one came back"
        assert got == old
    else:
        assert found.arguments.get("x-max-age") == B["x-max-age"]
        assert got == (new if confirmed else new[:len(got)]), "not the new stream's own"


@pytest.mark.parametrize("sync_dirs", [False, True], ids=["", "dirs synced"])
@pytest.mark.parametrize("keep", list(KEEPS))
@pytest.mark.parametrize("eager", [False, True], ids=["lazy worker", "eager worker"])
def test_a_stream_deleted_and_declared_again_comes_back_old_or_new_never_mixed(
        eager: bool, keep: str, sync_dirs: bool) -> None:
    disk = SimDisk()
    store = open_store(disk)
    _append(_declare_stream(store, A), OLD)
    _settle(store)
    with eager_worker(store, eager):
        store.streams.delete("/", "s")  # the core deletes the log, the journal the definition
        store.run_worker()
        store.delete_queue("/", "s")
        _append(_declare_stream(store, B), NEW)
        store.flush()
    confirmed = store.durable_seq >= store.last_seq  # the new messages' confirms were sent
    if sync_dirs:
        _sync_stream_directories(disk)
    disk.power_cut(KEEPS[keep])

    store = open_store(disk)
    try:
        found = next((q for q in store.definitions().queues if q.name == "s"), None)
        got = _stream_bodies(store.streams.open("/", "s", SETTINGS)) if found else []
        _check(found, got, confirmed, OLD, NEW)
    finally:
        store.close()


@pytest.mark.parametrize("keep", list(KEEPS))
@pytest.mark.parametrize("eager", [False, True], ids=["lazy worker", "eager worker"])
def test_a_classic_queue_deleted_and_declared_again_comes_back_old_or_new_never_mixed(
        eager: bool, keep: str) -> None:
    disk = SimDisk()
    store = open_store(disk)
    handle = store.declare_queue(QueueDefinition("q", arguments=A))
    for n, body in enumerate(OLD):
        handle.publish(n + 1, message(body))
    _settle(store)
    with eager_worker(store, eager):
        store.delete_queue("/", "q")
        handle = store.declare_queue(QueueDefinition("q", arguments=B))
        last = 0
        for n, body in enumerate(NEW):
            last = handle.publish(n + 1, message(body))
        store.flush()
    confirmed = store.durable_seq >= last
    disk.power_cut(KEEPS[keep])

    store = open_store(disk)
    try:
        found = next((q for q in store.definitions().queues if q.name == "q"), None)
        recovered = store.recovered.queues.get(("/", "q"))
        got = [bytes(m.message.body) for m in recovered] if recovered is not None else []
        _check(found, got, confirmed, OLD, NEW)
    finally:
        store.close()
