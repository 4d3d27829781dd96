"""The broker core: one object that takes commands and returns replies and effects. No I/O.

Rules:

1. ``Broker.handle(command, now=...)`` processes one command completely and returns an
   :class:`~minibroker.core.effects.Outcome`. Errors are *raised* (``ChannelError`` subclasses
   close the channel, ``ConnectionLevelError`` subclasses the connection) before any state changes,
   so a refused command leaves the broker exactly as it was. After a ``ChannelError`` the
   adapter sends ``CloseChannel`` so the channel's deliveries are requeued.
2. Time arrives as the keyword argument ``now`` (seconds, any epoch) and is handed down with
   every call; the core never reads a clock and keeps no "current time". ``next_deadline()`` /
   ``handle_timeout(now=...)`` are where timers (TTL, expiry) live.
3. A published message is routed to a *set* of queues and enqueued once in each; delivery is
   pushed at once to the consumer of the queue whose turn it is and that has prefetch credit.
4. Every delivery that needs an acknowledgement is recorded on its channel until it is acked
   (gone), rejected (gone, or back to its queue) or the channel closes (back to its queue, in its
   original position, ``redelivered=True``). Nothing else removes it: no message is lost or
   duplicated silently.
5. The core never invents names with randomness: ``make_name(prefix)`` is injected by the shell
   (server-named queues ``amq.gen-…``, consumer tags ``amq.ctag-…``).
6. ``Broker`` is composed, not inherited: it holds the shared state (``state.py``) and one
   collaborator per concern, and routes each command to its handler. Connections, channels and
   consumers are handled here; publishing, acknowledgements, transactions, declarations, the
   queue lifecycle, streams, direct reply-to and introspection each have their own module.
7. Durability (``journal.py``): a broker given a ``journal`` records its durable facts
   there and holds the confirms of persistent messages until the shell reports them on disk
   (the ``Synced`` input); ``restore`` (``restore.py``) brings recovered objects and messages
   back. Without a journal nothing is recorded and nothing waits.
"""

from __future__ import annotations

from collections.abc import Callable

from minibroker.core import commands as c
from minibroker.core import delivery
from minibroker.core.acks import Acknowledgements
from minibroker.core.arguments import consumer_priority
from minibroker.core.channels import BrokerChannel, BrokerConsumer, ConnectionState
from minibroker.core.declarations import Declarations
from minibroker.core.effects import CancelOk, ConsumeOk, Effect, Outcome
from minibroker.core.fates import Fate, Observer
from minibroker.core.flow import ReadyMeter
from minibroker.core.generations import NEWEST, Profile
from minibroker.core.journal import Journal
from minibroker.core.lifecycle import QueueLifecycle
from minibroker.core.publishing import Publishing
from minibroker.core.queues import Queue
from minibroker.core.replyto import REPLY_QUEUE, DirectReplyTo
from minibroker.core.restore import Restoration
from minibroker.core.state import BrokerState, SequentialNames
from minibroker.core.statistics import (
    BrokerStatistics,
    ExchangeInfo,
    Introspection,
    QueueStatistics,
    TopologySnapshot,
)
from minibroker.core.streamreads import StreamReads
from minibroker.core.streams import StreamQueue
from minibroker.core.timers import Timers
from minibroker.core.topology import Topology, queue_text
from minibroker.core.transactions import Transactions
from minibroker.errors import (
    AccessRefused,
    ChannelStateError,
    InternalError,
    NotAllowed,
    PreconditionFailed,
)

__all__ = ["Broker", "SequentialNames"]


class Broker:
    """All broker state of one virtual host, changed only through :meth:`handle`.

    ``wall_time`` maps ``now`` to seconds since the Unix epoch, for the ``x-death`` time of
    dead-lettered messages; it must be a pure function (``lifecycle.py`` rule 4).
    ``rabbitmq`` is the RabbitMQ version whose answers the broker gives where releases
    differ (``generations.py``): ``"3.10"`` to ``"4.2"``, the newest by default."""

    def __init__(
        self, *, make_name: Callable[[str], str] | None = None,
        wall_time: Callable[[float], float] | None = None,
        rabbitmq: str | Profile = NEWEST, journal: Journal | None = None,
        meter: ReadyMeter | None = None,
    ) -> None:
        profile = rabbitmq if isinstance(rabbitmq, Profile) else Profile(rabbitmq)
        self.state = state = BrokerState(make_name=make_name, profile=profile)
        if meter is not None:
            # Several cores (one per vhost) weigh against one memory mark: they share a meter.
            state.meter = meter
        state.journal = state.topology.journal = journal
        self.lifecycle = lifecycle = QueueLifecycle(state, wall_time=wall_time)
        self.reply_to = reply_to = DirectReplyTo(state)
        self.publishing = publishing = Publishing(state, lifecycle, reply_to)
        self.acks = acks = Acknowledgements(state, lifecycle)
        self.transactions = tx = Transactions(state, publishing, acks)
        self.declarations = declare = Declarations(state, lifecycle)
        self.introspection = Introspection(state)
        self.stream_reads = reads = StreamReads(state, lifecycle.streams)
        self.restore = Restoration(state, lifecycle)
        handlers: dict[type, Callable[..., Outcome]] = {
            c.Publish: publishing.publish,
            c.Ack: acks.ack,
            c.PublishMany: publishing.publish_many,
            c.AckMany: acks.ack_many,
            c.Nack: acks.nack,
            c.Reject: acks.reject,
            c.OpenConnection: self._open_connection,
            c.CloseConnection: self._close_connection,
            c.SetWritable: self._set_writable,
            c.Synced: publishing.synced,
            c.OpenChannel: self._open_channel,
            c.CloseChannel: self._close_channel_command,
            c.DeclareExchange: declare.declare_exchange,
            c.DeleteExchange: declare.delete_exchange,
            c.BindExchange: declare.bind_exchange,
            c.UnbindExchange: declare.unbind_exchange,
            c.DeclareQueue: declare.declare_queue,
            c.DeleteQueue: declare.delete_queue,
            c.BindQueue: declare.bind_queue,
            c.UnbindQueue: declare.unbind_queue,
            c.PurgeQueue: declare.purge_queue,
            c.Qos: self._qos,
            c.Consume: self._consume,
            c.Cancel: self._cancel,
            c.Get: acks.get,
            c.Recover: acks.recover,
            c.ConfirmSelect: publishing.confirm_select,
            c.TxSelect: tx.select,
            c.TxCommit: tx.commit,
            c.TxRollback: tx.rollback,
            c.ReadStream: reads.read,
            c.CommitOffset: reads.commit,
            c.QueryOffset: reads.query,
        }
        self._handlers = handlers

    # -- entry points -----------------------------------------------------------------------

    def handle(self, command: c.Command, *, now: float) -> Outcome:
        """Carry out ``command``; raise an ``AMQPError`` (state unchanged) if it is refused."""
        return self._handlers[type(command)](command, now)

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`handle_timeout` has work to do."""
        return self.lifecycle.next_deadline()

    def handle_timeout(self, *, now: float) -> list[Effect]:
        """Fire every timer due at ``now`` (message TTL, queue expiry); the effects to carry
        out."""
        return self.lifecycle.handle_timeout(now)

    # -- introspection (``statistics.py``) ----------------------------------------------------

    def statistics(self) -> BrokerStatistics:
        return self.introspection.statistics()

    def queue_statistics(self, name: str) -> QueueStatistics:
        """Raises ``NotFound`` for a missing queue."""
        return self.introspection.queue_statistics(name)

    def exchange_info(self, name: str) -> ExchangeInfo:
        return self.introspection.exchange_info(name)

    def snapshot(self) -> TopologySnapshot:
        return self.introspection.snapshot()

    # What the shell and the test toolkit read directly: the live objects, not copies.

    @property
    def profile(self) -> Profile:
        """The RabbitMQ version the broker answers as (``generations.py``). Set it before the
        first command: it is read when a queue is declared or an error is raised, and a queue
        keeps what it said then."""
        return self.state.profile

    @profile.setter
    def profile(self, profile: Profile) -> None:
        self.state.profile = profile

    @property
    def journal(self) -> Journal | None:
        """Where durable facts are recorded (``journal.py``); ``None`` keeps nothing."""
        return self.state.journal

    @property
    def topology(self) -> Topology:
        return self.state.topology

    @property
    def connections(self) -> dict[int, ConnectionState]:
        return self.state.connections

    @property
    def meter(self) -> ReadyMeter:
        """The ready meter the shell's flow control reads (``flow.py``)."""
        return self.state.meter

    @property
    def timers(self) -> Timers:
        return self.lifecycle.timers

    @property
    def observer(self) -> Observer | None:
        """Told every message's fate when set (``fates.py``)."""
        return self.state.observer

    @observer.setter
    def observer(self, observer: Observer | None) -> None:
        self.state.observer = observer

    @property
    def published(self) -> int:
        return self.state.published

    @property
    def delivered(self) -> int:
        return self.state.delivered

    @property
    def acked(self) -> int:
        return self.state.acked

    @property
    def returned(self) -> int:
        return self.state.returned

    # -- connections and channels -----------------------------------------------------------

    def _open_connection(self, command: c.OpenConnection, now: float) -> Outcome:
        connections = self.state.connections
        if command.connection in connections:
            raise InternalError(f"connection id {command.connection} is already in use")
        connections[command.connection] = ConnectionState(
            command.connection, command.user, command.peer, command.connection_name,
            command.client_properties,
        )
        return Outcome()

    def _close_connection(self, command: c.CloseConnection, now: float) -> Outcome:
        connection = self.state.connections.get(command.connection)
        effects: list[Effect] = []
        if connection is None:
            return Outcome()
        # Requeued messages must not be redelivered to another channel of this same, closing
        # connection: it takes no more deliveries from here on.
        connection.writable = False
        for channel in list(connection.channels.values()):
            self._close_channel(channel, now, effects)
        # "Exclusive queues [...] are deleted when the connection that declared them closes."
        queues = self.state.topology.queues
        for name in sorted(connection.exclusive_queues):
            queue = queues.get(name)
            if queue is not None:
                self.lifecycle.remove_queue(queue, effects)
        del self.state.connections[command.connection]
        return Outcome(None, effects)

    def _set_writable(self, command: c.SetWritable, now: float) -> Outcome:
        connection = self.state.connection(command.connection)
        connection.writable = command.writable
        effects: list[Effect] = []
        if command.writable:
            connection.burst = 0  # the shell flushed: a new burst may go out
            for channel in connection.channels.values():
                self.lifecycle.dispatch_all(delivery.wake_consumers(channel), now, effects)
        return Outcome(None, effects)

    def _open_channel(self, command: c.OpenChannel, now: float) -> Outcome:
        connection = self.state.connection(command.connection)
        if command.channel in connection.channels:
            raise ChannelStateError("second 'channel.open' seen")
        connection.channels[command.channel] = BrokerChannel(connection, command.channel)
        return Outcome()

    def _close_channel_command(self, command: c.CloseChannel, now: float) -> Outcome:
        effects: list[Effect] = []
        self._close_channel(self.state.channel(command), now, effects)
        return Outcome(None, effects)

    def _close_channel(self, channel: BrokerChannel, now: float, effects: list[Effect]) -> None:
        """Remove the channel's consumers, requeue its unacked deliveries (AMQP §4.5: "closing
        a channel [...] requeues unacknowledged messages"), delete emptied auto-delete queues."""
        del channel.connection.channels[channel.number]
        self.reply_to.cancel(channel)
        lifecycle = self.lifecycle
        emptied: list[Queue] = []
        consumed: list[Queue] = []
        for consumer in channel.consumers.values():
            queue = consumer.queue
            queue.consumers.remove(consumer)
            consumed.append(queue)
            if queue.auto_delete and not queue.consumers and not queue.deleted:
                emptied.append(queue)
            lifecycle.queue_used(queue, now)
        channel.consumers.clear()
        pending = list(channel.unacked.values())
        channel.unacked.clear()
        if channel.tx is not None:
            pending.extend(unacked for _, unacked, _ in channel.tx.settlements)
            channel.tx = None
        observer = self.state.observer
        if observer is not None:
            for unacked in pending:
                observer(Fate(
                    "requeued", unacked.entry.message, queue=unacked.queue.name,
                    connection=channel.connection.id, channel=channel.number, requeue=True,
                    reason="channel closed",
                ))
        touched = delivery.requeue(pending)
        for queue in emptied:
            if not queue.deleted:
                lifecycle.remove_queue(queue, effects)
        # The queues this channel consumed from go on too: requeued messages, and a single
        # active consumer's successor that must take over a backlog.
        lifecycle.dispatch_all(dict.fromkeys([*touched, *consumed]), now, effects)

    # -- consumers --------------------------------------------------------------------------

    def _qos(self, command: c.Qos, now: float) -> Outcome:
        channel = self.state.channel(command)
        if not 0 <= command.prefetch_count <= 0xFFFF:
            raise PreconditionFailed(
                f"invalid prefetch_count {command.prefetch_count}: must be 0..65535"
            )
        effects: list[Effect] = []
        if command.global_:
            channel.global_prefetch = command.prefetch_count
            self.lifecycle.dispatch_all(delivery.wake_consumers(channel), now, effects)
        else:
            channel.prefetch_count = command.prefetch_count
        return Outcome(None, effects)

    def _consume(self, command: c.Consume, now: float) -> Outcome:
        state = self.state
        channel = state.channel(command)
        tag = command.consumer_tag
        if command.queue == REPLY_QUEUE:
            return self.reply_to.consume(channel, tag, command.no_ack)
        if tag in channel.consumers or (tag and tag == channel.reply_consumer):
            raise NotAllowed(f"attempt to reuse consumer tag '{tag}'")
        queue = state.usable_queue(channel, command.queue)
        if isinstance(queue, StreamQueue):
            return self.lifecycle.streams.consume(channel, queue, command, now)
        if queue.consumers and (command.exclusive or queue.has_exclusive_consumer()):
            raise AccessRefused(f"{queue_text(queue.name)} in exclusive use")
        priority = consumer_priority(command.arguments, queue.name)
        if not tag:
            tag = state.make_name("amq.ctag-")
            while tag in channel.consumers:
                tag = state.make_name("amq.ctag-")
        consumer = BrokerConsumer(
            channel, queue, tag, no_ack=command.no_ack, exclusive=command.exclusive,
            prefetch_count=channel.prefetch_count, arguments=dict(command.arguments or {}),
            priority=priority,
        )
        channel.consumers[tag] = consumer
        queue.consumers.add(consumer)
        self.lifecycle.queue_used(queue, now)
        effects: list[Effect] = []
        self.lifecycle.dispatch(queue, now, effects)
        return Outcome(ConsumeOk(tag), effects)

    def _cancel(self, command: c.Cancel, now: float) -> Outcome:
        channel = self.state.channel(command)
        consumer = channel.consumers.pop(command.consumer_tag, None)
        effects: list[Effect] = []
        if command.consumer_tag and command.consumer_tag == channel.reply_consumer:
            self.reply_to.cancel(channel)
        if consumer is not None:
            queue = consumer.queue
            queue.consumers.remove(consumer)
            lifecycle = self.lifecycle
            lifecycle.queue_used(queue, now)
            if not queue.deleted and (queue.consumers.single_active or
                                      queue.features is not None):
                lifecycle.dispatch(queue, now, effects)  # a single active consumer hands over
            # Its unacked deliveries stay unacked on the channel until acked or closed.
            if queue.auto_delete and not queue.consumers and not queue.deleted:
                lifecycle.remove_queue(queue, effects)
        # An unknown tag is not an error (RabbitMQ answers cancel-ok).
        return Outcome(CancelOk(command.consumer_tag), effects)
