"""Framing of the store's append-only files: a file header, then records. Bytes only, no I/O.

File layout::

    header  magic "MBLG" | version u16 | kind u16 | number u64 | generation u32 | crc32 u32
    record  length u32 | crc32 u32 | type u8 | seq u64 | payload (msgpack, ``length`` bytes)
    record  ...

All integers are big-endian. The record's ``crc32`` covers ``type | seq | payload``; the
header's covers its first 20 bytes.

Rules:

1. A file is valid up to its last record whose length fits in the file and whose CRC matches.
   A file never has to be read in full to find its records: each record's length is in front.
2. ``seq`` increases strictly within a file and across the files of one store, so a record
   that reappears after damage (see rule 4) can be told from garbage that merely looks valid.
3. :class:`RecordScanner` never raises on damage: it yields the valid records and describes the
   damage in :attr:`RecordScanner.damage` (offset, bytes skipped, reason).
4. On a damaged record the scanner looks for the next valid record further on (a plausible
   header whose CRC matches and whose ``seq`` is higher than the last good one). If it finds
   one, the damage was in the middle and the scan goes on from there; otherwise the damage is
   the *torn tail* of the file and :attr:`RecordScanner.valid_end` says where to truncate.
5. A version this code does not know is an error (:class:`UnsupportedFormat`), never a guess.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from minibroker.storage.errors import UnsupportedFormat
from minibroker.valueclass import valueclass

__all__ = [
    "FILE_HEADER", "KIND_DEFINITIONS", "KIND_MESSAGES", "MAGIC", "RECORD_HEADER", "VERSION",
    "Damage", "FileHeader", "RecordScanner", "decode_file_header", "encode_file_header",
    "encode_record",
]

MAGIC = b"MBLG"
VERSION = 1
#: The two kinds of file: message segments and the definitions log.
KIND_MESSAGES = 1
KIND_DEFINITIONS = 2

FILE_HEADER = struct.Struct(">4sHHQII")
_HEADER_BODY = struct.Struct(">4sHHQI")
RECORD_HEADER = struct.Struct(">IIBQ")
_TYPE_SEQ = struct.Struct(">BQ")
#: Largest payload a record may declare: a length beyond it is damage, not a record.
MAX_PAYLOAD = 1 << 30


@valueclass(frozen=True)
class FileHeader:
    kind: int
    number: int  #: the segment number (0 for the definitions log)
    generation: int  #: how many times the file was compacted


@valueclass(frozen=True)
class Damage:
    """A stretch of a file that held no valid record."""

    offset: int
    length: int  #: bytes skipped (to the next valid record, or to the end of the file)
    reason: str
    tail: bool  #: nothing valid follows: a torn tail, truncated by recovery


def encode_file_header(kind: int, number: int, generation: int = 0) -> bytes:
    body = _HEADER_BODY.pack(MAGIC, VERSION, kind, number, generation)
    return body + zlib.crc32(body).to_bytes(4, "big")


def decode_file_header(data: bytes | memoryview) -> FileHeader | str:
    """The header of a file, or a text saying why there is none (short, bad magic or CRC).

    Raises :class:`UnsupportedFormat` for a valid header of an unknown version (rule 5)."""
    if len(data) < FILE_HEADER.size:
        return f"{len(data)} bytes, shorter than a file header"
    magic, version, kind, number, generation, crc = FILE_HEADER.unpack_from(data)
    if magic != MAGIC:
        return f"bad magic {bytes(magic)!r}"
    if zlib.crc32(data[:_HEADER_BODY.size]) != crc:
        return "file header CRC mismatch"
    if version != VERSION:
        raise UnsupportedFormat(
            f"format version {version} (this minibroker reads version {VERSION}): written by "
            "another version of minibroker"
        )
    return FileHeader(kind, number, generation)


def encode_record(kind: int, seq: int, payload: bytes) -> bytes:
    type_seq = _TYPE_SEQ.pack(kind, seq)
    crc = zlib.crc32(payload, zlib.crc32(type_seq))
    return RECORD_HEADER.pack(len(payload), crc, kind, seq) + payload


class RecordScanner:
    """Iterate the valid records of one file's bytes: ``(offset, type, seq, payload)``.

    ``payload`` is a memoryview into ``data`` (no copy). ``types`` are the record types this
    file may hold; anything else is damage."""

    __slots__ = ("_data", "_start", "_types", "damage", "last_seq", "records", "size",
                 "valid_end")

    def __init__(
        self, data: bytes, start: int, *, types: frozenset[int], min_seq: int = 0
    ) -> None:
        self._data = data
        self._start = start
        self._types = types
        #: Bytes of the file, as read.
        self.size = len(data)
        self.damage: list[Damage] = []
        #: Highest seq seen (``min_seq`` until a record is read).
        self.last_seq = min_seq
        self.records = 0
        #: Offset just after the last valid record: where a torn tail is cut off.
        self.valid_end = start

    def __iter__(self) -> Iterator[tuple[int, int, int, memoryview]]:
        data = self._data
        view = memoryview(data)
        end = len(data)
        pos = self._start
        unpack = RECORD_HEADER.unpack_from
        crc32 = zlib.crc32
        head = RECORD_HEADER.size
        while pos < end:
            reason = None
            if pos + head > end:
                reason = "record header cut short"
            else:
                length, crc, kind, seq = unpack(data, pos)
                stop = pos + head + length
                if stop > end:
                    reason = f"record of {length} bytes runs past the end of the file"
                elif crc32(view[pos + 8:stop]) != crc:
                    reason = "record CRC mismatch"
                elif kind not in self._types:
                    reason = f"unknown record type {kind}"
                elif seq <= self.last_seq:
                    reason = f"sequence number {seq} does not follow {self.last_seq}"
            if reason is None:
                self.last_seq = seq
                self.records += 1
                self.valid_end = stop
                yield pos, kind, seq, view[pos + head:stop]
                pos = stop
                continue
            resume = self._resync(pos + 1)
            self.damage.append(Damage(pos, (resume if resume is not None else end) - pos,
                                      reason, resume is None))
            if resume is None:
                return
            pos = resume

    def _resync(self, pos: int) -> int | None:
        """The offset of the next valid record at or after ``pos``, if any (rule 4)."""
        data = self._data
        view = memoryview(data)
        end = len(data)
        head = RECORD_HEADER.size
        types = self._types
        unpack = RECORD_HEADER.unpack_from
        for candidate in range(pos, end - head + 1):
            if data[candidate + 8] not in types:  # the cheap test first: the type byte
                continue
            length, crc, _kind, seq = unpack(data, candidate)
            stop = candidate + head + length
            if length > MAX_PAYLOAD or stop > end or seq <= self.last_seq:
                continue
            if zlib.crc32(view[candidate + 8:stop]) == crc:
                return candidate
        return None
