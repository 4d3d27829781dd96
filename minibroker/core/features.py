"""The backing store with features: message TTL, priorities, length limits, dead-letter reasons
and quorum delivery limits. No routing here (``lifecycle.py`` dead-letters what lands in
``dead``).

Rules:

1. The ready entries are one deque ordered by (priority, highest first; then ``msg_id``) — with
   no ``x-max-priority`` every priority is 0 and that is plain ``msg_id`` order. A requeued
   message goes back to its original position within its priority (kombu's priority tests
   check this).
2. Message TTL (RabbitMQ): "the lower of the two [queue and message TTL] will be chosen". An
   entry's deadline is fixed when it is appended and kept across requeues. Expired messages are
   removed at the head of the queue ("only when expired messages reach the head of a queue will
   they actually be discarded"): :meth:`FeatureStore.take` skips them, :meth:`~FeatureStore.sweep`
   removes heads whose deadline has come. A deadline of exactly ``now`` may still be delivered
   in the same instant (TTL 0: "deliver now or expire"), but is removed by the sweep that follows.
3. Length limits count ready messages only (RabbitMQ: unacknowledged messages do not count) and
   body bytes for ``x-max-length-bytes``. ``drop-head`` removes from the head after the append;
   ``reject-publish(-dlx)`` refuses the newest message (:meth:`~FeatureStore.accepts`).
4. Everything that leaves because of a rule lands in ``dead`` as (entry, reason) — ``expired``,
   ``maxlen``, ``rejected``, ``delivery_limit`` — for the broker to dead-letter or drop. Nothing
   leaves silently.
5. Quorum queues count returns: an entry returned more than ``x-delivery-limit`` times is
   dead-lettered with reason ``delivery_limit`` instead of requeued.
6. ``timed`` counts the entries with a deadline the store still answers for, ready or unacked.
   A queue declared without features that took this store for a message with an
   ``expiration`` goes back to the plain store when it reaches 0 (``lifecycle.py`` rule 2).
7. Every ready item is an entry: this store keeps no bare messages (``stores.py`` rule 7), and
   ``Queue.use_store`` makes entries of a plain store's before handing its deque over.
   ``held`` is that same deque, typed as what it holds.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from minibroker.core.arguments import QueueLimits
from minibroker.core.flow import MESSAGE_OVERHEAD, ReadyMeter
from minibroker.core.stores import (
    COUNT_MASK,
    DELIVERY,
    BackingStore,
    QueueEntry,
    Ready,
    TimedEntry,
)
from minibroker.message import Message

if TYPE_CHECKING:
    from minibroker.core.queues import Queue

__all__ = ["PLAIN_LIMITS", "FeatureStore", "needs_features"]

PLAIN_LIMITS = QueueLimits()

_OrderKey = tuple[int, int]


def needs_features(limits: QueueLimits) -> bool:
    """Whether a queue declared with ``limits`` keeps its messages in a :class:`FeatureStore`.
    Queue expiry (``x-expires``) and single active consumer are not storage: a queue with only
    those stays plain."""
    return (limits.message_ttl is not None or limits.max_length is not None
            or limits.max_length_bytes is not None or limits.dead_letter_exchange is not None
            or limits.max_priority is not None or limits.quorum)


class FeatureStore(BackingStore):
    """What a queue with features keeps beyond a plain FIFO."""

    __slots__ = (
        "dead", "held", "key", "limits", "ready_bytes", "timed", "ttl", "ttl_deadline",
    )

    def __init__(
        self, owner: Queue, meter: ReadyMeter, limits: QueueLimits, ready: Ready | None = None,
        weight: int = 0,
    ) -> None:
        super().__init__(owner, meter, ready, weight)
        #: ``ready``, holding entries only (rule 7).
        self.held: deque[QueueEntry] = self.ready  # type: ignore[assignment]
        self.limits = limits
        #: Queue message TTL on the ``now`` scale (seconds).
        self.ttl = None if limits.message_ttl is None else limits.message_ttl / 1000
        #: Body bytes of the ready messages (``x-max-length-bytes``). Taking over a plain
        #: store's entries, they follow from its weight (``flow.py`` rule 1) without a walk.
        self.ready_bytes = weight - len(self.ready) * MESSAGE_OVERHEAD
        #: Entries removed by a rule, waiting for the broker (rule 4).
        self.dead: list[tuple[QueueEntry, str]] = []
        #: Rule 6.
        self.timed = 0
        #: The head deadline currently in the broker's timer heap (lazy invalidation).
        self.ttl_deadline: float | None = None
        self.key = _order_key(limits.max_priority)

    # -- in (rule 3) -----------------------------------------------------------------------------

    def accepts(self, message: Message) -> bool:
        """False if ``reject-publish(-dlx)`` refuses ``message`` because the queue is full."""
        limits = self.limits
        if limits.overflow == "drop-head":
            return True
        if limits.max_length is not None and len(self.held) >= limits.max_length:
            return False
        return not (limits.max_length_bytes is not None
                    and self.ready_bytes + len(message.body) > limits.max_length_bytes)

    def append(
        self, msg_id: int, message: Message, now: float, ttl: float | None
    ) -> QueueEntry:
        if self.ttl is not None and (ttl is None or self.ttl < ttl):
            ttl = self.ttl
        if ttl is None:
            entry = QueueEntry(msg_id, message)
        else:
            entry = TimedEntry(msg_id, message, now + ttl)
            self.timed += 1
        self._insert(entry)
        return entry

    def enforce_length(self) -> None:
        """``drop-head``: drop from the head until the queue is within its limits."""
        limits = self.limits
        if limits.overflow != "drop-head":
            return
        ready = self.held
        max_length, max_bytes = limits.max_length, limits.max_length_bytes
        while ready and ((max_length is not None and len(ready) > max_length) or
                         (max_bytes is not None and self.ready_bytes > max_bytes)):
            self._kill(self._pop_head(), "maxlen")

    # -- out (rule 2) ----------------------------------------------------------------------------

    def take(self, now: float) -> QueueEntry | None:
        """The head entry for a delivery or get, skipping expired ones (rule 2)."""
        ready = self.held
        while ready:
            entry = self._pop_head()
            expires_at = entry.expires_at
            if expires_at is not None and expires_at < now:
                self._kill(entry, "expired")
                continue
            state = entry.state
            if ~state & COUNT_MASK:  # delivery_count + 1; it saturates (``stores.py`` rule 6)
                entry.state = state + DELIVERY
            return entry
        return None

    def sweep(self, now: float) -> None:
        """Remove head entries whose deadline has come."""
        ready = self.held
        while ready:
            expires_at = ready[0].expires_at
            if expires_at is None or expires_at > now:
                return
            self._kill(self._pop_head(), "expired")

    def head_deadline(self) -> float | None:
        return self.held[0].expires_at if self.held else None

    def take_dead(self) -> list[tuple[QueueEntry, str]]:
        """What rules removed since the last call (rule 4), for the broker."""
        dead, self.dead = self.dead, []
        return dead

    # -- settlement ------------------------------------------------------------------------------

    def settle(self, entry: QueueEntry) -> None:
        if entry.expires_at is not None:
            self.timed -= 1

    def discard(self, entry: QueueEntry) -> None:
        """Dead-lettered (reason ``rejected``) if there is somewhere to send it."""
        if self.limits.dead_letter_exchange is not None:
            self._kill(entry, "rejected")
        else:
            self.settle(entry)

    def requeue(self, batch: list[QueueEntry]) -> None:
        """Back to their original positions (rule 1), or to ``dead`` (rule 5)."""
        limit = self.limits.delivery_limit if self.limits.quorum else None
        for entry in batch:
            if limit is not None and entry.delivery_count > limit:
                self._kill(entry, "delivery_limit")
            else:
                self._insert(entry)

    def purge(self) -> int:
        ready = self.held
        count = len(ready)
        if self.timed:
            self.timed -= sum(1 for entry in ready if entry.expires_at is not None)
        ready.clear()
        self.ready_bytes = 0
        self._meter_out(self.weight)
        return count

    def delete(self) -> int:
        self.dead.clear()
        return self.purge()

    def restore(self, batch: list[QueueEntry]) -> None:
        """Recovered entries (``stores.py`` rule 5); with priorities each goes to its place."""
        for entry in batch:
            if entry.expires_at is not None:
                self.timed += 1
        if self.limits.max_priority is not None:
            for entry in batch:
                self._insert(entry)
            return
        super().restore(batch)
        self.ready_bytes += sum(len(entry.message.body) for entry in batch)

    # -- internals -------------------------------------------------------------------------------

    def _insert(self, entry: QueueEntry) -> None:
        ready = self.held
        key = self.key
        if not ready or key(ready[-1]) <= key(entry):
            ready.append(entry)  # the common case: newest, lowest priority so far
        else:
            ready.insert(bisect_right(ready, key(entry), key=key), entry)
        body = len(entry.message.body)
        self.ready_bytes += body
        self._meter_in(body + MESSAGE_OVERHEAD)

    def _pop_head(self) -> QueueEntry:
        entry = self.held.popleft()
        body = len(entry.message.body)
        self.ready_bytes -= body
        self._meter_out(body + MESSAGE_OVERHEAD)
        return entry

    def _kill(self, entry: QueueEntry, reason: str) -> None:
        """``entry`` leaves by a rule (rule 4)."""
        if entry.expires_at is not None:
            self.timed -= 1
        self.dead.append((entry, reason))


def _order_key(max_priority: int | None) -> Callable[[QueueEntry], _OrderKey]:
    """Ready order: highest priority first ("priorities above max are treated as max",
    missing = 0), then ``msg_id``."""
    if max_priority is None:
        return lambda entry: (0, entry.msg_id)
    top = max_priority

    def key(entry: QueueEntry) -> _OrderKey:
        priority = entry.message.properties.priority or 0
        return (-min(priority, top), entry.msg_id)
    return key
