"""The broker's state and the internal operations every command handler shares. No I/O.

Rules:

1. :class:`BrokerState` holds everything the broker knows: the topology (exchanges, queues,
   bindings), the connections with their channels, the counters and the optional fate observer.
   Command handlers live in subclasses (``declarations.py``, ``broker.py``); what more than one
   of them needs — lookups that raise the right error, dispatch, settlement, queue removal —
   lives here, once.
2. Lookups raise before anything changes: a handler that got past its lookups cannot leave the
   state half-changed because of a missing name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from minibroker.core import delivery
from minibroker.core.channels import Channel, ChannelAddress, ConnectionState, Unacked
from minibroker.core.effects import ConsumerCancelled, Deliver, Effect
from minibroker.core.fates import Fate, Observer
from minibroker.core.flow import ReadyMeter
from minibroker.core.queues import Queue
from minibroker.core.topology import Topology, queue_text
from minibroker.errors import ChannelStateError, NotFound, ResourceLocked

__all__ = ["BrokerState", "SequentialNames"]


class SequentialNames:
    """Deterministic name maker (the default; the server injects a random one).

    Names look like RabbitMQ's: the prefix and 22 URL-safe characters."""

    def __init__(self) -> None:
        self._count = 0

    def __call__(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count:022d}"


class BrokerState:
    """The state of one virtual host and the operations shared by the command handlers."""

    def __init__(self, *, make_name: Callable[[str], str] | None = None) -> None:
        self.topology = Topology()
        self.connections: dict[int, ConnectionState] = {}
        self.make_name: Callable[[str], str] = make_name or SequentialNames()
        self.published = 0
        self.delivered = 0
        self.acked = 0
        self.returned = 0
        #: Told the fate of every message when set (``fates.py``); ``None`` costs nothing.
        self.observer: Observer | None = None
        #: What the ready messages weigh (``flow.py``): the shell's flow control reads it.
        self.meter = ReadyMeter()
        #: ``now`` of the command (or timeout) being handled: the timers and TTLs of queue
        #: features read it where no ``now`` is passed down.
        self.now = 0.0
        #: Direct reply-to: token -> the channel whose reply consumer it names (``replyto.py``).
        self.reply_channels: dict[str, Channel] = {}

    def _connection(self, connection_id: int) -> ConnectionState:
        connection = self.connections.get(connection_id)
        if connection is None:
            raise ChannelStateError(f"connection {connection_id} is not open")
        return connection

    def _channel(self, command: ChannelAddress) -> Channel:
        connection = self.connections.get(command.connection)
        if connection is None:
            raise ChannelStateError(f"connection {command.connection} is not open")
        channel = connection.channels.get(command.channel)
        if channel is None:
            raise ChannelStateError(f"expected 'channel.open' on channel {command.channel}")
        return channel

    def _queue_name(self, channel: Channel, name: str) -> str:
        # AMQP 0-9-1 queue.bind etc.: "If the queue name is empty, the server uses the last
        # queue declared on the channel."
        if name:
            return name
        if channel.last_queue is None:
            raise NotFound("no previously declared queue")
        return channel.last_queue

    @staticmethod
    def _check_exclusive(connection: ConnectionState, queue: Queue) -> None:
        if queue.exclusive_owner is not None and queue.exclusive_owner != connection.id:
            raise ResourceLocked(
                f"cannot obtain exclusive access to locked {queue_text(queue.name)}. It could be "
                "originally declared on another connection or the exclusive property value does "
                "not match that of the original declaration."
            )

    def _usable_queue(self, channel: Channel, name: str) -> Queue:
        queue = self.topology.queue(self._queue_name(channel, name))
        self._check_exclusive(channel.connection, queue)
        return queue

    def _remove_queue(self, queue: Queue, effects: list[Effect]) -> int:
        """Delete ``queue``, telling each of its consumers (RabbitMQ's consumer cancel notify)."""
        for consumer in queue.consumers:
            channel = consumer.channel
            del channel.consumers[consumer.consumer_tag]
            effects.append(
                ConsumerCancelled(channel.connection.id, channel.number, consumer.consumer_tag)
            )
        queue.consumers.clear()
        if queue.exclusive_owner is not None:
            owner = self.connections.get(queue.exclusive_owner)
            if owner is not None:
                owner.exclusive_queues.discard(queue.name)
        self._observe_ready(queue, "deleted")
        return self.topology.remove_queue(queue)

    def _observe_ready(self, queue: Queue, kind: str) -> None:
        """Report every ready message of ``queue`` as ``kind`` (before it is dropped)."""
        if self.observer is not None:
            for entry in queue.ready:
                self.observer(Fate(kind, entry.message, queue=queue.name))

    def _dispatch(self, queue: Queue, effects: list[Effect]) -> None:
        if queue.features is not None:
            self._dispatch_special(queue, effects)
            return
        if self.observer is None:
            self.delivered += delivery.dispatch(queue, self.now, effects)
            return
        start = len(effects)
        self.delivered += delivery.dispatch(queue, self.now, effects)
        self._observe_deliveries(queue, effects, start)

    def _dispatch_special(self, queue: Queue, effects: list[Effect]) -> None:
        """Dispatch for a queue with features (implemented by ``lifecycle.QueueLifecycle``)."""
        raise NotImplementedError

    def _observe_deliveries(self, queue: Queue, effects: list[Effect], start: int) -> None:
        assert self.observer is not None
        for effect in effects[start:]:
            if isinstance(effect, Deliver):
                self.observer(Fate(
                    "delivered", effect.message, queue=queue.name, connection=effect.connection,
                    channel=effect.channel, consumer_tag=effect.consumer_tag,
                    delivery_tag=effect.delivery_tag, redelivered=effect.redelivered,
                    no_ack=effect.delivery_tag not in self._deliveries_of(effect),
                ))

    def _deliveries_of(self, effect: Deliver) -> dict[int, Unacked]:
        return self.connections[effect.connection].channels[effect.channel].unacked

    def _dispatch_all(self, queues: Iterable[Queue], effects: list[Effect]) -> None:
        for queue in queues:
            if queue.deleted:
                continue
            if queue.features is not None:
                # Requeues and rejections change a queue with features even without
                # consumers (TTL head, dead-lettering, delivery limits).
                self._dispatch_special(queue, effects)
            elif queue.consumers:
                self._dispatch(queue, effects)

    def _apply_settlements(
        self, channel: Channel, settled: list[Unacked], action: str, effects: list[Effect],
        verb: str = "",
    ) -> None:
        if self.observer is not None:
            self._observe_settled(channel, settled, action, verb)
        touched, acked = delivery.settle(channel, settled, action)
        self.acked += acked
        self._dispatch_all(touched, effects)

    def _observe_settled(
        self, channel: Channel, settled: list[Unacked], action: str, verb: str
    ) -> None:
        assert self.observer is not None
        kind = verb or {delivery.ACK: "acked", delivery.REQUEUE: "requeued"}.get(action, "rejected")
        for unacked in settled:
            self.observer(Fate(
                kind, unacked.entry.message, queue=unacked.queue.name,
                connection=channel.connection.id, channel=channel.number,
                requeue=action == delivery.REQUEUE,
            ))
