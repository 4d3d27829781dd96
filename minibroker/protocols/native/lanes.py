"""The native codec's fast lanes: Publish and Ack frames read without msgpack (``codec.py``
rule 11).

A publisher sends frame after frame whose bytes differ only in the body: the same opcode,
channel, exchange, routing key, mandatory flag and properties. A consumer acks with frames
that differ only in the delivery tag. The full decode (msgpack, then the frame's schema
check, ``schema.py``) learns a lane from such a frame; later frames that begin with the very
same octets are read here by looking at their last element only.

Rules:

1. A lane is learned only from a frame the full decode accepted, and holds the octets before
   its last varying element (the *prefix*) with the values the full decode made of them. A
   frame that begins with the prefix decodes to those values: msgpack is a prefix code, so the
   same octets are the same elements, already checked.
2. The lane reads the rest itself — a Publish's body (``bin 8/16/32`` whose length ends the
   frame exactly), an Ack's delivery tag (a non-negative msgpack int) and ``multiple`` flag —
   and stops at anything else, which then takes the full decode: that one names the fault,
   so the lanes never change what is an error or what it says.
3. A Publish lane shares its ``Properties`` between the frames it reads. ``Properties`` is
   frozen, but a ``headers`` table is a dict, so a frame with headers never makes a lane
   (each such message keeps a table of its own, as the full decode gives it).
4. A lane reads a run of frames at once and stops, leaving it to the codec's loop, at the
   first frame that is not its own or where a frame-level rule applies (a frame larger than
   the Publish headroom line, a body over ``max_message_size``); the codec uses no lane
   while a message in parts is pending.
5. Runs without frame objects (``NativeCodec.frames_and_runs``, the server's input): a run
   comes out as one :class:`PublishRun` (the lane and the bodies) or :class:`AckRun` (the
   channel and the tags of acks without ``multiple``), not a frame a message. Each is a
   sequence of the frames it stands for, made when asked for (indexing, iteration); a slice
   is a run again. The frame that taught the lane begins the run it is followed by. The
   server's adapter reads the bodies or tags directly (``server/native_adapter.py``);
   everything else sees the frames.
6. Blocks: in a run, frames of one size — a publisher's bodies of one length, a consumer's
   tags of one width — are read in C: ``struct.iter_unpack`` cuts the block into its
   fields (length, prefix, body header and body; or length, prefix, tag marker, tag and
   flag) and the block holds as many frames from the first as have the first's length,
   prefix and header (for acks: the tag's marker and ``false``; a fixint tag at most 0x7f)
   — exactly what the loop accepts of such frames. The loop reads whatever follows. This
   is rule 2's reading without a Python step a frame (callgrind native --backlog 69,796 ->
   60,380 instructions a message, publishes and acks together).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Sequence
from typing import Any, overload

from minibroker.protocols.native.frames import Ack, Publish

__all__ = [
    "AckRun", "PublishLane", "PublishRun", "learn_ack", "learn_publish", "read_acks",
    "read_publishes",
]

_LENGTH = struct.Struct(">I")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_BIN8, _BIN16, _BIN32 = 0xC4, 0xC5, 0xC6
_UINT8, _UINT16, _UINT32, _UINT64 = 0xCC, 0xCD, 0xCE, 0xCF
_FALSE, _TRUE = 0xC2, 0xC3
_FIXINT_MAX = 0x7F
#: Rule 6: fewer frames than this are read by the loop.
_BLOCK = 8
#: Rule 6: a block's first chunk of rows; each next one is twice as long. (Chunks from 8
#: rows cost 3% of a native acked message in callgrind's default shape, whose reads hold
#: 50 publishes or 100 acks: 62,021 -> 63,941 instructions; from 64, see docs/benchmarks.md.)
_FIRST_CHUNK = 64


class PublishLane:
    """What a Publish's prefix decoded to (rule 1)."""

    __slots__ = ("channel", "exchange", "mandatory", "prefix", "properties", "routing_key")

    def __init__(self, prefix: bytes, frame: Publish) -> None:
        self.prefix = prefix
        self.channel = frame.channel
        self.exchange = frame.exchange
        self.routing_key = frame.routing_key
        self.mandatory = frame.mandatory
        self.properties = frame.properties


class PublishRun(Sequence[Publish]):
    """Consecutive publishes of one lane, as their bodies (rule 5)."""

    __slots__ = ("bodies", "lane")

    def __init__(self, lane: PublishLane, bodies: list[bytes]) -> None:
        self.lane = lane
        self.bodies = bodies

    @property
    def channel(self) -> int:
        return self.lane.channel

    def __len__(self) -> int:
        return len(self.bodies)

    @overload
    def __getitem__(self, index: int) -> Publish: ...
    @overload
    def __getitem__(self, index: slice) -> PublishRun: ...
    def __getitem__(self, index: int | slice) -> Publish | PublishRun:
        if isinstance(index, slice):
            return PublishRun(self.lane, self.bodies[index])
        return self._frame(self.bodies[index])

    def __iter__(self) -> Iterator[Publish]:
        return map(self._frame, self.bodies)

    def _frame(self, body: bytes) -> Publish:
        lane = self.lane
        return Publish(lane.channel, lane.exchange, lane.routing_key, lane.mandatory,
                       lane.properties, body)

    def __repr__(self) -> str:
        return f"PublishRun(channel={self.channel}, {len(self.bodies)} bodies)"


class AckRun(Sequence[Ack]):
    """Consecutive acks without ``multiple`` of one channel, as their tags (rule 5)."""

    __slots__ = ("channel", "tags")

    def __init__(self, channel: int, tags: list[int]) -> None:
        self.channel = channel
        self.tags = tags

    def __len__(self) -> int:
        return len(self.tags)

    @overload
    def __getitem__(self, index: int) -> Ack: ...
    @overload
    def __getitem__(self, index: slice) -> AckRun: ...
    def __getitem__(self, index: int | slice) -> Ack | AckRun:
        if isinstance(index, slice):
            return AckRun(self.channel, self.tags[index])
        return Ack(self.channel, self.tags[index], False)

    def __iter__(self) -> Iterator[Ack]:
        channel = self.channel
        return (Ack(channel, tag, False) for tag in self.tags)

    def __repr__(self) -> str:
        return f"AckRun(channel={self.channel}, {len(self.tags)} tags)"


def _bin_header(size: int) -> bytes:
    """The shortest msgpack ``bin`` header for ``size`` bytes (what msgpack itself writes)."""
    if size < 0x100:
        return bytes((_BIN8, size))
    if size < 0x1_0000:
        return bytes((_BIN16,)) + _U16.pack(size)
    return bytes((_BIN32,)) + _U32.pack(size)


def learn_publish(frame: Publish, payload: bytes | memoryview) -> PublishLane | None:
    """The lane of a Publish the full decode built from ``payload``; None when its body's header
    is not the shortest one (another sender's habit: the full decode keeps reading those) or
    the message has headers (rule 3)."""
    if frame.properties.headers is not None:
        return None
    size = len(frame.body)
    header = _bin_header(size)
    cut = len(payload) - size - len(header)
    if cut <= 0 or payload[cut : cut + len(header)] != header:
        return None
    return PublishLane(bytes(payload[:cut]), frame)


def read_publishes(
    lane: PublishLane, buffer: bytes | bytearray, offset: int, end: int, limit: int,
    largest: int | None, found: list[Any], many: bool, runs: bool = False,
) -> int:
    """Read the run of the lane's publishes at ``offset`` (only one unless ``many``) into
    ``found``, as one :class:`PublishRun` when ``runs`` (rule 5); return the offset after the
    last one read. It stops at the first frame that is incomplete, larger than ``limit`` (the
    codec's headroom line), or not exactly the prefix and one ``bin`` body (rule 2) of at most
    ``largest`` bytes: the codec's loop takes that one. (One call a run, not one a frame:
    bench/instructions.py native, callgrind, ack 84,181 -> 82,114 instructions a message,
    no-ack 56,646 -> 55,433.)"""
    bodies: list[bytes] = []
    offset = _read_bodies(lane, buffer, offset, end, limit, largest, bodies, many)
    if bodies:
        if not (runs and many):
            found.extend(PublishRun(lane, bodies))
        elif found and type(last := found[-1]) is PublishRun and last.lane is lane:
            last.bodies.extend(bodies)  # (the frame that taught the lane began the run)
        else:
            found.append(PublishRun(lane, bodies))  # rule 5
    return offset


def _alike(columns: list[tuple[Any, ...]], expected: tuple[Any, ...]) -> int:
    """How many rows, from the first, hold the ``expected`` value in every column (rule 6);
    counted in C."""
    count = len(columns[0])
    for column, value in zip(columns, expected, strict=True):
        if column[:count].count(value) != count:
            count = list(map(value.__eq__, column[:count])).index(False)
    return count


#: Rule 6: the struct layouts of blocks; their sizes are the peer's (prefix and body lengths),
#: so only the last few are kept.
@functools.lru_cache(maxsize=64)
def _layout(text: str) -> struct.Struct:
    return struct.Struct(text)


def _block(layout: struct.Struct, buffer: bytes | bytearray, offset: int, available: int,
           checked: tuple[int, ...], expected: tuple[Any, ...], wanted: int, out: list[Any],
           fixint: bool = False) -> int:
    """Rule 6: unpack rows of ``layout`` at ``offset`` (at most ``available``) and keep, from
    the first, those whose ``checked`` columns hold the ``expected`` values (and, with
    ``fixint``, whose ``wanted`` column is at most 0x7f); append their ``wanted`` column to
    ``out`` and return how many were kept. The rows are unpacked in chunks of 64, 128,
    256... and a chunk with a row that differs ends the block, so a block costs at most about
    twice what it keeps plus 64 rows (a block is tried at most once per frame that takes the
    full decode, which costs more): unpacking all that is buffered at once made a stream
    whose every few frames differ cost time quadratic in the read."""
    stride = layout.size
    total, chunk = 0, _FIRST_CHUNK
    with memoryview(buffer) as view:
        while total < available:
            rows = min(chunk, available - total)
            at = offset + total * stride
            columns = list(zip(*layout.iter_unpack(view[at : at + rows * stride]), strict=True))
            kept = _alike([columns[index] for index in checked], expected)
            values = columns[wanted][:kept]
            if fixint and kept and max(values) > _FIXINT_MAX:  # another one-octet type
                kept = list(map(_FIXINT_MAX.__ge__, values)).index(False)
                values = values[:kept]
            out.extend(values)
            total += kept
            if kept < rows:
                break
            chunk *= 2
    return total


def _block_of_bodies(
    lane: PublishLane, buffer: bytes | bytearray, offset: int, end: int, limit: int,
    largest: int | None, bodies: list[bytes],
) -> int:
    """Rule 6 for publishes: frames the size of the first, each the prefix, the first's
    ``bin`` header and a body; return the offset after them."""
    size: int = _LENGTH.unpack_from(buffer, offset)[0]
    stride = 4 + size
    count = (end - offset) // stride
    prefix = lane.prefix
    if count < _BLOCK or size > limit or size < len(prefix) + 2:  # (2: the shortest header)
        return offset
    start = offset + 4 + len(prefix)
    marker = buffer[start]
    if marker == _BIN8:
        head, length = 2, buffer[start + 1]
    elif marker == _BIN16:
        head, length = 3, _U16.unpack_from(buffer, start + 1)[0]
    else:
        return offset  # (bodies of 64 KiB and more: the loop's turn is cheap beside them)
    if len(prefix) + head + length != size or (largest is not None and length > largest):
        return offset
    layout = _layout(f">I{len(prefix)}s{head}s{length}s")
    header = bytes(buffer[start : start + head])
    return offset + stride * _block(layout, buffer, offset, count, (0, 1, 2),
                                    (size, prefix, header), 3, bodies)


def _read_bodies(
    lane: PublishLane, buffer: bytes | bytearray, offset: int, end: int, limit: int,
    largest: int | None, bodies: list[bytes], many: bool,
) -> int:
    """:func:`read_publishes`' loop: the bodies of the run (only one unless ``many``)."""
    if many and end - offset >= 4:
        offset = _block_of_bodies(lane, buffer, offset, end, limit, largest, bodies)
    prefix = lane.prefix
    skip = 4 + len(prefix)
    append = bodies.append
    while end - offset >= 4:
        size = _LENGTH.unpack_from(buffer, offset)[0]
        stop = offset + 4 + size
        if stop > end or size > limit or not buffer.startswith(prefix, offset + 4, stop):
            break
        start = offset + skip
        if start >= stop:
            break
        marker = buffer[start]
        if marker == _BIN8:
            begin = start + 2
            if begin > stop:
                break
            length = buffer[start + 1]
        elif marker == _BIN16:
            begin = start + 3
            if begin > stop:
                break
            length = _U16.unpack_from(buffer, start + 1)[0]
        elif marker == _BIN32:
            begin = start + 5
            if begin > stop:
                break
            length = _U32.unpack_from(buffer, start + 1)[0]
        else:
            break
        if begin + length != stop or (largest is not None and length > largest):
            break
        body = buffer[begin:stop]
        append(body if type(body) is bytes else bytes(body))
        offset = stop
        if not many:
            break
    return offset


def learn_ack(frame: Ack, payload: bytes | memoryview) -> tuple[bytes, int] | None:
    """The prefix of an Ack the full decode built from ``payload`` — the array header, the
    opcode and the channel — and its channel, when the channel is written the shortest way;
    else None."""
    channel = frame.channel
    if channel <= _FIXINT_MAX:
        encoded = bytes((channel,))
    elif channel < 0x100:
        encoded = bytes((_UINT8, channel))
    else:
        encoded = bytes((_UINT16,)) + _U16.pack(channel)
    cut = 2 + len(encoded)
    if payload[2:cut] != encoded:
        return None
    return bytes(payload[:cut]), channel


#: Rule 6: the struct format of a tag by its msgpack marker, and the marker's column.
_TAG_FORMATS = {_UINT8: "BB", _UINT16: "BH", _UINT32: "BI", _UINT64: "BQ"}


def _block_of_tags(
    lane: tuple[bytes, int], buffer: bytes | bytearray, offset: int, end: int,
    tags: list[int],
) -> int:
    """Rule 6 for acks without ``multiple``: frames the size of the first, each the prefix,
    a tag written as the first's is and ``false``; return the offset after them."""
    size: int = _LENGTH.unpack_from(buffer, offset)[0]
    stride = 4 + size
    count = (end - offset) // stride
    prefix = lane[0]
    if count < _BLOCK or size <= len(prefix):
        return offset
    marker = buffer[offset + 4 + len(prefix)]
    if marker <= _FIXINT_MAX:
        layout = _layout(f">I{len(prefix)}sBB")
    elif marker in _TAG_FORMATS:
        layout = _layout(f">I{len(prefix)}s{_TAG_FORMATS[marker]}B")
    else:
        return offset
    if layout.size != stride:
        return offset
    if marker <= _FIXINT_MAX:  # the marker is the tag
        kept = _block(layout, buffer, offset, count, (0, 1, 3), (size, prefix, _FALSE), 2,
                      tags, fixint=True)
    else:
        kept = _block(layout, buffer, offset, count, (0, 1, 2, 4),
                      (size, prefix, marker, _FALSE), 3, tags)
    return offset + stride * kept


def read_acks(
    lane: tuple[bytes, int], buffer: bytes | bytearray, offset: int, end: int,
    found: list[Any], many: bool, runs: bool = False,
) -> int:
    """Read the run of the lane's acks at ``offset`` (only one unless ``many``) into ``found``;
    return the offset after the last one read. It stops at the first frame that is incomplete
    or not exactly the prefix, a non-negative msgpack int and a bool (rule 2). With ``runs``
    and ``many`` (rule 5), the acks without ``multiple`` gather in :class:`AckRun` s, and one
    with ``multiple`` ends a run and comes as its frame."""
    prefix, channel = lane
    skip = 4 + len(prefix)
    runs = runs and many
    tags: list[int] = []
    if runs and found and type(last := found[-1]) is AckRun and last.channel == channel:
        tags = last.tags  # (the frame that taught the lane began the run)
        found.pop()
    if runs and end - offset >= 4:
        offset = _block_of_tags(lane, buffer, offset, end, tags)
    while end - offset >= 4:
        size = _LENGTH.unpack_from(buffer, offset)[0]
        stop = offset + 4 + size
        if stop > end or not buffer.startswith(prefix, offset + 4, stop):
            break
        start = offset + skip
        last = stop - 1
        if last <= start:
            break
        flag = buffer[last]
        if flag != _TRUE and flag != _FALSE:
            break
        marker = buffer[start]
        size = last - start
        if marker <= _FIXINT_MAX:
            if size != 1:
                break
            tag = marker
        elif marker == _UINT8 and size == 2:
            tag = buffer[start + 1]
        elif marker == _UINT16 and size == 3:
            tag = _U16.unpack_from(buffer, start + 1)[0]
        elif marker == _UINT32 and size == 5:
            tag = _U32.unpack_from(buffer, start + 1)[0]
        elif marker == _UINT64 and size == 9:
            tag = _U64.unpack_from(buffer, start + 1)[0]
        else:
            break
        offset = stop
        if not runs:
            found.append(Ack(channel, tag, flag == _TRUE))
            if not many:
                break
        elif flag == _FALSE:
            tags.append(tag)
        else:
            if tags:
                found.append(AckRun(channel, tags))  # rule 5
                tags = []
            found.append(Ack(channel, tag, True))
    if tags:
        found.append(AckRun(channel, tags))  # rule 5
    return offset
