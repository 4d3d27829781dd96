"""Messages larger than a frame: the Body frames the native codec splits them into and joins
them from (``docs/protocol.md`` section 2.1), and the event for one over ``max_message_size``.

The codec (``codec.py`` rules 6 and 9) is the only user: its owner — the server's session,
the client library — only ever sees whole messages.

Rules:

1. Sending: the body's leading parts go in Body frames of at most ``max_frame_size`` bytes,
   the last part in the message frame itself (Publish, Deliver, GetOk or Return), which must
   fit its own limit (a Publish keeps its headroom). Everything is one ``bytes``, so no other
   frame of the channel gets between the parts. A frame whose other fields alone do not fit
   is a :class:`FrameError`.
2. Receiving: a channel's Body frames are kept until its message frame arrives, which comes out
   with the whole body. Every part announces the whole ``body_size``; a part that disagrees,
   parts that add up to more, a message frame that does not complete the size, or any other
   frame of that channel in between, is a :class:`FrameError`. Other channels interleave.
3. A message announcing more than ``max_message_size`` is refused by its first part — before
   any part is kept — with :class:`OversizedPublish`; its remaining parts and its message
   frame are read and dropped.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from minibroker.errors import FrameError
from minibroker.protocols.native.frames import MESSAGE_FRAMES, Body, Frame
from minibroker.valueclass import valueclass

__all__ = ["BODY_OVERHEAD", "Assembler", "OversizedPublish", "split"]

#: A Body frame's envelope: array, opcode, channel (uint16), body_size (uint64), bin32 header.
BODY_OVERHEAD = 1 + 1 + 3 + 9 + 5
_LENGTH = struct.Struct(">I")


@valueclass(frozen=True)
class OversizedPublish(Frame):
    """Not a wire frame but a codec event (``codec.py`` rule 6): a Publish on ``channel``
    carried (or announced in its first Body frame) a body of ``body_size`` bytes, more than
    ``limit`` (``max_message_size``). The session closes the channel with 406 and RabbitMQ's
    text (:attr:`reply_text`); the body is dropped."""

    channel: int
    body_size: int
    limit: int

    @property
    def reply_text(self) -> str:
        return (f"PRECONDITION_FAILED - message size {self.body_size} is larger than configured"
                f" max size {self.limit}")


def split(frame: Frame, payload: Callable[[Frame], bytes], pack: Callable[[Any], bytes],
          max_frame_size: int, limit: int) -> bytes:
    """Rule 1: the bytes of Body frames with the leading parts of ``frame``'s body, then of
    ``frame`` with the last part. ``payload`` encodes a frame, ``pack`` a msgpack value;
    ``limit`` is the largest payload ``frame`` may have."""
    kind = type(frame)
    body: bytes = frame.body  # type: ignore[attr-defined]
    # The envelope: every field but the body (whose bin header grows from 2 to 5 bytes).
    envelope = len(payload(replace(frame, body=b""))) - 2  # type: ignore[type-var]
    room = limit - envelope - 5  # what the last part may carry
    if room <= 0:
        raise FrameError(f"{kind.__name__} frame: its fields besides the body take {envelope} "
                         f"bytes, more than max_frame_size {max_frame_size} leaves room for")
    size, step, channel = len(body), max_frame_size - BODY_OVERHEAD, frame.channel
    last = max(size - room, 0)  # where the last part starts
    opcode, view = Body.opcode, memoryview(body)
    out: list[bytes] = []
    for start in range(0, last, step):
        data = pack((opcode, channel, size, view[start : min(start + step, last)]))
        out.append(_LENGTH.pack(len(data)))
        out.append(data)
    data = payload(replace(frame, body=body[last:]))  # type: ignore[type-var]
    out.append(_LENGTH.pack(len(data)))
    out.append(data)
    return b"".join(out)


class _Parts:
    """A message arriving in Body frames on one channel."""

    __slots__ = ("chunks", "received", "size")

    def __init__(self, size: int, *, keep: bool) -> None:
        self.size = size
        self.received = 0
        #: The parts so far; None when the message is refused and its parts dropped (rule 3).
        self.chunks: list[bytes] | None = [] if keep else None

    def add(self, frame: Body, channel: int) -> int:
        """Take one part (rule 2); returns how many bytes were kept."""
        if frame.body_size != self.size:
            raise FrameError(f"Body frame on channel {channel} announces {frame.body_size} "
                             f"bytes, the earlier parts of its message {self.size}")
        chunk = frame.chunk
        self.received += len(chunk)
        if self.received > self.size:
            raise FrameError(f"Body frames on channel {channel} carry more than the "
                             f"{self.size} bytes they announce")
        if self.chunks is None:
            return 0
        self.chunks.append(chunk)
        return len(chunk)


class Assembler:
    """The messages arriving in parts on one connection, by channel (rules 2 and 3)."""

    __slots__ = ("channels", "held")

    def __init__(self) -> None:
        #: Channel -> the message arriving in parts on it. Empty almost always: the codec
        #: looks at the assembler only when it is not, or for a Body frame.
        self.channels: dict[int, _Parts] = {}
        #: Bytes of parts kept (for memory accounting).
        self.held = 0

    def join(self, frame: Frame, max_message_size: int | None) -> Frame | None:
        """Keep a Body frame's part (None), complete the message its parts began, or refuse
        it (:class:`OversizedPublish`); a frame of another channel passes unchanged."""
        channel = frame.channel
        parts = self.channels.get(channel)
        if type(frame) is Body:
            if parts is None:
                largest = max_message_size
                refused = largest is not None and frame.body_size > largest
                parts = self.channels[channel] = _Parts(frame.body_size, keep=not refused)
                if refused:  # rule 3
                    assert largest is not None
                    parts.add(frame, channel)
                    return OversizedPublish(channel, frame.body_size, largest)
            self.held += parts.add(frame, channel)
            return None
        if parts is None:
            return frame
        if type(frame) not in MESSAGE_FRAMES:
            raise FrameError(f"{type(frame).__name__} on channel {channel} inside a message "
                             f"sent in parts: expected Body or the message frame that ends it")
        del self.channels[channel]
        body: bytes = frame.body  # type: ignore[attr-defined]
        total = parts.received + len(body)
        if total != parts.size:
            raise FrameError(f"the message on channel {channel} has {total} bytes, its Body "
                             f"frames announced {parts.size}")
        if parts.chunks is None:
            return None  # the end of a refused message (rule 3)
        self.held -= parts.received
        parts.chunks.append(body)
        return replace(frame, body=b"".join(parts.chunks))  # type: ignore[type-var]
