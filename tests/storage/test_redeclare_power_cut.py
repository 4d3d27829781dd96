"""A queue or a stream deleted *and declared again* under the same name (with other arguments)
just before a power cut: after the restart the broker shows a state that existed, consistent
with what was confirmed — the old definition with its own messages, or the new one with only
its own messages (every confirmed one among them), or, should the log keep the DELETE and not
the DECLARE after it, no queue at all; never the old definition over the new messages.

Each case runs over the ways the power cut can land: with the store's worker running a round
after the first hand-over of written records (as its thread may), after every one, or never,
and keeping none, all or some of
the unsynced bytes of the stream files and of the definitions log, with or without the stream
directories synced by some later operation."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

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
def worker_rounds(store: DurableStore, rounds: int) -> Iterator[None]:
    """The worker thread may run a round as soon as it is told that something was written:
    model that by running one after each of the first ``rounds`` hand-overs (and none after
    the later ones: the power fails first)."""
    writer = store._writer
    handed_over = writer.written
    left = [rounds]

    def written(seq: int, *files: object) -> None:
        handed_over(seq, *files)  # type: ignore[arg-type]
        if left[0] > 0:
            left[0] -= 1
            writer.run_round()

    writer.written = written  # type: ignore[method-assign]
    try:
        yield
    finally:
        del writer.written


ROUNDS = {"lazy worker": 0, "one round": 1, "eager worker": 1000}


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
@pytest.mark.parametrize("worker", list(ROUNDS))
def test_a_stream_deleted_and_declared_again_comes_back_old_or_new_never_mixed(
        worker: str, keep: str, sync_dirs: bool) -> None:
    disk = SimDisk()
    store = open_store(disk)
    _append(_declare_stream(store, A), OLD)
    _settle(store)
    with worker_rounds(store, ROUNDS[worker]):
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
        stream = store.streams.open("/", "s", SETTINGS) if found else None
        got = _stream_bodies(stream) if stream else []
        _check(found, got, confirmed, OLD, NEW)
        # Only the directory of the stream that came back is left.
        left = disk.listdir(f"{DATA}/streams") if disk.exists(f"{DATA}/streams") else []
        assert left == ([posixpath.basename(stream.directory)] if stream else [])
    finally:
        store.close()


@pytest.mark.parametrize("keep", list(KEEPS))
@pytest.mark.parametrize("worker", list(ROUNDS))
def test_a_classic_queue_deleted_and_declared_again_comes_back_old_or_new_never_mixed(
        worker: str, keep: str) -> None:
    disk = SimDisk()
    store = open_store(disk)
    handle = store.declare_queue(QueueDefinition("q", arguments=A))
    for n, body in enumerate(OLD):
        handle.publish(n + 1, message(body))
    _settle(store)
    with worker_rounds(store, ROUNDS[worker]):
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


def test_every_prefix_of_the_definitions_log_names_its_own_stream() -> None:
    """Declared, deleted and declared again in one loop iteration, each declaration with
    messages: wherever a power cut tears the definitions log (the stream files all kept), the
    stream that comes back has the arguments and only the messages of the declaration that
    came back."""
    def run(cut: int | None) -> int:
        disk = SimDisk()
        store = open_store(disk)
        _settle(store)
        size = len(disk.read(f"{DATA}/definitions.log"))
        # The core makes each log as it runs the commands; the journal's records follow.
        _append(store.streams.open("/", "s", SETTINGS), OLD[:3])
        store.streams.delete("/", "s")
        _append(store.streams.open("/", "s", SETTINGS), NEW)
        store.declare_queue(QueueDefinition("s", arguments={"x-queue-type": "stream", **A},
                                            type="stream"))
        store.delete_queue("/", "s")
        store.declare_queue(QueueDefinition("s", arguments={"x-queue-type": "stream", **B},
                                            type="stream"))
        store.flush()
        written = len(disk.read(f"{DATA}/definitions.log")) - size
        _sync_stream_directories(disk)  # the stream files' names, and below all their bytes
        disk.power_cut(lambda path, unsynced: (
            min(cut, unsynced) if cut is not None and "definitions" in path else unsynced))
        store = open_store(disk)
        try:
            found = next((q for q in store.definitions().queues if q.name == "s"), None)
            got = _stream_bodies(store.streams.open("/", "s", SETTINGS)) if found else []
            if found is not None and found.arguments.get("x-max-age") == A["x-max-age"]:
                assert got == []  # its messages were never written: deleted first
            elif found is not None:
                assert got == NEW
        finally:
            store.close()
        return written

    written = run(None)
    for cut in range(written + 1):
        run(cut)


SMALL = StreamSettings(max_segment_size=1)  # a segment per flush
STEPS = st.lists(st.sampled_from(
    ["declare", "delete", "append", "append", "flush", "flush", "round", "sync dirs"]),
    max_size=40)


FOUND = ["declare", "append", "flush", "append", "flush", "round", "delete", "declare",
         "append", "flush"]  # two of the histories the first version of the fix got wrong


@given(steps=STEPS, keep=st.sampled_from(list(KEEPS)))
@example(steps=FOUND, keep="everything")
@example(steps=[*FOUND, "sync dirs"], keep="nothing")
def test_any_history_of_one_stream_name_comes_back_as_a_state_it_had(
        steps: list[str], keep: str) -> None:
    """Declarations (each with arguments of its own), deletions, appends, loop iterations,
    worker rounds in any order, then a power cut: the stream that comes back (if any) is the
    one some prefix of the history, at least as long as what was durable, left — with a prefix
    of its own messages that holds every confirmed one."""
    disk = SimDisk()
    store = open_store(disk)
    _settle(store)
    history: list[int | None] = []  # each declaration's number, None for a deletion
    pending: list[int | None] = []  # the journal: what the next flush gives the store
    messages: list[list[bytes]] = []  # per declaration, what was appended to its stream
    flushes: list[tuple[int, int, list[int]]] = []  # (last seq, ops, messages per declaration)
    stream: DiskStream | None = None
    for step in steps:
        if step == "declare" and stream is None:
            stream = store.streams.open("/", "s", SMALL)  # the core makes the log
            pending.append(len(messages))
            messages.append([])
        elif step == "delete" and stream is not None:
            store.streams.delete("/", "s")
            stream = None
            pending.append(None)
        elif step == "append" and stream is not None:
            bodies = [b"%d-%d" % (len(messages) - 1, len(messages[-1]) + n) for n in range(3)]
            _append(stream, bodies)
            messages[-1] += bodies
        elif step == "flush":
            for op in pending:
                if op is None:
                    store.delete_queue("/", "s")
                else:
                    store.declare_queue(QueueDefinition("s", type="stream", arguments={
                        "x-queue-type": "stream", "x-declaration": op}))
            history += pending
            pending = []
            store.flush()
            flushes.append((store.last_seq, len(history), [len(m) for m in messages]))
        elif step == "round":
            store.run_worker()
        elif step == "sync dirs":
            _sync_stream_directories(disk)
    durable = [f for f in flushes if f[0] <= store.durable_seq]
    durable_ops, confirmed = (durable[-1][1], durable[-1][2]) if durable else (0, [])
    disk.power_cut(KEEPS[keep])

    store = open_store(disk)
    try:
        found = next((q for q in store.definitions().queues if q.name == "s"), None)
        if found is None:  # after a deletion, or before the first declaration
            assert durable_ops == 0 or None in history[durable_ops - 1:]
            return
        declaration = found.arguments["x-declaration"]
        assert isinstance(declaration, int)
        # Exactly one prefix of the history ends with that declaration.
        assert history.index(declaration) + 1 >= durable_ops
        got = _stream_bodies(store.streams.open("/", "s", SMALL))
        own = messages[declaration]
        assert got == own[:len(got)]
        if declaration < len(confirmed):
            assert len(got) >= confirmed[declaration]
        assert len(disk.listdir(f"{DATA}/streams")) == 1
    finally:
        store.close()


@pytest.mark.parametrize("worker", list(ROUNDS))
def test_a_flush_with_stream_chunks_confirms_its_persistent_messages_only_once_synced(
        worker: str) -> None:
    """The streams' chunks and the message records of one flush reach group commit together:
    the worker never reports the flush's mark before the messages below it are synced."""
    disk = SimDisk()
    store = open_store(disk)
    stream = _declare_stream(store, A)
    queue = store.declare_queue(QueueDefinition("q"))
    _settle(store)
    with worker_rounds(store, ROUNDS[worker]):
        _append(stream, NEW)
        seq = queue.publish(1, message(b"confirmed?"))
        store.flush()
    confirmed = store.durable_seq >= seq
    disk.power_cut()
    store = open_store(disk)
    try:
        if confirmed:
            recovered = [bytes(m.message.body) for m in store.recovered.queues[("/", "q")]]
            assert recovered == [b"confirmed?"]
            assert _stream_bodies(store.streams.open("/", "s", SETTINGS)) == NEW
    finally:
        store.close()
