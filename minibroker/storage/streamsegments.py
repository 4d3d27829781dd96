"""A stream's files on disk: the chunk record, the segment with its part of the sparse index,
and the recovery scan of one segment. ``streams.py`` describes the layout and the rules of the
whole log.

Rules:

1. A ``CHUNK`` record's ``seq`` is the offset of its first message; its payload is msgpack
   ``[wall, bloom, unfiltered, entries]``, ``wall`` a float64 written first, so the time of an
   indexed chunk is read without msgpack (:func:`chunk_wall`) and a filter's test decodes only
   the head (:func:`chunk_head`), never the entries.
2. A :class:`StreamSegment` keeps one index entry every :data:`INDEX_INTERVAL` bytes of file,
   in ``array`` columns: (chunk offset, file position, wall time), 24 bytes an entry.
3. :func:`scan_segment` reads a segment block by block, checking each record's CRC, type and
   offset (increasing), and stops at the first bad record, saying why; only the last record's
   entries (its message count) and the indexed records' times are decoded.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from bisect import bisect_right
from dataclasses import dataclass

import msgpack

from minibroker.message import Message, Properties
from minibroker.storage.files import ReadFile
from minibroker.storage.records import FILE_HEADER, RECORD_HEADER, decode_file_header

__all__ = [
    "CHUNK", "CHUNK_MESSAGES", "HEAD", "INDEX_INTERVAL", "KIND_STREAM", "READ_BLOCK",
    "StreamDamage", "StreamSegment", "StreamSettings", "bloom_mask", "chunk_entries", "chunk_head",
    "chunk_wall",
    "filter_value", "properties_filter_value", "scan_segment",
]

#: The file kind of a stream segment, and its one record type.
KIND_STREAM = 3
CHUNK = 32
INDEX_INTERVAL = 4096
CHUNK_MESSAGES = 1024
READ_BLOCK = 256 * 1024
HEAD = RECORD_HEADER.size
_WALL = struct.Struct(">d")
FILTER_HEADER = "x-stream-filter-value"


def filter_value(message: Message) -> str | None:
    """A message's ``x-stream-filter-value`` (as ``core/streamlog.py`` reads it)."""
    return properties_filter_value(message.properties)


def properties_filter_value(properties: Properties) -> str | None:
    """The ``x-stream-filter-value`` header of ``properties``, if it is a string."""
    headers = properties.headers
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
    """A stretch of a segment recovery could not read."""

    path: str
    offset: int
    length: int
    reason: str

    def line(self) -> str:
        name = self.path.rsplit("/", 1)[-1]
        return (f"damaged stream segment {name} at byte {self.offset}: {self.reason}; "
                f"cut {self.length} bytes")


def chunk_head(payload: memoryview | bytes) -> tuple[float, int, bool]:
    """(wall, bloom, unfiltered) of a chunk payload, without decoding its entries."""
    unpacker = msgpack.Unpacker()
    unpacker.feed(payload[:320] if len(payload) > 320 else payload)  # time, 255-byte bloom
    unpacker.read_array_header()
    wall, bloom, unfiltered = unpacker.unpack(), unpacker.unpack(), unpacker.unpack()
    return float(wall), int.from_bytes(bloom, "big"), bool(unfiltered)


def chunk_entries(payload: memoryview | bytes) -> tuple[int, int]:
    """(where the entries array of a chunk payload starts, how many entries it holds),
    without decoding them: the head's usual layout (a float64 time, a ``bin8`` Bloom filter,
    a bool) is read directly, any other through msgpack."""
    if payload[:2] == b"\x94\xcb" and payload[10] == 0xC4 and payload[12 + payload[11]] in (
            0xC2, 0xC3):
        position = 13 + payload[11]
    else:
        unpacker = msgpack.Unpacker()
        unpacker.feed(payload[:320] if len(payload) > 320 else payload)
        unpacker.read_array_header()
        for _ in range(3):
            unpacker.skip()
        position = unpacker.tell()
    header = payload[position]
    if header & 0xF0 == 0x90:
        return position, header & 0x0F
    if header == 0xDC:
        return position, int.from_bytes(payload[position + 1:position + 3], "big")
    if header == 0xDD:
        return position, int.from_bytes(payload[position + 1:position + 5], "big")
    raise ValueError(f"chunk entries are not an array (byte {header:#04x})")


def chunk_wall(payload: bytes | memoryview) -> float:
    """The time of a chunk (rule 1)."""
    if payload[:2] == b"\x94\xcb":  # [float64, ...]: read the time without msgpack
        return float(_WALL.unpack_from(payload, 2)[0])
    return chunk_head(payload)[0]


class StreamSegment:
    """One segment file and its part of the sparse index (rule 2)."""

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


def scan_segment(
    reader: ReadFile, path: str,
) -> tuple[StreamSegment | None, StreamDamage | None]:
    """Rule 3: the segment as far as it is good, and what was cut after it, if anything."""
    header = decode_file_header(reader.pread(FILE_HEADER.size, 0))
    if isinstance(header, str) or header.kind != KIND_STREAM:
        why = header if isinstance(header, str) else f"file kind {header.kind}"
        return None, StreamDamage(path, 0, 0, f"not a stream segment: {why}")
    segment = StreamSegment(path, header.number)
    last, reason = _records(reader, segment)
    tail = 0
    while chunk := reader.pread(READ_BLOCK, segment.size + tail):
        tail += len(chunk)
    if last is not None:
        seq, payload = last
        wall, _bloom, _unfiltered, entries = msgpack.unpackb(payload)
        segment.end = seq + len(entries)
        segment.last_wall = wall
    damage = StreamDamage(path, segment.size, tail, reason or "torn tail") if tail else None
    return segment, damage


def _records(
    reader: ReadFile, segment: StreamSegment,
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
        if at + HEAD > len(block):
            block = reader.pread(READ_BLOCK, position)
            block_start, at = position, 0
            if len(block) < HEAD:
                return last, "record header cut short" if block else None
        length, crc, kind, seq = RECORD_HEADER.unpack_from(block, at)
        stop = at + HEAD + length
        if stop > len(block):
            block = reader.pread(max(READ_BLOCK, HEAD + length), position)
            block_start, at, stop = position, 0, HEAD + length
            if stop > len(block):
                return last, f"record of {length} bytes runs past the end of the file"
        view = memoryview(block)
        if zlib.crc32(view[at + 8:stop]) != crc:
            return last, "record CRC mismatch"
        if kind != CHUNK:
            return last, f"unknown record type {kind}"
        if seq < expected:
            return last, f"offset {seq} does not follow {expected - 1}"
        payload = bytes(view[at + HEAD:stop])
        if position - segment.indexed >= INDEX_INTERVAL:
            segment.note(seq, position, chunk_wall(payload))
        last = (seq, payload)
        expected = seq + 1
        position += HEAD + length
        segment.size = position
