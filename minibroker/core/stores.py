"""Backing stores: where a queue keeps its messages, after RabbitMQ's backing queue. No I/O.

A :class:`~minibroker.core.queues.Queue` is RabbitMQ's queue process in miniature: it owns its
counters, its consumers and the rules of its verbs, and hands the *storage* of its messages to
one backing store. This module holds the entries, the store contract and the plain store; the
store with features (TTL, priorities, length limits, dead-letter reasons) is in ``features.py``.

Rules:

1. ``BackingStore.ready`` holds the messages waiting for consumers, in delivery order. Only the
   store changes it; its queue and the readers (introspection, the shell's flow controller)
   count it and test it, and read its entries through :meth:`~BackingStore.entries` (its items
   are not all entries: rule 7). The deque lives as long as the queue: a store that replaces
   another (a queue gaining or leaving features) takes it over, so a reference to it stays
   true.
2. Every message enters through :meth:`~BackingStore.append` and leaves through exactly one
   of :meth:`~BackingStore.settle` (acknowledged), :meth:`~BackingStore.discard` (rejected
   without requeue), :meth:`~BackingStore.purge`, :meth:`~BackingStore.delete` or — in a store
   with features — its ``dead`` list (expired, dropped by a length limit, over its delivery
   limit). :meth:`~BackingStore.take` moves the head out of ``ready`` (delivered, now unacked;
   the store counts the delivery in its entry) and :meth:`~BackingStore.requeue` puts unacked
   entries back (redelivered). A store therefore sees every fact a durable copy needs, each
   with its queue and ``msg_id``.
3. Stores keep the broker's ready meter (``flow.py``) current: each adds or subtracts an
   entry's weight as it enters or leaves ``ready``, and keeps its own share (``weight``) so a
   purge, a deletion or a change of store moves it exactly, without a walk.
4. The durability seam. A durable store (``minibroker/storage/``, next) is a store whose verbs
   also record *intents* in a journal that the shell's storage writer turns into file I/O:
   ``append`` of a persistent message → "appended (queue, msg_id, message)"; ``settle``,
   ``discard`` and dead entries → "settled (queue, msg_id)"; ``requeue`` → "requeued (queue,
   msg_ids)" so recovery marks them redelivered; ``purge`` → "purged (queue)"; ``delete`` →
   "deleted (queue)". Recording is appending to a list: the core still does no I/O and never
   waits. The journal numbers its intents; the shell later reports "synced up to sequence N"
   as an input, and the confirms of persistent messages wait for it — the one place they are
   made is ``Publishing.confirm`` (``publishing.py``). The in-memory stores below record
   nothing, so their confirms go out at once. The recording itself is done by the queue's
   verbs (``queues.py`` rule 7) rather than by a third store, because a queue changes store
   (plain <-> features) while its messages stay durable: ``journal.py`` has the intents.
5. :meth:`~BackingStore.restore` is the one way recovered messages (``minibroker/storage/``)
   come back: in ``msg_id`` order, in chunks, while the broker already serves new ones.
6. A :class:`QueueEntry` keeps its msg_id, delivery count and redelivered flag in one int,
   ``state`` (``msg_id << 21 | count << 1 | redelivered``), read and written through the
   properties of the same names; the hot path (the stores' ``take``, ``delivery.dispatch``)
   uses the bits directly. The count saturates at 1,048,575 deliveries; up to a msg_id of
   2**39 the int is as small as one msg_id alone.
7. *Bare* messages. A message that has never left a plain store's ``ready`` has nothing of its
   own to remember (never delivered, not redelivered), and its msg_id follows from its place:
   such messages are always the tail of ``ready`` (``take`` works at the head, and whatever
   comes back — requeued, restored — is older than every message never taken), and their ids
   are consecutive, ending just below the queue's ``next_msg_id`` (the queue gives an id to no
   other message while some are bare: ``delivery.deliver_now`` needs an empty queue, and a
   restore that moves ``next_msg_id`` on makes entries of them first). So the plain store
   keeps the :class:`~minibroker.message.Message` itself there and counts them in ``fresh``;
   :meth:`~BackingStore.take` makes the entry, its delivery already counted. A queued message
   so costs 80 bytes less — the entry's 48 and its ``state`` int's 32
   (bench/scenarios_memory.py: 202 -> 122 bytes beyond a 16-byte body). Readers get entries
   from :meth:`~BackingStore.entries`; a change to a store that keeps only entries first
   makes them in place (:meth:`~BackingStore.number_all`, called by ``Queue.use_store``) —
   one walk of the bare tail, each message at most once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from itertools import islice
from operator import attrgetter
from typing import TYPE_CHECKING

from minibroker.core.flow import MESSAGE_OVERHEAD, ReadyMeter
from minibroker.message import Message

if TYPE_CHECKING:
    from minibroker.core.queues import Queue

__all__ = [
    "COUNT_MASK", "DELIVERY", "REDELIVERED", "BackingStore", "FifoStore", "QueueEntry",
    "Ready", "TimedEntry",
]


_body = attrgetter("body")

#: ``QueueEntry.state``'s layout (rule 6): bit 0 redelivered, bits 1-20 the delivery count,
#: the msg_id above them.
REDELIVERED = 1
DELIVERY = 2  #: one more delivery: ``entry.state += DELIVERY`` (below a full COUNT_MASK)
_COUNT_BITS = 20
COUNT_MASK = ((1 << _COUNT_BITS) - 1) << 1
_ID_SHIFT = _COUNT_BITS + 1


class QueueEntry:
    """One message's life in one queue.

    Every message out with a consumer has one, and so has every ready message that was
    delivered before, recovered, or kept by a store with features (a plain store keeps a
    never-delivered message without one: rule 7). It stays small: two slots, ``message`` and
    ``state`` (rule 6). Python rounds objects to 16 bytes, so only two slots fewer save
    anything: 64 -> 48 bytes. An entry that can expire is a :class:`TimedEntry`; for the
    others ``expires_at`` reads the class default ``None``."""

    __slots__ = ("message", "state")

    #: When the message expires (``now`` scale; message TTL); ``None`` = never.
    expires_at: float | None = None

    def __init__(self, msg_id: int, message: Message, delivery_count: int = 0) -> None:
        """``delivery_count``: 0, or 1 for an entry delivered as it is made; a recovered count
        goes through the saturating property (a ``min`` here was a builtin call a message)."""
        self.message = message
        #: msg_id, delivery count and redelivered in one int (rule 6).
        self.state = msg_id << _ID_SHIFT | delivery_count << 1

    @property
    def msg_id(self) -> int:
        return self.state >> _ID_SHIFT

    @property
    def redelivered(self) -> bool:
        return bool(self.state & REDELIVERED)

    @redelivered.setter
    def redelivered(self, value: bool) -> None:
        self.state = self.state | REDELIVERED if value else self.state & ~REDELIVERED

    @property
    def delivery_count(self) -> int:
        """How many times this entry has been handed out (deliveries and gets)."""
        return (self.state & COUNT_MASK) >> 1

    @delivery_count.setter
    def delivery_count(self, value: int) -> None:
        count = min(value, COUNT_MASK >> 1)  # rule 6: it saturates
        self.state = self.state & ~COUNT_MASK | count << 1

    def __repr__(self) -> str:
        return f"QueueEntry({self.msg_id}, redelivered={self.redelivered})"


class TimedEntry(QueueEntry):
    """An entry with a deadline (queue or message TTL)."""

    __slots__ = ("expires_at",)

    def __init__(self, msg_id: int, message: Message, expires_at: float) -> None:
        super().__init__(msg_id, message)
        self.expires_at = expires_at


def msg_id_of(entry: QueueEntry) -> int:
    return entry.msg_id


#: What ``BackingStore.ready`` holds: entries, then the bare messages of a plain store (rule 7).
Ready = deque[QueueEntry | Message]


class BackingStore(ABC):
    """The storage of one queue's messages (the contract in rules 1-4)."""

    __slots__ = ("fresh", "meter", "owner", "ready", "weight")

    def __init__(
        self, owner: Queue, meter: ReadyMeter, ready: Ready | None = None, weight: int = 0,
    ) -> None:
        #: The queue whose messages these are (the meter lists long queues by queue).
        self.owner = owner
        self.meter = meter
        self.ready: Ready = deque() if ready is None else ready
        #: This store's share of the meter: what ``ready`` weighs (rule 3).
        self.weight = weight
        #: How many items at the tail of ``ready`` are bare messages (rule 7); a store is
        #: handed a deque without any (``Queue.use_store``).
        self.fresh = 0

    @abstractmethod
    def append(
        self, msg_id: int, message: Message, now: float, ttl: float | None
    ) -> QueueEntry | None:
        """Store a new message (``ttl``: its own TTL in seconds, if any) as ready; return its
        entry, or ``None`` when it is kept bare (rule 7)."""

    @abstractmethod
    def take(self, now: float) -> QueueEntry | None:
        """The head entry, out of ``ready`` (it is unacked now) with its delivery counted
        (``delivery_count`` + 1, saturating); ``None`` when none is left."""

    @abstractmethod
    def settle(self, entry: QueueEntry) -> None:
        """An unacked entry was acknowledged: gone for good."""

    @abstractmethod
    def discard(self, entry: QueueEntry) -> None:
        """An unacked entry was rejected without requeue: gone (or dead-lettered)."""

    @abstractmethod
    def requeue(self, batch: list[QueueEntry]) -> None:
        """Unacked entries (in ``msg_id`` order, marked redelivered) come back as ready."""

    @abstractmethod
    def purge(self) -> int:
        """Drop every ready entry; return how many there were."""

    def delete(self) -> int:
        """The queue is deleted: drop what is ready; return how many there were. Entries out
        at that moment are settled, discarded or requeued later, and stay gone."""
        return self.purge()

    def entries(self) -> Iterator[QueueEntry]:
        """The ready entries in delivery order, for readers (rule 1): a bare message (rule 7)
        comes as a new entry with its msg_id, not kept."""
        ready = self.ready
        fresh = self.fresh
        explicit = len(ready) - fresh
        for index, item in enumerate(ready):
            if index < explicit:
                assert isinstance(item, QueueEntry)
                yield item
            else:
                assert isinstance(item, Message)
                yield QueueEntry(self._first_fresh_id() + index - explicit, item)

    def number_all(self) -> None:
        """Make every bare message an entry in its place (rule 7): before the store is changed
        for one that keeps only entries, or before the queue's ``next_msg_id`` moves on by
        more than one message."""
        fresh = self.fresh
        if not fresh:
            return
        first = self._first_fresh_id()
        ready = self.ready
        tail = [ready.pop() for _ in range(fresh)]
        tail.reverse()
        ready.extend(QueueEntry(first + offset, message)  # type: ignore[arg-type]
                     for offset, message in enumerate(tail))
        self.fresh = 0

    def restore(self, batch: list[QueueEntry]) -> None:
        """Recovered entries (rule 5) come back as ready: ``batch`` is in ``msg_id`` order,
        newer than every entry restored before and older than every entry appended since
        recovery began, so it goes in between — the newer entries are few, at the tail (the
        bare messages among them: rule 7), and a rotation moves them aside (no walk of the
        backlog)."""
        ready = self.ready
        last = batch[-1].msg_id
        newer = self.fresh
        for entry in islice(reversed(ready), newer, None):
            assert isinstance(entry, QueueEntry)
            if entry.msg_id < last:
                break
            newer += 1
        weight = len(batch) * MESSAGE_OVERHEAD
        for entry in batch:
            weight += len(entry.message.body)
        if newer:
            ready.rotate(newer)
            ready.extend(batch)
            ready.rotate(-newer)
        else:
            ready.extend(batch)
        self._meter_in(weight)

    def _first_fresh_id(self) -> int:
        """The msg_id of the first bare message (rule 7)."""
        return self.owner.next_msg_id - self.fresh

    def _meter_in(self, weight: int) -> None:
        self.weight += weight
        meter = self.meter
        meter.weight += weight
        if len(self.ready) > meter.queue_high_water:
            meter.long_queues.add(self.owner)

    def _meter_out(self, weight: int) -> None:
        self.weight -= weight
        self.meter.weight -= weight


class FifoStore(BackingStore):
    """The plain store: ready entries in ``msg_id`` order, then the bare messages (rule 7); no
    deadlines, nothing to record.

    Its verbs are the hot path: one deque operation and one meter add each."""

    __slots__ = ()

    def append(
        self, msg_id: int, message: Message, now: float, ttl: float | None
    ) -> QueueEntry | None:
        # ``ttl`` is always None here: a message that can expire makes its queue take a
        # store with features first (``lifecycle.py``). ``msg_id`` is the queue's
        # ``next_msg_id`` - 1, which is how ``take`` finds it again (rule 7).
        ready = self.ready
        ready.append(message)
        self.fresh += 1
        weight = len(message.body) + MESSAGE_OVERHEAD
        self.weight += weight
        meter = self.meter
        meter.weight += weight
        if len(ready) > meter.queue_high_water:
            meter.long_queues.add(self.owner)
        return None

    def append_many(self, messages: list[Message]) -> None:
        """:meth:`append` for a run of new messages, kept bare (rule 7) with one ``extend``:
        their msg_ids are the queue's last ``len(messages)`` (``Queue.enqueue_many``)."""
        ready = self.ready
        ready.extend(messages)
        self.fresh += len(messages)
        weight = sum(map(len, map(_body, messages))) + len(messages) * MESSAGE_OVERHEAD
        self.weight += weight
        meter = self.meter
        meter.weight += weight
        if len(ready) > meter.queue_high_water:
            meter.long_queues.add(self.owner)

    def take(self, now: float) -> QueueEntry | None:
        ready = self.ready
        if not ready:
            return None
        fresh = self.fresh
        head = ready.popleft()
        if len(ready) < fresh:
            # A bare message (rule 7): its entry is made now, its delivery counted as it is
            # made (one int a message, not one at append and another at the first delivery:
            # bench/core_backlog.py, 36,229 -> 35,736 instructions a message).
            self.fresh = fresh - 1
            entry = QueueEntry(self.owner.next_msg_id - fresh, head, 1)  # type: ignore[arg-type]
        else:
            entry = head  # type: ignore[assignment]  # ahead of the bare tail: an entry
            state = entry.state
            if ~state & COUNT_MASK:  # delivery_count + 1 without two property calls; it
                entry.state = state + DELIVERY  # saturates (rule 6)
        weight = len(entry.message.body) + MESSAGE_OVERHEAD
        self.weight -= weight
        self.meter.weight -= weight
        return entry

    def settle(self, entry: QueueEntry) -> None:
        pass  # nothing is kept for an unacked entry

    def discard(self, entry: QueueEntry) -> None:
        pass

    def requeue(self, batch: list[QueueEntry]) -> None:
        weight = len(batch) * MESSAGE_OVERHEAD
        for entry in batch:
            weight += len(entry.message.body)
        ready = self.ready
        fresh = self.fresh
        if len(ready) == fresh or batch[-1].msg_id < ready[0].msg_id:  # type: ignore[union-attr]
            # The common case: everything returned is older than the head (and than every
            # bare message, always: rule 7).
            ready.extendleft(reversed(batch))
        else:
            for entry in batch:  # among the entries, ahead of the bare messages
                at = bisect_left(ready, entry.msg_id, 0, len(ready) - fresh,
                                 key=msg_id_of)  # type: ignore[arg-type]  # entries only
                ready.insert(at, entry)
        self._meter_in(weight)

    def purge(self) -> int:
        count = len(self.ready)
        self.ready.clear()
        self.fresh = 0
        self._meter_out(self.weight)
        return count
