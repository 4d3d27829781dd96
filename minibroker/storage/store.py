"""The durable store: what the broker calls to make definitions and messages survive a restart.

Layout of a data directory::

    LOCK                 the lock file: one broker per directory (holds its PID)
    clean-shutdown       present only between a clean shutdown and the next start
    definitions.log      the definitions log (``deflog.py``)
    messages/NNN.seg     message segments, oldest first (``messagelog.py``, ``intents.py``)
    streams/D-I/         the segments of each stream incarnation I of a stream whose vhost and
                         name digest to D (``streams.py``, ``streamstore.py``)

Threads: every method is called from the broker's event-loop thread, except that
``on_durable`` and ``on_error`` are called from the store's worker thread (``writer.py``).

Rules:

1. Intents are cheap: ``publish``/``settle``/``requeue`` and the definition changes only fill
   memory and return the sequence number that covers them. :meth:`DurableStore.flush`, called
   once per loop iteration, writes them to the files (the page cache: a ``kill -9`` from then
   on loses nothing) and hands them to group commit; ``on_durable(seq)`` follows when they are
   on disk. A publisher confirm for a persistent message may be sent once the store reported
   its seq durable.
2. A queue's messages are addressed by its :class:`~minibroker.storage.queuelog.QueueLog`,
   bound to the queue's incarnation (``queuelog.py``); deleting the queue kills the handle.
3. :meth:`DurableStore.maintain` (on a timer, say every 0.5 s) reclaims disk space: it decides
   on the loop thread, the worker does the file work (``segments.py``, ``jobs.py``).
4. :meth:`DurableStore.close` is the clean shutdown: everything synced, then the clean-shutdown
   marker. :meth:`DurableStore.abandon` stops as ``kill -9`` would, for tests.
"""

from __future__ import annotations

import posixpath
from array import array
from collections.abc import Callable
from typing import Any

import msgpack

from minibroker.storage import deflog
from minibroker.storage.definitions import (
    BindingDefinition,
    Definition,
    Definitions,
    ExchangeDefinition,
    QueueDefinition,
    key,
)
from minibroker.storage.errors import StorageFailed
from minibroker.storage.files import AppendFile, FileLock, FileSystem, OsFileSystem
from minibroker.storage.jobs import CompactSegment, DeleteFile, InstallFile, write_file
from minibroker.storage.messagelog import MessageLog, Sequencer, segment_name
from minibroker.storage.queuelog import QueueLog
from minibroker.storage.records import KIND_DEFINITIONS, encode_file_header, encode_record
from minibroker.storage.recovered import RecoveredState
from minibroker.storage.segments import Compaction, Segment, SegmentTable
from minibroker.storage.startup import recover
from minibroker.storage.streamstore import StreamStore
from minibroker.storage.writer import GroupCommit, SyncMode
from minibroker.valueclass import valueclass

__all__ = ["DurableStore", "QueueLog", "StoreStatistics"]

_SIZE_MASK = 0xFFFF_FFFF
@valueclass(frozen=True)
class StoreStatistics:
    segments: int
    disk_bytes: int  #: message segments (the definitions log is not counted)
    live_messages: int
    live_bytes: int
    last_seq: int
    durable_seq: int


class DurableStore:
    """One data directory's durable state: ``DurableStore(directory, ...)`` opens it."""

    def __init__(
        self,
        directory: str,
        *,
        fs: FileSystem | None = None,
        sync: SyncMode = "always",
        on_durable: Callable[[int], object] | None = None,
        on_error: Callable[[BaseException], object] | None = None,
        segment_size: int = 8 << 20,
        garbage: float = 0.5,
        threaded: bool = True,
    ) -> None:
        """Lock ``directory``, recover what it holds (see :attr:`recovered`), and get ready to
        write. ``threaded=False`` leaves the worker's rounds to the caller
        (:meth:`run_worker`), for deterministic tests."""
        self._fs = fs = fs if fs is not None else OsFileSystem()
        self.directory = directory
        fs.makedirs(posixpath.join(directory, "messages"))
        self._lock: FileLock | None = fs.lock(posixpath.join(directory, "LOCK"))
        try:
            self._open(sync, on_durable, on_error, segment_size, garbage)
        except BaseException:
            self._lock.release()
            raise
        self.maintain()  # the empty segments of earlier runs go at once
        if threaded:
            self._writer.start()

    def _open(self, sync: SyncMode, on_durable: Callable[[int], object] | None,
              on_error: Callable[[BaseException], object] | None, segment_size: int,
              garbage: float) -> None:
        fs = self._fs
        self._segments = SegmentTable(garbage=garbage)
        state, definitions, replay = recover(fs, self.directory, self._segments)
        self.recovered: RecoveredState = state
        self._definitions = definitions
        self._index: dict[int, dict[int, int]] = replay.index
        self._requeued: dict[int, dict[int, int]] = replay.requeued
        self._sequencer = Sequencer(state.last_seq)
        self._writer = GroupCommit(fs, sync=sync, on_durable=on_durable or _ignore,
                                   on_error=on_error)
        self._sync = sync == "always"
        self._pending_definitions: list[bytes] = []
        self._definitions_file: AppendFile | None = None
        self._definition_records = 0
        self._definitions_bytes = 0
        self._installing: InstallFile | None = None
        self._start_definitions(install=False)
        self._log = MessageLog(fs, posixpath.join(self.directory, "messages"), self._writer,
                               self._segments, self._sequencer, segment_size=segment_size)
        #: The streams' logs, on the same writer and sequencer: one mark covers a loop
        #: iteration's messages and every stream's chunks (``streamstore.py``).
        # Each recovered stream's files are those of its definition's incarnation
        # (``streamstore.py`` rules 4 and 6).
        incarnations = {
            (d.vhost, d.name): definitions.incarnations[(d.vhost, d.name)]
            for d in definitions.objects.values()
            if isinstance(d, QueueDefinition) and d.type == "stream"}
        self.streams = StreamStore(fs, self.directory, self._writer, self._sequencer,
                                   hold_deletions=True, incarnations=incarnations)
        self._queues: dict[tuple[str, str], QueueLog] = {}
        for (vhost, name), incarnation in definitions.incarnations.items():
            definition = definitions.objects[("queue", vhost, name)]
            assert isinstance(definition, QueueDefinition)
            self._queues[(vhost, name)] = self._handle(definition, incarnation)
        self._closed = False

    # -- definitions -------------------------------------------------------------------------

    def definitions(self) -> Definitions:
        """The durable definitions as they stand (including changes not yet durable)."""
        return self._definitions.definitions()

    def declare(self, definition: Definition) -> int:
        """Record a durable exchange, binding, user, vhost or permission (queues:
        :meth:`declare_queue`). Returns the covering seq, or 0 when nothing changed."""
        if isinstance(definition, QueueDefinition):
            before = self._sequencer.last
            self.declare_queue(definition)
            return self._sequencer.last if self._sequencer.last != before else 0
        if not self._definitions.declare(definition):
            return 0
        return self._write_definition(deflog.DECLARE, deflog.encode_definition(definition))

    def declare_queue(self, definition: QueueDefinition) -> QueueLog:
        """Record a durable queue; returns its handle (the existing one if it was declared)."""
        handle = self._queues.get((definition.vhost, definition.name))
        if handle is not None:
            if self._definitions.declare(definition, handle.incarnation):
                handle.definition = definition
                self._write_definition(deflog.DECLARE, deflog.encode_definition(
                    definition, handle.incarnation))
            return handle
        if definition.type == "stream":  # the incarnation of its files (``streamstore.py``)
            incarnation = self.streams.claim(definition.vhost, definition.name)
        else:
            incarnation = self._sequencer.last + 1  # the seq the DECLARE record will take
        self._definitions.declare(definition, incarnation)
        seq = self._write_definition(deflog.DECLARE,
                                     deflog.encode_definition(definition, incarnation))
        assert seq >= incarnation
        handle = self._queues[(definition.vhost, definition.name)] = self._handle(
            definition, incarnation)
        return handle

    def _handle(self, definition: QueueDefinition, incarnation: int) -> QueueLog:
        return QueueLog(definition, incarnation, self._log,
                        self._index.setdefault(incarnation, {}),
                        self._requeued.setdefault(incarnation, {}))

    def queue(self, vhost: str, name: str) -> QueueLog | None:
        """The handle of a durable queue (declared or recovered), if there is one."""
        return self._queues.get((vhost, name))

    def delete(self, definition: Definition) -> int:
        """Delete a durable object (with its bindings, for a queue or an exchange); returns the
        covering seq, or 0 when there was no such object."""
        k = key(definition)
        if isinstance(definition, QueueDefinition):
            self.streams.release(definition.vhost, definition.name)
        if not self._definitions.delete(k):
            return 0
        if isinstance(definition, QueueDefinition):
            self._drop_queue(definition.vhost, definition.name)
        return self._write_definition(deflog.DELETE, list(k))

    def delete_queue(self, vhost: str, name: str) -> int:
        return self.delete(QueueDefinition(name, vhost))

    def delete_exchange(self, vhost: str, name: str) -> int:
        return self.delete(ExchangeDefinition(name, vhost))

    def bind(self, binding: BindingDefinition) -> int:
        return self.declare(binding)

    def unbind(self, binding: BindingDefinition) -> int:
        return self.delete(binding)

    def _drop_queue(self, vhost: str, name: str) -> None:
        handle = self._queues.pop((vhost, name))
        handle.alive = False
        for location in self._index.pop(handle.incarnation, {}).values():
            self._segments.settle(location >> 32, location & _SIZE_MASK)
        self._requeued.pop(handle.incarnation, None)

    def _write_definition(self, kind: int, payload: list[Any]) -> int:
        self._check()
        seq = self._sequencer.next()
        self._pending_definitions.append(encode_record(kind, seq, deflog.pack(payload)))
        return seq

    def _start_definitions(self, *, install: bool) -> None:
        """Write the current definitions to a new file and append there from now on
        (``deflog.py`` rule 4). At open (``install=False``) the new file is put in place at
        once; later the worker renames it once it is synced."""
        path = posixpath.join(self.directory, "definitions.log")
        records = [encode_record(deflog.DECLARE, self._sequencer.next(), deflog.pack(payload))
                   for payload in self._definitions.snapshot()]
        records.append(encode_record(deflog.SNAPSHOT_END, self._sequencer.next(), b"\x90"))
        image = encode_file_header(KIND_DEFINITIONS, 0) + b"".join(records)
        if not install:
            write_file(self._fs, path, image, sync=self._sync)
            self._definitions_file = self._fs.open_append(path)
        else:
            following = posixpath.join(self.directory, "definitions.next")
            if self._fs.exists(following):
                self._fs.remove(following)
            file = self._fs.open_append(following)
            self._writer.created(self.directory)  # after the name exists
            file.write(image)
            if self._definitions_file is not None:
                self._writer.retire(self._definitions_file)
            self._definitions_file = file
            self._writer.written(self._sequencer.last, file)
            self._installing = InstallFile(following, path)
            self._writer.submit(self._installing)
        self._definition_records = len(records)
        self._definitions_bytes = len(image)

    # -- the loop's calls ---------------------------------------------------------------------

    def flush(self) -> None:
        """Write what this loop iteration recorded and hand it to group commit (rule 1).
        A failed write (a full disk...) fails the store for good: ``StorageFailed``."""
        self._check()
        try:
            self._write()
        except OSError as exc:
            self._writer.fail(exc)
            raise StorageFailed(f"storage in {self.directory} failed: {exc}") from exc

    def _write(self) -> None:
        # The streams' chunks, the messages and the definitions go to group commit in one
        # hand-over (``streamstore.py`` rule 2): a stream's mark is above the records given
        # seqs before it, which are written only below.
        _mark, files = self.streams.write()
        _last, file = self._log.flush()
        if file is not None:
            files.append(file)
        if self._pending_definitions:
            data = b"".join(self._pending_definitions)
            self._definition_records += len(self._pending_definitions)
            self._pending_definitions = []
            assert self._definitions_file is not None
            self._definitions_file.write(data)
            self._definitions_bytes += len(data)
            files.append(self._definitions_file)
        if files:  # everything given a seq so far is written now
            self._writer.written(self._sequencer.last, *files)
        self.streams.submit_released()  # after the DELETE records (``streamstore.py``)
        self._log.rotate_if_full()

    def maintain(self) -> None:
        """Reclaim disk space (rule 3); cheap when there is nothing to do."""
        self._check()
        self._take_completions()
        self.flush()  # the decisions below rest on settles that must be durable first
        if (self._installing is None
                and self._definition_records > 2 * len(self._definitions.objects) + 64):
            self._start_definitions(install=True)
        for work in self._segments.decide():
            if isinstance(work, Segment):
                self._writer.submit(DeleteFile(self._segment_path(work.number)))
            elif work.number in self._segments.segments:  # not deleted right after
                self._writer.submit(CompactSegment(self._segment_path(work.number),
                                                   self._keep(work)))

    def _take_completions(self) -> None:
        for job, result in self._writer.take_completions():
            if isinstance(job, CompactSegment) and isinstance(result, int):
                segment = self._segments.segments.get(job.compaction.number)
                if segment is not None and segment.floor == job.compaction.generation:
                    segment.size = result
            elif job is self._installing:
                self._installing = None

    def _keep(self, compaction: Compaction) -> Compaction:
        segment = self._segments.segments[compaction.number]
        for incarnation, ids in list(segment.publishes.items()):
            index = self._index.get(incarnation)
            keep = index.keys() & ids if index else set()
            if not keep:
                del segment.publishes[incarnation]
                continue
            compaction.keep[incarnation] = keep
            segment.publishes[incarnation] = array("q", sorted(keep))
            requeued = self._requeued.get(incarnation)
            if requeued:
                folded = {i: c for i, c in requeued.items() if i in keep}
                if folded:
                    compaction.requeued[incarnation] = folded
        return compaction

    def _segment_path(self, number: int) -> str:
        return posixpath.join(self.directory, "messages", segment_name(number))

    def run_worker(self) -> bool:
        """One round of the worker, for a store opened with ``threaded=False``."""
        return self._writer.run_round()

    @property
    def durable_seq(self) -> int:
        return self._writer.durable_seq

    @property
    def last_seq(self) -> int:
        """The highest seq given out so far."""
        return self._sequencer.last

    def statistics(self) -> StoreStatistics:
        segments = self._segments.segments.values()
        return StoreStatistics(
            len(segments), sum(s.size for s in segments), sum(s.live for s in segments),
            sum(s.live_bytes for s in segments), self._sequencer.last, self._writer.durable_seq)

    def _check(self) -> None:
        if self._writer.failure is not None:
            raise StorageFailed(f"storage in {self.directory} failed: {self._writer.failure}")
        if self._closed:
            raise StorageFailed(f"the store of {self.directory} is closed")

    # -- stopping -----------------------------------------------------------------------------

    def close(self) -> None:
        """Clean shutdown (rule 4): flush, sync, write the clean-shutdown marker, unlock."""
        if self._closed:
            return
        try:
            if self._writer.failure is None:
                self.flush()
        finally:
            self._closed = True
            self._log.close()
            self.streams.close()
            if self._definitions_file is not None:
                self._writer.retire(self._definitions_file)
            self._writer.stop()
            self._take_completions()
            if self._writer.failure is not None:
                self._unlock()
        if self._writer.failure is None:  # a failed store stops unclean: no marker
            marker = {
                "last_seq": self._sequencer.last,
                "segments": {n: s.size for n, s in self._segments.segments.items()},
                "definitions": self._definitions_bytes,
            }
            write_file(self._fs, posixpath.join(self.directory, "clean-shutdown"),
                       msgpack.packb(marker), sync=self._sync)
        self._unlock()

    def abandon(self) -> None:
        """Stop as if the process were killed (for tests): what was not flushed is lost and no
        marker is written. The worker finishes what it was given first (as it may have, just
        before a real kill), so no thread of the dead store touches the files afterwards."""
        if self._closed:
            return
        self._closed = True
        self._log.close()
        self.streams.close()
        if self._definitions_file is not None:
            self._writer.retire(self._definitions_file)
        self._writer.stop()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _ignore(_seq: int) -> None:
    pass

