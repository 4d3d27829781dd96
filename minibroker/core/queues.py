"""Queues: RabbitMQ's queue process in miniature, with the verbs of its ``rabbit_fifo``.

Rules:

1. Each queue numbers the messages it receives with an increasing ``msg_id`` (the storage key).
   Its backing store (``stores.py``) keeps the ready ones in delivery order, so a requeued
   message goes back to its original position, ahead of everything published after it
   (AMQP §4.7, RabbitMQ's behaviour).
2. A message leaves ``ready`` only through :meth:`Queue.checkout` (it becomes *unacked*, owned by
   a channel), :meth:`Queue.purge`, deletion or a rule of the store (TTL, length limit). An
   unacked message comes back only through :meth:`Queue.requeue` (marked redelivered) or goes
   away through :meth:`Queue.settle` (acked) or :meth:`Queue.discard` (rejected without
   requeue).
3. One owner per fact: the queue counts (``published``, ``delivered``, ``acked``,
   ``redelivered``, ``unacked``) in its verbs and nowhere else; the store alone knows what is
   stored and what it weighs; the consumer ring (``consumers.py``) alone knows whose turn it
   is. Who gets the next message is the dispatcher's business (``delivery.py``).
4. ``features`` is the store when it is a :class:`~minibroker.core.features.FeatureStore`
   (TTL, limits, priorities, dead-lettering), else ``None``: the hot path's one test for all
   of them. ``plain`` says the store is the plain ``FifoStore``, which keeps nothing for an
   unacked entry, so an ack need not tell it (a call per ack saved on the hot path; a durable
   store is not plain and hears every settlement). Both follow the store: a queue changes
   store only through :meth:`Queue.use_store`.
5. A deleted queue keeps answering ``settle``/``discard``/``requeue`` for messages that were out
   when it died, without resurrecting them.
6. ``x-expires`` is a :class:`Lease`: a queue unused for that long is deleted
   (``lifecycle.py``).
7. ``stream`` is ``None`` here; a stream queue (``streams.py``) keeps its log there, and the
   core's few stream hooks test it.
8. Durability is recorded here, one layer above the store (the store may change under a
   queue, plain <-> features, but the queue stays): a durable queue's ``journal`` hears every
   persistent message that enters it and every settle, requeue and purge of one, and its
   deletion (``journal.py``). ``journal`` is ``None`` for every other queue: one test on the
   hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from minibroker.core.arguments import QueueLimits
from minibroker.core.consumers import ConsumerRing
from minibroker.core.features import PLAIN_LIMITS, FeatureStore, needs_features
from minibroker.core.flow import UNMETERED, ReadyMeter
from minibroker.core.journal import Journal
from minibroker.core.stores import BackingStore, FifoStore, QueueEntry, Ready, msg_id_of
from minibroker.message import FieldTable, Message

if TYPE_CHECKING:
    from minibroker.core.streamlog import Log

__all__ = ["Lease", "Queue"]


class Lease:
    """``x-expires``: when the queue was last used, and the expiry deadline on the timer heap."""

    __slots__ = ("deadline", "expires", "last_used")

    def __init__(self, expires: float, now: float) -> None:
        #: Seconds without use after which the queue is deleted.
        self.expires = expires
        #: Last declare, get, consume or cancel (the countdown starts here).
        self.last_used = now
        #: The deadline currently on the broker's timer heap (lazy invalidation), if any.
        self.deadline: float | None = None


class Queue:
    """A classic queue: FIFO by ``msg_id`` (by priority first with ``x-max-priority``), requeue
    to original position."""

    __slots__ = (
        "acked", "arguments", "auto_delete", "consumers", "deleted", "delivered", "durable",
        "exclusive_owner", "features", "journal", "lease", "limits", "name",
        "next_msg_id", "plain", "published", "ready", "redelivered", "store", "unacked",
    )

    #: The log of a stream queue (rule 7); a class default, so a classic queue costs nothing.
    stream: Log | None = None

    def __init__(
        self,
        name: str,
        *,
        durable: bool = False,
        exclusive_owner: int | None = None,
        auto_delete: bool = False,
        arguments: FieldTable | None = None,
        limits: QueueLimits = PLAIN_LIMITS,
        meter: ReadyMeter = UNMETERED,
        now: float = 0.0,
    ) -> None:
        self.name = name
        self.durable = durable
        #: The connection id that owns an exclusive queue, else ``None``.
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments: FieldTable = dict(arguments or {})
        #: The validated feature arguments (``arguments.py``); ``PLAIN_LIMITS`` for none.
        self.limits = limits
        self.next_msg_id = 1
        self.unacked = 0
        #: The consumers in subscription order, and whose turn it is (``consumers.py``).
        self.consumers = ConsumerRing(single_active=limits.single_active_consumer)
        self.deleted = False
        self.published = 0
        self.delivered = 0
        self.acked = 0
        self.redelivered = 0
        self.lease = None if limits.expires is None else Lease(limits.expires / 1000, now)
        #: Where durable facts are recorded (rule 7); set by the lifecycle for a durable queue.
        self.journal: Journal | None = None
        self.store: BackingStore
        self.features: FeatureStore | None
        self.plain: bool
        #: The store's ready messages (count them, never change them; their entries come
        #: from :meth:`entries`: ``stores.py`` rules 1 and 7).
        self.ready: Ready
        self._adopt(FeatureStore(self, meter, limits) if needs_features(limits)
                    else FifoStore(self, meter))

    def use_store(self, store: BackingStore) -> None:
        """Keep the messages in ``store`` from now on (rule 4). It takes over the ready deque
        with entries only (``stores.py`` rule 7)."""
        self.store.number_all()
        self._adopt(store)

    def _adopt(self, store: BackingStore) -> None:
        self.store = store
        self.features = store if isinstance(store, FeatureStore) else None
        self.plain = type(store) is FifoStore
        self.ready = store.ready

    @property
    def exclusive(self) -> bool:
        return self.exclusive_owner is not None

    @property
    def message_count(self) -> int:
        """Ready messages (what ``queue.declare-ok`` reports)."""
        return len(self.ready)

    def entries(self) -> Iterator[QueueEntry]:
        """The ready entries, in delivery order (``BackingStore.entries``)."""
        return self.store.entries()

    # -- the verbs --------------------------------------------------------------------------

    def enqueue(self, message: Message, now: float = 0.0, ttl: float | None = None) -> None:
        """Take a new message (``ttl``: its own TTL in seconds, if any)."""
        msg_id = self.next_msg_id
        self.next_msg_id = msg_id + 1
        self.published += 1
        entry = self.store.append(msg_id, message, now, ttl)
        journal = self.journal
        if journal is not None and message.properties.delivery_mode == 2:
            journal.publish(self.name, msg_id, message,
                            None if entry is None else entry.expires_at)

    def enqueue_many(self, messages: list[Message]) -> None:
        """:meth:`enqueue` for a run of new messages on the plain store, none of which a
        journal records (the caller checks: the queue is not durable or the messages are not
        persistent) and none with a TTL (``lifecycle.py`` rule 7)."""
        count = len(messages)
        self.next_msg_id += count
        self.published += count
        store = self.store
        assert isinstance(store, FifoStore)
        store.append_many(messages)

    def checkout(self, now: float = 0.0) -> QueueEntry | None:
        """The head message, out of ``ready``: it is unacked until settled (the store counted
        the delivery in its ``delivery_count``)."""
        entry = self.store.take(now)
        if entry is not None:
            self.unacked += 1
            self.delivered += 1
        return entry

    def settle(self, entry: QueueEntry) -> None:
        """The consumer acknowledged ``entry``: it is gone for good."""
        self.unacked -= 1
        self.acked += 1
        if not self.plain:  # the plain store keeps nothing for an unacked entry
            self.store.settle(entry)
        journal = self.journal
        if journal is not None and entry.message.properties.delivery_mode == 2 and (
                not self.deleted):
            journal.settle(self.name, entry.msg_id)

    def settle_many(self, entries: list[QueueEntry]) -> None:
        """:meth:`settle` for several entries (``delivery.py`` rule 9)."""
        count = len(entries)
        if self.plain and self.journal is None:  # nothing to tell anyone a message
            self.unacked -= count
            self.acked += count
            return
        for entry in entries:
            self.settle(entry)

    def discard(self, entry: QueueEntry) -> None:
        """``entry`` was rejected without requeue: gone, or dead-lettered (reason ``rejected``)
        when the queue has a dead-letter exchange."""
        self.unacked -= 1
        if self.deleted:
            return
        journal = self.journal
        if journal is not None and entry.message.properties.delivery_mode == 2:
            journal.settle(self.name, entry.msg_id)  # dead-lettered or not, it leaves
        if not self.plain:
            self.store.discard(entry)

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Return unacked entries to ``ready`` at their original positions, as redelivered."""
        batch = sorted(entries, key=msg_id_of)
        if not batch:
            return
        self.unacked -= len(batch)
        for entry in batch:
            entry.redelivered = True
        self.redelivered += len(batch)
        if not self.deleted:
            journal = self.journal
            if journal is not None:
                for entry in batch:
                    if entry.message.properties.delivery_mode == 2:
                        journal.requeue(self.name, entry.msg_id, entry.delivery_count)
            self.store.requeue(batch)

    def restore(self, entries: list[QueueEntry]) -> None:
        """Recovered entries (``msg_id`` order) come back as ready, behind those restored
        before and ahead of everything enqueued since (``BackingStore.restore``). They are on
        disk already: nothing is recorded."""
        if entries and not self.deleted:
            self.store.restore(entries)

    def purge(self) -> int:
        journal = self.journal
        if journal is not None:
            for entry in self.store.entries():
                if entry.message.properties.delivery_mode == 2:
                    journal.settle(self.name, entry.msg_id)
        return self.store.purge()

    def delete(self) -> int:
        """The queue dies: drop what is ready (rule 5); return how many that was."""
        self.deleted = True
        if self.journal is not None:
            self.journal.delete_queue(self.name)
        return self.store.delete()

    # -- consumers --------------------------------------------------------------------------

    def has_exclusive_consumer(self) -> bool:
        return self.consumers.exclusive > 0

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, ready={len(self.ready)}, unacked={self.unacked})"
