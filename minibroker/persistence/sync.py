"""The storage writer's loop-thread half: the core's journal into the store, "durable" back.

Rules:

1. :meth:`StorageSync.flush` drains every intent the core recorded (``core/journal.py``),
   hands each to the store in order (``DurableStore``: ``QueueLog.publish/settle/requeue``,
   ``declare``/``delete``), and calls ``store.flush()``: the records reach the page cache in
   the same loop iteration, so a ``kill -9`` keeps them. The server calls it once per loop
   iteration that recorded anything, and before any session writes to its socket, so no
   client ever sees the effect of an ack (or of anything else) that is not written.
2. Numbers: the store numbers its records (seq), the core its intents (count). Each flush
   remembers ``(store.last_seq, journal.count)``; when the store reports "durable up to S"
   (``on_durable``, from its worker thread, handed to the loop by the server),
   :meth:`StorageSync.durable` answers the journal count that is now on disk, for the core's
   ``Synced`` input.
3. Queues are looked up by name as each intent is applied, so a queue deleted and declared
   again in one iteration gets each intent in the right incarnation (the store's
   ``QueueLog`` of a deleted queue is dead and ignores late intents anyway).
4. Consecutive settles (or requeues) of one queue go to the store as one call: an ``ack
   multiple`` or a purge is one record, written as runs.
5. A stream's appends (``STREAM_APPEND``) only number them: its log (``streams.py``) gave
   them to the store's ``StreamStore``, which the store's flush writes under a mark below
   the flush's, so the journal count of the flush covers them.
6. Deadlines: the core's ``expires_at`` is on its monotonic ``now`` scale; the store keeps
   Unix epoch seconds (``wall_time`` converts).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from minibroker.core.exchanges import Exchange
from minibroker.core.journal import (
    BIND,
    DECLARE_EXCHANGE,
    DECLARE_QUEUE,
    DELETE_EXCHANGE,
    DELETE_QUEUE,
    PUBLISH,
    REQUEUE,
    SETTLE,
    STREAM_APPEND,
    UNBIND,
    Journal,
)
from minibroker.core.queues import Queue
from minibroker.storage.definitions import (
    BindingDefinition,
    ExchangeDefinition,
    QueueDefinition,
)
from minibroker.storage.queuelog import QueueLog
from minibroker.storage.store import DurableStore

__all__ = ["VHOST", "StorageSync", "exchange_definition", "queue_definition"]

VHOST = "/"


def queue_definition(queue: Queue) -> QueueDefinition:
    return QueueDefinition(queue.name, VHOST, durable=queue.durable,
                           auto_delete=queue.auto_delete, arguments=dict(queue.arguments),
                           type="stream" if queue.stream is not None else
                           "quorum" if queue.limits.quorum else "classic")


def exchange_definition(exchange: Exchange) -> ExchangeDefinition:
    return ExchangeDefinition(exchange.name, VHOST, type=exchange.type_name,
                              durable=exchange.durable, auto_delete=exchange.auto_delete,
                              internal=exchange.internal, arguments=dict(exchange.arguments))


class StorageSync:
    """One store fed by one core's journal (rules 1-5)."""

    def __init__(self, store: DurableStore, journal: Journal,
                 wall_time: Callable[[float], float]) -> None:
        self.store = store
        self.journal = journal
        self.wall_time = wall_time
        #: (store seq, journal count) of each flush not yet durable (rule 2).
        self._marks: deque[tuple[int, int]] = deque()

    def pending(self) -> bool:
        return bool(self.journal.intents)

    def flush(self) -> None:
        """Rule 1; raises ``StorageFailed`` when the store failed."""
        journal = self.journal
        intents = journal.drain()
        if intents:
            self._apply(intents)
        store = self.store
        store.flush()
        marks = self._marks
        if not marks or marks[-1][1] != journal.count:
            marks.append((store.last_seq, journal.count))

    def durable(self, seq: int) -> int:
        """The journal count on disk once the store is durable up to ``seq`` (rule 2); 0 when
        that releases nothing new."""
        marks = self._marks
        upto = 0
        while marks and marks[0][0] <= seq:
            upto = marks.popleft()[1]
        return upto if upto > self.journal.synced else 0

    # -- applying intents (rules 3-5) ------------------------------------------------------------

    def _apply(self, intents: list[tuple[Any, ...]]) -> None:
        store = self.store
        name: str | None = None
        log: QueueLog | None = None
        run_op = 0
        run: list[Any] = []
        wall_time = self.wall_time
        for intent in intents:
            op = intent[0]
            if op <= REQUEUE:
                if intent[1] != name:
                    if run:
                        _flush_run(log, run_op, run)
                        run = []
                    name = intent[1]
                    log = store.queue(VHOST, intent[1])
                if log is None:
                    continue
                if op == PUBLISH:
                    if run:
                        _flush_run(log, run_op, run)
                        run = []
                    expires_at = intent[4]
                    log.publish(intent[2], intent[3],
                                None if expires_at is None else wall_time(expires_at))
                    continue
                if op != run_op and run:
                    _flush_run(log, run_op, run)
                    run = []
                run_op = op
                if op == SETTLE:
                    run.append(intent[2])
                else:
                    run.append((intent[2], intent[3]))
                continue
            if run:
                _flush_run(log, run_op, run)
                run = []
            name, log = None, None
            if op == STREAM_APPEND:
                continue  # the stream's log holds the messages (``persistence/streams.py``)
            if op == DECLARE_QUEUE:
                store.declare_queue(queue_definition(intent[1]))
            elif op == DELETE_QUEUE:
                store.delete_queue(VHOST, intent[1])
            elif op == DECLARE_EXCHANGE:
                store.declare(exchange_definition(intent[1]))
            elif op == DELETE_EXCHANGE:
                store.delete_exchange(VHOST, intent[1])
            elif op in (BIND, UNBIND):
                _, source, kind, destination, routing_key, arguments = intent
                binding = BindingDefinition(source, destination, kind, routing_key, VHOST,
                                            arguments)
                if op == BIND:
                    store.bind(binding)
                else:
                    store.unbind(binding)
        if run:
            _flush_run(log, run_op, run)


def _flush_run(log: QueueLog | None, op: int, run: list[Any]) -> None:
    if log is None:
        return
    if op == SETTLE:
        log.settle(run)
    else:
        log.requeue(run)
