"""Introspection: frozen snapshots of the broker's counters and topology.

Rules:

1. Everything returned here is a frozen value, detached from live state: holding a snapshot
   never pins or changes the broker. These feed the test toolkit and the management API.
2. Counting is exact: ``ready`` + ``unacked`` is every message a queue still owns. Each number
   is read from the one place that keeps it (``state.py`` rule 2, ``queues.py`` rule 3).
3. ``QueueStatistics.backing_store`` names the store that keeps the queue's messages: ``"fifo"``
   on the plain path, ``"features"`` while TTL, limits, priorities or dead-lettering need the
   feature path (``stores.py``, ``features.py``), ``"stream"`` for a stream's log, whose
   ``ready`` is the number of messages stored (``streams.py``).
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING

from minibroker.core.exchanges import Binding
from minibroker.message import FieldTable
from minibroker.valueclass import valueclass

if TYPE_CHECKING:
    from minibroker.core.queues import Queue
    from minibroker.core.state import BrokerState

__all__ = [
    "BrokerStatistics", "ChannelInfo", "ConnectionInfo", "ConsumerInfo", "ExchangeInfo",
    "Introspection", "QueueStatistics", "TopologySnapshot",
]


@valueclass(frozen=True)
class QueueStatistics:
    name: str
    durable: bool
    exclusive: bool
    auto_delete: bool
    arguments: FieldTable
    ready: int
    unacked: int
    consumers: int
    published: int
    delivered: int
    acked: int
    redelivered: int
    #: Rule 3.
    backing_store: str = "fifo"


@valueclass(frozen=True)
class ExchangeInfo:
    name: str
    type: str
    durable: bool
    auto_delete: bool
    internal: bool
    arguments: FieldTable
    bindings: int


@valueclass(frozen=True)
class ConsumerInfo:
    queue: str
    consumer_tag: str
    connection: int
    channel: int
    no_ack: bool
    exclusive: bool
    prefetch_count: int
    unacked: int
    arguments: FieldTable


@valueclass(frozen=True)
class ChannelInfo:
    connection: int
    channel: int
    consumers: int
    unacked: int
    prefetch_count: int
    global_prefetch: int
    confirm: bool
    transactional: bool


@valueclass(frozen=True)
class ConnectionInfo:
    connection: int
    user: str
    peer: str
    channels: tuple[ChannelInfo, ...]
    #: The name the client gave this connection ("" when none): AMQP's ``connection_name``
    #: client property, the native hello's client name.
    connection_name: str = ""
    client_properties: FieldTable = field(default_factory=dict)


@valueclass(frozen=True)
class BrokerStatistics:
    connections: int
    channels: int
    exchanges: int
    queues: int
    consumers: int
    messages_ready: int
    messages_unacked: int
    published: int
    delivered: int
    acked: int
    returned: int


@valueclass(frozen=True)
class TopologySnapshot:
    exchanges: tuple[ExchangeInfo, ...]
    queues: tuple[QueueStatistics, ...]
    bindings: tuple[Binding, ...]
    consumers: tuple[ConsumerInfo, ...]
    connections: tuple[ConnectionInfo, ...]


def _queue_statistics(queue: Queue) -> QueueStatistics:
    return QueueStatistics(
        name=queue.name, durable=queue.durable, exclusive=queue.exclusive,
        auto_delete=queue.auto_delete, arguments=dict(queue.arguments), ready=queue.message_count,
        unacked=queue.unacked, consumers=len(queue.consumers), published=queue.published,
        delivered=queue.delivered, acked=queue.acked, redelivered=queue.redelivered,
        backing_store=(
            "stream" if queue.stream is not None else
            "fifo" if queue.features is None else "features"
        ),
    )


class Introspection:
    """The read-only view of a broker's state (``Broker.statistics()`` and friends)."""

    def __init__(self, state: BrokerState) -> None:
        self.state = state
        self.topology = state.topology
        self.connections = state.connections

    def statistics(self) -> BrokerStatistics:
        state = self.state
        queues = self.topology.queues.values()
        return BrokerStatistics(
            connections=len(self.connections),
            channels=sum(len(conn.channels) for conn in self.connections.values()),
            exchanges=len(self.topology.exchanges),
            queues=len(self.topology.queues),
            consumers=sum(len(queue.consumers) for queue in queues),
            messages_ready=sum(queue.message_count for queue in queues),
            messages_unacked=sum(queue.unacked for queue in queues),
            published=state.published, delivered=state.delivered, acked=state.acked,
            returned=state.returned,
        )

    def queue_statistics(self, name: str) -> QueueStatistics:
        """Raises ``NotFound`` for a missing queue."""
        return _queue_statistics(self.topology.queue(name))

    def exchange_info(self, name: str) -> ExchangeInfo:
        exchange = self.topology.exchange(name)
        return ExchangeInfo(
            name=exchange.name, type=exchange.type_name, durable=exchange.durable,
            auto_delete=exchange.auto_delete, internal=exchange.internal,
            arguments=dict(exchange.arguments), bindings=exchange.binding_count,
        )

    def snapshot(self) -> TopologySnapshot:
        consumers = [
            ConsumerInfo(
                queue=consumer.queue.name, consumer_tag=consumer.consumer_tag,
                connection=conn.id, channel=channel.number, no_ack=consumer.no_ack,
                exclusive=consumer.exclusive, prefetch_count=consumer.prefetch_count,
                unacked=consumer.unacked, arguments=dict(consumer.arguments),
            )
            for conn in self.connections.values()
            for channel in conn.channels.values()
            for consumer in channel.consumers.values()
        ]
        connections = tuple(
            ConnectionInfo(
                connection=conn.id, user=conn.user, peer=conn.peer,
                connection_name=conn.connection_name,
                client_properties=dict(conn.client_properties),
                channels=tuple(
                    ChannelInfo(
                        connection=conn.id, channel=channel.number,
                        consumers=len(channel.consumers), unacked=len(channel.unacked),
                        prefetch_count=channel.prefetch_count,
                        global_prefetch=channel.global_prefetch, confirm=channel.confirm,
                        transactional=channel.tx is not None,
                    )
                    for channel in conn.channels.values()
                ),
            )
            for conn in self.connections.values()
        )
        return TopologySnapshot(
            exchanges=tuple(self.exchange_info(name) for name in self.topology.exchanges),
            queues=tuple(_queue_statistics(queue) for queue in self.topology.queues.values()),
            bindings=tuple(self.topology.bindings()),
            consumers=tuple(consumers),
            connections=connections,
        )
