"""Consumer selection: whose turn it is to take the next message of a queue, in O(log n).

Rules:

1. Round-robin by subscription order: after a consumer takes a message, the turn passes to the
   next consumer subscribed after it, wrapping to the first after the last. A consumer without
   credit (``BrokerConsumer.has_credit``: prefetch reached, connection blocked) loses its turn
   to the next one. When the consumer whose turn it is unsubscribes, the turn passes to the one
   after it; a consumer that subscribes joins at the end of the order.
2. Consumer priorities (RabbitMQ): "active consumers with the highest priority receive messages
   first [...] messages will be delivered round-robin among consumers of the same priority"; a
   consumer without credit is skipped, so a lower priority consumer gets the message when every
   higher one is full. Each priority level keeps its own turn (rule 1 within the level).
3. Single active consumer (``x-single-active-consumer``): only the first consumer subscribed
   receives; when it is cancelled the next one in subscription order takes over. Priorities do
   not apply.
4. Cost: adding, removing and finding the next consumer with credit cost O(log n) in the number
   of consumers; none of them looks at any other consumer. The consumers whose turn may come
   sit in a heap keyed by (priority, round, subscription number): a level's *round* counts its
   passes through the subscription order, so the heap's minimum is the next consumer in turn.
   A consumer found without credit is *parked* (out of the heap) until something may give its
   credit back — a settlement of one of its deliveries, a ``basic.qos`` on its channel, its
   connection becoming writable — which *wakes* it (:meth:`ConsumerRing.wake`). So a busy
   queue's credit-less consumers are each looked at once, not once per message.
5. Quorum queues carry ``x-delivery-count`` (the number of earlier, returned deliveries) on
   every delivery of a message returned before; a first delivery has none, except a first
   ``basic.get`` under RabbitMQ 3.10, which says 0 (``generations.py``). The stored message
   is not changed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from minibroker.message import Message

if TYPE_CHECKING:
    from minibroker.core.channels import BrokerConsumer
    from minibroker.core.stores import QueueEntry

__all__ = ["ConsumerRing", "Turn", "with_delivery_count"]

#: Heap entries of removed consumers are left in place and skipped when they surface; the heap
#: is rebuilt when they outnumber the live ones by this margin (bounded memory under churn).
_COMPACT_SLACK = 32


class _Level:
    """The consumers of one priority and whose turn it is among them (rule 1)."""

    __slots__ = ("last", "members", "round", "start")

    def __init__(self) -> None:
        #: Subscription order: a dict keeps insertion order and removes in O(1).
        self.members: dict[BrokerConsumer, None] = {}
        #: The subscription number of the last consumer in that order.
        self.last = 0
        #: The current pass through ``members``, and the subscription number the turn starts
        #: from in it: consumers numbered >= ``start`` wait in this round, the others in the next.
        self.round = 0
        self.start = 0

    def round_for(self, number: int) -> int:
        return self.round if number >= self.start else self.round + 1


#: A consumer's place in the heap: (-priority, round, subscription number, consumer, its
#: level). The subscription number is unique within a ring, so nothing after it is compared.
Turn = tuple[int, int, int, "BrokerConsumer", _Level]


class ConsumerRing:
    """The consumers of one queue, in subscription order, and whose turn it is."""

    __slots__ = (
        "_heap", "_junk", "_levels", "_next_number", "exclusive", "members", "single",
        "single_active",
    )

    def __init__(self, *, single_active: bool = False) -> None:
        #: Every consumer, in subscription order (a dict keeps insertion order and removes in
        #: O(1)). Read it — the hot path tests it for emptiness — but change it only through
        #: :meth:`add` and :meth:`remove`.
        self.members: dict[BrokerConsumer, None] = {}
        self._levels: dict[int, _Level] = {}
        self._heap: list[Turn] = []
        #: Heap entries that belong to no live consumer.
        self._junk = 0
        self._next_number = 0
        #: Rule 3.
        self.single_active = single_active
        #: The consumer when there is exactly one (the dispatcher's fast path), else ``None``.
        self.single: BrokerConsumer | None = None
        #: How many of the consumers are exclusive (at most one, and then it is alone).
        self.exclusive = 0

    def __len__(self) -> int:
        return len(self.members)

    def __bool__(self) -> bool:
        return bool(self.members)

    def __iter__(self) -> Iterator[BrokerConsumer]:
        """The consumers in subscription order."""
        return iter(self.members)

    @property
    def waiting(self) -> int:
        """Entries in the turn heap, live or not (for tests of the bound in rule 4)."""
        return len(self._heap)

    def first(self) -> BrokerConsumer | None:
        """The earliest subscribed consumer (the single active one)."""
        return next(iter(self.members), None)

    # -- membership --------------------------------------------------------------------------

    def add(self, consumer: BrokerConsumer) -> None:
        consumer.number = self._next_number
        self._next_number += 1
        self.members[consumer] = None
        self.single = consumer if len(self.members) == 1 else None
        if consumer.exclusive:
            self.exclusive += 1
        level = self._levels.get(consumer.priority)
        if level is None:
            level = self._levels[consumer.priority] = _Level()
        level.members[consumer] = None
        level.last = consumer.number
        self._push(consumer, level)

    def remove(self, consumer: BrokerConsumer) -> None:
        del self.members[consumer]
        members = self.members
        self.single = next(iter(members)) if len(members) == 1 else None
        if consumer.exclusive:
            self.exclusive -= 1
        if consumer.turn is not None:
            consumer.turn = None
            self._junk += 1
            if self._junk > len(self._heap) // 2 + _COMPACT_SLACK:
                self._compact()
        level = self._levels[consumer.priority]
        del level.members[consumer]
        if not level.members:
            del self._levels[consumer.priority]
            return
        if consumer.number == level.last:
            level.last = next(reversed(level.members)).number
        if level.start > level.last:
            # The turn was past the last consumer of the level: it wraps to the first now.
            level.round += 1
            level.start = 0

    def clear(self) -> None:
        for consumer in self.members:
            consumer.turn = None
        self.members.clear()
        self._levels.clear()
        self._heap.clear()
        self._junk = 0
        self.single = None
        self.exclusive = 0

    # -- turns -------------------------------------------------------------------------------

    def wake(self, consumer: BrokerConsumer) -> None:
        """``consumer`` may have credit again: give it back its place in the order (rule 4)."""
        if consumer.turn is None and consumer in self.members:
            self._push(consumer, self._levels[consumer.priority])

    def next_turn(self) -> BrokerConsumer | None:
        """The consumer that takes the next message, its turn passed on; ``None`` when no
        consumer has credit (rules 1-3)."""
        if self.single_active:
            first = self.first()
            return first if first is not None and first.has_credit() else None
        heap = self._heap
        while heap:
            turn = heap[0]
            consumer = turn[3]
            if consumer.turn is not turn:
                heapq.heappop(heap)
                self._junk -= 1  # a removed consumer's old place
                continue
            if not consumer.has_credit():
                heapq.heappop(heap)
                consumer.turn = None  # parked until woken
                continue
            _, round_, number, _, level = turn
            if number == level.last:
                level.round, level.start = round_ + 1, 0  # past the last: wrap now
            else:
                level.round, level.start = round_, number + 1
            # Its next turn comes after every other consumer of the level has had one.
            consumer.turn = turn = (turn[0], round_ + 1, number, consumer, level)
            heapq.heapreplace(heap, turn)
            return consumer
        return None

    def _push(self, consumer: BrokerConsumer, level: _Level) -> None:
        if self.single_active:
            return
        number = consumer.number
        consumer.turn = turn = (
            -consumer.priority, level.round_for(number), number, consumer, level
        )
        heapq.heappush(self._heap, turn)

    def _compact(self) -> None:
        self._heap = [turn for turn in self._heap if turn[3].turn is turn]
        heapq.heapify(self._heap)
        self._junk = 0


def with_delivery_count(entry: QueueEntry, *, first: bool = False) -> Message:
    """The message with ``x-delivery-count`` set to its earlier deliveries, if it had any or
    ``first`` asks for a 0 (rule 5)."""
    message = entry.message
    returns = entry.delivery_count - 1
    if not (returns or first):
        return message
    headers = dict(message.properties.headers or {})
    headers["x-delivery-count"] = returns
    return replace(message, properties=replace(message.properties, headers=headers))
