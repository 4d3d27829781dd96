"""The ready-backlog meter: how much the broker holds for consumers, kept up to date for free.

The shell's flow controller (``minibroker/server/flow.py``) reads this meter after every input
to decide when publishers must be blocked. This module only counts; it never decides.

Rules:

1. The meter counts *weight*: ready body bytes plus :data:`MESSAGE_OVERHEAD` per ready message
   (the entry, the message object, its strings and the deque slot), so a flood of empty
   messages weighs something too. Unacked messages are not counted: a consumer's prefetch
   window bounds them.
2. Every queue's backing store (``stores.py``, ``features.py``) updates it incrementally as
   entries enter or leave ``ready``: one integer add per operation on the hot path, plus one
   length comparison on append for the per-queue mark (``queue_high_water``: the shell sets
   the lower of its queue high-water mark and its per-queue credit, ``server/credit.py``).
   Each store also keeps its own share (``BackingStore.weight``), so a purge, a deletion or a
   change of store moves it exactly, without a walk. Expiry and length limits remove
   entries inside the store, so they are counted too: the meter never needs re-measuring.
3. A queue counts into the meter of the broker that owns it, from its creation: ``BrokerState``
   owns one :class:`ReadyMeter` and the queue lifecycle hands it to every queue it creates
   (the cores of several vhosts share the server's meter). So no queue ever moves to another
   meter, and nothing is re-measured. A queue built outside a broker (in a unit test) counts
   into :data:`UNMETERED`, a sink nobody reads.
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

    __slots__ = ("long_queues", "queue_high_water", "weight")

    def __init__(self, queue_high_water: int = sys.maxsize) -> None:
        #: Weight of the ready messages of every queue (rule 2), exact at all times.
        self.weight = 0
        #: A queue whose ready count passes this joins ``long_queues`` (on enqueue); the shell
        #: sets the lowest per-queue mark it watches.
        self.queue_high_water = queue_high_water
        #: Queues that passed ``queue_high_water``; the shell removes them once drained.
        self.long_queues: set[Queue] = set()

    @property
    def total(self) -> int:
        """Estimated bytes held in ready messages."""
        return self.weight

    def ready_messages(self, queues: Iterable[Queue]) -> int:
        """Ready messages in ``queues`` (for logs; walks them)."""
        return sum(len(queue.ready) for queue in queues)


#: Where queues of an unmetered broker count (rule 4): never read, never holds a queue.
UNMETERED = ReadyMeter()
