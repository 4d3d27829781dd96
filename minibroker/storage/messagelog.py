"""The message log being written: this loop iteration's records, and the open segment file.

Rules:

1. Intents are only collected in memory until :meth:`MessageLog.flush` (once per loop
   iteration): consecutive intents of one type form one record, grouped by queue incarnation
   (publishes) or by incarnation and target segment (tombstones), so a burst of a thousand
   publishes or acks is one record, one msgpack call and one CRC.
2. Each record takes the next sequence number of the store (:class:`Sequencer`, shared with the
   definitions log) when it is started; an intent learns at once the number that will cover it.
3. A record grows to about :data:`RECORD_LIMIT` bytes at most; a larger batch starts a new one.
4. The writer appends to one segment at a time; after a flush that takes it past the segment
   size, the next flush goes to a new segment (so a segment ends with a whole flush). A new
   segment is created with its header, and its directory is synced before any of its records
   is reported durable (``writer.py`` rule 2). Recovered segments are never appended to.
"""

from __future__ import annotations

import posixpath
from typing import Any

import msgpack

from minibroker.storage.files import AppendFile, FileSystem
from minibroker.storage.intents import PUBLISH, SETTLE, encode_runs
from minibroker.storage.records import KIND_MESSAGES, encode_file_header, encode_record
from minibroker.storage.segments import Segment, SegmentTable
from minibroker.storage.writer import GroupCommit

__all__ = ["RECORD_LIMIT", "MessageLog", "Sequencer", "segment_name"]

RECORD_LIMIT = 4 << 20


def segment_name(number: int) -> str:
    return f"{number:020d}.seg"


class Sequencer:
    """The store's record sequence numbers (rule 2)."""

    __slots__ = ("last",)

    def __init__(self, last: int) -> None:
        self.last = last

    def next(self) -> int:
        self.last += 1
        return self.last


class MessageLog:
    __slots__ = ("_bytes", "_file", "_fs", "_groups", "_kind", "_records", "_seq", "_writer",
                 "directory", "segment", "segment_size", "segments", "sequencer")

    def __init__(self, fs: FileSystem, directory: str, writer: GroupCommit,
                 segments: SegmentTable, sequencer: Sequencer, *, segment_size: int) -> None:
        self._fs = fs
        self.directory = directory
        self._writer = writer
        self.segments = segments
        self.sequencer = sequencer
        self.segment_size = segment_size
        #: Finished records of this iteration: (kind, seq, groups).
        self._records: list[tuple[int, int, Any]] = []
        #: The record being filled: its kind, seq, groups and estimated size.
        self._kind = 0
        self._seq = 0
        self._groups: dict[Any, list[Any]] = {}
        self._bytes = 0
        self._file: AppendFile | None = None
        self.segment: Segment = self._open_segment(
            (max(segments.segments) + 1) if segments.segments else 1)

    def _open_segment(self, number: int) -> Segment:
        path = posixpath.join(self.directory, segment_name(number))
        file = self._fs.open_append(path)
        self._writer.created(self.directory)  # after the name exists (``streamstore.py``)
        header = encode_file_header(KIND_MESSAGES, number)
        file.write(header)
        if self._file is not None:
            self._writer.retire(self._file)
        self._file = file
        segment = self.segments.add(number)
        segment.size = len(header)
        return segment

    def _start(self, kind: int) -> None:
        if self._kind:
            self._records.append((self._kind, self._seq, self._groups))
        self._kind = kind
        self._seq = self.sequencer.next()
        self._groups = {}
        self._bytes = 0

    def publish(self, incarnation: int, entry: tuple[Any, ...], size: int) -> int:
        if self._kind != PUBLISH or self._bytes > RECORD_LIMIT:
            self._start(PUBLISH)
        entries = self._groups.get(incarnation)
        if entries is None:
            entries = self._groups[incarnation] = []
        entries.append(entry)
        self._bytes += size
        return self._seq

    def tombstone(self, kind: int, incarnation: int, target: Segment, items: list[int]) -> int:
        """Add msg_ids (SETTLE) or msg_id, count pairs (REQUEUE) naming PUBLISHes in
        ``target``; counts the tombstone group in the segment table when it is new."""
        if self._kind != kind or self._bytes > RECORD_LIMIT:
            self._start(kind)
        group_key = (incarnation, target.number, target.generation)
        group = self._groups.get(group_key)
        if group is None:
            group = self._groups[group_key] = []
            self.segments.tombstone(self.segment.number, target.number)
        group += items
        self._bytes += 9 * len(items)
        return self._seq

    def flush(self) -> tuple[int, AppendFile | None]:
        """Write this iteration's records to the segment: the last seq written and the file,
        or ``(0, None)`` when there was nothing to write. Then :meth:`rotate_if_full`."""
        if not self._kind:
            return 0, None
        self._records.append((self._kind, self._seq, self._groups))
        self._kind = 0
        self._groups = {}
        parts = []
        for kind, seq, groups in self._records:
            if kind == PUBLISH:
                payload = [[incarnation, entries] for incarnation, entries in groups.items()]
            elif kind == SETTLE:
                payload = [[*k, encode_runs(ids)] for k, ids in groups.items()]
            else:
                payload = [[*k, counts] for k, counts in groups.items()]
            parts.append(encode_record(kind, seq, msgpack.packb(payload)))
        last = self._records[-1][1]
        self._records = []
        data = b"".join(parts)
        file = self._file
        assert file is not None
        file.write(data)
        self.segment.size += len(data)
        return last, file

    def rotate_if_full(self) -> None:
        if self.segment.size >= self.segment_size:
            self.segment = self._open_segment(self.segment.number + 1)

    def close(self) -> None:
        if self._file is not None:
            self._writer.retire(self._file)
            self._file = None
