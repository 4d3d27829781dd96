"""Fates: an optional record of what happened to each message, for inspection and tests.

Rules:

1. The broker reports a :class:`Fate` to its ``observer`` (when one is set) at every step of a
   message's life: routed (to which queues; none = unroutable), returned, delivered (to which
   consumer, or by a get), acked, nacked, rejected, requeued, purged, deleted with its queue —
   and, with queue features, expired, dead-lettered, dropped.
2. With no observer the cost is one ``is None`` test per step; the core keeps no history itself
   (unbounded memory is the observer's business, e.g. a bounded recorder in ``testing``).
3. A fate carries the :class:`~minibroker.message.Message` object itself: the same object
   for every queue and every step, so observers can follow one publish by identity.
"""

from __future__ import annotations

from collections.abc import Callable

from minibroker.message import Message
from minibroker.valueclass import valueclass

__all__ = ["Fate", "Observer"]


@valueclass(frozen=True)
class Fate:
    #: "routed", "returned", "delivered", "acked", "nacked", "rejected", "requeued", "purged",
    #: "deleted" (and, with queue features, "expired", "dead-lettered", "dropped").
    kind: str
    message: Message
    #: The queue concerned (``None`` for routed/returned: see ``queues``).
    queue: str | None = None
    #: For "routed": every queue the message was enqueued in.
    queues: tuple[str, ...] = ()
    connection: int | None = None
    channel: int | None = None
    #: For "delivered": the consumer (``None`` for ``basic.get``).
    consumer_tag: str | None = None
    delivery_tag: int | None = None
    redelivered: bool = False
    #: For "delivered": acknowledged on sending (no-ack consumer or get).
    no_ack: bool = False
    #: For "nacked"/"rejected": whether the message went back to its queue.
    requeue: bool = False
    #: Free text: why (e.g. "channel closed", a dead-letter reason).
    reason: str = ""


Observer = Callable[[Fate], None]
