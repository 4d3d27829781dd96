"""Restoration: durable objects and recovered messages back into a core. No I/O.

Rules:

1. The shell recreates what its store recovered, or what a definitions file names:
   definitions first (:meth:`Restoration.declare_exchange`, :meth:`~Restoration.declare_queue`,
   :meth:`~Restoration.bind`), then the messages, queue by queue, in chunks
   (:meth:`~Restoration.restore_messages`) between loop iterations while the broker already
   serves clients.
2. Definitions pass the topology's own checks (names, types, arguments, equivalence with
   what exists); a refused one raises its ``AMQPError`` and changes nothing, so the caller
   can report it and go on. With a journal they are recorded like any declaration: the store
   ignores what it holds already, and a definitions file loaded at start is so stored.
3. Messages are on disk already: nothing is recorded for them. Each keeps its ``msg_id``,
   delivery count and redelivered flag, and its deadline (``ttl``: seconds left, put on the
   ``now`` scale here); the queue numbers new messages from ``next_msg_id`` on, so an id is
   never reused.
4. After each chunk the queue dispatches to consumers that arrived meanwhile and applies its
   features (a message whose deadline passed while the broker was down expires now, and is
   dead-lettered if the queue says so).
"""

from __future__ import annotations

from collections.abc import Iterable

from minibroker.core import commands as c
from minibroker.core.arguments import queue_limits
from minibroker.core.effects import Effect
from minibroker.core.exchanges import Destination, DestinationKind
from minibroker.core.features import FeatureStore
from minibroker.core.lifecycle import QueueLifecycle
from minibroker.core.queues import Queue
from minibroker.core.state import BrokerState
from minibroker.core.stores import QueueEntry, TimedEntry
from minibroker.core.streamargs import is_stream
from minibroker.message import FieldTable, Message

__all__ = ["Restoration", "RestoredMessage"]

#: ``(msg_id, message, ttl, delivery_count, redelivered)``: ``ttl`` in seconds from now, or
#: ``None`` for a message that never expires.
RestoredMessage = tuple[int, Message, float | None, int, bool]


class Restoration:
    """Rule 1's entry points (``Broker.restore``)."""

    def __init__(self, state: BrokerState, lifecycle: QueueLifecycle) -> None:
        self.state = state
        self.topology = state.topology
        self.lifecycle = lifecycle

    def declare_exchange(self, name: str, type_name: str, *, durable: bool = True,
                         auto_delete: bool = False, internal: bool = False,
                         arguments: FieldTable | None = None) -> None:
        self.topology.declare_exchange(
            name, type_name, passive=False, durable=durable, auto_delete=auto_delete,
            internal=internal, arguments=dict(arguments or {}),
        )

    def declare_queue(self, name: str, *, durable: bool = True, auto_delete: bool = False,
                      arguments: FieldTable | None = None, next_msg_id: int = 1,
                      now: float = 0.0) -> Queue:
        arguments = dict(arguments or {})
        existing = self.topology.queues.get(name)
        if existing is not None:
            self.topology.check_queue_equivalent(
                existing, durable=durable, auto_delete=auto_delete, arguments=arguments)
            queue = existing
        elif is_stream(arguments):  # its messages are its log's: none to restore here
            return self.lifecycle.streams.create(c.DeclareQueue(
                0, 0, name, durable=durable, auto_delete=auto_delete, arguments=arguments),
                name, now)
        else:
            limits = queue_limits(name, arguments, durable=durable, exclusive=False,
                                  auto_delete=auto_delete, profile=self.state.profile)
            queue = self.lifecycle.create_queue(
                name, durable=durable, exclusive_owner=None, auto_delete=auto_delete,
                arguments=arguments, limits=limits, now=now)
        if next_msg_id > queue.next_msg_id:
            queue.store.number_all()  # bare messages' ids follow ``next_msg_id`` (stores.py)
            queue.next_msg_id = next_msg_id
        return queue

    def bind(self, source: str, destination_kind: str, destination: str, routing_key: str,
             arguments: FieldTable | None = None) -> None:
        kind = DestinationKind.QUEUE if destination_kind == "queue" else DestinationKind.EXCHANGE
        if kind is DestinationKind.QUEUE:
            self.topology.queue(destination)  # 404 names the missing queue
        self.topology.bind(source, Destination(kind, destination), routing_key,
                           dict(arguments or {}))

    def restore_messages(self, queue: Queue, messages: Iterable[RestoredMessage],
                         now: float) -> list[Effect]:
        """One chunk of a queue's recovered messages, in ``msg_id`` order (rules 3-4)."""
        effects: list[Effect] = []
        if queue.deleted:
            return effects
        entries: list[QueueEntry] = []
        timed = False
        for msg_id, message, ttl, delivery_count, redelivered in messages:
            if ttl is None:
                entry = QueueEntry(msg_id, message)
            else:
                entry = TimedEntry(msg_id, message, now + ttl)
                timed = True
            entry.delivery_count = delivery_count
            entry.redelivered = redelivered
            entries.append(entry)
        if not entries:
            return effects
        if timed and queue.features is None:  # as a plain queue does for an expiring message
            store = queue.store
            queue.use_store(FeatureStore(queue, store.meter, queue.limits, store.ready,
                                         store.weight))
        queue.restore(entries)
        self.lifecycle.dispatch(queue, now, effects)
        return effects
