"""Events the AMQP connection state machine hands to its owner (see ``connection.py``).

Rule: work for an open channel is not wrapped — the owner receives the codec's own
:class:`MethodFrame` / :class:`ContentMethod` objects; the other events are the ones every
protocol shares (``protocols/events.py``).
"""

from __future__ import annotations

from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame
from minibroker.protocols.events import (
    ChannelEnded,
    ChannelOpened,
    CloseSocket,
    ConnectionClosing,
    ConnectionOpened,
    HotRun,
)

__all__ = [
    "ChannelEnded", "ChannelOpened", "CloseSocket", "ConnectionClosing", "ConnectionOpened",
    "Event", "HotRun",
]

Event = (
    MethodFrame | ContentMethod | HotRun | ConnectionOpened | ChannelOpened | ChannelEnded
    | ConnectionClosing | CloseSocket
)
