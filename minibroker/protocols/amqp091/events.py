"""Events the AMQP connection state machine hands to its owner (see ``connection.py``).

Rule: work for an open channel is not wrapped — the owner receives the codec's own
:class:`MethodFrame` / :class:`ContentMethod` objects; these classes are the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from minibroker.message import FieldTable
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame

__all__ = [
    "ChannelClosed", "ChannelOpened", "CloseSocket", "ConnectionClosing", "ConnectionOpened",
    "Event", "HotRun",
]


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    user: str
    virtual_host: str
    client_properties: FieldTable


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    channel: int


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """An open channel is gone for the core: release it there (its unacked messages go back).

    Either the client closed it (``reply_code`` 200: our close-ok is written before anything
    the owner writes next), or the connection
    closed it itself for a channel error found below the core — a message over
    ``max_message_size`` — and wrote channel.close with ``reply_code``/``reply_text``; the
    client's close-ok is then still awaited (the connection ignores the channel meanwhile)."""

    channel: int
    reply_code: int = 200
    reply_text: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionClosing:
    """We wrote connection.close: release the core, close after close-ok or a grace period."""

    reply_code: int
    reply_text: str


@dataclass(frozen=True, slots=True)
class CloseSocket:
    reason: str


@dataclass(frozen=True, slots=True)
class HotRun:
    """Consecutive ``basic.publish`` (or single ``basic.ack``) frames of one open channel, from
    one read: the owner may hand them to the core as one input. Yielded before any later frame
    is looked at, so nothing that follows them has happened yet."""

    frames: tuple[ContentMethod, ...] | tuple[MethodFrame, ...]


Event = (
    MethodFrame | ContentMethod | HotRun | ConnectionOpened | ChannelOpened | ChannelClosed
    | ConnectionClosing | CloseSocket
)
