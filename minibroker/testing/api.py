"""What a test can ask of a test broker: inspection, faults, reset and the waiting conditions.

Rules:

1. One implementation for both handles: every method builds a function and hands it to
   ``self._call``, which runs it on the broker's loop (directly for the asyncio handle, marshalled
   with ``call_soon_threadsafe`` for the thread handle). Results are frozen snapshots, never live
   core objects, so reading them from another thread is safe.
2. Waiting conditions (``*_condition``) return ``(check, description)``; a handle's ``wait_for``
   runs ``check`` on the loop after every input (see ``controller.py``). ``check`` returns
   ``(done, what it saw)`` so a timeout can say both.
3. Names follow AMQP: ``queue``, ``exchange``, ``routing_key``, ``consumer_tag``, ``reply_code``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from minibroker.core.exchanges import Binding
from minibroker.core.statistics import (
    BrokerStatistics,
    ConnectionInfo,
    ConsumerInfo,
    ExchangeInfo,
    QueueStatistics,
)
from minibroker.message import Properties
from minibroker.testing.controller import Check, Controller
from minibroker.testing.history import History

__all__ = ["BrokerAPI", "Condition", "QueuedMessage"]

_T = TypeVar("_T")

Condition = tuple[Check, str]


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message waiting in a queue (ready), read without consuming it."""

    msg_id: int
    exchange: str
    routing_key: str
    body: bytes
    properties: Properties
    redelivered: bool


class BrokerAPI:
    """The inspection, fault and condition API shared by both handles (rule 1)."""

    _controller: Controller

    @abstractmethod
    def _call(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the broker's loop and return its result."""

    # -- addresses ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._controller.config.host

    @property
    def port(self) -> int:
        return self._controller.config.port

    @property
    def url(self) -> str:
        """The native protocol's URL (``minibroker://host:port``)."""
        return f"minibroker://{self.host}:{self.port}"

    @property
    def amqp_url(self) -> str:
        config = self._controller.config
        return f"amqp://guest:guest@{config.host}:{config.amqp_port or config.port}/"

    @property
    def internal_errors(self) -> int:
        """Internal errors the broker logged so far (the pytest plugin fails a test on any)."""
        return self._controller.internal_errors

    # -- inspection -----------------------------------------------------------------------------

    def statistics(self) -> BrokerStatistics:
        return self._call(lambda: self._controller.broker.statistics())

    def exchanges(self) -> tuple[ExchangeInfo, ...]:
        return self._call(lambda: self._controller.broker.snapshot().exchanges)

    def queues(self) -> tuple[QueueStatistics, ...]:
        """Every queue, with its ``ready`` and ``unacked`` counts."""
        return self._call(lambda: self._controller.broker.snapshot().queues)

    def queue(self, name: str) -> QueueStatistics:
        """One queue's counters; ``KeyError`` if there is no such queue."""
        found = self._call(lambda: _find_queue(self._controller, name))
        if found is None:
            raise KeyError(f"no queue {name!r}")
        return found

    def has_queue(self, name: str) -> bool:
        return self._call(lambda: name in self._controller.broker.topology.queues)

    def bindings(self) -> tuple[Binding, ...]:
        return self._call(lambda: self._controller.broker.snapshot().bindings)

    def consumers(self, queue: str | None = None) -> tuple[ConsumerInfo, ...]:
        every = self._call(lambda: self._controller.broker.snapshot().consumers)
        return tuple(info for info in every if queue is None or info.queue == queue)

    def connections(self) -> tuple[ConnectionInfo, ...]:
        return self._call(lambda: self._controller.broker.snapshot().connections)

    def messages(self, queue: str) -> tuple[QueuedMessage, ...]:
        """The ready messages of ``queue``, head first, without consuming them."""
        found = self._call(lambda: _ready_messages(self._controller, queue))
        if found is None:
            raise KeyError(f"no queue {queue!r}")
        return found

    def history(
        self, *, exchange: str | None = None, routing_key: str | None = None,
        queue: str | None = None, kind: str | None = None,
    ) -> History:
        """Every published message and its fate, oldest first (bounded: see ``History.note``).
        ``queue`` keeps the messages routed to it; ``kind`` those with such an event."""
        return self._call(lambda: self._controller.recorder.history(
            exchange=exchange, routing_key=routing_key, queue=queue, kind=kind,
        ))

    # -- faults ---------------------------------------------------------------------------------

    def close_connection(
        self, connection: int | None = None, *, reply_code: int = 320,
        reply_text: str = "CONNECTION_FORCED - closed by the test",
    ) -> int:
        """Close one client connection (by id, see :meth:`connections`), or all of them, with
        the protocol's connection-close. Returns how many were closed."""
        return self._call(lambda: self._controller.close_connections(
            connection, reply_code, reply_text))

    def close_channel(
        self, channel: int, *, connection: int | None = None, reply_code: int = 406,
        reply_text: str = "PRECONDITION_FAILED - closed by the test",
    ) -> int:
        """Close ``channel`` (on ``connection``, or on every connection that has it open) with
        the protocol's channel-close; its unacked messages are requeued. Returns the count."""
        return self._call(lambda: self._controller.close_channels(
            connection, channel, reply_code, reply_text))

    def cancel_consumer(self, consumer_tag: str, *, queue: str | None = None) -> int:
        """Cancel consumers from the broker side (the client gets ``basic.cancel`` when it
        announced ``consumer_cancel_notify``; native clients always). Returns the count."""
        return self._call(lambda: self._controller.cancel_consumers(consumer_tag, queue))

    def nack_publishes(self, count: int = 1, *, queue: str | None = None,
                       exchange: str | None = None) -> None:
        """Refuse the next ``count`` publishes routed to ``queue`` / sent to ``exchange``: not
        enqueued; ``basic.nack`` to a publisher in confirm mode (see ``faults.py``)."""
        self._call(lambda: self._controller.faults.nack_publishes(
            count, queue=queue, exchange=exchange))

    def delay_reply(self, method: str, seconds: float, *, count: int = 1) -> None:
        """Send the reply to the next ``count`` ``method`` commands (e.g. "queue.declare")
        ``seconds`` later on the broker's clock."""
        self._call(lambda: self._controller.faults.fault_reply(method, count, seconds))

    def drop_reply(self, method: str, *, count: int = 1) -> None:
        """Never send the reply to the next ``count`` ``method`` commands (they still run)."""
        self._call(lambda: self._controller.faults.fault_reply(method, count, None))

    def block_publishers(self, reason: str = "low on memory") -> int:
        """``connection.blocked`` to AMQP clients with the capability; publishing connections
        stop being read. Returns how many connections were notified."""
        return self._call(lambda: self._controller.faults.block(reason))

    def unblock_publishers(self) -> int:
        return self._call(lambda: self._controller.faults.unblock())

    @property
    def refused_publishes(self) -> int:
        """Publishes refused by :meth:`nack_publishes` so far."""
        return self._call(lambda: self._controller.faults.refused)

    def reset(self) -> None:
        """Back to a fresh broker: clients get 320, topology, messages, history and faults go."""
        self._call(self._controller.reset)

    # -- conditions for wait_for ----------------------------------------------------------------

    def queue_condition(
        self, queue: str, *, ready: int | None = None, unacked: int | None = None,
        consumers: int | None = None,
    ) -> Condition:
        wanted = {key: value for key, value in
                  (("ready", ready), ("unacked", unacked), ("consumers", consumers))
                  if value is not None}
        if not wanted:
            wanted = {"ready": 1}
        controller = self._controller

        def check() -> tuple[bool, str]:
            stats = _find_queue(controller, queue)
            if stats is None:
                return False, f"no queue {queue!r}"
            seen = {key: getattr(stats, key) for key in wanted}
            text = " ".join(f"{key}={value}" for key, value in seen.items())
            return seen == wanted, f"queue {queue!r} with {text}"

        text = " ".join(f"{key}={value}" for key, value in wanted.items())
        return check, f"queue {queue!r} to have {text}"

    def fate_condition(
        self, kind: str, count: int = 1, *, queue: str | None = None,
        exchange: str | None = None, routing_key: str | None = None,
    ) -> Condition:
        controller = self._controller
        where = "".join(f" {name}={value!r}" for name, value in
                        (("queue", queue), ("exchange", exchange), ("routing_key", routing_key))
                        if value is not None)

        def check() -> tuple[bool, str]:
            seen = controller.recorder.count(kind, queue=queue, exchange=exchange,
                                             routing_key=routing_key)
            note = controller.recorder.history().note
            return seen >= count, f"{seen} {kind}{where}" + (f" ({note})" if note else "")

        return check, f"{count} message(s) {kind}{where}"

    def consumer_condition(self, queue: str, count: int = 1) -> Condition:
        controller = self._controller

        def check() -> tuple[bool, str]:
            stats = _find_queue(controller, queue)
            seen = 0 if stats is None else stats.consumers
            return seen >= count, f"{seen} consumer(s) on queue {queue!r}"

        return check, f"{count} consumer(s) on queue {queue!r}"

    def connections_condition(self, count: int) -> Condition:
        controller = self._controller

        def check() -> tuple[bool, str]:
            seen = len(controller.broker.connections)
            return seen == count, f"{seen} connection(s)"

        return check, f"{count} open connection(s)"

    def idle_condition(self) -> Condition:
        """Idle: nothing unacked anywhere, nothing ready in a queue that has consumers."""
        controller = self._controller

        def check() -> tuple[bool, str]:
            busy = [f"{stats.name!r} ready={stats.ready} unacked={stats.unacked}"
                    for stats in controller.broker.snapshot().queues
                    if stats.unacked or (stats.ready and stats.consumers)]
            return not busy, ("busy queues: " + ", ".join(busy)) if busy else "idle"

        return check, "the broker to be idle"


def _find_queue(controller: Controller, name: str) -> QueueStatistics | None:
    broker = controller.broker
    if name not in broker.topology.queues:
        return None
    return broker.queue_statistics(name)


def _ready_messages(controller: Controller, name: str) -> tuple[QueuedMessage, ...] | None:
    queue = controller.broker.topology.queues.get(name)
    if queue is None:
        return None
    return tuple(
        QueuedMessage(entry.msg_id, entry.message.exchange, entry.message.routing_key,
                      bytes(entry.message.body), entry.message.properties, entry.redelivered)
        for entry in queue.ready
    )
