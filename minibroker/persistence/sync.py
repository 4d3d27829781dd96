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
   them to the store's ``StreamStore``, whose chunks the store's flush writes under a mark
   no higher than the flush's last seq, and hands to group commit with the rest of the flush
   (``streamstore.py`` rule 2), so the journal count of the flush covers them.
6. Deadlines: the core's ``expires_at`` is on its monotonic ``now`` scale; the store keeps
   Unix epoch seconds (``wall_time`` converts).
7. Every vhost's core has a journal of its own (``server/vhosts.py``), and all of them feed
   the one store: :meth:`StorageSync.attach` adds a vhost's journal, each flush drains every
   journal and applies its intents under its vhost's name, and a mark remembers each
   journal's count, so :meth:`StorageSync.durable_all` answers, per journal, the count on
   disk (each core gets its own ``Synced``). The store stays one node-wide log with a vhost
   field in every definition (``docs/storage.md``): one ``fdatasync`` per batch whatever the
   number of vhosts.
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


def queue_definition(queue: Queue, vhost: str = VHOST) -> QueueDefinition:
    return QueueDefinition(queue.name, vhost, durable=queue.durable,
                           auto_delete=queue.auto_delete, arguments=dict(queue.arguments),
                           type="stream" if queue.stream is not None else
                           "quorum" if queue.limits.quorum else "classic")


def exchange_definition(exchange: Exchange, vhost: str = VHOST) -> ExchangeDefinition:
    return ExchangeDefinition(exchange.name, vhost, type=exchange.type_name,
                              durable=exchange.durable, auto_delete=exchange.auto_delete,
                              internal=exchange.internal, arguments=dict(exchange.arguments))


class StorageSync:
    """One store fed by the journals of every vhost's core (rules 1-5, 7)."""

    def __init__(self, store: DurableStore, journal: Journal,
                 wall_time: Callable[[float], float]) -> None:
        self.store = store
        #: The ``/`` core's journal.
        self.journal = journal
        #: vhost -> its core's journal, ``/`` first (rule 7).
        self.journals: dict[str, Journal] = {VHOST: journal}
        self.wall_time = wall_time
        #: (store seq, ((journal, count), ...)) of each flush not yet durable (rule 2).
        self._marks: deque[tuple[int, tuple[tuple[Journal, int], ...]]] = deque()

    def attach(self, vhost: str, journal: Journal) -> None:
        """Rule 7: ``vhost``'s journal is flushed with the others from now on."""
        self.journals[vhost] = journal

    def detach(self, vhost: str) -> None:
        """The vhost is deleted: what its journal still holds is dropped, never written."""
        journal = self.journals.pop(vhost, None)
        if journal is not None:
            journal.drain()

    def pending(self) -> bool:
        """Has any journal intents not yet flushed?"""
        if self.journal.intents:
            return True
        journals = self.journals
        return len(journals) > 1 and any(journal.intents for journal in journals.values())

    def flush(self) -> None:
        """Rule 1; raises ``StorageFailed`` when the store failed."""
        for vhost, journal in self.journals.items():
            intents = journal.drain()
            if intents:
                self._apply(intents, vhost)
        store = self.store
        store.flush()
        counts = tuple((journal, journal.count) for journal in self.journals.values())
        marks = self._marks
        if not marks or marks[-1][1] != counts:
            marks.append((store.last_seq, counts))

    def durable_all(self, seq: int) -> list[tuple[Journal, int]]:
        """Rule 7: each journal whose count on disk moved once the store is durable up to
        ``seq``, with that count."""
        marks = self._marks
        reached: dict[Journal, int] = {}
        while marks and marks[0][0] <= seq:
            for journal, count in marks.popleft()[1]:
                reached[journal] = count
        return [(journal, count) for journal, count in reached.items()
                if count > journal.synced]

    def durable(self, seq: int) -> int:
        """The ``/`` journal's count on disk once the store is durable up to ``seq`` (rule
        2); 0 when that releases nothing new."""
        for journal, count in self.durable_all(seq):
            if journal is self.journal:
                return count
        return 0

    # -- applying intents (rules 3-5) ------------------------------------------------------------

    def _apply(self, intents: list[tuple[Any, ...]], vhost: str = VHOST) -> None:
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
                    log = store.queue(vhost, intent[1])
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
                store.declare_queue(queue_definition(intent[1], vhost))
            elif op == DELETE_QUEUE:
                store.delete_queue(vhost, intent[1])
            elif op == DECLARE_EXCHANGE:
                store.declare(exchange_definition(intent[1], vhost))
            elif op == DELETE_EXCHANGE:
                store.delete_exchange(vhost, intent[1])
            elif op in (BIND, UNBIND):
                _, source, kind, destination, routing_key, arguments = intent
                binding = BindingDefinition(source, destination, kind, routing_key, vhost,
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
