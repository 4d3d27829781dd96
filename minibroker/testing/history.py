"""The message history of a test broker: every publish and what became of it, bounded.

Rules:

1. :class:`Recorder` is the core's ``Broker.observer``: it receives a
   :class:`~minibroker.core.fates.Fate` at every step of a message's life and files it under the
   message it concerns (the same ``Message`` object for every step, rule 3 of ``fates.py``).
   A publish starts a record: "routed" (to one queue or more), "unroutable" (to none; a
   ``mandatory`` one is then "returned" too), or "refused" (a publish the fault injector
   nacked).
2. Memory is bounded: at most ``max_messages`` records (the oldest are dropped, and
   :attr:`History.truncated` says how many) and at most ``max_events`` events per record (a
   message requeued forever cannot grow without limit; ``events_dropped`` counts the rest).
3. Reads return frozen snapshots (:class:`History`, :class:`MessageRecord`): holding one never
   pins the recorder, and it does not change as the broker goes on.
4. Waiting costs O(new events), not O(history): a waiter asks for a :class:`Tally`, which
   counts the matching messages already recorded once, when it is made, and is then told of
   every new record and event. The recorder holds its tallies weakly, so a tally lives as long
   as the condition that made it. A message a tally counted stays counted when the bounded
   history later drops it (events that happened do not un-happen); an event of a message the
   history had already dropped is not counted (it is ``unmatched``). :meth:`Recorder.clear`
   starts every tally again from 0.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from minibroker.core.fates import Fate
from minibroker.message import Message, Properties
from minibroker.valueclass import valueclass

__all__ = [
    "DEFAULT_HISTORY_SIZE", "FateEvent", "History", "MessageRecord", "Recorder", "Tally",
]

#: Records kept by default (the oldest are dropped beyond it).
DEFAULT_HISTORY_SIZE = 10_000
#: Events kept per message.
MAX_EVENTS = 256


@valueclass(frozen=True)
class FateEvent:
    """One step of one message's life (a frozen copy of the core's ``Fate`` without the
    message)."""

    #: "routed", "unroutable", "returned", "delivered", "acked", "nacked", "rejected",
    #: "requeued", "purged", "deleted", "expired", "dead-lettered", "dropped", or "refused" (an
    #: injected publish nack).
    kind: str
    queue: str | None = None
    queues: tuple[str, ...] = ()
    connection: int | None = None
    channel: int | None = None
    consumer_tag: str | None = None
    delivery_tag: int | None = None
    redelivered: bool = False
    requeue: bool = False
    reason: str = ""


@valueclass(frozen=True)
class MessageRecord:
    """One published message and every step of its life so far."""

    #: Publish order, from 1 (kept when older records are dropped).
    index: int
    exchange: str
    routing_key: str
    body: bytes
    properties: Properties
    #: The queues the message was enqueued in (empty: unroutable or refused).
    routed_to: tuple[str, ...]
    events: tuple[FateEvent, ...]
    events_dropped: int = 0

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(event.kind for event in self.events)

    def fate(self, queue: str | None = None) -> str:
        """The latest event's kind (for ``queue`` when given): e.g. "acked". "unknown" when no
        event concerns ``queue`` (the message never reached it)."""
        for event in reversed(self.events):
            if queue is None or event.queue == queue or queue in event.queues:
                return event.kind
        return "unknown"

    def has(self, kind: str, queue: str | None = None) -> bool:
        return any(
            event.kind == kind
            and (queue is None or event.queue == queue or queue in event.queues)
            for event in self.events
        )


@valueclass(frozen=True)
class History:
    """A snapshot of the recorded messages, oldest first."""

    records: tuple[MessageRecord, ...]
    #: Records dropped (oldest first) because the history is bounded.
    truncated: int
    max_messages: int

    @property
    def note(self) -> str:
        return _truncation_note(self.truncated, self.max_messages)

    def __iter__(self) -> Iterator[MessageRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> MessageRecord:
        return self.records[index]

    @property
    def bodies(self) -> list[bytes]:
        return [record.body for record in self.records]

    def __repr__(self) -> str:
        note = f", {self.note}" if self.truncated else ""
        return f"History({len(self.records)} messages{note})"


def _truncation_note(truncated: int, max_messages: int) -> str:
    if not truncated:
        return ""
    return (f"history truncated: the {truncated} oldest messages were dropped "
            f"(history_size={max_messages})")


class _Entry:
    __slots__ = ("dropped", "events", "index", "message", "routed_to")

    def __init__(self, index: int, message: Message, routed_to: tuple[str, ...]) -> None:
        self.index = index
        self.message = message
        self.routed_to = routed_to
        self.events: list[FateEvent] = []
        self.dropped = 0


class Tally:
    """How many recorded messages match: published ones (``kind`` ``None``), or ones with at
    least one ``kind`` event (for ``queue``); ``exchange`` and ``routing_key`` filter both
    (rule 4)."""

    __slots__ = ("__weakref__", "_counted", "count", "exchange", "kind", "queue",
                 "routing_key")

    def __init__(self, kind: str | None, *, queue: str | None = None,
                 exchange: str | None = None, routing_key: str | None = None) -> None:
        self.kind = kind
        self.queue = queue
        self.exchange = exchange
        self.routing_key = routing_key
        self.count = 0
        #: Indices of the counted messages the history still holds (each counts once).
        self._counted: set[int] = set()

    def reset(self) -> None:
        self.count = 0
        self._counted.clear()

    def _wants(self, entry: _Entry) -> bool:
        message = entry.message
        return ((self.exchange is None or message.exchange == self.exchange)
                and (self.routing_key is None or message.routing_key == self.routing_key)
                and entry.index not in self._counted)

    def started(self, entry: _Entry) -> None:
        """A new record."""
        if self.kind is None and self._wants(entry):
            self._add(entry)

    def recorded(self, entry: _Entry, event: FateEvent) -> None:
        """A new event of ``entry``."""
        if event.kind == self.kind and (
                self.queue is None or event.queue == self.queue or self.queue in event.queues
        ) and self._wants(entry):
            self._add(entry)

    def _add(self, entry: _Entry) -> None:
        self._counted.add(entry.index)
        self.count += 1

    def forget(self, entry: _Entry) -> None:
        """The history dropped ``entry``: it stays counted, but need not be remembered (so a
        tally holds at most ``max_messages`` indices)."""
        self._counted.discard(entry.index)


def _event(fate: Fate, kind: str | None = None) -> FateEvent:
    return FateEvent(
        kind or fate.kind, fate.queue, fate.queues, fate.connection, fate.channel,
        fate.consumer_tag, fate.delivery_tag, fate.redelivered, fate.requeue, fate.reason,
    )


class Recorder:
    """The bounded observer behind :class:`History` (rules 1 and 2). Loop thread only."""

    def __init__(self, max_messages: int = DEFAULT_HISTORY_SIZE,
                 max_events: int = MAX_EVENTS) -> None:
        if max_messages < 1:
            raise ValueError("history_size must be at least 1")
        self.max_messages = max_messages
        self.max_events = max_events
        # Keyed by id(message): the entry holds the message, so the id stays unique.
        self._entries: dict[int, _Entry] = {}
        self._count = 0
        self.truncated = 0
        #: Fates of messages no longer (or never) in the history.
        self.unmatched = 0
        self._tallies: weakref.WeakSet[Tally] = weakref.WeakSet()

    def __call__(self, fate: Fate) -> None:
        message = fate.message
        entry = self._entries.get(id(message))
        kind = fate.kind
        if kind == "routed":
            if entry is None:
                entry = self._start(message, fate.queues)
            if not fate.queues:
                kind = "unroutable"  # the core reports "routed to no queue"
        elif entry is None:
            self.unmatched += 1
            return
        if len(entry.events) >= self.max_events:
            entry.dropped += 1
            return
        self._record(entry, _event(fate, kind))

    def refused(self, message: Message, connection: int, channel: int, reason: str) -> None:
        """A publish the fault injector nacked: recorded, never enqueued."""
        entry = self._start(message, ())
        self._record(entry, FateEvent("refused", connection=connection, channel=channel,
                                      reason=reason))

    def _record(self, entry: _Entry, event: FateEvent) -> None:
        entry.events.append(event)
        if self._tallies:
            for tally in self._tallies:
                tally.recorded(entry, event)

    def _start(self, message: Message, routed_to: tuple[str, ...]) -> _Entry:
        self._count += 1
        entry = _Entry(self._count, message, routed_to)
        entries = self._entries
        entries[id(message)] = entry
        if len(entries) > self.max_messages:
            dropped = entries.pop(next(iter(entries)))
            self.truncated += 1
            for tally in self._tallies:  # its later events are unmatched: no double count
                tally.forget(dropped)
        if self._tallies:
            for tally in self._tallies:
                tally.started(entry)
        return entry

    def tally(self, kind: str | None, *, queue: str | None = None,
              exchange: str | None = None, routing_key: str | None = None) -> Tally:
        """A running count for a waiter (rule 4): what is recorded now is counted once, here;
        from then on the tally is told of every new record and event. Keep it: the recorder
        holds it weakly."""
        tally = Tally(kind, queue=queue, exchange=exchange, routing_key=routing_key)
        for entry in self._entries.values():
            tally.started(entry)
            for event in entry.events:
                tally.recorded(entry, event)
        self._tallies.add(tally)
        return tally

    @property
    def note(self) -> str:
        """``History.note`` without building a snapshot (for waiters' texts)."""
        return _truncation_note(self.truncated, self.max_messages)

    def clear(self) -> None:
        self._entries.clear()
        self._count = 0
        self.truncated = 0
        self.unmatched = 0
        for tally in self._tallies:
            tally.reset()

    def history(
        self, *, exchange: str | None = None, routing_key: str | None = None,
        queue: str | None = None, kind: str | None = None,
    ) -> History:
        records = []
        for entry in self._entries.values():
            message = entry.message
            if exchange is not None and message.exchange != exchange:
                continue
            if routing_key is not None and message.routing_key != routing_key:
                continue
            if queue is not None and queue not in entry.routed_to:
                continue
            if kind is not None and not any(event.kind == kind for event in entry.events):
                continue
            records.append(MessageRecord(
                entry.index, message.exchange, message.routing_key, bytes(message.body),
                message.properties, entry.routed_to, tuple(entry.events), entry.dropped,
            ))
        return History(tuple(records), self.truncated, self.max_messages)
