"""Events a protocol's connection object hands to its owner, the same for every protocol.

``protocols/native/connection.py`` and ``protocols/amqp091/connection.py`` are sans-IO state
machines: bytes in, events out. Work for an open channel is not wrapped — the owner receives the
codec's own frame objects — and these classes are the rest: what happened to the connection or
a channel, and runs of hot-path frames. The server's session pipeline (``server/session.py``)
acts on them the same way whichever protocol produced them; the native client uses the same
ones (``client/connection.py``).

Rules:

1. An event says what *happened* (the peer closed a channel, we sent connection.close); the
   protocol object already wrote whatever the protocol answers by itself (close-ok...).
2. A :class:`HotRun` holds consecutive frames of one open channel that may be handed to the
   broker core as one input: publishes, or acks of one delivery each. It is yielded before any
   later frame is looked at, so nothing that follows it has happened yet (handling it may close
   the channel, and the next frame must then find the channel closing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minibroker.message import FieldTable
from minibroker.valueclass import valueclass

__all__ = [
    "CONTROL_EVENTS", "ChannelEnded", "ChannelOpened", "CloseSocket", "ConnectionClosing",
    "ConnectionOpened", "HotRun",
]


@valueclass(frozen=True)
class ConnectionOpened:
    """The handshake is complete: channels may be used."""

    user: str
    virtual_host: str
    #: What the peer told about itself (client properties; for a client, the server's).
    peer_properties: FieldTable
    #: The name the client gave the connection ("" when none: AMQP clients may put one in
    #: their properties as ``connection_name``).
    name: str = ""


@valueclass(frozen=True)
class ChannelOpened:
    """The client opened a channel (the server answered open-ok already)."""

    channel: int


@valueclass(frozen=True)
class ChannelEnded:
    """A channel is gone. ``by_peer``: the peer closed it (with ``reply_code``) and we answered
    close-ok; else the peer answered the close we sent."""

    channel: int
    reply_code: int = 200
    reply_text: str = ""
    by_peer: bool = True


@valueclass(frozen=True)
class ConnectionClosing:
    """We wrote connection.close (an error, or a shutdown): the socket closes after the peer's
    close-ok or a grace period; nothing but close and close-ok is read meanwhile."""

    reply_code: int
    reply_text: str


@valueclass(frozen=True)
class CloseSocket:
    """Close the socket now. ``by_peer``: the peer closed the connection (we answered
    close-ok), with ``reply_code`` and ``reply_text``."""

    reason: str
    reply_code: int = 0
    reply_text: str = ""
    by_peer: bool = False


@valueclass(frozen=True)
class HotRun:
    """Consecutive publishes (or single acks) of one open channel, from one read (rule 2)."""

    frames: Sequence[Any]


#: The events that are not work for a channel.
CONTROL_EVENTS: tuple[type, ...] = (
    ConnectionOpened, ChannelOpened, ChannelEnded, ConnectionClosing, CloseSocket,
)
