"""Queues: ordered storage of ready messages, with the verbs of RabbitMQ's ``rabbit_fifo``.

Rules:

1. Each queue numbers the messages it receives with an increasing ``msg_id`` (the future storage
   key). The ready messages are kept in ``msg_id`` order, so a requeued message goes back to its
   original position, ahead of everything published after it (AMQP §4.7, RabbitMQ's behaviour).
2. A message leaves ``ready`` only through :meth:`Queue.checkout` (it becomes *unacked*, owned by
   a channel), :meth:`Queue.purge` or deletion. An unacked message comes back only through
   :meth:`Queue.requeue` (marked redelivered) or goes away through :meth:`Queue.settle` (acked)
   or :meth:`Queue.discard` (rejected without requeue). Every transition updates the counters,
   so ``ready + unacked`` is always exact.
3. A queue knows its consumers (in subscription order) but not how deliveries are chosen: the
   broker's dispatcher decides who gets the next message.
4. Queue features (TTL, limits, priorities, dead-lettering; ``features.py``) hang off
   ``Queue.features``; a plain queue has ``None`` there and runs exactly the code below.
5. A deleted queue keeps answering ``settle``/``discard``/``requeue`` for messages that were out
   when it died, without resurrecting them.
6. Plain-queue verbs keep the broker's ready meter (``flow.py``) current: one integer add each,
   and one length comparison on enqueue. The meter is the only thing they tell.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from minibroker.core.consumers import ConsumerRing
from minibroker.core.flow import MESSAGE_OVERHEAD, UNMETERED, ReadyMeter
from minibroker.message import FieldTable, Message

if TYPE_CHECKING:
    from minibroker.core.channels import Consumer
    from minibroker.core.features import QueueFeatures

__all__ = ["Queue", "QueueEntry", "TimedEntry"]


class QueueEntry:
    """One message's life in one queue.

    Every queued message has one, so it stays small: four slots (a million queued messages
    cost about 72 MB less for every slot left out). An entry that can expire is a
    :class:`TimedEntry`; for the others ``expires_at`` reads the class default ``None``."""

    __slots__ = ("delivery_count", "message", "msg_id", "redelivered")

    #: When the message expires (``now`` scale; message TTL); ``None`` = never.
    expires_at: float | None = None

    def __init__(self, msg_id: int, message: Message) -> None:
        self.msg_id = msg_id
        self.message = message
        self.redelivered = False
        #: How many times this entry has been handed out (deliveries and gets).
        self.delivery_count = 0

    def __repr__(self) -> str:
        return f"QueueEntry({self.msg_id}, redelivered={self.redelivered})"


class TimedEntry(QueueEntry):
    """An entry with a deadline (queue or message TTL)."""

    __slots__ = ("expires_at",)

    def __init__(self, msg_id: int, message: Message, expires_at: float) -> None:
        super().__init__(msg_id, message)
        self.expires_at = expires_at


def _msg_id(entry: QueueEntry) -> int:
    return entry.msg_id


class Queue:
    """A classic queue: FIFO by ``msg_id``, requeue to original position."""

    __slots__ = (
        "acked", "arguments", "auto_delete", "consumers", "deleted", "delivered", "durable",
        "exclusive_owner", "features", "had_consumer", "meter", "name", "next_msg_id",
        "published", "ready", "redelivered", "unacked_count", "weight",
    )

    def __init__(
        self,
        name: str,
        *,
        durable: bool = False,
        exclusive_owner: int | None = None,
        auto_delete: bool = False,
        arguments: FieldTable | None = None,
        meter: ReadyMeter = UNMETERED,
        single_active_consumer: bool = False,
    ) -> None:
        self.name = name
        self.durable = durable
        #: The connection id that owns an exclusive queue, else ``None``.
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments: FieldTable = dict(arguments or {})
        self.ready: deque[QueueEntry] = deque()
        self.next_msg_id = 1
        self.unacked_count = 0
        #: The consumers in subscription order, and whose turn it is (``consumers.py``).
        self.consumers = ConsumerRing(single_active=single_active_consumer)
        #: An auto-delete queue is deleted only once it has had a consumer (RabbitMQ's rule).
        self.had_consumer = False
        self.deleted = False
        self.published = 0
        self.delivered = 0
        self.acked = 0
        self.redelivered = 0
        #: TTL, limits, priorities, dead-lettering... (``features.py``); ``None`` for a plain
        #: queue, so the hot path pays one attribute test for all of them.
        self.features: QueueFeatures | None = None
        #: The broker's ready meter (rule 6) and this queue's share of it: body bytes +
        #: overhead of the ready messages counted by the verbs.
        self.meter: ReadyMeter = meter
        self.weight = 0

    @property
    def exclusive(self) -> bool:
        return self.exclusive_owner is not None

    @property
    def message_count(self) -> int:
        """Ready messages (what ``queue.declare-ok`` reports)."""
        return len(self.ready)

    # -- the verbs --------------------------------------------------------------------------

    def enqueue(self, message: Message) -> QueueEntry:
        entry = QueueEntry(self.next_msg_id, message)
        self.next_msg_id += 1
        ready = self.ready
        ready.append(entry)
        self.published += 1
        weight = len(message.body) + MESSAGE_OVERHEAD
        self.weight += weight
        meter = self.meter
        meter.weight += weight
        if len(ready) > meter.queue_high_water:
            meter.long_queues.add(self)
        return entry

    def checkout(self) -> QueueEntry | None:
        """Take the head message out of ``ready``; it is now unacked until settled."""
        if not self.ready:
            return None
        entry = self.ready.popleft()
        entry.delivery_count += 1
        self.unacked_count += 1
        self.delivered += 1
        weight = len(entry.message.body) + MESSAGE_OVERHEAD
        self.weight -= weight
        self.meter.weight -= weight
        return entry

    def settle(self, entry: QueueEntry) -> None:
        """The consumer acknowledged ``entry``: it is gone for good."""
        self.unacked_count -= 1
        self.acked += 1

    def discard(self, entry: QueueEntry) -> None:
        """``entry`` was rejected without requeue: gone, or dead-lettered (reason ``rejected``)
        when the queue has a dead-letter exchange."""
        self.unacked_count -= 1
        if self.features is not None and not self.deleted:
            self.features.discarded(entry)

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Return unacked entries to ``ready`` at their original positions, as redelivered."""
        batch = sorted(entries, key=_msg_id)
        if not batch:
            return
        self.unacked_count -= len(batch)
        for entry in batch:
            entry.redelivered = True
        self.redelivered += len(batch)
        if self.deleted:
            return
        if self.features is not None:
            self.features.requeue(self, batch)
            return
        weight = 0
        for entry in batch:
            weight += len(entry.message.body)
        weight += len(batch) * MESSAGE_OVERHEAD
        self.weight += weight
        self.meter.weight += weight
        ready = self.ready
        if not ready or batch[-1].msg_id < ready[0].msg_id:
            # The common case: everything returned is older than the head.
            ready.extendleft(reversed(batch))
            return
        for entry in batch:
            ready.insert(bisect_left(ready, entry.msg_id, key=_msg_id), entry)

    def purge(self) -> int:
        count = len(self.ready)
        self.ready.clear()
        self.meter.weight -= self.weight
        self.weight = 0
        if self.features is not None:
            self.features.ready_bytes = 0
        return count

    # -- consumers --------------------------------------------------------------------------

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers.add(consumer)
        self.had_consumer = True

    def remove_consumer(self, consumer: Consumer) -> None:
        self.consumers.remove(consumer)

    def has_exclusive_consumer(self) -> bool:
        return self.consumers.exclusive > 0

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, ready={len(self.ready)}, unacked={self.unacked_count})"
