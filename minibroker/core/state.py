"""The broker's shared state: what every part of the core reads and changes. No I/O.

Rules:

1. :class:`BrokerState` holds what more than one collaborator of the broker needs: the
   topology (exchanges, queues, bindings), the connections with their channels, the broker-wide
   counters, the optional fate observer, the ready meter and the name maker. Each collaborator
   (``lifecycle.py``, ``publishing.py``, ``acks.py``, ``declarations.py``, ``replyto.py``,
   ``statistics.py``) is given this one object; none of them inherits from another.
2. The broker-wide counters live here, once, each incremented where its event happens:
   ``published`` by ``publishing.py`` and ``transactions.py`` (a routed publish),
   ``delivered`` where a message goes out (a dispatch in ``lifecycle.py``, a get in
   ``acks.py``, a direct reply in ``replyto.py``), ``acked`` by ``acks.py``, ``returned`` by
   ``publishing.py``. They outlive queues; per-queue counts are the queue's own
   (``queues.py`` rule 3).
3. Lookups raise before anything changes: a handler that got past its lookups cannot leave the
   state half-changed because of a missing name.
4. Exclusive queues (RabbitMQ's ``check_exclusive_access``): any use of an exclusive queue by
   another connection is 405 RESOURCE_LOCKED (*lax*); an active ``queue.declare`` also needs
   its ``exclusive`` flag to match (*strict*): declaring an exclusive queue non-exclusive, or a
   non-exclusive queue exclusive, is the same 405 — from the owning connection too.
5. ``profile`` (``generations.py``) is the RabbitMQ version the broker answers as; it is read
   when a queue is declared or an error is raised, never per message.
"""

from __future__ import annotations

from collections.abc import Callable

from minibroker.core.channels import BrokerChannel, ChannelAddress, ConnectionState
from minibroker.core.fates import Observer
from minibroker.core.flow import ReadyMeter
from minibroker.core.generations import Profile
from minibroker.core.journal import Journal
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
    """The state of one virtual host, shared by the broker's collaborators."""

    def __init__(
        self, *, make_name: Callable[[str], str] | None = None, profile: Profile | None = None,
    ) -> None:
        #: The RabbitMQ version whose answers the broker gives (rule 5).
        self.profile = profile or Profile()
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
        #: Where durable facts are recorded (``journal.py``); ``None``: an in-memory broker.
        self.journal: Journal | None = None

    def connection(self, connection_id: int) -> ConnectionState:
        connection = self.connections.get(connection_id)
        if connection is None:
            raise ChannelStateError(f"connection {connection_id} is not open")
        return connection

    def channel(self, command: ChannelAddress) -> BrokerChannel:
        connection = self.connections.get(command.connection)
        if connection is None:
            raise ChannelStateError(f"connection {command.connection} is not open")
        channel = connection.channels.get(command.channel)
        if channel is None:
            raise ChannelStateError(f"expected 'channel.open' on channel {command.channel}")
        return channel

    @staticmethod
    def queue_name(channel: BrokerChannel, name: str) -> str:
        # AMQP 0-9-1 queue.bind etc.: "If the queue name is empty, the server uses the last
        # queue declared on the channel."
        if name:
            return name
        if channel.last_queue is None:
            raise NotFound("no previously declared queue")
        return channel.last_queue

    @staticmethod
    def check_exclusive(
        connection: ConnectionState, queue: Queue, *, declared_exclusive: bool | None = None,
    ) -> None:
        """Rule 4: lax for every use, strict when ``declared_exclusive`` (the ``exclusive``
        flag of an active ``queue.declare``) is given."""
        owner = queue.exclusive_owner
        if declared_exclusive is None:
            locked = owner is not None and owner != connection.id
        else:
            locked = owner != (connection.id if declared_exclusive else None)
        if locked:
            raise ResourceLocked(
                f"cannot obtain exclusive access to locked {queue_text(queue.name)}. It could be "
                "originally declared on another connection or the exclusive property value does "
                "not match that of the original declaration."
            )

    def usable_queue(self, channel: BrokerChannel, name: str) -> Queue:
        """The queue ``name`` (or the channel's last) if this channel's connection may use it."""
        queue = self.topology.queue(self.queue_name(channel, name))
        self.check_exclusive(channel.connection, queue)
        return queue
