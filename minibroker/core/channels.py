"""Connections, channels and consumers as the core tracks them.

The names say whose they are: :class:`ConnectionState`, :class:`BrokerChannel` and
:class:`BrokerConsumer` are the broker's records, not the client library's ``Connection``,
``Channel`` and ``Consumer`` (``minibroker/client/``), which are the other end of the wire.

Rules:

1. A channel owns its delivery tags: they start at 1 and increase by one per delivery or get-ok
   on that channel, shared by ``basic.deliver`` and ``basic.get-ok`` (RabbitMQ: "delivery tags
   are scoped per channel").
2. A channel owns its unacknowledged deliveries, in delivery-tag order (a ``dict`` keeps
   insertion order, and tags are inserted increasing), so ``multiple`` acks walk a prefix.
3. Prefetch follows RabbitMQ, not the letter of AMQP: ``basic.qos(global=False)`` sets the limit
   for each consumer created *afterwards* on the channel; ``global=True`` limits the channel as a
   whole. A consumer may take a delivery only when neither limit is reached. No-ack consumers
   ignore both (their deliveries are acknowledged on sending).
4. A connection owns its channels and its exclusive queues; it can be made unwritable by the
   shell (socket buffer full), which stops deliveries to all its consumers.
5. A consumer without a window (no-ack, or no prefetch limit at all) could take a whole backlog
   in one input, before the socket has a chance to push back. So a connection may receive at
   most :data:`DELIVERY_BURST` body bytes to such consumers until the shell reports a flush
   (``SetWritable(True)``): the broker never buffers more than a window, or one burst, beyond
   the socket's high-water mark.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Literal, Protocol

from minibroker.core.effects import Confirm
from minibroker.message import FieldTable, Message
from minibroker.valueclass import valueclass

if TYPE_CHECKING:
    from minibroker.core.consumers import Turn
    from minibroker.core.queues import Queue
    from minibroker.core.stores import QueueEntry

#: Body bytes a connection may receive for window-less consumers between two flushes (rule 5):
#: twice asyncio's default write high-water mark.
DELIVERY_BURST = 128 * 1024

__all__ = [
    "DELIVERY_BURST", "BrokerChannel", "BrokerConsumer", "ChannelAddress", "ConnectionState",
    "Settlement", "TxBuffer", "TxPublish", "Unacked",
]

_NEVER = float("inf")

#: What happens to a settled delivery: acknowledged, back to its queue, or rejected for good.
Settlement = Literal["ack", "requeue", "discard"]


class ChannelAddress(Protocol):
    """What every channel command has: the connection and channel it came from."""

    @property
    def connection(self) -> int: ...

    @property
    def channel(self) -> int: ...


class BrokerConsumer:
    """A consumer as the broker keeps it: a subscription of one channel to one queue."""

    __slots__ = (
        "arguments", "channel", "consumer_tag", "exclusive", "no_ack", "number",
        "prefetch_count", "priority", "queue", "turn", "unacked",
    )

    def __init__(
        self,
        channel: BrokerChannel,
        queue: Queue,
        consumer_tag: str,
        *,
        no_ack: bool,
        exclusive: bool,
        prefetch_count: int,
        arguments: FieldTable,
        priority: int = 0,
    ) -> None:
        self.channel = channel
        self.queue = queue
        self.consumer_tag = consumer_tag
        self.no_ack = no_ack
        self.exclusive = exclusive
        #: Per-consumer limit fixed at subscription time (0 = unlimited).
        self.prefetch_count = prefetch_count
        self.arguments = arguments
        #: The ``x-priority`` consumer argument (``consumers.py``).
        self.priority = priority
        #: Deliveries to this consumer not yet acknowledged.
        self.unacked = 0
        #: Its subscription number in its queue's ring and its place in the ring's heap, or
        #: ``None`` while parked without credit (``consumers.py`` rule 4).
        self.number = 0
        self.turn: Turn | None = None

    def has_credit(self) -> bool:
        """May this consumer take one more delivery now?"""
        channel = self.channel
        connection = channel.connection
        if not connection.writable:
            return False
        if self.no_ack:
            return connection.burst < DELIVERY_BURST
        if self.prefetch_count:
            if self.unacked >= self.prefetch_count:
                return False
        elif not channel.global_prefetch:
            # No window at all: pace it like a no-ack consumer (rule 5).
            return connection.burst < DELIVERY_BURST
        return not (channel.global_prefetch and channel.consumer_unacked >= channel.global_prefetch)

    def __repr__(self) -> str:
        return f"BrokerConsumer({self.consumer_tag!r}, queue={self.queue.name!r})"


class Unacked:
    """A delivery waiting for ack/nack/reject on its channel."""

    __slots__ = ("consumer", "delivered_at", "entry", "queue")

    def __init__(self, queue: Queue, entry: QueueEntry, consumer: BrokerConsumer | None,
                 delivered_at: float = _NEVER) -> None:
        self.queue = queue
        self.entry = entry
        #: The consumer it was delivered to; ``None`` for ``basic.get``.
        self.consumer = consumer
        #: When it was delivered (the consumer timeout, ``timers.py`` rule 4); never for a
        #: stream's deliveries, which are not redelivered and so cannot time out.
        self.delivered_at = delivered_at


@valueclass(frozen=True)
class TxPublish:
    """A transactional publish, routed when it was published (``transactions.py`` rule 2):
    the names of the queues it reached then, looked up again at commit."""

    message: Message
    mandatory: bool
    queues: tuple[str, ...]
    #: A direct reply-to consumer took it at once: there is nothing to return.
    replied: bool = False


@valueclass()
class TxBuffer:
    """What a transactional channel has done since its last commit or rollback."""

    publishes: list[TxPublish]
    #: Settlements taken out of the unacked map, applied at commit: (tag, unacked, action).
    settlements: list[tuple[int, Unacked, Settlement]]


class BrokerChannel:
    """A channel as the broker keeps it: delivery tags, unacked deliveries, prefetch, consumers,
    confirm or transaction mode."""

    __slots__ = (
        "confirm", "connection", "consumer_unacked", "consumers", "global_prefetch", "held",
        "last_queue", "next_delivery_tag", "next_publish_seq", "number", "prefetch_count",
        "reply_consumer", "reply_token", "tx", "unacked",
    )

    def __init__(self, connection: ConnectionState, number: int) -> None:
        self.connection = connection
        self.number = number
        self.next_delivery_tag = 1
        self.unacked: dict[int, Unacked] = {}
        self.consumers: dict[str, BrokerConsumer] = {}
        #: basic.qos(global=False): the limit given to consumers created from now on.
        self.prefetch_count = 0
        #: basic.qos(global=True): the limit shared by all consumers of this channel.
        self.global_prefetch = 0
        #: Unacked deliveries to consumers (``basic.get`` ones do not count against prefetch).
        self.consumer_unacked = 0
        self.confirm = False
        self.next_publish_seq = 1
        #: Confirms waiting for the disk, in publish order: (journal count, confirm)
        #: (``journal.py`` rule 4).
        self.held: deque[tuple[int, Confirm]] = deque()
        self.tx: TxBuffer | None = None
        #: The queue named by the last queue.declare on this channel: AMQP lets later methods
        #: leave the queue name empty to mean it.
        self.last_queue: str | None = None
        #: Direct reply-to (``replyto.py``): the consumer tag on ``amq.rabbitmq.reply-to`` and
        #: the token that names this channel in reply addresses.
        self.reply_consumer: str | None = None
        self.reply_token: str | None = None

    def take_delivery_tag(self) -> int:
        tag = self.next_delivery_tag
        self.next_delivery_tag = tag + 1
        return tag

    def __repr__(self) -> str:
        return f"BrokerChannel({self.connection.id}, {self.number})"


class ConnectionState:
    """A connection as the broker keeps it: its channels, exclusive queues and writability."""

    __slots__ = ("burst", "channels", "client_properties", "connection_name", "exclusive_queues",
                 "id", "peer", "user", "writable")

    def __init__(self, connection_id: int, user: str, peer: str, connection_name: str = "",
                 client_properties: FieldTable | None = None) -> None:
        self.id = connection_id
        self.user = user
        self.peer = peer
        self.connection_name = connection_name
        self.client_properties: FieldTable = client_properties or {}
        self.channels: dict[int, BrokerChannel] = {}
        self.exclusive_queues: set[str] = set()
        self.writable = True
        #: Body bytes delivered on this connection since the shell last reported a flush.
        self.burst = 0
