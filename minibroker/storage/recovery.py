"""Recovery: from the files of a data directory back to definitions and queued messages.

Rules:

1. Recovery never raises on damage. A torn or CRC-failed tail is cut off (the file is truncated
   at its last valid record); a damaged stretch followed by valid records is skipped; a file
   whose header is unreadable is set aside as ``<name>.damaged`` (or removed when it is too
   short to hold anything). Each case is reported with the file name and the offset. The one
   error is a file of an unknown format version (``records.py`` rule 5).
2. Messages are replayed in file order: a PUBLISH adds a message to its queue incarnation, a
   SETTLE removes it, a REQUEUE marks it redelivered with its delivery count (unless its target
   segment was compacted since: the copy then holds the count). The messages of
   an incarnation that the definitions no longer hold (a deleted queue) are dropped and counted.
3. Each queue's messages come back in ``msg_id`` order, which is their queue order.
4. After an unclean shutdown every recovered message is redelivered; after a clean one only
   those that had been requeued (delivered before), as RabbitMQ 3.10 does.
5. The segment table (``segments.py``) is rebuilt from what the files hold, so reclaim goes on
   where it stopped.
"""

from __future__ import annotations

import posixpath
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgpack

from minibroker.errors import ProtocolError
from minibroker.message import Message
from minibroker.protocols.native.values import frozen_builder
from minibroker.storage import deflog, intents
from minibroker.storage.definitions import Definitions, QueueDefinition
from minibroker.storage.errors import UnsupportedFormat
from minibroker.storage.files import FileSystem
from minibroker.storage.intents import PUBLISH, REQUEUE, SETTLE, PropertiesCache, decode_runs
from minibroker.storage.records import (
    FILE_HEADER,
    KIND_DEFINITIONS,
    Damage,
    RecordScanner,
    decode_file_header,
)
from minibroker.storage.segments import TOMBSTONE_BYTES, SegmentTable

__all__ = [
    "MessageReplay", "RecoveredMessage", "RecoveredQueue", "RecoveredState", "RecoveryReport",
    "replay_definitions", "scan_file",
]

_build_message = frozen_builder(Message)


class RecoveredMessage:
    """One message of a recovered queue."""

    __slots__ = ("delivery_count", "expires_at", "message", "msg_id", "redelivered")

    def __init__(self, msg_id: int, message: Message, expires_at: float | None,
                 delivery_count: int, redelivered: bool) -> None:
        self.msg_id = msg_id
        self.message = message
        #: The absolute deadline (seconds since the Unix epoch) of a message with a TTL.
        self.expires_at = expires_at
        #: Deliveries recorded before (by requeues): a quorum queue's ``x-delivery-count``.
        self.delivery_count = delivery_count
        self.redelivered = redelivered

    def __repr__(self) -> str:
        return f"RecoveredMessage({self.msg_id}, redelivered={self.redelivered})"


@dataclass(slots=True)
class RecoveredQueue:
    definition: QueueDefinition
    incarnation: int
    #: In queue order (``msg_id`` order).
    messages: list[RecoveredMessage]
    #: The next ``msg_id`` to give: above every id this queue ever stored.
    next_msg_id: int


@dataclass(slots=True)
class RecoveryReport:
    """What recovery found: the numbers the broker logs at start."""

    clean: bool
    files: int = 0
    records: int = 0
    messages: int = 0
    queues: int = 0
    #: reason -> count, e.g. "messages of deleted queues".
    dropped: Counter[str] = field(default_factory=Counter)
    #: (file name, damage) for every damaged stretch found (never silent, rule 1).
    damage: list[tuple[str, Damage]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines for the start-up log."""
        shutdown = "clean" if self.clean else "unclean (every message is redelivered)"
        lines = [f"recovered {self.messages} messages in {self.queues} durable queues from "
                 f"{self.files} files ({self.records} records); last shutdown {shutdown}"]
        lines += [f"dropped {count} {reason}" for reason, count in sorted(self.dropped.items())]
        for name, damage in self.damage:
            where = "torn tail" if damage.tail else "damaged record"
            action = "truncated" if damage.tail else "skipped"
            lines.append(f"{where} in {name} at offset {damage.offset}: {damage.reason}; "
                         f"{action} {damage.length} bytes")
        return lines + self.notes


@dataclass(slots=True)
class RecoveredState:
    definitions: Definitions
    #: (vhost, queue name) -> its messages, for every durable queue.
    queues: dict[tuple[str, str], RecoveredQueue]
    report: RecoveryReport
    last_seq: int


def scan_file(
    fs: FileSystem, path: str, kind: int, types: frozenset[int], report: RecoveryReport,
    min_seq: int = 0,
) -> tuple[int, RecordScanner] | None:
    """Read one file: its generation and a scanner over its records, or ``None`` when the
    file holds nothing usable (it was removed or set aside, and reported)."""
    name = posixpath.basename(path)
    data = fs.read(path)
    try:
        header = decode_file_header(data)
    except UnsupportedFormat as exc:
        raise UnsupportedFormat(f"{path}: {exc}") from None
    if isinstance(header, str) or header.kind != kind:
        why = header if isinstance(header, str) else f"file kind {header.kind}, not {kind}"
        if len(data) < FILE_HEADER.size:
            fs.remove(path)  # created, header never written: nothing was ever durable in it
            report.notes.append(f"removed {name}: {why}")
        else:
            fs.rename(path, path + ".damaged")
            report.notes.append(f"set {name} aside as {name}.damaged: {why}")
        return None
    report.files += 1
    return header.generation, RecordScanner(data, FILE_HEADER.size, types=types, min_seq=min_seq)


def finish_scan(fs: FileSystem, path: str, scanner: RecordScanner, report: RecoveryReport
                ) -> None:
    report.records += scanner.records
    for damage in scanner.damage:
        report.damage.append((posixpath.basename(path), damage))
    if scanner.damage and scanner.damage[-1].tail:
        fs.truncate(path, scanner.valid_end)


def replay_definitions(fs: FileSystem, directory: str, report: RecoveryReport
                       ) -> tuple[deflog.DefinitionsState, int]:
    """The definitions log (``deflog.py`` rule 4), and the highest seq it holds."""
    log = posixpath.join(directory, "definitions.log")
    following = posixpath.join(directory, "definitions.next")
    if fs.exists(following):
        state, last, complete = _replay_definitions_file(fs, following, report)
        if complete:
            fs.rename(following, log)
            fs.sync_dir(directory)
            report.notes.append("finished an interrupted compaction of the definitions log")
            return state, last
        fs.remove(following)
        fs.sync_dir(directory)
    if not fs.exists(log):
        return deflog.DefinitionsState(), 0
    state, last, _complete = _replay_definitions_file(fs, log, report)
    return state, last


def _replay_definitions_file(fs: FileSystem, path: str, report: RecoveryReport
                             ) -> tuple[deflog.DefinitionsState, int, bool]:
    state = deflog.DefinitionsState()
    scanned = scan_file(fs, path, KIND_DEFINITIONS, deflog.TYPES, report)
    if scanned is None:
        return state, 0, False
    scanner = scanned[1]
    complete = False
    for offset, kind, _seq, payload in scanner:
        if kind == deflog.SNAPSHOT_END:
            complete = True
            continue
        try:
            state.apply(kind, deflog.unpack(payload))
        except (ValueError, TypeError, ProtocolError) as exc:
            report.damage.append((posixpath.basename(path),
                                  Damage(offset, len(payload), str(exc), False)))
    finish_scan(fs, path, scanner, report)
    return state, scanner.last_seq, complete


class MessageReplay:
    """Rule 2's replay, file by file; then :meth:`finish` builds the recovered queues."""

    def __init__(self, segments: SegmentTable, report: RecoveryReport) -> None:
        self.segments = segments
        self.report = report
        #: incarnation -> msg_id -> (entry, segment number)
        self.live: dict[int, dict[int, tuple[Any, int]]] = {}
        #: incarnation -> msg_id -> delivery count, for requeued live messages.
        self.requeued: dict[int, dict[int, int]] = {}
        #: incarnation -> the highest msg_id seen.
        self.highest: dict[int, int] = {}
        #: tombstone groups: (holder segment, target segment, target generation)
        self.tombstones: list[tuple[int, int, int]] = []
        self.last_seq = 0
        #: After :meth:`finish`: incarnation -> msg_id -> location (``segment << 32 | size``)
        #: of every recovered message, the store's index.
        self.index: dict[int, dict[int, int]] = {}
        self._properties = PropertiesCache()
        self._strings: dict[str, str] = {}

    def replay_segment(self, number: int, scanner: RecordScanner, name: str) -> None:
        live = self.live
        highest = self.highest
        segments = self.segments.segments
        for offset, kind, _seq, payload in scanner:
            try:
                groups = msgpack.unpackb(payload, use_list=False)
                if kind == PUBLISH:
                    for incarnation, entries in groups:
                        queue = live.get(incarnation)
                        if queue is None:
                            queue = live[incarnation] = {}
                        for entry in entries:
                            queue[entry[0]] = (entry, number)
                        if entries:
                            top = entries[-1][0]
                            if top > highest.get(incarnation, 0):
                                highest[incarnation] = top
                elif kind == SETTLE:
                    for incarnation, target, generation, runs in groups:
                        queue = live.get(incarnation)
                        if queue is not None:
                            for msg_id in decode_runs(runs):
                                queue.pop(msg_id, None)
                        self.tombstones.append((number, target, generation))
                elif kind == REQUEUE:
                    for incarnation, target, generation, counts in groups:
                        # A REQUEUE older than its target's last compaction was folded into
                        # the copy, which may hold a newer count: it must not win.
                        segment = segments.get(target)
                        if segment is not None and segment.generation == generation:
                            self._requeue(incarnation, counts)
                        self.tombstones.append((number, target, generation))
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                self.report.damage.append(
                    (name, Damage(offset, len(payload), f"record does not decode: {exc}", False)))
        self.last_seq = max(self.last_seq, scanner.last_seq)

    def _requeue(self, incarnation: int, counts: tuple[int, ...]) -> None:
        queue = self.live.get(incarnation)
        if queue is None:
            return
        states = self.requeued.setdefault(incarnation, {})
        for index in range(0, len(counts) - 1, 2):
            if counts[index] in queue:
                states[counts[index]] = counts[index + 1]

    def finish(self, queues: dict[int, QueueDefinition], *, clean: bool
               ) -> dict[tuple[str, str], RecoveredQueue]:
        """Recovered queues for the incarnations that still exist; rebuilds the segment
        table's accounting (rule 5)."""
        segments = self.segments.segments
        for holder, target, generation in self.tombstones:
            segment = segments.get(target)
            if segment is not None and segment.generation == generation and holder != target:
                self.segments.tombstone(holder, target)
        recovered: dict[tuple[str, str], RecoveredQueue] = {}
        for incarnation, definition in queues.items():
            live = self.live.pop(incarnation, {})
            messages = self._messages(incarnation, live, clean)
            self.report.messages += len(messages)
            recovered[(definition.vhost, definition.name)] = RecoveredQueue(
                definition, incarnation, messages, self.highest.get(incarnation, 0) + 1)
        for live in self.live.values():  # rule 2: incarnations of deleted queues
            if live:
                self.report.dropped["messages of deleted queues"] += len(live)
        self.report.queues = len(recovered)
        for segment in segments.values():  # what is neither live nor a needed tombstone
            segment.garbage = max(0, segment.size - FILE_HEADER.size - segment.live_bytes
                                  - TOMBSTONE_BYTES * segment.needed)
        return recovered

    def _messages(self, incarnation: int, live: dict[int, tuple[Any, int]], clean: bool
                  ) -> list[RecoveredMessage]:
        cache = self._properties
        strings = self._strings
        requeued = self.requeued.get(incarnation, {})
        segments = self.segments.segments
        index = self.index[incarnation] = {}
        live_requeued: dict[int, int] = {}
        messages = []
        for msg_id in sorted(live) if not _ascending(live) else live:
            entry, number = live[msg_id]
            try:
                properties = cache.get(entry[3])
            except ProtocolError as exc:
                self.report.dropped[f"messages with unreadable properties ({exc})"] += 1
                continue
            exchange = strings.setdefault(entry[1], entry[1])
            routing_key = strings.setdefault(entry[2], entry[2])
            message = _build_message(exchange, routing_key, entry[4], properties)
            count = requeued.get(msg_id)
            if count is None and len(entry) > 6:
                count = entry[6]
            messages.append(RecoveredMessage(
                msg_id, message, entry[5] if len(entry) > 5 else None, count or 0,
                count is not None or not clean))
            segment = segments[number]
            size = intents.entry_size(message, entry[3])
            index[msg_id] = number << 32 | size
            segment.live += 1
            segment.live_bytes += size
            ids = segment.publishes.get(incarnation)
            if ids is None:
                ids = segment.publishes[incarnation] = array("q")
            ids.append(msg_id)
            if count is not None:
                live_requeued[msg_id] = count
        if live_requeued:
            self.requeued[incarnation] = live_requeued
        else:
            self.requeued.pop(incarnation, None)
        return messages


def _ascending(live: dict[int, Any]) -> bool:
    previous = 0
    for msg_id in live:
        if msg_id <= previous:
            return False
        previous = msg_id
    return True

