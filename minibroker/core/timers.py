"""Timers: the core's deadlines (message TTL at queue heads, queue expiry, stream age retention)
in one heap.

Rules:

1. The heap holds (deadline, sequence, kind, queue). Entries are never removed when they stop
   being true: an entry is *live* only while its queue is alive and still has that deadline
   recorded for that kind (``FeatureStore.ttl_deadline`` / ``Lease.deadline`` /
   ``StreamLog.deadline``). Stale entries
   are skipped when they reach the top (lazy invalidation), so rescheduling costs one push.
2. :meth:`Timers.next_deadline` returns the earliest live deadline; :meth:`Timers.due` pops
   every live entry due at ``now``. Neither reads a clock.
3. Bounded: stale entries behind a live earlier one would otherwise pile up (a queue with
   ``x-expires`` polled by ``basic.get`` reschedules on every poll). When the heap holds twice
   as many entries as at the last compaction (and at least 64), it is rebuilt from its live
   entries: amortised O(1) per push, memory O(live timers).
4. Consumer timeout (RabbitMQ's ``consumer_timeout``): a channel whose oldest unacknowledged
   delivery (the first in its unacked map: tags, and so delivery times, increase) was
   delivered more than ``timeout`` seconds before ``now`` is overdue
   (:func:`overdue_channels`, O(1) per channel); the shell walks it on its periodic sweep,
   as RabbitMQ checks on its channel tick, and closes each overdue channel with 406 and
   :func:`consumer_timeout_text`. Only deliveries that must be acknowledged count; a
   stream's never time out.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minibroker.core.channels import BrokerChannel, ConnectionState
    from minibroker.core.queues import Queue

__all__ = [
    "EXPIRY", "RETENTION", "TTL", "Timers", "consumer_timeout_text", "overdue_channels",
]

#: Kinds of deadline.
TTL, EXPIRY, RETENTION = "ttl", "expiry", "retention"


def _live(kind: str, queue: Queue, deadline: float) -> bool:
    if queue.deleted:
        return False
    if kind == TTL:
        features = queue.features
        return features is not None and features.ttl_deadline == deadline
    if kind == RETENTION:
        stream = queue.stream
        return stream is not None and stream.deadline == deadline
    lease = queue.lease
    return lease is not None and lease.deadline == deadline


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, Queue]] = []
        self._sequence = itertools.count()
        #: Heap size above which the next push compacts (rule 3).
        self._compact_at = 64

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, deadline: float, kind: str, queue: Queue) -> None:
        """Record ``deadline`` for ``queue`` (the caller stores it on the queue's features)."""
        heapq.heappush(self._heap, (deadline, next(self._sequence), kind, queue))
        if len(self._heap) > self._compact_at:
            self._heap = [entry for entry in self._heap if _live(entry[2], entry[3], entry[0])]
            heapq.heapify(self._heap)
            self._compact_at = max(64, 2 * len(self._heap))

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, kind, queue = heap[0]
            if _live(kind, queue, deadline):
                return deadline
            heapq.heappop(heap)
        return None

    def due(self, now: float) -> list[tuple[str, Queue]]:
        """Pop and return every live (kind, queue) whose deadline is ``<= now``."""
        heap = self._heap
        fired: list[tuple[str, Queue]] = []
        while heap and heap[0][0] <= now:
            deadline, _, kind, queue = heapq.heappop(heap)
            if _live(kind, queue, deadline):
                fired.append((kind, queue))
        return fired


# -- consumer timeout (rule 4) -------------------------------------------------------------------


def overdue_channels(connections: Iterable[ConnectionState], now: float,
                     timeout: float) -> list[BrokerChannel]:
    """Channels whose oldest unacknowledged delivery is more than ``timeout`` seconds old."""
    overdue: list[BrokerChannel] = []
    limit = now - timeout
    for connection in connections:
        for channel in connection.channels.values():
            unacked = channel.unacked
            if unacked and next(iter(unacked.values())).delivered_at < limit:
                overdue.append(channel)
    return overdue


def consumer_timeout_text(channel: int, timeout: float) -> str:
    """RabbitMQ's reply text (406 PRECONDITION_FAILED) for an overdue channel."""
    return (f"delivery acknowledgement on channel {channel} timed out. Timeout value used: "
            f"{round(timeout * 1000)} ms. This timeout value can be configured, see consumers "
            f"doc guide to learn more")
