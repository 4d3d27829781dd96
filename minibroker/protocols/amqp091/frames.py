"""AMQP 0-9-1 frame events, codec errors, and method-frame encoding/decoding.

Rules:

1. The codec emits exactly five event types: :class:`ProtocolHeader` (server side, once),
   :class:`Heartbeat`, :class:`MethodFrame` (a method without content), :class:`ContentMethod`
   (basic.publish/return/deliver/get-ok with its properties and the whole body) and
   :class:`OversizedContent` (a content header declared a body above ``max_message_size``: the
   body is skipped, never kept). Like the methods they are values that are slotted but not
   frozen, for speed (see ``methods.py`` rule 4): never mutate one.
2. Method decoders are compiled once from the table in :mod:`.spec`; the hot ones
   (basic.publish, basic.ack, basic.nack, basic.reject) have hand-written struct-based fast
   paths. A decoder reads only inside its frame: arguments that end early or leave octets
   unread are ``501 FRAME_ERROR - cannot decode <<...>>`` quoting every argument octet
   (RabbitMQ's wording, ``errortext.py``).
3. Short strings are UTF-8. basic.publish's exchange and routing key, like RabbitMQ, may hold
   any octets: those that are not UTF-8 are kept with Python's ``surrogateescape``, so they
   route as the octets they are and leave exactly as they came. In every other method a
   shortstr that is not UTF-8 is RabbitMQ's ``501 FRAME_ERROR - Malformed UTF-8 in
   shortstr`` (with class and method id 0, as RabbitMQ sends it); a client-side codec takes a
   server's text as it comes (:data:`LENIENT_DECODERS`: RabbitMQ quotes such names in its reply
   texts). Encoders write surrogate-escaped text back as the original octets.
4. An unknown class/method id is :class:`UnknownMethod`, reply code **540 NOT_IMPLEMENTED**:
   the ids a peer can send that are not in the table belong to classes AMQP 0-9-1 deprecated
   and RabbitMQ never implemented (access, file, stream, dtx, tunnel) or to newer extensions —
   "functionality that is not implemented in the server" (540), not a method sent out of order
   (503 COMMAND_INVALID, the connection state machine's business). (RabbitMQ 3.10 drops the
   socket without a word.)
5. Encoders are ours to get right: a shortstr over 255 octets or a number out of range is a
   ``ValueError``, never a frame on the wire.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from minibroker.errors import FrameError, FrameSyntaxError, ProtocolError
from minibroker.message import Properties
from minibroker.protocols.amqp091.errortext import cannot_decode, frame_error
from minibroker.protocols.amqp091.fields import decode_table, encode_table, encode_text, text
from minibroker.protocols.amqp091.methods import (
    METHOD_CLASSES,
    BasicAck,
    BasicNack,
    BasicPublish,
    BasicReject,
    Method,
)
from minibroker.protocols.amqp091.spec import FRAME_HEARTBEAT, METHODS_BY_ID, Argument
from minibroker.valueclass import valueclass

__all__ = [
    "DECODERS",
    "LENIENT_DECODERS",
    "METHOD_KEY",
    "BadProtocolHeader",
    "ContentMethod",
    "Frame",
    "Heartbeat",
    "MethodFrame",
    "OversizedContent",
    "ProtocolHeader",
    "UnknownMethod",
    "decode_method",
    "encode_basic_ack",
    "encode_basic_nack",
    "encode_heartbeat",
    "encode_method",
    "malformed_utf8",
    "method_error",
    "octets",
]


# -- errors ------------------------------------------------------------------------------------


class BadProtocolHeader(ProtocolError):
    """The peer did not open with ``AMQP 0 0 9 1`` (AMQP §4.2.2). A server answers with its
    own protocol header and closes the socket; ``received`` holds what the peer sent."""

    def __init__(self, received: bytes) -> None:
        super().__init__(f"bad protocol header {received!r}")
        self.received = received


class UnknownMethod(ProtocolError):
    """A method frame with a class/method id pair not in the table (rule 3)."""

    reply_code = 540


# -- events ------------------------------------------------------------------------------------


@valueclass()
class ProtocolHeader:
    """The client's valid ``AMQP 0 0 9 1`` header arrived: the server sends connection.start."""


@valueclass()
class Heartbeat:
    channel: int = 0


@valueclass()
class MethodFrame:
    channel: int
    method: Method


@valueclass()
class ContentMethod:
    """A content-bearing method with its content header's properties and the whole body."""

    channel: int
    method: Method
    properties: Properties
    body: bytes


@valueclass()
class OversizedContent:
    """A content header declared ``body_size`` octets, more than the codec's
    ``max_message_size`` (``limit``): the content's body frames are skipped, not kept. The
    connection refuses it on the channel (RabbitMQ: 406 ``message size N is larger than
    configured max size M``)."""

    channel: int
    method: Method
    body_size: int
    limit: int


Frame = ProtocolHeader | Heartbeat | MethodFrame | ContentMethod | OversizedContent

# -- shared structs ----------------------------------------------------------------------------

FRAME_HEAD = struct.Struct(">BHI")  # type, channel, payload size
METHOD_KEY = struct.Struct(">I")  # class id << 16 | method id, read in one go
_ACK_FRAME = struct.Struct(">BHIIQBB")  # whole basic.ack/nack frame incl. frame-end
_QB = struct.Struct(">QB")
_HEARTBEAT = FRAME_HEAD.pack(FRAME_HEARTBEAT, 0, 0) + b"\xce"


def octets(data: bytes, limit: int = 16) -> str:
    """Erlang-style ``<<1,0,0,...>>`` rendering, the way RabbitMQ quotes bad frames (bounded so
    the reply text stays a shortstr)."""
    shown = ",".join(str(b) for b in data[:limit])
    return f"<<{shown}{',...' if len(data) > limit else ''}>>"


def _cannot_decode(key: int, payload: bytes) -> FrameError:
    """RabbitMQ's error for method arguments it cannot decode: every argument octet quoted,
    with the method's ids (``payload`` starts with the 4-octet class and method id)."""
    spec = METHODS_BY_ID[key]
    return FrameError(
        cannot_decode(payload[4:]), class_id=spec.class_id, method_id=spec.method_id
    )


def malformed_utf8() -> FrameError:
    """RabbitMQ's answer to a shortstr that is not UTF-8 (rule 3): class and method id 0."""
    return FrameError("Malformed UTF-8 in shortstr")


# -- compiled generic decoders/encoders --------------------------------------------------------

_NUMBER = {"octet": "B", "short": "H", "long": "I", "longlong": "Q", "timestamp": "Q"}
_FIXED, _BITS, _SHORTSTR, _LONGSTR, _TABLE = range(5)
Step = tuple[int, Any, int]  # kind, Struct / binary flag, number of arguments consumed


def _steps(arguments: tuple[Argument, ...]) -> list[Step]:
    """Group arguments into wire steps: runs of numbers become one Struct, runs of up to 8
    bits one octet (AMQP §4.2.5.2)."""
    steps: list[Step] = []
    i = 0
    while i < len(arguments):
        kind = arguments[i].type
        j = i + 1
        if kind in _NUMBER:
            while j < len(arguments) and arguments[j].type in _NUMBER:
                j += 1
            fmt = ">" + "".join(_NUMBER[a.type] for a in arguments[i:j])
            steps.append((_FIXED, struct.Struct(fmt), j - i))
        elif kind == "bit":
            while j < len(arguments) and arguments[j].type == "bit" and j - i < 8:
                j += 1
            steps.append((_BITS, None, j - i))
        elif kind == "shortstr":
            steps.append((_SHORTSTR, None, 1))
        elif kind == "longstr":
            steps.append((_LONGSTR, arguments[i].binary, 1))
        elif kind == "table":
            steps.append((_TABLE, None, 1))
        else:  # pragma: no cover - the table only uses the types above
            raise AssertionError(kind)
        i = j
    return steps


Decoder = Callable[[bytes, int, int], Method]


def _generic_decoder(cls: type[Method], lenient: bool = False) -> Decoder:
    """A decoder for ``cls``; a ``lenient`` one keeps text that is not UTF-8 (rule 3)."""
    steps = _steps(cls.SPEC.arguments)
    key = cls.KEY
    to_text: Callable[[bytes], str] = text if lenient else bytes.decode

    def decode(buf: bytes, start: int, end: int) -> Method:
        payload = buf[start:end]  # small; slicing makes len(payload) the hard bound
        off = 4
        values: list[Any] = []
        for kind, arg, count in steps:
            if kind == _FIXED:
                values.extend(arg.unpack_from(payload, off))
                off += arg.size
            elif kind == _BITS:
                octet = payload[off]
                off += 1
                values.extend([bool(octet & (1 << bit)) for bit in range(count)])
            elif kind == _SHORTSTR:
                nxt = off + 1 + payload[off]
                if nxt > len(payload):
                    raise _cannot_decode(key, payload)
                values.append(to_text(payload[off + 1 : nxt]))
                off = nxt
            elif kind == _LONGSTR:
                nxt = off + 4 + METHOD_KEY.unpack_from(payload, off)[0]
                if nxt > len(payload):
                    raise _cannot_decode(key, payload)
                raw = payload[off + 4 : nxt]
                values.append(raw if arg else to_text(raw))
                off = nxt
            else:
                try:
                    table, off = decode_table(payload, off)
                except FrameSyntaxError:
                    raise
                except FrameError:  # a length running past the frame: rule 2
                    raise _cannot_decode(key, payload) from None
                values.append(table)
        if off != len(payload):
            raise _cannot_decode(key, payload)
        return cls(*values)

    return decode


Encoder = Callable[[Method], bytes]


def _shortstr(value: str) -> bytes:
    raw = encode_text(value)
    if len(raw) > 255:
        raise ValueError(f"shortstr longer than 255 octets: {value[:32]!r}...")
    return bytes((len(raw),)) + raw


def _generic_encoder(cls: type[Method]) -> Encoder:
    steps = _steps(cls.SPEC.arguments)
    head = METHOD_KEY.pack(cls.KEY)
    names = [a.name for a in cls.SPEC.arguments]
    getter = attrgetter(*names) if len(names) > 1 else None

    def encode(method: Method) -> bytes:
        if getter is not None:
            values = getter(method)
        elif names:
            values = (getattr(method, names[0]),)
        else:
            return head
        parts = [head]
        i = 0
        for kind, arg, count in steps:
            if kind == _FIXED:
                parts.append(arg.pack(*values[i : i + count]))
            elif kind == _BITS:
                octet = 0
                for bit, flag in enumerate(values[i : i + count]):
                    if flag:
                        octet |= 1 << bit
                parts.append(bytes((octet,)))
            elif kind == _SHORTSTR:
                parts.append(_shortstr(values[i]))
            elif kind == _LONGSTR:
                raw = values[i] if isinstance(values[i], bytes) else encode_text(values[i])
                parts.append(METHOD_KEY.pack(len(raw)) + raw)
            else:
                parts.append(encode_table(values[i]))
            i += count
        return b"".join(parts)

    return encode


# -- hot-path decoders (rule 2) ----------------------------------------------------------------


#: basic.publish methods by their argument octets. A publisher sends the same few exchange and
#: routing key pairs again and again: one slice and one lookup replace the decoding, and every
#: message of one routing key shares its strings, so a queued message no longer keeps its own
#: copy of the routing key (64 bytes for a 23-character key). Methods are never mutated (rule
#: 1), so one may be shared. Bounded: cleared when full, like the properties cache. Measured
#: with tracemalloc: 273 -> 201 bytes beyond the body a queued 16-byte message published with
#: pika-like properties (what native publishes cost); its CPU gain is counted with
#: ``delivery.deliver_now``.
_PUBLISHES: dict[bytes, Method] = {}
_PUBLISH_CACHE_LIMIT = 1024


def _decode_publish(buf: bytes, start: int, end: int) -> Method:
    raw = buf[start + 4 : end]
    method = _PUBLISHES.get(raw)
    if method is None:
        method = _parse_publish(buf, start, end)
        if len(_PUBLISHES) >= _PUBLISH_CACHE_LIMIT:
            _PUBLISHES.clear()
        _PUBLISHES[raw] = method
    return method


def _parse_publish(buf: bytes, start: int, end: int) -> Method:
    # class(2) method(2) ticket(2) exchange:shortstr routing_key:shortstr bits(1)
    (ticket,) = struct.unpack_from(">H", buf, start + 4)
    off = start + 6
    nxt = off + 1 + buf[off]
    exchange = buf[off + 1 : nxt]
    off = nxt + 1 + buf[nxt]
    routing_key = buf[nxt + 1 : off]
    if off + 1 != end:
        raise _cannot_decode(BasicPublish.KEY, buf[start:end])
    bits = buf[off]
    # Rule 3: any octets (RabbitMQ accepts them); the common UTF-8 case costs one decode each.
    return BasicPublish(ticket, text(exchange), text(routing_key), bool(bits & 1),
                        bool(bits & 2))


def _decode_ack(buf: bytes, start: int, end: int) -> Method:
    if end - start != 13:
        raise _cannot_decode(BasicAck.KEY, buf[start:end])
    tag, bits = _QB.unpack_from(buf, start + 4)
    return BasicAck(tag, bool(bits & 1))


def _decode_nack(buf: bytes, start: int, end: int) -> Method:
    if end - start != 13:
        raise _cannot_decode(BasicNack.KEY, buf[start:end])
    tag, bits = _QB.unpack_from(buf, start + 4)
    return BasicNack(tag, bool(bits & 1), bool(bits & 2))


def _decode_reject(buf: bytes, start: int, end: int) -> Method:
    if end - start != 13:
        raise _cannot_decode(BasicReject.KEY, buf[start:end])
    tag, bits = _QB.unpack_from(buf, start + 4)
    return BasicReject(tag, bool(bits & 1))


#: method key -> decoder(buf, start, end). The codec calls these inline on its hot path and
#: asks :func:`method_error` for the precise error when one fails.
DECODERS: dict[int, Decoder] = {key: _generic_decoder(cls) for key, cls in METHOD_CLASSES.items()}
DECODERS.update({
    BasicPublish.KEY: _decode_publish, BasicAck.KEY: _decode_ack,
    BasicNack.KEY: _decode_nack, BasicReject.KEY: _decode_reject,
})
#: What a client-side codec uses: a server's texts are taken as they come (RabbitMQ quotes
#: names that are not UTF-8 in its reply texts, octet for octet).
LENIENT_DECODERS: dict[int, Decoder] = {
    key: _generic_decoder(cls, lenient=True) for key, cls in METHOD_CLASSES.items()
}
LENIENT_DECODERS.update({
    BasicPublish.KEY: _decode_publish, BasicAck.KEY: _decode_ack,
    BasicNack.KEY: _decode_nack, BasicReject.KEY: _decode_reject,
})
_ENCODERS: dict[int, Encoder] = {key: _generic_encoder(cls) for key, cls in METHOD_CLASSES.items()}


def decode_method(buf: bytes, start: int, end: int) -> Method:
    """Decode the method frame payload ``buf[start:end]`` (class id, method id, arguments)."""
    if end - start < 4:
        raise FrameError(frame_error(1, buf[start:end], "unknown_frame"))
    (key,) = METHOD_KEY.unpack_from(buf, start)
    decoder = DECODERS.get(key)
    if decoder is None:
        class_id, method_id = key >> 16, key & 0xFFFF
        raise UnknownMethod(
            f"unknown method class {class_id} method {method_id}",
            class_id=class_id, method_id=method_id,
        )
    try:
        return decoder(buf, start, end)
    except (IndexError, struct.error):
        raise _cannot_decode(key, buf[start:end]) from None
    except UnicodeDecodeError:
        raise malformed_utf8() from None


def method_error(buf: bytes, start: int, end: int) -> ProtocolError:
    """The error :func:`decode_method` raises for this payload."""
    try:
        decode_method(buf, start, end)
    except ProtocolError as exc:
        return exc
    raise AssertionError("method_error() called for a payload that decodes")  # pragma: no cover


# -- encoding ----------------------------------------------------------------------------------


def encode_method_payload(method: Method) -> bytes:
    """Class id, method id and arguments of ``method`` (a method frame's payload)."""
    try:
        return _ENCODERS[method.KEY](method)
    except struct.error as exc:
        raise ValueError(f"cannot encode {method.NAME}: {exc}") from None


def encode_method(channel: int, method: Method) -> bytes:
    """One complete method frame."""
    payload = encode_method_payload(method)
    return FRAME_HEAD.pack(1, channel, len(payload)) + payload + b"\xce"


def encode_heartbeat() -> bytes:
    """A heartbeat frame: type 8, channel 0, no payload (AMQP §4.2.7)."""
    return _HEARTBEAT


def encode_basic_ack(channel: int, delivery_tag: int, multiple: bool = False) -> bytes:
    """basic.ack frame in one ``struct.pack`` (publisher confirms, the server's hot path)."""
    return _ACK_FRAME.pack(1, channel, 13, BasicAck.KEY, delivery_tag, multiple, 0xCE)


def encode_basic_nack(
    channel: int, delivery_tag: int, multiple: bool = False, requeue: bool = True
) -> bytes:
    """basic.nack frame in one ``struct.pack``."""
    bits = (1 if multiple else 0) | (2 if requeue else 0)
    return _ACK_FRAME.pack(1, channel, 13, BasicNack.KEY, delivery_tag, bits, 0xCE)
