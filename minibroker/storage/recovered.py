"""What recovery hands the broker: the recovered queues, their messages, and the report.

Rules:

1. A :class:`RecoveredQueue` keeps its messages as they were read (the PUBLISH entries of
   ``intents.py``) and builds each :class:`RecoveredMessage` only when it is taken, in queue
   (``msg_id``) order. A broker can so accept connections and serve the head of a queue
   before the millionth message is built; building them all costs about a microsecond each.
2. A recovered message is redelivered after an unclean stop, or if it was requeued before
   (``delivery_count`` > 0 is then its recorded count: a quorum queue's ``x-delivery-count``).
3. Identical properties are one shared object, and so are equal exchange names and routing
   keys (``intents.PropertiesCache``).
4. Properties that do not decode (the record passed its CRC, so only a bug can cause it) drop
   their message when it is built, counted in the report's ``dropped``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import field
from typing import Any

from minibroker.errors import ProtocolError
from minibroker.message import Message
from minibroker.protocols.building import frozen_builder
from minibroker.storage.definitions import Definitions, QueueDefinition
from minibroker.storage.intents import PropertiesCache
from minibroker.storage.records import Damage
from minibroker.valueclass import valueclass

__all__ = ["RecoveredMessage", "RecoveredQueue", "RecoveredState", "RecoveryReport"]

_build_message = frozen_builder(Message)


class RecoveredMessage:
    """One message of a recovered queue."""

    __slots__ = ("delivery_count", "expires_at", "message", "msg_id", "redelivered")

    def __init__(self, msg_id: int, message: Message, expires_at: float | None,
                 delivery_count: int, redelivered: bool) -> None:
        self.msg_id = msg_id
        self.message = message
        #: The absolute deadline (seconds since the Unix epoch) of a message with a TTL.
        self.expires_at = expires_at
        #: Deliveries recorded before (by requeues): a quorum queue's ``x-delivery-count``.
        self.delivery_count = delivery_count
        self.redelivered = redelivered

    def __repr__(self) -> str:
        return f"RecoveredMessage({self.msg_id}, redelivered={self.redelivered})"


class RecoveredQueue:
    """A durable queue as recovery found it (rule 1)."""

    __slots__ = ("_cache", "_clean", "_entries", "_messages", "_report", "_requeued",
                 "_strings", "definition", "incarnation", "next_msg_id")

    def __init__(self, definition: QueueDefinition, incarnation: int, entries: list[Any],
                 next_msg_id: int, requeued: dict[int, int], *, clean: bool,
                 cache: PropertiesCache, strings: dict[str, str], report: RecoveryReport
                 ) -> None:
        self.definition = definition
        #: The store's number for this queue (``deflog.py`` rule 3).
        self.incarnation = incarnation
        #: The next ``msg_id`` to give: above every id this queue ever stored.
        self.next_msg_id = next_msg_id
        self._entries = entries
        self._requeued = requeued
        self._clean = clean
        self._cache = cache
        self._strings = strings
        self._report = report
        self._messages: list[RecoveredMessage] | None = None

    def __len__(self) -> int:
        """The messages not taken yet."""
        return len(self._messages) if self._messages is not None else len(self._entries)

    def __iter__(self) -> Iterator[RecoveredMessage]:
        """Take the messages in queue order, each built as it is taken (rule 1). Taking is
        once only: each entry is let go as its message is built, so that memory is reused
        for the message rather than held twice."""
        if self._messages is not None:
            yield from self._messages
            return
        entries = self._entries
        self._entries = []
        cache, strings, requeued, clean = self._cache, self._strings, self._requeued, self._clean
        for index, entry in enumerate(entries):
            entries[index] = None
            msg_id = entry[0]
            exchange = strings.setdefault(entry[1], entry[1])
            routing_key = strings.setdefault(entry[2], entry[2])
            try:
                properties = cache.get(entry[3])
            except ProtocolError as exc:  # the record passed its CRC: a bug, never silent
                self._report.dropped[f"messages with unreadable properties ({exc.text})"] += 1
                continue
            message = _build_message(exchange, routing_key, entry[4], properties)
            count = requeued.get(msg_id)
            if count is None and len(entry) > 6:
                count = entry[6]  # folded in by a compaction
            yield RecoveredMessage(msg_id, message, entry[5] if len(entry) > 5 else None,
                                   count or 0, count is not None or not clean)

    @property
    def messages(self) -> list[RecoveredMessage]:
        """All the messages, built at once and kept (for inspection and tests)."""
        if self._messages is None:
            self._messages = list(self)
        return self._messages

    def __repr__(self) -> str:
        return (f"RecoveredQueue({self.definition.vhost!r}, {self.definition.name!r}, "
                f"{len(self)} messages)")


@valueclass()
class RecoveryReport:
    """What recovery found: the numbers the broker logs at start."""

    clean: bool
    files: int = 0
    records: int = 0
    messages: int = 0
    queues: int = 0
    #: reason -> count, e.g. "messages of deleted queues".
    dropped: Counter[str] = field(default_factory=Counter)
    #: (file name, damage) for every damaged stretch found (never silent).
    damage: list[tuple[str, Damage]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines for the start-up log."""
        shutdown = "clean" if self.clean else "unclean (every message is redelivered)"
        lines = [f"recovered {self.messages} messages in {self.queues} durable queues from "
                 f"{self.files} files ({self.records} records); last shutdown {shutdown}"]
        lines += [f"dropped {count} {reason}" for reason, count in sorted(self.dropped.items())]
        for name, damage in self.damage:
            where = "torn tail" if damage.tail else "damaged record"
            action = "truncated" if damage.tail else "skipped"
            lines.append(f"{where} in {name} at offset {damage.offset}: {damage.reason}; "
                         f"{action} {damage.length} bytes")
        return lines + self.notes


@valueclass()
class RecoveredState:
    definitions: Definitions
    #: (vhost, queue name) -> its messages, for every durable queue.
    queues: dict[tuple[str, str], RecoveredQueue]
    report: RecoveryReport
    last_seq: int
