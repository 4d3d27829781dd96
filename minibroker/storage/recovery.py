"""Recovery: from the files of a data directory back to definitions and queued messages.

Rules:

1. Recovery never raises on damage. A torn or CRC-failed tail is cut off (the file is truncated
   at its last valid record); a damaged stretch followed by valid records is skipped; a file
   whose header is unreadable is set aside as ``<name>.damaged`` (or removed when it is too
   short to hold anything). Each case is reported with the file name and the offset. The one
   error is a file of an unknown format version (``records.py`` rule 5).
2. Messages are replayed in file order: a PUBLISH adds a message to its queue incarnation, a
   SETTLE removes it, a REQUEUE marks it redelivered with its delivery count (unless its target
   segment was compacted since: the copy then holds the count; ``segments.py`` rule 2). The
   messages of an incarnation that the definitions no longer hold (a deleted queue) are dropped
   and counted.
3. Each queue's messages come back in ``msg_id`` order, which is their queue order.
4. After an unclean shutdown every recovered message is redelivered; after a clean one only
   those that had been requeued (delivered before), as RabbitMQ 3.10 does.
5. The segment table (``segments.py``) is rebuilt from what the files hold, so reclaim goes on
   where it stopped.
"""

from __future__ import annotations

import posixpath
from array import array
from typing import Any

import msgpack

from minibroker.errors import ProtocolError
from minibroker.storage import deflog
from minibroker.storage.definitions import QueueDefinition
from minibroker.storage.errors import UnsupportedFormat
from minibroker.storage.files import FileSystem
from minibroker.storage.intents import PUBLISH, REQUEUE, SETTLE, PropertiesCache
from minibroker.storage.records import (
    FILE_HEADER,
    KIND_DEFINITIONS,
    Damage,
    RecordScanner,
    decode_file_header,
)
from minibroker.storage.recovered import RecoveredQueue, RecoveryReport
from minibroker.storage.segments import TOMBSTONE_BYTES, SegmentTable

__all__ = ["MessageReplay", "finish_scan", "replay_definitions", "scan_file"]

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
        if len(data) < FILE_HEADER.size or not data.strip(b"\x00"):
            # Created, but its header never reached the disk (nothing, or zeros): nothing was
            # ever durable in it, since a sync covers the header with the first records.
            fs.remove(path)
            report.notes.append(f"removed {name}: {why}")
        else:  # kept for the operator, under a name no later start overwrites
            aside = path + ".damaged"
            copy = 1
            while fs.exists(aside):
                aside = f"{path}.damaged.{copy}"
                copy += 1
            fs.rename(path, aside)
            report.notes.append(f"set {name} aside as {posixpath.basename(aside)}: {why}")
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
    """Rule 2's replay, file by file; then :meth:`finish` builds the recovered queues.

    The per-message work is kept to C-level dict and array operations: a million messages
    replay in well under a second, and the messages themselves are built later, as they are
    taken (``recovered.py`` rule 1)."""

    def __init__(self, segments: SegmentTable, report: RecoveryReport) -> None:
        self.segments = segments
        self.report = report
        #: incarnation -> msg_id -> PUBLISH entry
        self.live: dict[int, dict[int, Any]] = {}
        #: incarnation -> msg_id -> delivery count, from REQUEUE records.
        self.requeued: dict[int, dict[int, int]] = {}
        #: incarnation -> the highest msg_id seen.
        self.highest: dict[int, int] = {}
        #: tombstone groups: (holder segment, target segment, target generation)
        self.tombstones: list[tuple[int, int, int]] = []
        #: segment -> [PUBLISH entries, their payload bytes], for the average entry size.
        self.volume: dict[int, list[int]] = {}
        #: (incarnation, segment) pairs named by a SETTLE: only there can a published
        #: message be gone.
        self.settled: set[tuple[int, int]] = set()
        #: incarnations whose PUBLISHes did not come in ``msg_id`` order (never expected).
        self.unordered: set[int] = set()
        self.last_seq = 0
        #: After :meth:`finish`: incarnation -> msg_id -> location (``segment << 32 | size``)
        #: of every recovered message, the store's index.
        self.index: dict[int, dict[int, int]] = {}

    def replay_segment(self, number: int, scanner: RecordScanner, name: str) -> None:
        live = self.live
        highest = self.highest
        segments = self.segments.segments
        publishes = segments[number].publishes
        volume = self.volume.setdefault(number, [0, 0])
        settled = self.settled
        for offset, kind, _seq, payload in scanner:
            try:
                groups = msgpack.unpackb(payload, use_list=False)
                if kind == PUBLISH:
                    volume[1] += len(payload)
                    for incarnation, entries in groups:
                        queue = live.get(incarnation)
                        if queue is None:
                            queue = live[incarnation] = {}
                        ids = [entry[0] for entry in entries]
                        queue.update(zip(ids, entries, strict=True))
                        published = publishes.get(incarnation)
                        if published is None:
                            published = publishes[incarnation] = array("q")
                        published.extend(ids)
                        volume[0] += len(ids)
                        if ids:
                            top = highest.get(incarnation, 0)
                            if ids[0] <= top or ids != sorted(ids):
                                self.unordered.add(incarnation)
                            highest[incarnation] = max(top, ids[-1], ids[0])
                elif kind == SETTLE:
                    for incarnation, target, generation, runs in groups:
                        settled.add((incarnation, target))
                        queue = live.get(incarnation)
                        if queue is not None:
                            pop = queue.pop
                            for index in range(0, len(runs) - 1, 2):
                                for msg_id in range(runs[index], runs[index] + runs[index + 1]):
                                    pop(msg_id, None)
                        self.tombstones.append((number, target, generation))
                elif kind == REQUEUE:
                    for incarnation, target, generation, counts in groups:
                        # A REQUEUE older than its target's last compaction was folded into
                        # the copy, which may hold a newer count: it must not win.
                        segment = segments.get(target)
                        if segment is not None and generation >= segment.floor:
                            states = self.requeued.setdefault(incarnation, {})
                            for index in range(0, len(counts) - 1, 2):
                                states[counts[index]] = counts[index + 1]
                        self.tombstones.append((number, target, generation))
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                self.report.damage.append(
                    (name, Damage(offset, len(payload), f"record does not decode: {exc}", False)))
        self.last_seq = max(self.last_seq, scanner.last_seq)

    def finish(self, queues: dict[int, QueueDefinition], *, clean: bool
               ) -> dict[tuple[str, str], RecoveredQueue]:
        """Recovered queues for the incarnations that still exist; rebuilds the segment
        table's accounting (rule 5)."""
        segments = self.segments.segments
        for holder, target, generation in self.tombstones:
            segment = segments.get(target)
            if segment is None or generation < segment.floor:
                continue  # the segment was deleted or compacted since: not needed
            # A crash may have lost a compaction that tombstones already named: never give
            # out a generation again (``segments.py`` rule 4).
            segment.generation = max(segment.generation, generation)
            if holder != target:
                self.segments.tombstone(holder, target)
        cache = PropertiesCache()
        strings: dict[str, str] = {}
        recovered: dict[tuple[str, str], RecoveredQueue] = {}
        for incarnation, definition in queues.items():
            live = self.live.pop(incarnation, {})
            self._locate(incarnation, live)
            if incarnation in self.unordered:
                entries = [live[msg_id] for msg_id in sorted(live)]
            else:
                entries = list(live.values())
            requeued = {i: c for i, c in self.requeued.pop(incarnation, {}).items() if i in live}
            if requeued:
                self.requeued[incarnation] = requeued
            recovered[(definition.vhost, definition.name)] = RecoveredQueue(
                definition, incarnation, entries, self.highest.get(incarnation, 0) + 1,
                dict(requeued),  # the store's own copy changes as the queue lives on
                clean=clean, cache=cache, strings=strings, report=self.report)
            self.report.messages += len(entries)
        for live in self.live.values():  # rule 2: incarnations of deleted queues
            if live:
                self.report.dropped["messages of deleted queues"] += len(live)
        self.live = {}
        self.requeued = {k: v for k, v in self.requeued.items() if k in queues}
        self.report.queues = len(recovered)
        for segment in segments.values():  # what is neither live nor a needed tombstone
            segment.garbage = max(0, segment.size - FILE_HEADER.size - segment.live_bytes
                                  - TOMBSTONE_BYTES * segment.needed)
        return recovered

    def _locate(self, incarnation: int, live: dict[int, Any]) -> None:
        """The index of one incarnation, and the live counts of the segments holding it.
        A recovered entry is counted at its segment's average entry size (close enough for
        the reclaim accounting, and no per-message work)."""
        index = self.index[incarnation] = {}
        for number, segment in self.segments.segments.items():
            published = segment.publishes.get(incarnation)
            if published is None:
                continue
            if (incarnation, number) in self.settled:
                here: set[int] | array[int] = live.keys() & published
                if not here:
                    del segment.publishes[incarnation]
                    continue
                segment.publishes[incarnation] = array("q", sorted(here))
            else:  # no SETTLE named this segment: everything published here is live
                here = published
            count, size = self.volume.get(number, (0, 0))
            average = size // count if count else 0
            segment.live += len(here)
            segment.live_bytes += average * len(here)
            index.update(dict.fromkeys(here, number << 32 | average))
