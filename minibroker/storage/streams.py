"""Streams on disk: one stream's log in its own segment files, a sparse index in memory,
retention by whole files, recovery by a scan. The shell drives it; no event loop here.

Layout (``stream_directory``)::

    streams/<sha256 of vhost and name>/00000000000000000000.seg   the segment starting at 0
                                       00000000000000004711.seg   ... at offset 4711

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
"""

from __future__ import annotations

import hashlib
import posixpath
import struct
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack

from minibroker.message import Message
from minibroker.protocols.building import frozen_builder
from minibroker.storage.files import AppendFile, FileSystem, ReadFile
from minibroker.storage.intents import PropertiesCache, properties_blob
from minibroker.storage.jobs import DeleteFile
from minibroker.storage.records import (
    FILE_HEADER,
    RECORD_HEADER,
    decode_file_header,
    encode_file_header,
    encode_record,
)
from minibroker.storage.writer import GroupCommit

__all__ = [
    "CHUNK", "CHUNK_MESSAGES", "INDEX_INTERVAL", "KIND_STREAM", "DiskReader", "DiskStream",
    "StreamDamage", "StreamSettings", "stream_directory",
]

KIND_STREAM = 3
CHUNK = 32
INDEX_INTERVAL = 4096
CHUNK_MESSAGES = 1024
READ_BLOCK = 256 * 1024
#: ``Message(...)`` for the reader: a quarter of the frozen ``__init__``'s cost
#: (``protocols/building.py``).
build_message = frozen_builder(Message)
_HEAD = RECORD_HEADER.size
_WALL = struct.Struct(">d")
FILTER_HEADER = "x-stream-filter-value"


def stream_directory(root: str, vhost: str, name: str) -> str:
    """Where a stream's segments live: names may hold any character, so the directory is a
    digest of the vhost and the name."""
    digest = hashlib.sha256(f"{vhost}\0{name}".encode()).hexdigest()
    return posixpath.join(root, "streams", digest)


def filter_value(message: Message) -> str | None:
    """A message's ``x-stream-filter-value`` (as ``core/streamlog.py`` reads it)."""
    headers = message.properties.headers
    value = headers.get(FILTER_HEADER) if headers else None
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


def bloom_mask(value: str, size: int) -> int:
    """The bits ``value`` sets in a Bloom filter of ``size`` bytes (as ``core/streamlog.py``
    computes them, so a chunk's filter means the same in memory and on disk)."""
    data = value.encode()
    bits = size * 8
    first = zlib.crc32(data)
    second = zlib.crc32(data, 0x9E3779B9) | 1
    return (1 << (first % bits)) | (1 << ((first + second) % bits))


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """What a stream was declared with (``core/streamargs.StreamLimits``, as plain values)."""

    max_segment_size: int = 500_000_000
    max_length_bytes: int | None = None
    max_age: float | None = None  #: seconds
    filter_size: int = 16


@dataclass(frozen=True, slots=True)
class StreamDamage:
    """A stretch of a segment recovery could not read (rule 5)."""

    path: str
    offset: int
    length: int
    reason: str

    def line(self) -> str:
        return (f"damaged stream segment {posixpath.basename(self.path)} at byte "
                f"{self.offset}: {self.reason}; cut {self.length} bytes")


class StreamSegment:
    """One segment file and its part of the sparse index (rule 3)."""

    __slots__ = ("end", "first", "indexed", "last_wall", "offsets", "path", "positions",
                 "removed", "size", "walls")

    def __init__(self, path: str, first: int) -> None:
        self.path = path
        self.first = first
        #: The offset after its last message.
        self.end = first
        self.size = FILE_HEADER.size
        self.last_wall = float("-inf")
        self.offsets = array("q")
        self.positions = array("q")
        self.walls = array("d")
        #: The file position of the last index entry.
        self.indexed = -INDEX_INTERVAL
        self.removed = False

    def note(self, offset: int, position: int, wall: float) -> None:
        """A chunk record at ``position``: an index entry if an interval has passed."""
        if position - self.indexed >= INDEX_INTERVAL:
            self.offsets.append(offset)
            self.positions.append(position)
            self.walls.append(wall)
            self.indexed = position

    def locate(self, offset: int) -> int:
        """The position of an indexed chunk at or before ``offset``."""
        index = bisect_right(self.offsets, offset) - 1
        return self.positions[max(index, 0)]


@dataclass(slots=True)
class _Chunk:
    first: int
    wall: float
    key: object
    bloom: int = 0
    unfiltered: bool = False
    entries: list[list[object]] = field(default_factory=list)


def _head(payload: memoryview | bytes) -> tuple[float, int, bool]:
    """(wall, bloom, unfiltered) of a chunk payload, without decoding its entries."""
    unpacker = msgpack.Unpacker()
    unpacker.feed(payload[:320] if len(payload) > 320 else payload)  # time, 255-byte bloom
    unpacker.read_array_header()
    wall, bloom, unfiltered = unpacker.unpack(), unpacker.unpack(), unpacker.unpack()
    return float(wall), int.from_bytes(bloom, "big"), bool(unfiltered)


class DiskStream:
    """A stream's log on disk (rules 1-5). ``DiskStream(fs, directory, writer, settings)``
    recovers what ``directory`` holds."""

    def __init__(self, fs: FileSystem, directory: str, writer: GroupCommit,
                 settings: StreamSettings) -> None:
        self._fs = fs
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
        fs.makedirs(directory)
        self._recover()

    # -- recovery (rule 5) ---------------------------------------------------------------

    def _recover(self) -> None:
        names = sorted(name for name in self._fs.listdir(self.directory)
                       if name.endswith(".seg"))
        for name in names:
            path = posixpath.join(self.directory, name)
            segment = self._scan(path)
            if segment is None or segment.end == segment.first:
                self._fs.remove(path)  # nothing readable in it (rule 5)
                continue
            if self.segments and segment.first < self.segments[-1].end:
                self.damage.append(StreamDamage(path, 0, segment.size, "overlaps the segment "
                                                "before it"))
                self._fs.remove(path)
                continue
            self.segments.append(segment)
        for segment in self.segments:
            # A kill -9 leaves records in the page cache that were never synced; recovered,
            # they are the stream's, and a later power cut must not take them back (nor
            # leave a gap below a segment synced later).
            file = self._fs.open_append(segment.path)
            file.sync()
            file.close()
        self._fs.sync_dir(self.directory)
        if self.segments:
            self.next_offset = self.written = self.segments[-1].end

    def _scan(self, path: str) -> StreamSegment | None:
        reader = self._fs.open_read(path)
        try:
            header = decode_file_header(reader.pread(FILE_HEADER.size, 0))
            if isinstance(header, str) or header.kind != KIND_STREAM:
                why = header if isinstance(header, str) else f"file kind {header.kind}"
                self.damage.append(StreamDamage(path, 0, 0, f"not a stream segment: {why}"))
                return None
            segment = StreamSegment(path, header.number)
            last, reason = self._scan_records(reader, segment)
            tail = 0
            while chunk := reader.pread(READ_BLOCK, segment.size + tail):
                tail += len(chunk)
        finally:
            reader.close()
        if last is not None:
            seq, payload = last
            wall, _bloom, _unfiltered, entries = msgpack.unpackb(payload)
            segment.end = seq + len(entries)
            segment.last_wall = wall
        if tail:
            self.damage.append(StreamDamage(path, segment.size, tail, reason or "torn tail"))
            self._fs.truncate(path, segment.size)
        return segment

    def _scan_records(
        self, reader: ReadFile, segment: StreamSegment,
    ) -> tuple[tuple[int, bytes] | None, str | None]:
        """Walk the good records, indexing them; ``segment.size`` ends after the last one.
        Returns it (seq, payload) and why the walk stopped before the end, if it did."""
        position = FILE_HEADER.size
        block = b""
        block_start = position
        last: tuple[int, bytes] | None = None
        expected = segment.first
        while True:
            at = position - block_start
            if at + _HEAD > len(block):
                block = reader.pread(READ_BLOCK, position)
                block_start, at = position, 0
                if len(block) < _HEAD:
                    return last, "record header cut short" if block else None
            length, crc, kind, seq = RECORD_HEADER.unpack_from(block, at)
            stop = at + _HEAD + length
            if stop > len(block):
                block = reader.pread(max(READ_BLOCK, _HEAD + length), position)
                block_start, at, stop = position, 0, _HEAD + length
                if stop > len(block):
                    return last, f"record of {length} bytes runs past the end of the file"
            view = memoryview(block)
            if zlib.crc32(view[at + 8:stop]) != crc:
                return last, "record CRC mismatch"
            if kind != CHUNK:
                return last, f"unknown record type {kind}"
            if seq < expected:
                return last, f"offset {seq} does not follow {expected - 1}"
            payload = bytes(view[at + _HEAD:stop])
            if position - segment.indexed >= INDEX_INTERVAL:
                segment.note(seq, position, self._wall(payload))
            last = (seq, payload)
            expected = seq + 1
            position += _HEAD + length
            segment.size = position

    @staticmethod
    def _wall(payload: bytes) -> float:
        if payload[:2] == b"\x94\xcb":  # [float64, ...]: read the time without msgpack
            return float(_WALL.unpack_from(payload, 2)[0])
        return _head(payload)[0]

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

    def flush(self) -> AppendFile | None:
        """Write the pending chunks; the file written (for group commit), or ``None``."""
        if not self._pending:
            return None
        pack = msgpack.Packer(use_bin_type=True).pack
        parts: list[bytes] = []
        written: AppendFile | None = None
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
        written = self._file
        self._pending = []
        self.written = self.next_offset
        return written

    def _write(self, parts: list[bytes]) -> None:
        assert self._file is not None
        self._file.write(b"".join(parts))

    def _open_segment(self, first: int) -> StreamSegment:
        path = posixpath.join(self.directory, f"{first:020d}.seg")
        self._writer.created(self.directory)
        file = self._fs.open_append(path)
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

    def _entry_wall(self, walls: array[float]) -> Callable[[int], float]:
        def key(index: int) -> float:
            self.comparisons += 1
            return walls[index]
        return key

    def reader(
        self, offset: int, values: tuple[str, ...] | None = None, match_unfiltered: bool = False,
    ) -> DiskReader:
        return DiskReader(self, offset, values, match_unfiltered)


class DiskReader:
    """A cursor over a :class:`DiskStream`: :meth:`read` returns the next messages."""

    __slots__ = ("_block", "_block_start", "_cache", "_file", "_masks", "_position",
                 "_unfiltered", "_values", "offset", "segment", "stream")

    def __init__(self, stream: DiskStream, offset: int, values: tuple[str, ...] | None,
                 match_unfiltered: bool) -> None:
        self.stream = stream
        #: The next offset to read.
        self.offset = offset
        self.segment: StreamSegment | None = None
        self._file: ReadFile | None = None
        self._position = 0
        self._block = b""
        self._block_start = 0
        self._cache = PropertiesCache()
        self._values = None if values is None else frozenset(values)
        self._masks = () if values is None else tuple(
            bloom_mask(value, stream.settings.filter_size) for value in values)
        self._unfiltered = match_unfiltered

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _seek(self) -> bool:
        """Position on the record holding ``offset`` (rule 3); False when past the end."""
        stream = self.stream
        if self.offset < stream.first_offset:
            self.offset = stream.first_offset
        if self.offset >= stream.written:
            return False
        segment = stream.segment_for(self.offset)
        if segment is None:
            return False
        self.place(segment)
        return True

    def place(self, segment: StreamSegment) -> None:
        """Position in ``segment`` on the indexed record at or before ``offset``."""
        if self.offset < segment.first:
            self.offset = segment.first  # a gap left by damage
        self.close()
        self.segment = segment
        self._file = self.stream._fs.open_read(segment.path)
        self._position = segment.locate(self.offset)
        self._block = b""

    def _record(self) -> tuple[int, memoryview] | None:
        """The record at the current position: (seq, payload), or None at the segment's
        end."""
        segment = self.segment
        assert segment is not None and self._file is not None
        if self._position >= segment.size:
            return None
        at = self._position - self._block_start
        block = self._block
        if at < 0 or at + _HEAD > len(block):
            block = self._block = self._file.pread(READ_BLOCK, self._position)
            self._block_start, at = self._position, 0
        length, crc, _kind, seq = RECORD_HEADER.unpack_from(block, at)
        stop = at + _HEAD + length
        if stop > len(block):
            block = self._block = self._file.pread(max(READ_BLOCK, _HEAD + length),
                                                   self._position)
            self._block_start, at, stop = self._position, 0, _HEAD + length
        view = memoryview(block)
        if zlib.crc32(view[at + 8:stop]) != crc:
            raise OSError(f"{segment.path}: record CRC mismatch at byte {self._position}")
        return seq, view[at + _HEAD:stop]

    def _advance(self, payload: memoryview) -> None:
        self._position += _HEAD + len(payload)

    def first_at(self, wall: float) -> int:
        """From here, the first offset of a chunk stamped at or after ``wall``."""
        while True:
            if (self.segment is None or self.segment.removed) and not self._seek():
                return self.stream.written
            record = self._record()
            if record is None:
                if not self._next_segment():
                    return self.stream.written
                continue
            seq, payload = record
            if self.stream._wall(bytes(payload[:10])) >= wall:
                return seq
            self._advance(payload)

    def _next_segment(self) -> bool:
        assert self.segment is not None
        self.offset = max(self.offset, self.segment.end)
        self.segment = None
        return self._seek()

    def read(self, max_messages: int = 1000,
             max_bytes: int = 1 << 20) -> list[tuple[int, Message]]:
        """The next messages (at most ``max_messages``, and stopping after ``max_bytes`` of
        bodies), consumed from the cursor; empty when the reader is at the end."""
        got: list[tuple[int, Message]] = []
        size = 0
        cache = self._cache.get
        known = self._cache.known.get
        values = self._values
        while len(got) < max_messages and size < max_bytes:
            segment = self.segment
            if (segment is None or segment.removed or self.offset < self.stream.first_offset
                    or not segment.first <= self.offset < segment.end):
                if not self._seek():
                    break
                continue
            record = self._record()
            if record is None:
                if not self._next_segment():
                    break
                continue
            seq, payload = record
            if values is not None:
                _wall, bloom, unfiltered = _head(payload)
                if not self._candidate(bloom, unfiltered):
                    # Skipped whole, entries never decoded: the next record tells its end.
                    self._advance(payload)
                    self.offset = max(self.offset, self._next_seq(seq))
                    continue
            entries = msgpack.unpackb(payload)[3]
            end = seq + len(entries)
            if end <= self.offset:
                self._advance(payload)
                continue
            start = self.offset - seq
            if values is None:
                stop = min(len(entries), start + max_messages - len(got))
                for index in range(start, stop):
                    exchange, routing_key, blob, body = entries[index]
                    properties = known(blob)
                    got.append((seq + index, build_message(
                        exchange, routing_key, body,
                        cache(blob) if properties is None else properties)))
                    size += len(body)
                    if size >= max_bytes:
                        stop = index + 1
                        break
                self.offset = seq + stop
            else:
                for index in range(start, len(entries)):
                    exchange, routing_key, blob, body = entries[index]
                    message = build_message(exchange, routing_key, body, cache(blob))
                    self.offset = seq + index + 1
                    value = filter_value(message)
                    if not (value in values if value is not None else self._unfiltered):
                        continue
                    got.append((seq + index, message))
                    size += len(body)
                    if len(got) >= max_messages or size >= max_bytes:
                        break
            if self.offset >= end:
                self._advance(payload)
        return got

    def _next_seq(self, seq: int) -> int:
        """The offset after the chunk just passed: the next record's, or the segment's end."""
        record = self._record()
        return record[0] if record is not None else max(seq + 1, self.segment.end
                                                         if self.segment else seq + 1)

    def _candidate(self, bloom: int, unfiltered: bool) -> bool:
        if self._unfiltered and unfiltered:
            return True
        return any(bloom & mask == mask for mask in self._masks)


def recover_streams(
    fs: FileSystem, root: str, writer: GroupCommit,
    settings: Callable[[str], StreamSettings],
) -> dict[str, DiskStream]:
    """Every stream directory under ``root/streams``, by directory name."""
    base = posixpath.join(root, "streams")
    if not fs.exists(base):
        return {}
    return {name: DiskStream(fs, posixpath.join(base, name), writer, settings(name))
            for name in fs.listdir(base)}
