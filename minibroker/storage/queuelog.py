"""A durable queue's handle on the store: publish, settle and requeue by ``msg_id``.

Rules:

1. Every call only records an intent in memory (``messagelog.py``) and returns the sequence
   number of the record that will carry it; the store writes it at its next flush. ``0`` means
   there was nothing to record (an unknown or already settled ``msg_id``, a deleted queue).
2. The handle keeps the queue's index: where each unsettled message's PUBLISH lies and how
   big it is, for the reclaim accounting (``segments.py``). Settling or deleting moves those
   bytes to the segment's garbage.
3. A handle is bound to one incarnation of its queue; once the queue is deleted it is dead
   (``alive`` is false) and ignores everything, so late acks for a dead queue can never touch
   a new queue of the same name.
4. ``msg_id`` s are the queue's own numbers (``Queue.next_msg_id`` in the core); they must
   increase and never be reused within an incarnation (recovery gives ``next_msg_id``).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

from minibroker.message import Message
from minibroker.storage.definitions import QueueDefinition
from minibroker.storage.intents import ENTRY_OVERHEAD, REQUEUE, SETTLE, properties_blob
from minibroker.storage.messagelog import MessageLog

__all__ = ["QueueLog"]

_SIZE_MASK = 0xFFFF_FFFF


class QueueLog:
    """The store's side of one durable queue: what its backing store calls."""

    __slots__ = ("_index", "_log", "_requeued", "_segments", "alive", "definition",
                 "incarnation")

    def __init__(self, definition: QueueDefinition, incarnation: int, log: MessageLog,
                 index: dict[int, int], requeued: dict[int, int]) -> None:
        self.definition = definition
        self.incarnation = incarnation
        self._log = log
        self._segments = log.segments.segments
        #: msg_id -> location (``segment << 32 | size``) of every message not settled.
        self._index = index
        #: msg_id -> delivery count of the requeued ones (folded into compacted copies).
        self._requeued = requeued
        #: False once the queue is deleted: the handle then ignores what it is told.
        self.alive = True

    def publish(self, msg_id: int, message: Message, expires_at: float | None = None) -> int:
        """Store a persistent message; ``expires_at`` is absolute (Unix epoch seconds)."""
        if not self.alive:
            return 0
        blob = properties_blob(message.properties)
        exchange, routing_key, body = message.exchange, message.routing_key, message.body
        size = len(body) + len(blob) + len(routing_key) + len(exchange) + ENTRY_OVERHEAD
        if expires_at is None:
            entry: tuple[Any, ...] = (msg_id, exchange, routing_key, blob, body)
        else:
            entry = (msg_id, exchange, routing_key, blob, body, expires_at)
        log = self._log
        seq = log.publish(self.incarnation, entry, size)
        segment = log.segment
        self._index[msg_id] = segment.number << 32 | size
        segment.live += 1
        segment.live_bytes += size
        ids = segment.publishes.get(self.incarnation)
        if ids is None:
            ids = segment.publishes[self.incarnation] = array("q")
        ids.append(msg_id)
        return seq

    def settle(self, msg_ids: Iterable[int]) -> int:
        """The messages left the queue for good (acked, rejected, expired, purged...)."""
        if not self.alive:
            return 0
        segments = self._segments
        index = self._index
        requeued = self._requeued
        by_segment: dict[int, list[int]] = {}
        for msg_id in msg_ids:
            location = index.pop(msg_id, None)
            if location is None:
                continue
            number = location >> 32
            segment = segments[number]
            size = location & _SIZE_MASK
            segment.live -= 1
            segment.live_bytes -= size
            segment.garbage += size
            if requeued:
                requeued.pop(msg_id, None)
            ids = by_segment.get(number)
            if ids is None:
                by_segment[number] = [msg_id]
            else:
                ids.append(msg_id)
        seq = 0
        for number, ids in by_segment.items():
            seq = self._log.tombstone(SETTLE, self.incarnation, segments[number], ids)
        return seq

    def requeue(self, deliveries: Iterable[tuple[int, int]]) -> int:
        """The messages went back to the queue: ``(msg_id, delivery_count)`` pairs."""
        if not self.alive:
            return 0
        segments = self._segments
        by_segment: dict[int, list[int]] = {}
        for msg_id, count in deliveries:
            location = self._index.get(msg_id)
            if location is None:
                continue
            self._requeued[msg_id] = count
            by_segment.setdefault(location >> 32, []).extend((msg_id, count))
        seq = 0
        for number, items in by_segment.items():
            seq = self._log.tombstone(REQUEUE, self.incarnation, segments[number], items)
        return seq

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        state = "" if self.alive else ", deleted"
        return (f"QueueLog({self.definition.vhost!r}, {self.definition.name!r}, "
                f"incarnation={self.incarnation}{state})")
