"""The AMQP 0-9-1 codec: a sans-IO state machine from received octets to frame events.

``AMQPCodec`` does no I/O and knows nothing about connection states; the connection state
machine feeds it with :meth:`AMQPCodec.receive_data` and reads events with
:meth:`AMQPCodec.frames` (every complete event in one pass, the server's hot path) or
:meth:`AMQPCodec.next_frame`. Encoders return ``bytes``.

Rules:

1. A server-side codec first expects ``AMQP 0 0 9 1`` (AMQP §4.2.2) — or ``AMQP 1 1 0 9``, the
   AMQP 0-9 header, which RabbitMQ accepts and answers in 0-9-1 — and emits
   :class:`ProtocolHeader`; anything else raises :class:`BadProtocolHeader` as soon as the
   octets received cannot be a prefix of either. A client-side codec raises the same error when
   the server answers with a protocol header (its refusal of our version).
2. Every frame is checked in RabbitMQ's order: its payload size against the limit (rule 3),
   from the 7-octet frame header before the payload is buffered, else 501 ``frame_too_large``;
   then the frame-end octet 0xCE (AMQP §4.2.3: "If the frame-end octet is not correct, the peer
   MUST treat this as a fatal frame error") else 501 ``invalid_frame_end_marker``; then the
   type (1, 2, 3, 8) and its minimal shape (a method id, a content header's fixed part, an
   empty heartbeat) else 501 ``unknown_frame`` — all before decoding, all worded as RabbitMQ
   words them (``errortext.py``: ``type 1, all octets = <<>>: {frame_too_large,9000,8184}``).
3. Size limit: every frame type is held to the negotiated :attr:`AMQPCodec.frame_max` (4096,
   frame-min-size, until tune/tune-ok). Like RabbitMQ, a payload may reach ``frame_max``
   itself (8 octets of slack for clients that forget the frame overhead) and the error names
   ``frame_max - 8``. ``frame_max = 0`` means "no limit" (never agreed by our server).
4. Content assembly is per channel (AMQP §4.2.6): a content method, exactly one content header
   (weight 0), then body frames adding up to the body size; frames of other channels may
   interleave. Violations are 505 UNEXPECTED_FRAME with RabbitMQ's wording; a body frame
   that overshoots the declared body size is also 505 (a content framing violation; RabbitMQ
   drops the socket). A heartbeat off channel 0 and content frames on channel 0 are 505
   ``type T, all octets = <<...>>``.
5. One event per content: :class:`ContentMethod` once the whole body is there; body chunks
   are joined once. A content header declaring more than :attr:`AMQPCodec.max_message_size`
   octets gives :class:`OversizedContent` at once and its body frames are skipped, never kept;
   the skipping ends with the declared size or at the channel's next non-body frame (the
   peer's answer to the channel.close that follows). :attr:`AMQPCodec.partial_bytes` counts
   what is held for unfinished frames and contents, for memory accounting.
6. Errors never lose work: :meth:`frames` returns the events decoded before a bad frame and
   raises on the next call. After an error the codec is dead and raises it again.
7. The codec raises only :class:`~minibroker.errors.ProtocolError` for anything a peer sends
   (a hypothesis fuzz test enforces it). ``receive_data(b"")`` marks end of stream: events still
   buffered are returned, and a frame cut off by the end raises a 501.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from typing import Literal

from minibroker.config import DEFAULT_MAX_MESSAGE_SIZE
from minibroker.errors import FrameError, ProtocolError, UnexpectedFrame
from minibroker.message import Properties
from minibroker.protocols.amqp091.content import decode_properties, encode_content
from minibroker.protocols.amqp091.errortext import frame_error, unexpected_frame
from minibroker.protocols.amqp091.frames import (
    DECODERS,
    FRAME_HEAD,
    LENIENT_DECODERS,
    METHOD_KEY,
    BadProtocolHeader,
    ContentMethod,
    Frame,
    Heartbeat,
    MethodFrame,
    OversizedContent,
    ProtocolHeader,
    encode_heartbeat,
    encode_method,
    method_error,
    octets,
)
from minibroker.protocols.amqp091.methods import Method
from minibroker.protocols.amqp091.spec import (
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_MIN_SIZE,
    FRAME_OVERHEAD,
    PROTOCOL_HEADER,
    PROTOCOL_HEADER_0_9,
)

__all__ = ["AMQPCodec"]

_NO_LIMIT = 2**32
_HEARTBEAT = Heartbeat()
_HEADER_FIXED = struct.Struct(">HHQ")  # class id, weight, body size
_HEADER_MIN_SIZE = 14  # ... and the property flags
_HEADERS = (PROTOCOL_HEADER, PROTOCOL_HEADER_0_9)


class _Content:
    """A content method waiting for its header (``properties is None``) or its body; or, with
    ``skipping``, an oversized one whose body is counted and dropped (rule 5)."""

    __slots__ = ("body_size", "chunks", "method", "properties", "received", "skipping")

    def __init__(self, method: Method) -> None:
        self.method = method
        self.properties: Properties | None = None
        self.body_size = 0
        self.received = 0
        self.chunks: list[bytes] = []
        self.skipping = False


def _too_large(ftype: int, size: int, limit: int) -> FrameError:
    # RabbitMQ has read none of the payload yet: "all octets = <<>>".
    return FrameError(frame_error(ftype, b"", ("frame_too_large", size, limit)))


def _unknown(ftype: int, payload: bytes) -> FrameError:
    return FrameError(frame_error(ftype, payload, "unknown_frame"))


def _unexpected(ftype: int, channel: int, content: _Content | None) -> UnexpectedFrame:
    """The 505 for a frame that breaks content framing (AMQP §4.2.6), in RabbitMQ's words."""
    if content is None:
        return UnexpectedFrame("expected method frame, got non method frame instead")
    method = content.method
    if content.properties is None:
        expected, got = f"content header for class {method.CLASS_ID}", "non content header"
    else:
        expected, got = "content body", "non content body"
    return UnexpectedFrame(
        f"expected {expected}, got {got} frame instead",
        class_id=method.CLASS_ID, method_id=method.METHOD_ID,
    )


def _body_too_long(content: _Content) -> UnexpectedFrame:
    return UnexpectedFrame(
        f"content body of {content.received} octets exceeds the declared body size"
        f" {content.body_size}",
        class_id=content.method.CLASS_ID, method_id=content.method.METHOD_ID,
    )


def _content_header(content: _Content, data: bytes, start: int, end: int) -> None:
    """Check a content header frame; store its body size (and properties) in ``content``."""
    method = content.method
    if end - start < _HEADER_MIN_SIZE:
        raise FrameError(f"cannot decode content header {octets(data[start:end])}")
    class_id, weight, body_size = _HEADER_FIXED.unpack_from(data, start)
    if class_id != method.CLASS_ID or weight != 0:
        # RabbitMQ's rabbit_command_assembler words both cases this way
        got = f"one for class {class_id}" if class_id != method.CLASS_ID else (
            "non content header frame")
        raise UnexpectedFrame(
            f"expected content header for class {method.CLASS_ID}, got {got} instead",
            class_id=method.CLASS_ID, method_id=method.METHOD_ID,
        )
    content.body_size = body_size
    content.properties = decode_properties(data, start + 12, end)


def _whole_content(
    data: bytes, pos: int, end: int, channel: int, method: Method, limit: int,
    largest: int | None,
) -> tuple[Properties, bytes, int] | None:
    """The content of the method frame that ended at ``pos``, when its header and its one body
    frame follow complete and regular in ``data``: (properties, body, the position after the
    body frame). ``None`` for anything else — a frame missing or incomplete, another channel,
    a body in several frames, an empty or oversized body, any error — and the general path
    takes the frames one by one, with its checks and its errors.

    A publisher's common case, three frames in one read, then costs one call instead of two
    more turns of the frame loop, a ``_Content`` and its dict entry (with the connection's
    inline batch kind, bench/instructions.py amqp, callgrind: 156,556 -> 141,267 instructions
    a message; no-ack 126,202 -> 112,514)."""
    if end - pos < 7:
        return None
    ftype, frame_channel, size = FRAME_HEAD.unpack_from(data, pos)
    header_end = pos + 7 + size
    if (ftype != FRAME_HEADER or frame_channel != channel or size > limit
            or size < _HEADER_MIN_SIZE or header_end + 7 >= end
            or data[header_end] != FRAME_END):
        return None
    class_id, weight, body_size = _HEADER_FIXED.unpack_from(data, pos + 7)
    if (class_id != method.CLASS_ID or weight or not body_size
            or (largest is not None and body_size > largest)):
        return None
    body_at = header_end + 1
    ftype, frame_channel, size = FRAME_HEAD.unpack_from(data, body_at)
    body_end = body_at + 7 + size
    if (ftype != FRAME_BODY or frame_channel != channel or size != body_size or size > limit
            or body_end >= end or data[body_end] != FRAME_END):
        return None
    try:
        properties = decode_properties(data, pos + 7 + 12, header_end)
    except ProtocolError:
        return None  # the general path raises it, at the header frame
    return properties, data[body_at + 7 : body_end], body_end + 1


class AMQPCodec:
    """Octets in, :data:`~.frames.Frame` events out, for one AMQP 0-9-1 connection.

    ``max_message_size`` (rule 5) defaults to RabbitMQ's 128 MiB on the server side and to no
    limit on the client side."""

    def __init__(
        self, role: Literal["server", "client"] = "server", *,
        max_message_size: int | None = None,
    ) -> None:
        if role not in ("server", "client"):
            raise ValueError(f"role must be 'server' or 'client', not {role!r}")
        self.role = role
        # A server holds its clients to UTF-8 shortstrs; a client takes what a server says.
        self._decoders = DECODERS if role == "server" else LENIENT_DECODERS
        self._frame_max = FRAME_MIN_SIZE
        self._limit = FRAME_MIN_SIZE  # largest payload accepted (rule 3)
        if max_message_size is None and role == "server":
            max_message_size = DEFAULT_MAX_MESSAGE_SIZE
        #: Largest body a content header may declare (rule 5); ``None``: no limit.
        self.max_message_size = max_message_size
        self._data = b""  # octets being parsed; self._pos is the next unparsed one
        self._pos = 0
        self._parts: list[bytes] = []  # received but not yet appended to self._data
        self._parts_size = 0
        self._need = len(PROTOCOL_HEADER) if role == "server" else 7
        self._awaiting_header = role == "server"
        self._first_frame = role == "client"
        self._contents: dict[int, _Content] = {}
        self._assembling = 0  # body octets held in unfinished contents
        self._events: deque[Frame] = deque()
        self._error: ProtocolError | None = None
        self._eof = False

    # -- configuration -------------------------------------------------------------------------

    @property
    def frame_max(self) -> int:
        """The negotiated frame-max (frame size including the 8 octets of overhead)."""
        return self._frame_max

    @frame_max.setter
    def frame_max(self, value: int) -> None:
        if value and value < FRAME_MIN_SIZE:
            raise ValueError(f"frame_max {value} is below frame-min-size {FRAME_MIN_SIZE}")
        self._frame_max = value
        self._limit = value or _NO_LIMIT

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as frames (the native codec's accessor of the
        same name): after :meth:`frames`, those of the one frame not complete yet."""
        return len(self._data) - self._pos + self._parts_size

    @property
    def partial_bytes(self) -> int:
        """Octets held for what is not complete yet: the unparsed tail of the input (at most
        one frame) and the body octets of unfinished contents (rule 5). The broker counts them
        against its memory limit while a large message arrives."""
        return len(self._data) - self._pos + self._parts_size + self._assembling

    # -- input -----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add octets read from the peer; ``b""`` means the peer closed its side."""
        if self._eof:
            raise RuntimeError("receive_data() after end of stream")
        if not data:
            self._eof = True
            return
        self._parts.append(bytes(data))
        self._parts_size += len(data)

    def next_frame(self) -> Frame | None:
        """The next complete event, or ``None`` when more octets are needed."""
        if not self._events:
            self._events.extend(self.frames())
            if not self._events:
                return None
        return self._events.popleft()

    def frames(self) -> list[Frame]:
        """Every complete event buffered, in order.

        Rule 6: when a bad frame follows good ones, the good events are returned and the error
        is raised by the *next* call — so drain with ``while events := codec.frames(): ...``
        (or call :meth:`next_frame` until ``None``); a single call per read would leave the
        error unseen until the peer sends more."""
        out: list[Frame] = list(self._events)
        self._events.clear()
        if self._error is not None:
            if out:
                return out
            raise self._error
        try:
            self._parse(out)
        except ProtocolError as exc:
            self._error = exc
            if not out:
                raise
        return out

    # -- parsing -----------------------------------------------------------------------------------

    def _take_parts(self) -> bool:
        """Move received parts into ``self._data`` once enough octets are there to progress
        (joining only then keeps a large frame arriving in many reads linear, not quadratic).
        While awaiting the protocol header every octet counts: a bad one fails at once."""
        available = len(self._data) - self._pos + self._parts_size
        if available < self._need and not self._awaiting_header:
            return False
        if self._pos == len(self._data) and len(self._parts) == 1:
            self._data = self._parts[0]  # the common case: no copy at all
        else:
            self._parts.insert(0, self._data[self._pos :])
            self._data = b"".join(self._parts)
        self._pos = 0
        self._parts = []
        self._parts_size = 0
        return True

    def _parse(self, out: list[Frame]) -> None:
        if self._parts and not self._take_parts():
            self._check_eof()
            return
        if self._awaiting_header and not self._parse_protocol_header(out):
            return
        if self._first_frame and not self._check_first_frame():
            self._check_eof()
            return
        # The hot loop: locals only, errors built out of line.
        data = self._data
        pos = self._pos
        end = len(data)
        contents = self._contents
        limit = self._limit
        decoders = self._decoders
        append = out.append
        # (the frame types as locals: a global per comparison costs ~0.2% of an AMQP message)
        method_type, header_type, body_type, heartbeat_type, frame_end_octet = (
            FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT, FRAME_END)
        self._need = 7
        try:
            while end - pos >= 7:
                ftype, channel, size = FRAME_HEAD.unpack_from(data, pos)
                if size > limit:
                    raise _too_large(ftype, size, limit - FRAME_OVERHEAD)
                frame_end = pos + 7 + size
                if frame_end >= end:
                    self._need = frame_end + 1 - pos
                    break
                if data[frame_end] != frame_end_octet:
                    raise FrameError(frame_error(ftype, data[pos + 7 : frame_end],
                                                 ("invalid_frame_end_marker", data[frame_end])))
                start = pos + 7
                pos = frame_end + 1
                if ftype == method_type:
                    if contents and channel in contents:
                        if not contents[channel].skipping:
                            raise _unexpected(FRAME_METHOD, channel, contents[channel])
                        self._end_content(channel)  # rule 5: the skipped body ends here
                    if size < 4:
                        raise _unknown(FRAME_METHOD, data[start:frame_end])
                    try:
                        method = decoders[METHOD_KEY.unpack_from(data, start)[0]](
                            data, start, frame_end
                        )
                    except (KeyError, IndexError, struct.error, UnicodeDecodeError):
                        raise method_error(data, start, frame_end) from None
                    if method.SPEC.content and channel:
                        whole = _whole_content(data, pos, end, channel, method, limit,
                                               self.max_message_size)
                        if whole is None:
                            contents[channel] = _Content(method)
                        else:
                            properties, body, pos = whole
                            append(ContentMethod(channel, method, properties, body))
                    else:
                        append(MethodFrame(channel, method))
                elif ftype == body_type:
                    content = contents.get(channel)
                    if content is None or content.properties is None or not channel:
                        if not channel:
                            raise UnexpectedFrame(
                                unexpected_frame(FRAME_BODY, data[start:frame_end]))
                        raise _unexpected(FRAME_BODY, channel, content)
                    content.received += size
                    if content.skipping:
                        if content.received >= content.body_size:
                            self._end_content(channel)
                        continue
                    chunk = data[start:frame_end]
                    if content.received < content.body_size:
                        content.chunks.append(chunk)
                        self._assembling += size
                        continue
                    if content.received > content.body_size:
                        raise _body_too_long(content)
                    if content.chunks:
                        content.chunks.append(chunk)
                        chunk = b"".join(content.chunks)
                        self._assembling -= content.received - size
                    del contents[channel]
                    append(ContentMethod(channel, content.method, content.properties, chunk))
                elif ftype == header_type:
                    self._content_header(channel, data, start, frame_end, append)
                elif ftype == heartbeat_type:
                    if size:
                        raise _unknown(FRAME_HEARTBEAT, data[start:frame_end])
                    if channel:
                        raise UnexpectedFrame(unexpected_frame(FRAME_HEARTBEAT, b""))
                    append(_HEARTBEAT)
                else:
                    raise _unknown(ftype, data[start:frame_end])
        finally:
            self._pos = pos
        self._check_eof()

    def _content_header(
        self, channel: int, data: bytes, start: int, end: int, append: Callable[[Frame], None]
    ) -> None:
        if end - start < 12:  # not even class, weight and body size: RabbitMQ's unknown_frame
            raise _unknown(FRAME_HEADER, data[start:end])
        if not channel:
            raise UnexpectedFrame(unexpected_frame(2, data[start:end]))
        content = self._contents.get(channel)
        if content is not None and content.skipping:
            self._end_content(channel)
            content = None
        if content is None or content.properties is not None:
            raise _unexpected(FRAME_HEADER, channel, content)
        _content_header(content, data, start, end)
        limit = self.max_message_size
        if limit is not None and content.body_size > limit:
            # Rule 5: refuse before any body octet is kept; skip the body that follows.
            content.skipping = True
            append(OversizedContent(channel, content.method, content.body_size, limit))
        elif not content.body_size:
            del self._contents[channel]
            append(ContentMethod(channel, content.method, content.properties, b""))  # type: ignore[arg-type]

    def _end_content(self, channel: int) -> None:
        content = self._contents.pop(channel)
        if not content.skipping:
            self._assembling -= content.received

    def _parse_protocol_header(self, out: list[Frame]) -> bool:
        received = self._data[self._pos : self._pos + len(PROTOCOL_HEADER)]
        if not any(header.startswith(received) for header in _HEADERS):
            raise BadProtocolHeader(received)
        if len(received) < len(PROTOCOL_HEADER):
            self._need = len(PROTOCOL_HEADER)
            self._check_eof()
            return False
        self._pos += len(PROTOCOL_HEADER)
        self._awaiting_header = False
        out.append(ProtocolHeader())
        return True

    def _check_first_frame(self) -> bool:
        """Client side: a server refusing our protocol version answers with its own header
        where the first frame should be (AMQP §4.2.2). False = wait for more octets."""
        head = self._data[self._pos : self._pos + len(PROTOCOL_HEADER)]
        if head[:4] == PROTOCOL_HEADER[:4]:
            if len(head) < len(PROTOCOL_HEADER):
                self._need = len(PROTOCOL_HEADER)
                return False
            raise BadProtocolHeader(head)
        self._first_frame = False
        return True

    def _check_eof(self) -> None:
        if self._eof and (self._pos < len(self._data) or self._parts):
            raise FrameError("connection closed in the middle of a frame")

    # -- output ----------------------------------------------------------------------------------

    def send(self, event: Frame) -> bytes:
        """Encode an event the way :meth:`frames` would have produced it from the wire."""
        if isinstance(event, MethodFrame):
            return encode_method(event.channel, event.method)
        if isinstance(event, ContentMethod):
            return encode_content(
                event.channel, event.method, event.properties, event.body, self._frame_max
            )
        if isinstance(event, Heartbeat):
            return encode_heartbeat()
        return PROTOCOL_HEADER

    def encode_method(self, channel: int, method: Method) -> bytes:
        return encode_method(channel, method)

    def encode_content(
        self, channel: int, method: Method, properties: Properties, body: bytes
    ) -> bytes:
        """Content split at this connection's negotiated frame-max."""
        return encode_content(channel, method, properties, body, self._frame_max)

    def encode_heartbeat(self) -> bytes:
        return encode_heartbeat()
