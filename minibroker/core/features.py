"""Queue features: the per-queue state and verbs behind TTL, length limits, priorities,
dead-letter reasons and quorum delivery limits. No routing here (``lifecycle.py`` does that).

Rules:

1. A queue with features has ``queue.features`` set; its ready messages are still one deque,
   ordered by (priority, highest first; then ``msg_id``) — with no ``x-max-priority`` every
   priority is 0 and that is plain ``msg_id`` order. A requeued message goes back to its
   original position within its priority (kombu's priority tests check this).
2. Message TTL (RabbitMQ): "the lower of the two [queue and message TTL] will be chosen". An
   entry's deadline is fixed at enqueue and kept across requeues. Expired messages are removed
   at the head of the queue ("only when expired messages reach the head of a queue will they
   actually be discarded"): :meth:`checkout` skips them, :meth:`sweep` removes heads whose
   deadline has come. A deadline of exactly ``now`` may still be delivered in the same instant
   (TTL 0: "deliver now or expire"), but is removed by the sweep that follows.
3. Length limits count ready messages only (RabbitMQ: unacknowledged messages do not count) and
   body bytes for ``x-max-length-bytes``. ``drop-head`` removes from the head after the enqueue;
   ``reject-publish(-dlx)`` refuses the newest message (:meth:`accepts`).
4. Everything that leaves the queue because of a rule lands in ``dead`` as (entry, reason) —
   ``expired``, ``maxlen``, ``rejected``, ``delivery_limit`` — for the broker to dead-letter or
   drop. Nothing leaves silently.
5. Quorum queues count returns: an entry returned more than ``x-delivery-limit`` times is
   dead-lettered with reason ``delivery_limit`` instead of requeued.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING

from minibroker.core.arguments import QueueLimits
from minibroker.core.queues import QueueEntry, TimedEntry
from minibroker.message import Message

if TYPE_CHECKING:
    from minibroker.core.queues import Queue

__all__ = ["PLAIN_LIMITS", "QueueFeatures"]

PLAIN_LIMITS = QueueLimits()

_OrderKey = tuple[int, int]


class QueueFeatures:
    """What a queue with features knows beyond a plain queue."""

    __slots__ = (
        "dead", "expires", "expiry_deadline", "key", "last_used", "limits", "ready_bytes",
        "ttl", "ttl_deadline",
    )

    def __init__(self, limits: QueueLimits, now: float) -> None:
        self.limits = limits
        #: Queue message TTL and queue expiry on the ``now`` scale (seconds).
        self.ttl = None if limits.message_ttl is None else limits.message_ttl / 1000
        self.expires = None if limits.expires is None else limits.expires / 1000
        #: Body bytes of the ready messages.
        self.ready_bytes = 0
        #: Entries removed by a rule, waiting for the broker (rule 4).
        self.dead: list[tuple[QueueEntry, str]] = []
        #: The deadlines currently in the broker's timer heap (lazy invalidation).
        self.ttl_deadline: float | None = None
        self.expiry_deadline: float | None = None
        #: Last declare, get, consume or cancel (``x-expires`` counts from here).
        self.last_used = now
        self.key = _order_key(limits.max_priority)

    # -- enqueue and the length limit (rule 3) -------------------------------------------------

    def accepts(self, queue: Queue, message: Message) -> bool:
        """False if ``reject-publish(-dlx)`` refuses ``message`` because the queue is full."""
        limits = self.limits
        if limits.overflow == "drop-head":
            return True
        if limits.max_length is not None and len(queue.ready) >= limits.max_length:
            return False
        return not (limits.max_length_bytes is not None
                    and self.ready_bytes + len(message.body) > limits.max_length_bytes)

    def enqueue(self, queue: Queue, message: Message, now: float, ttl: float | None) -> None:
        """Add ``message`` (``ttl``: the message's own TTL in seconds, if any)."""
        if self.ttl is not None and (ttl is None or self.ttl < ttl):
            ttl = self.ttl
        entry = (QueueEntry(queue.next_msg_id, message) if ttl is None
                 else TimedEntry(queue.next_msg_id, message, now + ttl))
        queue.next_msg_id += 1
        queue.published += 1
        self._insert(queue, entry)

    def enforce_length(self, queue: Queue) -> None:
        """``drop-head``: drop from the head until the queue is within its limits."""
        limits = self.limits
        if limits.overflow != "drop-head":
            return
        ready = queue.ready
        max_length, max_bytes = limits.max_length, limits.max_length_bytes
        while ready and ((max_length is not None and len(ready) > max_length) or
                         (max_bytes is not None and self.ready_bytes > max_bytes)):
            self._drop_head(queue, "maxlen")

    # -- taking messages out (rule 2) ------------------------------------------------------------

    def checkout(self, queue: Queue, now: float) -> QueueEntry | None:
        """The head message for a delivery or get, skipping expired ones (rule 2)."""
        ready = queue.ready
        while ready:
            entry = ready.popleft()
            self.ready_bytes -= len(entry.message.body)
            if entry.expires_at is not None and entry.expires_at < now:
                self.dead.append((entry, "expired"))
                continue
            entry.delivery_count += 1
            queue.unacked_count += 1
            queue.delivered += 1
            return entry
        return None

    def sweep(self, queue: Queue, now: float) -> None:
        """Remove head messages whose deadline has come."""
        ready = queue.ready
        while ready:
            expires_at = ready[0].expires_at
            if expires_at is None or expires_at > now:
                return
            self._drop_head(queue, "expired")

    def head_deadline(self, queue: Queue) -> float | None:
        return queue.ready[0].expires_at if queue.ready else None

    # -- settlement ----------------------------------------------------------------------------

    def discarded(self, entry: QueueEntry) -> None:
        """Rejected without requeue: dead-lettered if there is somewhere to send it."""
        if self.limits.dead_letter_exchange is not None:
            self.dead.append((entry, "rejected"))

    def requeue(self, queue: Queue, batch: list[QueueEntry]) -> None:
        """Return entries to their original positions (rule 1), or to ``dead`` (rule 5)."""
        limit = self.limits.delivery_limit if self.limits.quorum else None
        for entry in batch:
            if limit is not None and entry.delivery_count > limit:
                self.dead.append((entry, "delivery_limit"))
            else:
                self._insert(queue, entry)

    # -- internals -------------------------------------------------------------------------------

    def _insert(self, queue: Queue, entry: QueueEntry) -> None:
        ready = queue.ready
        self.ready_bytes += len(entry.message.body)
        key = self.key
        if not ready or key(ready[-1]) <= key(entry):
            ready.append(entry)  # the common case: newest, lowest priority so far
        else:
            ready.insert(bisect_right(ready, key(entry), key=key), entry)

    def _drop_head(self, queue: Queue, reason: str) -> None:
        entry = queue.ready.popleft()
        self.ready_bytes -= len(entry.message.body)
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
