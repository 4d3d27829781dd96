"""AMQP 0-9-1 frames for the trace log (``--trace``): wire names, both directions, decoded.

Rules:

1. A frame is shown by its wire name — ``basic.deliver``, ``confirm.select-ok``,
   ``heartbeat`` — with its arguments in wire order, by their spec names (``global``,
   ``type``), then, for content, its properties and body (``protocols/tracing.py``). The
   arguments 0-9-1 reserves (``ticket``, ``out_of_band``, ``known_hosts``...) are left out.
2. Received frames are the codec's events (:func:`describe`). Sent frames are decoded from the
   very octets written (:class:`SentFrames`, a client-side codec), so the trace shows what went
   on the wire — whoever wrote it: the connection state machine, or the mapping's hot-path
   encoders that never build a method object.
3. Octets that do not decode as frames (our protocol header, refusing a client's version) are
   shown as octets, and decoding of that connection's output stops there.
"""

from __future__ import annotations

from dataclasses import fields

from minibroker.errors import ProtocolError
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.frames import (
    ContentMethod,
    Frame,
    Heartbeat,
    MethodFrame,
    OversizedContent,
    ProtocolHeader,
)
from minibroker.protocols.amqp091.methods import Method
from minibroker.protocols.tracing import body_text, frame_text

__all__ = ["SentFrames", "describe"]


def describe(frame: Frame) -> tuple[int, str]:
    """The channel of a received frame and its rendering (rule 1)."""
    if isinstance(frame, MethodFrame):
        return frame.channel, _method(frame.method)
    if isinstance(frame, ContentMethod):
        return frame.channel, frame_text(frame.method.NAME, [
            *_arguments(frame.method), ("properties", frame.properties), ("body", frame.body)])
    if isinstance(frame, Heartbeat):
        return frame.channel, "heartbeat"
    if isinstance(frame, OversizedContent):
        return frame.channel, (f"{_method(frame.method)} content of {frame.body_size} bytes, "
                               f"over max_message_size {frame.limit} (skipped)")
    if isinstance(frame, ProtocolHeader):
        return 0, "protocol header AMQP 0-9-1"
    return 0, repr(frame)


def _method(method: Method) -> str:
    return frame_text(method.NAME, _arguments(method))


def _arguments(method: Method) -> list[tuple[str, object]]:
    return [(_SPEC_NAMES.get(field.name, field.name), getattr(method, field.name))
            for field in fields(method)
            if field.name not in _RESERVED and (method.NAME, field.name) not in _RESERVED_IN]


#: Python names of arguments -> their names in the spec (rule 1).
_SPEC_NAMES = {"global_": "global", "exchange_type": "type"}
#: AMQP 0-9-1's reserved-1/reserved-2 arguments, by their 0-8 names (rule 1).
_RESERVED = frozenset(("ticket", "out_of_band", "channel_id", "known_hosts"))
_RESERVED_IN = frozenset((("connection.open", "capabilities"), ("connection.open", "insist")))


class SentFrames:
    """Decodes what a server connection writes, to trace it frame by frame (rule 2)."""

    def __init__(self) -> None:
        self._codec = AMQPCodec("client")
        self._codec.frame_max = 0  # whatever was negotiated, we wrote it: decode it all
        self._broken = False

    def feed(self, data: bytes) -> list[tuple[int, str]]:
        """The channel and rendering of every frame ``data`` completes."""
        if self._broken:
            return [(0, f"octets {body_text(data)}")]
        self._codec.receive_data(data)
        out: list[tuple[int, str]] = []
        try:
            while frames := self._codec.frames():
                out.extend(describe(frame) for frame in frames)
        except ProtocolError:  # rule 3
            self._broken = True
            out.append((0, f"octets {body_text(data)}"))
        return out
