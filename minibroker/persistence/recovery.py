"""Recovery into a core: what a ``DurableStore`` recovered, back into a fresh ``Broker``.

Rules:

1. Definitions first, all at once, before the listener opens: durable exchanges, then
   durable queues (each numbering new messages after the last id it ever stored, so an id is
   never reused), then the bindings between them. One that the core refuses (it cannot
   happen with a store this broker wrote; it can with a hand-edited definitions file) is
   reported in a line and skipped, never fatal.
2. Messages after, lazily: :class:`MessageLoader` takes each recovered queue's messages in
   queue order, :data:`CHUNK` at a time, built as they are taken (``storage/recovered.py``),
   and the server runs one chunk per loop iteration while it already serves clients. So the
   first message is served without waiting for the millionth to be built, and messages
   published meanwhile stay behind the recovered ones (``BackingStore.restore``).
3. Every vhost is restored into its own core: :func:`restore_definitions` takes the
   definitions of one vhost (``vhost=``), and :class:`MessageLoader` the messages of every
   vhost whose core it is given.
4. Every recovered message keeps its flags: redelivered after an unclean stop (all) or when
   it had been requeued (a clean stop); its delivery count; its deadline, converted from
   Unix epoch seconds to seconds left at the time of the chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from minibroker.core.broker import Broker
from minibroker.core.effects import Effect
from minibroker.core.queues import Queue
from minibroker.core.restore import RestoredMessage
from minibroker.errors import AMQPError
from minibroker.storage.definitions import Definitions
from minibroker.storage.recovered import RecoveredMessage, RecoveredState

__all__ = ["CHUNK", "MessageLoader", "restore_definitions"]

#: Messages restored per loop iteration: a few milliseconds of work.
CHUNK = 2000


def restore_definitions(broker: Broker, definitions: Definitions, *, now: float,
                        next_msg_ids: dict[str, int] | None = None, vhost: str = "/"
                        ) -> list[str]:
    """Rules 1 and 3: the definitions of ``vhost`` into its core; returns a line for each
    definition the core refused."""
    problems: list[str] = []
    restore = broker.restore
    for exchange in definitions.exchanges:
        if exchange.vhost != vhost:
            continue
        try:
            restore.declare_exchange(exchange.name, exchange.type, durable=exchange.durable,
                                     auto_delete=exchange.auto_delete,
                                     internal=exchange.internal, arguments=exchange.arguments)
        except AMQPError as err:
            problems.append(f"exchange '{exchange.name}' not restored: {err.reply_text}")
    ids = next_msg_ids or {}
    for queue in definitions.queues:
        if queue.vhost != vhost:
            continue
        arguments = dict(queue.arguments)
        if queue.type != "classic" and "x-queue-type" not in arguments:
            arguments["x-queue-type"] = queue.type
        try:
            restore.declare_queue(queue.name, durable=queue.durable,
                                  auto_delete=queue.auto_delete, arguments=arguments,
                                  next_msg_id=ids.get(queue.name, 1), now=now)
        except AMQPError as err:
            problems.append(f"queue '{queue.name}' not restored: {err.reply_text}")
    for binding in definitions.bindings:
        if binding.vhost != vhost:
            continue
        try:
            restore.bind(binding.source, binding.destination_type, binding.destination,
                         binding.routing_key, binding.arguments)
        except AMQPError as err:
            problems.append(f"binding of {binding.destination_type} '{binding.destination}' "
                            f"to exchange '{binding.source}' not restored: {err.reply_text}")
    return problems


class MessageLoader:
    """Rule 2: the recovered messages, a chunk per :meth:`step`."""

    def __init__(self, broker: Broker | Mapping[str, Broker], recovered: RecoveredState,
                 wall_now: Callable[[], float]) -> None:
        #: vhost -> its core (rule 3); a single ``Broker`` is the ``/`` core alone.
        cores = {"/": broker} if isinstance(broker, Broker) else dict(broker)
        self.broker = cores.get("/")
        self.wall_now = wall_now
        self._queues: Iterator[tuple[Broker, Queue, Iterator[RecoveredMessage]]] = iter([
            (core, queue, iter(messages))
            for (vhost, name), messages in recovered.queues.items()
            if len(messages) and (core := cores.get(vhost)) is not None
            and (queue := core.topology.queues.get(name)) is not None
        ])
        self._current: tuple[Broker, Queue, Iterator[RecoveredMessage]] | None = None
        #: (vhost, queue) with messages still to restore.
        self._pending = {(vhost, name) for (vhost, name), messages in recovered.queues.items()
                         if vhost in cores and len(messages)}
        self._vhosts = {id(core): vhost for vhost, core in cores.items()}
        #: Messages restored so far.
        self.restored = 0
        self.done = False

    def loading(self, name: str, vhost: str = "/") -> bool:
        """Has queue ``name`` of ``vhost`` messages still to restore?"""
        return (vhost, name) in self._pending

    def step(self, now: float, chunk: int = CHUNK) -> list[Effect]:
        """Restore up to ``chunk`` messages; the effects (deliveries) to carry out."""
        effects: list[Effect] = []
        left = chunk
        wall = self.wall_now()
        while left > 0:
            if self._current is None:
                self._current = next(self._queues, None)
                if self._current is None:
                    self.done = True
                    self._pending.clear()
                    return effects
            core, queue, messages = self._current
            batch: list[RestoredMessage] = []
            for recovered in messages:
                expires_at = recovered.expires_at
                batch.append((recovered.msg_id, recovered.message,
                              None if expires_at is None else expires_at - wall,
                              recovered.delivery_count, recovered.redelivered))
                if len(batch) >= left:
                    break
            else:
                self._current = None
                self._pending.discard((self._vhosts[id(core)], queue.name))
            if batch:
                effects += core.restore.restore_messages(queue, batch, now)
                left -= len(batch)
                self.restored += len(batch)
        return effects
