"""Streams on disk: one stream's log in its own segment files, a sparse index in memory,
retention by whole files, recovery by a scan. The shell drives it; no event loop here. The
record, the segment with its index and the scan are ``streamsegments.py``'s; reading is
``streamreader.py``'s.

Layout (``stream_directory``)::

    streams/<sha256 of vhost and name>-<incarnation>/00000000000000000000.seg   the segment at 0
                                                    00000000000000004711.seg   ... at 4711

The *incarnation*, the number the stream's definition records (``streamstore.py`` rule 4),
tells a stream from another of the same name declared after it was deleted, so a stream's
files are never taken for another's, whatever a crash keeps.

A segment is a file of the store's format (``records.py``): the header (kind
:data:`KIND_STREAM`, number = the offset of its first message), then one ``CHUNK`` record per
chunk. A record's ``seq`` is the offset of the chunk's first message — offsets are the
records' sequence numbers — and its payload is msgpack ``[wall, bloom, unfiltered, entries]``:
the chunk's Unix time, its Bloom filter of filter values (``bin``, the stream's filter size)
and whether a message had none
(``core/streamlog.py`` rule 2), and ``[exchange, routing_key, properties, body]`` per message,
the properties as the message log writes them (``intents.properties_blob``).

Rules:

1. :meth:`DiskStream.append` only fills memory; :meth:`DiskStream.flush` (once per loop
   iteration) writes the pending chunks, one record each, in one write, and returns the files
   it wrote so the store hands them to group commit (``writer.py``): a stream's messages are
   confirmed once its flush's mark is durable (:class:`StreamStore`).
2. Chunks never span segments: a chunk that would start in a segment already holding
   ``max_segment_size`` bytes starts a new file. Recovered segments are never appended to.
3. The sparse index keeps, per segment, the first offset, and every :data:`INDEX_INTERVAL`
   bytes one (chunk offset, file position, wall time) in ``array`` columns (24 bytes an
   entry), so memory grows with the log's size / 4 KiB, not with its messages. An offset is
   found by a binary search over segments then over the segment's entries, then a forward
   scan of at most an interval of record headers; a timestamp likewise by the wall times.
4. Retention removes whole closed segments (never the one being written): by
   ``x-max-length-bytes`` while the files hold more, by ``x-max-age`` when a closed segment's
   newest chunk is older (wall time). Removal is a ``DeleteFile`` job run by the worker after
   everything written before it is durable; readers in a removed segment move to the new first
   offset.
5. Recovery scans every segment block by block, checking each record's CRC, type and offset
   (increasing), rebuilds the index, and cuts a segment at its first bad record (a torn tail,
   or damage: the lost offsets are a gap readers skip). Only the last record of a segment (its
   message count) and the records at index points (their time) are decoded. Then it syncs
   what it recovered (a ``kill -9`` leaves unsynced pages that are the stream's from now on).
6. The offsets consumers stored (``commit_offset``) are one small file, :data:`OFFSETS`,
   written whole (a temporary file renamed over it) at each commit, without a sync: like
   RabbitMQ's stored offsets they are not confirmed, they survive a ``kill -9``, and a power
   cut may take back the latest commits.
"""

from __future__ import annotations

import hashlib
import posixpath
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import msgpack

from minibroker.message import Message
from minibroker.storage.files import AppendFile, FileSystem
from minibroker.storage.intents import properties_blob
from minibroker.storage.jobs import DeleteFile, write_file
from minibroker.storage.records import encode_file_header, encode_record
from minibroker.storage.streamreader import DiskReader
from minibroker.storage.streamsegments import (
    CHUNK,
    CHUNK_MESSAGES,
    INDEX_INTERVAL,
    KIND_STREAM,
    StreamDamage,
    StreamSegment,
    StreamSettings,
    bloom_mask,
    filter_value,
    properties_filter_value,
    scan_segment,
)
from minibroker.storage.writer import GroupCommit

_exchange = attrgetter("exchange")
_routing_key = attrgetter("routing_key")
_properties = attrgetter("properties")
_body = attrgetter("body")

#: The file of the consumers' stored offsets in a stream's directory (rule 6).
OFFSETS = "offsets"

__all__ = [
    "CHUNK", "CHUNK_MESSAGES", "INDEX_INTERVAL", "KIND_STREAM", "OFFSETS", "DiskReader",
    "DiskStream",
    "StreamDamage", "StreamSettings", "bloom_mask", "parse_directory", "stream_digest",
    "stream_directory",
]


def stream_digest(vhost: str, name: str) -> str:
    """Names may hold any character, so a stream's directory is named by a digest of the vhost
    and the name."""
    return hashlib.sha256(f"{vhost}\0{name}".encode()).hexdigest()


def stream_directory(root: str, vhost: str, name: str, incarnation: int) -> str:
    """Where the segments of one incarnation of a stream live."""
    return posixpath.join(root, "streams", f"{stream_digest(vhost, name)}-{incarnation}")


def parse_directory(name: str) -> tuple[str, int] | None:
    """A stream directory's name -> (digest, incarnation); ``None`` for any other name."""
    digest, dash, incarnation = name.rpartition("-")
    if not dash or len(digest) != 64 or not incarnation.isdigit():
        return None
    return digest, int(incarnation)


@dataclass(slots=True)
class _Chunk:
    first: int
    wall: float
    key: object
    bloom: int = 0
    unfiltered: bool = False
    #: ``[exchange, routing_key, properties blob, body]`` each (a list or a tuple).
    entries: list[Sequence[object]] = field(default_factory=list)


class DiskStream:
    """A stream's log on disk (rules 1-5). ``DiskStream(fs, directory, writer, settings)``
    recovers what ``directory`` holds."""

    def __init__(self, fs: FileSystem, directory: str, writer: GroupCommit,
                 settings: StreamSettings) -> None:
        #: The file system (readers open the segments through it).
        self.fs = fs
        self.directory = directory
        self._writer = writer
        self.settings = settings
        self.segments: list[StreamSegment] = []
        self.damage: list[StreamDamage] = []
        self._file: AppendFile | None = None
        self._pending: list[_Chunk] = []
        #: The offset the next appended message gets; everything below ``written`` is in the
        #: files (the page cache at least).
        self.next_offset = 0
        self.written = 0
        #: Probes made by seeks (rule 3), for tests and the benchmark.
        self.comparisons = 0
        #: The consumers' stored offsets (rule 6).
        self.offsets: dict[str, int] = {}
        #: The first offset of the newest chunk written (``None``: not known since recovery).
        self._last_chunk: int | None = None
        fs.makedirs(directory)
        self._recover()

    # -- recovery (rule 5) ---------------------------------------------------------------

    def _recover(self) -> None:
        names = sorted(name for name in self.fs.listdir(self.directory)
                       if name.endswith(".seg"))
        for name in names:
            path = posixpath.join(self.directory, name)
            reader = self.fs.open_read(path)
            try:
                segment, damage = scan_segment(reader, path)
            finally:
                reader.close()
            if damage is not None:
                self.damage.append(damage)
                if segment is not None:
                    self.fs.truncate(path, segment.size)
            if segment is None or segment.end == segment.first:
                self.fs.remove(path)  # nothing readable in it (rule 5)
                continue
            if self.segments and segment.first < self.segments[-1].end:
                self.damage.append(StreamDamage(path, 0, segment.size,
                                                "overlaps the segment before it"))
                self.fs.remove(path)
                continue
            self.segments.append(segment)
        for segment in self.segments:
            # A kill -9 leaves records in the page cache that were never synced; recovered,
            # they are the stream's, and a later power cut must not take them back (nor
            # leave a gap below a segment synced later).
            file = self.fs.open_append(segment.path)
            file.sync()
            file.close()
        self.fs.sync_dir(self.directory)
        if self.segments:
            self.next_offset = self.written = self.segments[-1].end
        offsets = posixpath.join(self.directory, OFFSETS)
        if self.fs.exists(offsets):
            try:
                stored = msgpack.unpackb(self.fs.read(offsets))
            except ValueError as exc:
                self.damage.append(StreamDamage(offsets, 0, 0, f"unreadable: {exc}"))
            else:
                self.offsets = {str(k): int(v) for k, v in stored.items()}

    # -- consumers' offsets (rule 6) -------------------------------------------------------

    def store_offset(self, name: str, offset: int) -> None:
        """Keep ``offset`` for the consumer ``name``: the whole table is written again."""
        self.offsets[name] = offset
        write_file(self.fs, posixpath.join(self.directory, OFFSETS),
                   msgpack.packb(self.offsets), sync=False)

    # -- appending (rules 1-2) -------------------------------------------------------------

    def append(self, message: Message, wall: float, key: object) -> int:
        """Add ``message`` to the pending chunk of input ``key``; its offset."""
        offset = self.next_offset
        pending = self._pending
        chunk = pending[-1] if pending else None
        if (chunk is None or chunk.key is not key
                or offset - chunk.first >= CHUNK_MESSAGES):
            chunk = _Chunk(offset, wall, key)
            pending.append(chunk)
        value = filter_value(message)
        if value is None:
            chunk.unfiltered = True
        else:
            chunk.bloom |= bloom_mask(value, self.settings.filter_size)
        chunk.entries.append([message.exchange, message.routing_key,
                              properties_blob(message.properties), message.body])
        self.next_offset = offset + 1
        return offset

    def append_many(self, messages: Sequence[Message], wall: float, key: object) -> None:
        """:meth:`append` of each message, a chunk's worth at a time: the entries made by
        ``zip`` (tuples, which msgpack packs as it packs lists), one properties blob and one
        filter value per distinct properties object."""
        done = 0
        pending = self._pending
        size = self.settings.filter_size
        while done < len(messages):
            offset = self.next_offset
            chunk = pending[-1] if pending else None
            if (chunk is None or chunk.key is not key
                    or offset - chunk.first >= CHUNK_MESSAGES):
                chunk = _Chunk(offset, wall, key)
                pending.append(chunk)
            run = messages[done:done + CHUNK_MESSAGES - (offset - chunk.first)]
            properties = list(map(_properties, run))
            blobs = {}
            for one in dict(zip(map(id, properties), properties, strict=True)).values():
                blobs[id(one)] = properties_blob(one)
                value = properties_filter_value(one)
                if value is None:
                    chunk.unfiltered = True
                else:
                    chunk.bloom |= bloom_mask(value, size)
            chunk.entries += zip(map(_exchange, run), map(_routing_key, run),
                                 map(blobs.__getitem__, map(id, properties)), map(_body, run),
                                 strict=True)
            self.next_offset = offset + len(run)
            done += len(run)

    def flush(self) -> AppendFile | None:
        """Write the pending chunks; the file written (for group commit), or ``None``."""
        if not self._pending:
            return None
        pack = msgpack.Packer(use_bin_type=True).pack
        parts: list[bytes] = []
        for chunk in self._pending:
            segment = self.segments[-1] if self.segments and self._file is not None else None
            if segment is None or segment.size >= self.settings.max_segment_size:
                if parts:
                    self._write(parts)
                    parts = []
                segment = self._open_segment(chunk.first)
            bloom = chunk.bloom.to_bytes(self.settings.filter_size, "big")
            record = encode_record(CHUNK, chunk.first, pack(
                [float(chunk.wall), bloom, chunk.unfiltered, chunk.entries]))
            segment.note(chunk.first, segment.size, chunk.wall)
            segment.size += len(record)
            segment.end = chunk.first + len(chunk.entries)
            segment.last_wall = max(segment.last_wall, chunk.wall)
            parts.append(record)
        self._write(parts)
        self._last_chunk = self._pending[-1].first
        self._pending = []
        self.written = self.next_offset
        return self._file

    def _write(self, parts: list[bytes]) -> None:
        assert self._file is not None
        self._file.write(b"".join(parts))

    def _open_segment(self, first: int) -> StreamSegment:
        path = posixpath.join(self.directory, f"{first:020d}.seg")
        file = self.fs.open_append(path)
        self._writer.created(self.directory)  # after the name exists (``streamstore.py``)
        file.write(encode_file_header(KIND_STREAM, first))
        if self._file is not None:
            self._writer.retire(self._file)
        self._file = file
        segment = StreamSegment(path, first)
        self.segments.append(segment)
        return segment

    def close(self) -> None:
        if self._file is not None:
            self._writer.retire(self._file)
            self._file = None

    # -- retention (rule 4) ----------------------------------------------------------------

    @property
    def first_offset(self) -> int:
        return self.segments[0].first if self.segments else self.next_offset

    @property
    def bytes(self) -> int:
        return sum(segment.size for segment in self.segments)

    def retain(self, wall_now: float) -> int:
        """Remove closed head segments past the limits; how many went."""
        settings = self.settings
        if settings.max_length_bytes is None and settings.max_age is None:
            return 0
        removed = 0
        total = self.bytes
        while len(self.segments) > 1:
            oldest = self.segments[0]
            too_big = settings.max_length_bytes is not None and total > settings.max_length_bytes
            too_old = (settings.max_age is not None
                       and oldest.last_wall + settings.max_age <= wall_now)
            if not (too_big or too_old):
                break
            del self.segments[0]
            oldest.removed = True
            total -= oldest.size
            self._writer.submit(DeleteFile(oldest.path))
            removed += 1
        return removed

    # -- the sparse index (rule 3) -----------------------------------------------------------

    def _segment_key(self, segment: StreamSegment) -> int:
        self.comparisons += 1
        return segment.first

    def _segment_wall(self, segment: StreamSegment) -> float:
        self.comparisons += 1
        return segment.last_wall

    def segment_for(self, offset: int) -> StreamSegment | None:
        """The segment holding ``offset``, or the first after it (a gap), or ``None``."""
        segments = self.segments
        index = bisect_right(segments, offset, key=self._segment_key) - 1
        if index < 0:
            return segments[0] if segments else None
        segment = segments[index]
        if offset >= segment.end:
            return segments[index + 1] if index + 1 < len(segments) else None
        return segment

    def at_timestamp(self, wall: float) -> int:
        """The first offset of the first chunk stamped at or after ``wall``, or the end: a
        binary search over segments, one over the segment's index, then a scan of at most
        one index interval of records."""
        segments = self.segments
        index = bisect_left(segments, wall, key=self._segment_wall)
        if index == len(segments):
            return self.written
        segment = segments[index]
        walls = segment.walls
        entry = max(bisect_left(range(len(walls)), wall, key=self._entry_wall(walls)) - 1, 0)
        reader = self.reader(segment.offsets[entry] if walls else segment.first)
        reader.place(segment)  # the segment is known: no second search
        try:
            return reader.first_at(wall)
        finally:
            reader.close()

    def last_chunk(self) -> int:
        """The first offset of the newest chunk (``next_offset`` when the log is empty)."""
        if self._pending:
            return self._pending[-1].first
        if self._last_chunk is None:
            if not self.segments:
                return self.next_offset
            segment = self.segments[-1]
            reader = self.reader(segment.offsets[-1] if len(segment.offsets) else segment.first)
            reader.place(segment)
            try:
                self._last_chunk = reader.last_chunk()
            finally:
                reader.close()
        return self._last_chunk

    def pending_at_timestamp(self, wall: float) -> int:
        """Like :meth:`at_timestamp` among the chunks not yet written."""
        for chunk in self._pending:
            if chunk.wall >= wall:
                return chunk.first
        return self.next_offset

    def _entry_wall(self, walls: array[float]) -> Callable[[int], float]:
        def key(index: int) -> float:
            self.comparisons += 1
            return walls[index]
        return key

    def reader(
        self, offset: int, values: tuple[str, ...] | None = None, match_unfiltered: bool = False,
    ) -> DiskReader:
        return DiskReader(self, offset, values, match_unfiltered)
