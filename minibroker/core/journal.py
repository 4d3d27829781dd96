"""The durable journal: what the core asks the shell to write to disk, and the publisher
confirms that wait until it is there. No I/O.

A broker with a data directory gives its core one :class:`Journal` (``Broker(journal=...)``);
without one (the in-memory broker, the default) nothing is recorded and every confirm goes
out with the outcome of its publish, as before.

Rules:

1. Only durable facts are recorded (RabbitMQ's rule for what survives a restart): a
   persistent message (``delivery_mode`` 2) entering a durable, non-exclusive queue, any
   message appended to a stream (streams are durable; all their messages are kept), and
   everything that later happens to it in that queue (settled: acked, rejected, expired,
   purged, dead-lettered, dropped by a length limit; requeued with its delivery count); the
   declaration and deletion of durable exchanges and durable non-exclusive queues; bindings
   whose source and destination are both durable. Transient messages and non-durable or
   exclusive queues are never recorded.
2. The recording is done where each fact happens: the queue's verbs (``queues.py``), the
   dead-letter path (``lifecycle.py``) and the topology's changes (``topology.py``). It is
   one tuple appended to :attr:`Journal.intents` — the core still does no I/O and never
   waits. Queues are named, not referenced: the shell applies the intents in order, so a
   queue deleted and declared again between two drains gets each intent in the right
   incarnation; nothing is recorded for a queue once it is deleted.
3. ``count`` numbers the intents. The shell drains them (:meth:`Journal.drain`) once per
   loop iteration — and always before it writes any byte to a client, so no client can see
   the effect of an ack before the ack is written — and later reports "everything up to
   ``count`` N is on disk" as the core input ``Synced(N)``.
4. A publisher confirm waits (:meth:`Journal.hold`) when its publish recorded an intent, or
   when an earlier confirm of its channel waits: confirms leave a channel in publish order,
   so an ack with ``multiple`` never covers an unsynced publish, and a transient message's
   ack never overtakes an earlier persistent one's. :meth:`Journal.release` gives a channel's
   released confirms as few effects as possible: consecutive acks become one ``multiple``
   ack (a nack stays single). RabbitMQ may confirm out of order ("acknowledgements can
   arrive in a different order compared to their respective messages"); we keep the order.
5. A ``tx.commit`` that recorded intents answers only once they are synced: its
   ``Outcome.durable_at`` is the count to wait for (the shell holds the reply).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minibroker.core.effects import Confirm, Effect

if TYPE_CHECKING:
    from minibroker.core.channels import BrokerChannel
    from minibroker.core.exchanges import Exchange
    from minibroker.core.queues import Queue
    from minibroker.message import FieldTable, Message

__all__ = [
    "BIND", "DECLARE_EXCHANGE", "DECLARE_QUEUE", "DELETE_EXCHANGE", "DELETE_QUEUE", "PUBLISH",
    "REQUEUE", "SETTLE", "STREAM_APPEND", "UNBIND", "Journal",
]

# The intents (rule 2); each is a tuple whose first item is one of these.
#: ``(PUBLISH, queue, msg_id, message, expires_at)``: ``expires_at`` on the ``now`` scale.
PUBLISH = 1
#: ``(SETTLE, queue, msg_id)``
SETTLE = 2
#: ``(REQUEUE, queue, msg_id, delivery_count)``
REQUEUE = 3
#: ``(DECLARE_QUEUE, queue_object)``
DECLARE_QUEUE = 4
#: ``(DELETE_QUEUE, queue)``
DELETE_QUEUE = 5
#: ``(DECLARE_EXCHANGE, exchange_object)``
DECLARE_EXCHANGE = 6
#: ``(DELETE_EXCHANGE, exchange)``
DELETE_EXCHANGE = 7
#: ``(BIND, source, destination_kind, destination, routing_key, arguments)``; the kind is
#: ``"queue"`` or ``"exchange"``.
BIND = 8
#: ``(UNBIND, source, destination_kind, destination, routing_key, arguments)``
UNBIND = 9
#: ``(STREAM_APPEND, stream)``: messages appended to a stream (its log writes them; the
#: intent only numbers them, so their confirms wait for the disk). Consecutive appends to one
#: stream share one tuple.
STREAM_APPEND = 10


class Journal:
    """The intents not yet drained, their numbering, and the confirms that wait (rules 3-4)."""

    __slots__ = ("count", "intents", "synced", "waiting")

    def __init__(self) -> None:
        self.intents: list[tuple[Any, ...]] = []
        #: Intents recorded so far (rule 3).
        self.count = 0
        #: The highest count reported on disk (``Synced``).
        self.synced = 0
        #: Channels with held confirms, in the order they started waiting.
        self.waiting: dict[BrokerChannel, None] = {}

    # -- recording (rules 1-2) ------------------------------------------------------------------

    def publish(self, queue: str, msg_id: int, message: Message,
                expires_at: float | None) -> None:
        self.intents.append((PUBLISH, queue, msg_id, message, expires_at))
        self.count += 1

    def settle(self, queue: str, msg_id: int) -> None:
        self.intents.append((SETTLE, queue, msg_id))
        self.count += 1

    def requeue(self, queue: str, msg_id: int, delivery_count: int) -> None:
        self.intents.append((REQUEUE, queue, msg_id, delivery_count))
        self.count += 1

    def declare_queue(self, queue: Queue) -> None:
        self.intents.append((DECLARE_QUEUE, queue))
        self.count += 1

    def delete_queue(self, name: str) -> None:
        self.intents.append((DELETE_QUEUE, name))
        self.count += 1

    def declare_exchange(self, exchange: Exchange) -> None:
        self.intents.append((DECLARE_EXCHANGE, exchange))
        self.count += 1

    def delete_exchange(self, name: str) -> None:
        self.intents.append((DELETE_EXCHANGE, name))
        self.count += 1

    def binding(self, op: int, source: str, kind: str, destination: str, routing_key: str,
                arguments: FieldTable) -> None:
        self.intents.append((op, source, kind, destination, routing_key, dict(arguments)))
        self.count += 1

    def stream_append(self, stream: str, count: int = 1) -> None:
        """``count`` messages appended to ``stream`` (one intent for a run of them)."""
        intents = self.intents
        if not intents or intents[-1][0] != STREAM_APPEND or intents[-1][1] != stream:
            intents.append((STREAM_APPEND, stream))
        self.count += count

    def drain(self) -> list[tuple[Any, ...]]:
        """The intents recorded since the last drain, in order (rule 3)."""
        intents, self.intents = self.intents, []
        return intents

    # -- confirms (rule 4) ----------------------------------------------------------------------

    def hold(self, channel: BrokerChannel, confirm: Confirm) -> None:
        """Keep ``confirm`` until everything recorded so far is synced."""
        channel.held.append((self.count, confirm))
        self.waiting[channel] = None

    def release(self, upto: int) -> list[Effect]:
        """Everything up to ``upto`` is on disk: the confirms that may go now."""
        if upto > self.synced:
            self.synced = upto
        effects: list[Effect] = []
        for channel in list(self.waiting):
            held = channel.held
            if channel.connection.channels.get(channel.number) is not channel:
                held.clear()  # the channel closed: its confirms have nobody to go to
            pending: Confirm | None = None
            while held and held[0][0] <= upto:
                confirm = held.popleft()[1]
                if confirm.ack:
                    pending = confirm
                    continue
                if pending is not None:
                    effects.append(_multiple(pending))
                    pending = None
                effects.append(confirm)
            if pending is not None:
                effects.append(_multiple(pending))
            if not held:
                del self.waiting[channel]
        return effects


def _multiple(confirm: Confirm) -> Confirm:
    if confirm.multiple:
        return confirm
    return Confirm(confirm.connection, confirm.channel, confirm.delivery_tag, True, True)
