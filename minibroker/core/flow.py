"""The ready-backlog meter: how much the broker holds for consumers, kept up to date for free.

The shell's flow controller (``minibroker/server/flow.py``) reads this meter after every input
to decide when publishers must be blocked. This module only counts; it never decides.

Rules:

1. The meter counts *weight*: ready body bytes plus :data:`MESSAGE_OVERHEAD` per ready message
   (the entry, the message object, its strings and the deque slot), so a flood of empty
   messages weighs something too. Unacked messages are not counted: a consumer's prefetch
   window bounds them.
2. Plain queues update it incrementally in their verbs (``Queue.enqueue/checkout/requeue/
   purge``): one integer add per operation on the hot path, plus one length comparison on
   enqueue for the per-queue high-water mark. Each queue also keeps its own share
   (``Queue.weight``), so a purge or a deletion subtracts it exactly, without a walk.
3. Queues with features (TTL, limits, priorities) move messages in ``features.py``, not through
   the verbs: they are not counted incrementally but re-measured by :meth:`ReadyMeter.recount`,
   which the shell runs on its periodic sweep. A plain queue that gains features later hands
   its share back there too, so the meter cannot drift.
4. A queue counts into the meter of the broker that owns it: ``BrokerState`` owns one
   :class:`ReadyMeter` and hands it to every queue it creates. A queue built outside a broker
   (in a unit test) counts into :data:`UNMETERED`, a sink nobody reads.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minibroker.core.queues import Queue

__all__ = ["MESSAGE_OVERHEAD", "UNMETERED", "ReadyMeter"]

#: Estimated bytes a ready message costs beyond its body: tracemalloc measured 235-270 for a
#: native publish without properties (entry, message, routing strings, deque slot) and about
#: 700 with a few properties and a header table.
MESSAGE_OVERHEAD = 400


class ReadyMeter:
    """Broker-wide ready weight, and the queues whose backlog passed ``queue_high_water``."""

    __slots__ = ("featured", "long_queues", "queue_high_water", "weight")

    def __init__(self, queue_high_water: int = sys.maxsize) -> None:
        #: Weight of the ready messages of plain queues (rule 2), exact at all times.
        self.weight = 0
        #: Weight of the ready messages of queues with features, as of the last recount.
        self.featured = 0
        #: A queue whose ready count passes this joins ``long_queues`` (on enqueue).
        self.queue_high_water = queue_high_water
        #: Queues that passed ``queue_high_water``; the shell removes them once drained.
        self.long_queues: set[Queue] = set()

    @property
    def total(self) -> int:
        """Estimated bytes held in ready messages."""
        return self.weight + self.featured

    def attach(self, queue: Queue) -> None:
        """Count ``queue`` here from now on, with what it holds already."""
        old = queue.meter
        if old is self:
            return
        old.weight -= queue.weight
        old.long_queues.discard(queue)
        self.weight += queue.weight
        queue.meter = self
        if len(queue.ready) > self.queue_high_water:
            self.long_queues.add(queue)

    def recount(self, queues: Iterable[Queue]) -> None:
        """Re-measure the queues with features (rule 3); attach any queue not yet attached."""
        featured = 0
        limit = self.queue_high_water
        for queue in queues:
            if queue.meter is not self:
                self.attach(queue)
            features = queue.features
            if features is None:
                continue
            if queue.weight:  # it was plain once: its share is measured below from now on
                self.weight -= queue.weight
                queue.weight = 0
            ready = len(queue.ready)
            featured += features.ready_bytes + ready * MESSAGE_OVERHEAD
            if ready > limit:
                self.long_queues.add(queue)
        self.featured = featured

    def ready_messages(self, queues: Iterable[Queue]) -> int:
        """Ready messages in ``queues`` (for logs; walks them)."""
        return sum(len(queue.ready) for queue in queues)


#: Where queues of an unmetered broker count (rule 4): never read, never holds a queue.
UNMETERED = ReadyMeter()
