"""AMQP 0-9-1 content: basic properties, content header frames and body frames.

Content is a content-bearing method frame, then one content header frame (class id, weight 0,
64-bit body size, property flags, property list), then body frames whose payloads add up to
the body size (AMQP §4.2.6).

Rules:

1. Properties are the 14 basic properties in spec order; property *i* is flagged by bit
   15 - *i*, bit 0 is the continuation flag (AMQP §4.2.6.1). Class basic has no 15th property,
   so a set continuation or reserved bit 1 is a 501 "cannot decode".
2. Absent stays absent: a property the publisher did not send is ``None`` and is re-emitted as
   not sent, so a delivery carries exactly the publisher's properties.
3. Decoded properties without headers are cached by their raw octets (publishers repeat the
   same few); :class:`~minibroker.message.Properties` is immutable, so sharing is safe.
   Encoded properties are cached by identity for the fan-out case (one message delivered to
   many consumers) — which relies on nobody mutating a ``headers`` dict after publishing.
4. Bodies are split at ``frame_max - 8`` octets (frame-max counts the 8 octets of frame
   overhead); body size 0 means no body frame at all.
5. Short-string properties may hold any octets, as in RabbitMQ: those that are not UTF-8 are
   kept surrogate-escaped and sent on as the same octets (``fields.py`` rule 6).
6. A delivery's constant parts are encoded once and kept, bounded like the other caches: the
   basic.deliver frame's octets before and after the delivery tag, per (channel, consumer
   tag, exchange, routing key); the content header frame and the body frame's head, per
   (properties, channel, body size) for a body that fits one frame.
7. A stream's delivery (``Deliver.offset``) carries the ``x-stream-offset`` header as RabbitMQ
   writes it: a signed 64-bit ``l`` entry that replaces any header of that name, in a table
   sorted by key octets (3.10's ``rabbit_misc:set_table_value``, 4.x's ``mc_amqpl``: both
   sort). Its content header is kept, per (properties, channel, body size) like rule 6's,
   as the octets before and after the offset's 8, so each delivery only packs its offset:
   the message's properties are not copied and no table is encoded per delivery.
"""

from __future__ import annotations

import struct
from typing import Any

from minibroker.errors import FrameError
from minibroker.message import EMPTY_PROPERTIES, FieldTable, Properties
from minibroker.protocols.amqp091.fields import (
    decode_table,
    encode_table,
    encode_text,
    encode_value,
    text,
)
from minibroker.protocols.amqp091.frames import (
    FRAME_HEAD,
    encode_method,
    octets,
)
from minibroker.protocols.amqp091.methods import BasicDeliver, Method
from minibroker.protocols.amqp091.spec import BASIC_PROPERTIES, FRAME_OVERHEAD
from minibroker.protocols.building import build_properties

__all__ = [
    "decode_properties",
    "encode_content",
    "encode_deliver",
    "encode_properties",
    "encode_stream_deliver",
    "stream_properties",
]

_H = struct.Struct(">H")
_B = struct.Struct(">B")
_Q = struct.Struct(">Q")
_HEADER_HEAD = struct.Struct(">BHIHHQ")  # type, channel, size, class id, weight, body size
_HEADER_FIXED = 12  # class id, weight, body size: the header payload before the flags
_DELIVER_HEAD = struct.Struct(">BHIIB")  # type, channel, size, method key, consumer_tag length
_TAG_BITS = struct.Struct(">QB")
_OFFSET = struct.Struct(">q")
_LONG = struct.Struct(">I")
_OFFSET_NAME = b"x-stream-offset"
#: The x-stream-offset entry up to its value: name length, name, type ``l`` (rule 7).
_OFFSET_ENTRY = bytes((len(_OFFSET_NAME),)) + _OFFSET_NAME + b"l"
_END = b"\xce"
_NAMES = tuple(p.name for p in BASIC_PROPERTIES)
_KINDS = tuple(p.type for p in BASIC_PROPERTIES)
_HEADERS_FLAG = 1 << 13  # bit 15 - 2: headers is the third property
_CACHE_LIMIT = 512

_decoded: dict[bytes, Properties] = {}
_encoded: dict[int, tuple[Properties, bytes]] = {}
_deliver_parts: dict[tuple[str, str, str, int], tuple[bytes, bytes]] = {}  #: rule 6
_content_heads: dict[tuple[int, int, int], tuple[Properties, bytes]] = {}  #: rule 6
_stream_heads: dict[tuple[int, int, int], tuple[Properties, bytes, bytes]] = {}  #: rule 7


# -- properties --------------------------------------------------------------------------------


def decode_properties(buf: bytes, start: int, end: int) -> Properties:
    """Decode property flags + property list from ``buf[start:end]``."""
    raw = buf[start:end]
    cached = _decoded.get(raw)
    if cached is not None:
        return cached
    try:
        properties = _decode_properties(raw)
    except (IndexError, struct.error):
        raise FrameError(f"cannot decode content header properties {octets(raw)}") from None
    if len(raw) >= 2 and not raw[0] & (_HEADERS_FLAG >> 8):
        if len(_decoded) >= _CACHE_LIMIT:
            _decoded.clear()
        _decoded[raw] = properties
    return properties


def _decode_properties(raw: bytes) -> Properties:
    (flags,) = _H.unpack_from(raw, 0)
    if flags == 0 and len(raw) == 2:
        return EMPTY_PROPERTIES
    if flags & 0b11:
        raise FrameError(f"cannot decode content header property flags {flags:#06x}")
    values: list[Any] = [None] * 14
    off = 2
    for i in range(14):
        if not flags & (0x8000 >> i):
            continue
        kind = _KINDS[i]
        if kind == "shortstr":
            nxt = off + 1 + raw[off]
            if nxt > len(raw):
                raise IndexError
            values[i] = text(raw[off + 1 : nxt])
            off = nxt
        elif kind == "octet":
            values[i] = raw[off]
            off += 1
        elif kind == "timestamp":
            (values[i],) = _Q.unpack_from(raw, off)
            off += 8
        else:  # headers table
            values[i], off = decode_table(raw, off)
    if off != len(raw):
        raise FrameError(f"cannot decode content header properties {octets(raw)}")
    return build_properties(*values)


def encode_properties(properties: Properties) -> bytes:
    """Property flags + property list (rule 2: only the properties that are set)."""
    if properties is EMPTY_PROPERTIES:
        return b"\x00\x00"
    cached = _encoded.get(id(properties))
    if cached is not None and cached[0] is properties:
        return cached[1]
    headers = properties.headers
    parts, _ = _property_parts(properties, None if headers is None else [encode_table(headers)])
    encoded = b"".join(parts)
    if len(_encoded) >= _CACHE_LIMIT:
        _encoded.clear()
    _encoded[id(properties)] = (properties, encoded)
    return encoded


def _property_parts(properties: Properties, table: list[bytes] | None) -> tuple[list[bytes], int]:
    """The flags and the property list as parts to join, ``table`` (the encoded headers table,
    in parts) standing for the headers, ``None`` for none; and where ``table`` begins."""
    flags = 0
    parts = [b""]
    at = 0
    for i, name in enumerate(_NAMES):
        if i == 2:  # headers
            if table is not None:
                flags |= _HEADERS_FLAG
                at = len(parts)
                parts += table
            continue
        value = getattr(properties, name)
        if value is None:
            continue
        flags |= 0x8000 >> i
        kind = _KINDS[i]
        if kind == "shortstr":
            raw = encode_text(value)
            if len(raw) > 255:
                raise ValueError(f"property {name} longer than 255 octets")
            parts.append(_B.pack(len(raw)) + raw)
        elif kind == "octet":
            if not 0 <= value <= 255:
                raise ValueError(f"property {name}={value} does not fit an octet")
            parts.append(_B.pack(value))
        elif kind == "timestamp":
            if not 0 <= value < 2**64:
                raise ValueError(f"property timestamp={value} does not fit 64 unsigned bits")
            parts.append(_Q.pack(value))
    parts[0] = _H.pack(flags)
    return parts, at


def stream_properties(properties: Properties) -> tuple[bytes, bytes]:
    """Rule 7: the flags and property list of a stream's delivery of a message with
    ``properties``, as the octets before and after the ``x-stream-offset`` value."""
    before, after = _stream_table(properties.headers)
    parts, at = _property_parts(properties, [before, after])
    return b"".join(parts[:at + 1]), b"".join(parts[at + 1:])


def _stream_table(headers: FieldTable | None) -> tuple[bytes, bytes]:
    """The headers table with ``x-stream-offset`` (rule 7), split where its value goes."""
    entries: list[tuple[bytes, bytes]] = []
    for name, value in (headers or {}).items():
        key = encode_text(name)
        if key == _OFFSET_NAME:
            continue  # replaced
        if len(key) > 255:
            raise ValueError(f"field name longer than 255 octets: {name[:32]!r}...")
        entries.append((key, bytes((len(key),)) + key + encode_value(value)))
    entries.append((_OFFSET_NAME, b""))
    entries.sort(key=_first)  # octet order, as Erlang compares binaries
    at = entries.index((_OFFSET_NAME, b""))
    before = b"".join([entry for _, entry in entries[:at]])
    after = b"".join([entry for _, entry in entries[at + 1:]])
    size = len(before) + len(_OFFSET_ENTRY) + _OFFSET.size + len(after)
    return _LONG.pack(size) + before + _OFFSET_ENTRY, after


def _first(entry: tuple[bytes, bytes]) -> bytes:
    return entry[0]


# -- content frames ----------------------------------------------------------------------------


def _header_and_body(
    channel: int, class_id: int, properties: Properties, body: bytes, frame_max: int
) -> list[bytes | memoryview]:
    props = encode_properties(properties)
    size = len(body)
    parts: list[bytes | memoryview] = [
        _HEADER_HEAD.pack(2, channel, _HEADER_FIXED + len(props), class_id, 0, size), props, _END
    ]
    if size:
        _add_body_frames(parts, channel, body, frame_max)
    return parts


def _add_body_frames(
    parts: list[bytes | memoryview], channel: int, body: bytes, frame_max: int
) -> None:
    """The body frames of a non-empty ``body`` (rule 4), appended to ``parts``."""
    size = len(body)
    chunk = frame_max - FRAME_OVERHEAD if frame_max else size
    if size <= chunk:
        parts += (FRAME_HEAD.pack(3, channel, size), body, _END)
        return
    view = memoryview(body)  # slice without copying; join copies each octet once
    for offset in range(0, size, chunk):
        piece = view[offset : offset + chunk]
        parts += (FRAME_HEAD.pack(3, channel, len(piece)), piece, _END)


def encode_content(
    channel: int, method: Method, properties: Properties, body: bytes, frame_max: int
) -> bytes:
    """A content-bearing method frame, its content header and its body frames, as one
    uninterrupted sequence (AMQP §4.2.6: no other frame of this channel may come between).

    ``frame_max`` is the negotiated maximum frame size (0 = no limit)."""
    if not method.SPEC.content:
        raise ValueError(f"{method.NAME} does not carry content")
    if frame_max and frame_max <= FRAME_OVERHEAD:
        raise ValueError(f"frame_max {frame_max} leaves no room for a body")
    if isinstance(method, BasicDeliver):
        return encode_deliver(
            channel, method.consumer_tag, method.delivery_tag, method.redelivered,
            method.exchange, method.routing_key, properties, body, frame_max,
        )
    parts: list[bytes | memoryview] = [encode_method(channel, method)]
    parts += _header_and_body(channel, method.CLASS_ID, properties, body, frame_max)
    return b"".join(parts)


def encode_deliver(
    channel: int,
    consumer_tag: str,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    properties: Properties,
    body: bytes,
    frame_max: int,
) -> bytes:
    """basic.deliver + content header + body without building a method object: the broker's
    per-delivery hot path. Its constant parts come from rule 6's caches (bench/instructions.py
    amqp, callgrind: 141,262 -> 131,865 instructions a message; no-ack 112,769 -> 103,926)."""
    key = (consumer_tag, exchange, routing_key, channel)
    method = _deliver_parts.get(key)
    if method is None:
        method = _deliver_method_parts(channel, consumer_tag, exchange, routing_key)
    size = len(body)
    if size and (not frame_max or size <= frame_max - FRAME_OVERHEAD):
        content = _content_heads.get((id(properties), channel, size))
        if content is None or content[0] is not properties:
            content = _content_head(properties, channel, size)
        return b"".join((method[0], _TAG_BITS.pack(delivery_tag, 1 if redelivered else 0),
                         method[1], content[1], body, _END))
    parts: list[bytes | memoryview] = [
        method[0], _TAG_BITS.pack(delivery_tag, 1 if redelivered else 0), method[1],
    ]
    parts += _header_and_body(channel, 60, properties, body, frame_max)
    return b"".join(parts)


def _deliver_method_parts(
    channel: int, consumer_tag: str, exchange: str, routing_key: str
) -> tuple[bytes, bytes]:
    """Rule 6: the basic.deliver frame's octets before the delivery tag, and after it."""
    try:
        tag = consumer_tag.encode()
        ex = exchange.encode()
        rk = routing_key.encode()
    except UnicodeEncodeError:  # surrogate-escaped octets published over AMQP (rule 5)
        tag, ex, rk = encode_text(consumer_tag), encode_text(exchange), encode_text(routing_key)
    if len(tag) > 255 or len(ex) > 255 or len(rk) > 255:
        raise ValueError("consumer_tag, exchange and routing_key must be at most 255 octets")
    size = 4 + 1 + len(tag) + 9 + 1 + len(ex) + 1 + len(rk)
    parts = (_DELIVER_HEAD.pack(1, channel, size, BasicDeliver.KEY, len(tag)) + tag,
             _B.pack(len(ex)) + ex + _B.pack(len(rk)) + rk + _END)
    if len(_deliver_parts) >= _CACHE_LIMIT:
        _deliver_parts.clear()
    _deliver_parts[(consumer_tag, exchange, routing_key, channel)] = parts
    return parts


def _content_head(properties: Properties, channel: int, size: int) -> tuple[Properties, bytes]:
    """Rule 6: the content header frame and the head of the one body frame that follows."""
    props = encode_properties(properties)
    head = (_HEADER_HEAD.pack(2, channel, _HEADER_FIXED + len(props), 60, 0, size) + props
            + _END + FRAME_HEAD.pack(3, channel, size))
    if len(_content_heads) >= _CACHE_LIMIT:
        _content_heads.clear()
    entry = (properties, head)
    _content_heads[(id(properties), channel, size)] = entry
    return entry



def encode_stream_deliver(
    channel: int,
    consumer_tag: str,
    delivery_tag: int,
    exchange: str,
    routing_key: str,
    properties: Properties,
    body: bytes,
    frame_max: int,
    offset: int,
) -> bytes:
    """basic.deliver + content header + body of a stream's message at ``offset``: the stored
    message's properties with the ``x-stream-offset`` header (rule 7), never redelivered.
    Instead of a copy of the message with the header made in the core and its table encoded
    here: 81,273 -> 46,207 instructions a replayed delivery (bench/replay_instructions.sh)."""
    key = (consumer_tag, exchange, routing_key, channel)
    method = _deliver_parts.get(key)
    if method is None:
        method = _deliver_method_parts(channel, consumer_tag, exchange, routing_key)
    size = len(body)
    if not size or not frame_max or size <= frame_max - FRAME_OVERHEAD:
        content = _stream_heads.get((id(properties), channel, size))
        if content is None or content[0] is not properties:
            content = _stream_head(properties, channel, size)
        return b"".join((method[0], _TAG_BITS.pack(delivery_tag, 0), method[1], content[1],
                         _OFFSET.pack(offset), content[2], body, _END if size else b""))
    before, after = stream_properties(properties)
    props_size = len(before) + _OFFSET.size + len(after)
    parts: list[bytes | memoryview] = [
        method[0], _TAG_BITS.pack(delivery_tag, 0), method[1],
        _HEADER_HEAD.pack(2, channel, _HEADER_FIXED + props_size, 60, 0, size), before,
        _OFFSET.pack(offset), after, _END,
    ]
    _add_body_frames(parts, channel, body, frame_max)
    return b"".join(parts)


def _stream_head(
    properties: Properties, channel: int, size: int
) -> tuple[Properties, bytes, bytes]:
    """Rule 7: a stream delivery's content header frame, and the head of the one body frame
    that follows (if any), as the octets before and after the offset."""
    before, after = stream_properties(properties)
    props_size = len(before) + _OFFSET.size + len(after)
    head = _HEADER_HEAD.pack(2, channel, _HEADER_FIXED + props_size, 60, 0, size) + before
    tail = after + _END + (FRAME_HEAD.pack(3, channel, size) if size else b"")
    if len(_stream_heads) >= _CACHE_LIMIT:
        _stream_heads.clear()
    entry = (properties, head, tail)
    _stream_heads[(id(properties), channel, size)] = entry
    return entry
