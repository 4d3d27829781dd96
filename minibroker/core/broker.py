"""The broker core: one object that takes commands and returns replies and effects. No I/O.

Rules:

1. ``Broker.handle(command, now=...)`` processes one command completely and returns an
   :class:`~minibroker.core.effects.Outcome`. Errors are *raised* (``ChannelError`` subclasses
   close the channel, ``ConnectionLevelError`` subclasses the connection) before any state changes,
   so a refused command leaves the broker exactly as it was. After a ``ChannelError`` the
   adapter sends ``CloseChannel`` so the channel's deliveries are requeued.
2. Time arrives as the keyword argument ``now`` (seconds, any epoch); the core never reads a
   clock. ``next_deadline()`` / ``handle_timeout(now=...)`` are where timers (TTL, expiry) live.
3. A published message is routed to a *set* of queues and enqueued once in each; delivery is
   pushed at once to the next consumer of the queue, round-robin, that has prefetch credit
   (``delivery.py`` holds dispatch and settlement).
4. Every delivery that needs an acknowledgement is recorded on its channel until it is acked
   (gone), rejected (gone, or back to its queue) or the channel closes (back to its queue, in its
   original position, ``redelivered=True``). Nothing else removes it: no message is lost or
   duplicated silently.
5. The core never invents names with randomness: ``make_name(prefix)`` is injected by the shell
   (server-named queues ``amq.gen-…``, consumer tags ``amq.ctag-…``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace

from minibroker.core import commands as c
from minibroker.core import deadletter, delivery
from minibroker.core.arguments import consumer_priority, parse_expiration
from minibroker.core.channels import (
    Channel,
    ConnectionState,
    Consumer,
    TxBuffer,
    Unacked,
)
from minibroker.core.consumers import with_delivery_count
from minibroker.core.declarations import Declarations
from minibroker.core.effects import (
    GET_EMPTY,
    CancelOk,
    Confirm,
    ConsumeOk,
    Effect,
    GetOk,
    Outcome,
    Return,
)
from minibroker.core.exchanges import Exchange
from minibroker.core.fates import Fate
from minibroker.core.queues import Queue
from minibroker.core.replyto import REPLY_PREFIX, REPLY_QUEUE, DirectReplyTo
from minibroker.core.state import SequentialNames
from minibroker.core.statistics import StatisticsMixin
from minibroker.core.topology import queue_text
from minibroker.errors import (
    AccessRefused,
    ChannelStateError,
    InternalError,
    NotAllowed,
    NotFound,
    NotImplementedFeature,
    PreconditionFailed,
)
from minibroker.message import Message

__all__ = ["Broker", "SequentialNames"]


class Broker(Declarations, DirectReplyTo, StatisticsMixin):
    """All broker state of one virtual host, changed only through :meth:`handle`.

    ``wall_time`` maps ``now`` to seconds since the Unix epoch, for the ``x-death`` time of
    dead-lettered messages; it must be a pure function (``lifecycle.py`` rule 5)."""

    def __init__(
        self, *, make_name: Callable[[str], str] | None = None,
        wall_time: Callable[[float], float] | None = None,
    ) -> None:
        super().__init__(make_name=make_name, wall_time=wall_time)
        self._handlers: dict[type, Callable[..., Outcome]] = {
            c.Publish: self.publish,
            c.Ack: self.ack,
            c.PublishMany: self._publish_many,
            c.AckMany: self._ack_many,
            c.Nack: self._nack,
            c.Reject: self._reject,
            c.OpenConnection: self._open_connection,
            c.CloseConnection: self._close_connection,
            c.SetWritable: self._set_writable,
            c.OpenChannel: self._open_channel,
            c.CloseChannel: self._close_channel_command,
            c.DeclareExchange: self._declare_exchange,
            c.DeleteExchange: self._delete_exchange,
            c.BindExchange: self._bind_exchange,
            c.UnbindExchange: self._unbind_exchange,
            c.DeclareQueue: self._declare_queue,
            c.DeleteQueue: self._delete_queue,
            c.BindQueue: self._bind_queue,
            c.UnbindQueue: self._unbind_queue,
            c.PurgeQueue: self._purge_queue,
            c.Qos: self._qos,
            c.Consume: self._consume,
            c.Cancel: self._cancel,
            c.Get: self._get,
            c.Recover: self._recover,
            c.ConfirmSelect: self._confirm_select,
            c.TxSelect: self._tx_select,
            c.TxCommit: self._tx_commit,
            c.TxRollback: self._tx_rollback,
        }

    # -- entry points -----------------------------------------------------------------------

    def handle(self, command: c.Command, *, now: float) -> Outcome:
        """Carry out ``command``; raise an ``AMQPError`` (state unchanged) if it is refused."""
        self.now = now
        return self._handlers[type(command)](command, now)

    # ``next_deadline()`` and ``handle_timeout(now=...)`` live in ``lifecycle.py``.

    # -- connections and channels -----------------------------------------------------------

    def _open_connection(self, command: c.OpenConnection, now: float) -> Outcome:
        if command.connection in self.connections:
            raise InternalError(f"connection id {command.connection} is already in use")
        self.connections[command.connection] = ConnectionState(
            command.connection, command.user, command.peer
        )
        return Outcome()

    def _close_connection(self, command: c.CloseConnection, now: float) -> Outcome:
        connection = self.connections.get(command.connection)
        effects: list[Effect] = []
        if connection is None:
            return Outcome()
        # Requeued messages must not be redelivered to another channel of this same, closing
        # connection (checklist item 99): it takes no more deliveries from here on.
        connection.writable = False
        for channel in list(connection.channels.values()):
            self._close_channel(channel, effects)
        # "Exclusive queues [...] are deleted when the connection that declared them closes."
        for name in sorted(connection.exclusive_queues):
            queue = self.topology.queues.get(name)
            if queue is not None:
                self._remove_queue(queue, effects)
        del self.connections[command.connection]
        return Outcome(None, effects)

    def _set_writable(self, command: c.SetWritable, now: float) -> Outcome:
        connection = self._connection(command.connection)
        connection.writable = command.writable
        effects: list[Effect] = []
        if command.writable:
            connection.burst = 0  # the shell flushed: a new burst may go out
            for channel in connection.channels.values():
                self._dispatch_all(delivery.wake_consumers(channel), effects)
        return Outcome(None, effects)

    def _open_channel(self, command: c.OpenChannel, now: float) -> Outcome:
        connection = self._connection(command.connection)
        if command.channel in connection.channels:
            raise ChannelStateError("second 'channel.open' seen")
        connection.channels[command.channel] = Channel(connection, command.channel)
        return Outcome()

    def _close_channel_command(self, command: c.CloseChannel, now: float) -> Outcome:
        effects: list[Effect] = []
        self._close_channel(self._channel(command), effects)
        return Outcome(None, effects)

    def _close_channel(self, channel: Channel, effects: list[Effect]) -> None:
        """Remove the channel's consumers, requeue its unacked deliveries (AMQP §4.5: "closing
        a channel [...] requeues unacknowledged messages"), delete emptied auto-delete queues."""
        del channel.connection.channels[channel.number]
        self._cancel_reply_to(channel)
        emptied: list[Queue] = []
        consumed: list[Queue] = []
        for consumer in channel.consumers.values():
            queue = consumer.queue
            queue.remove_consumer(consumer)
            consumed.append(queue)
            if queue.auto_delete and not queue.consumers and not queue.deleted:
                emptied.append(queue)
            self._queue_used(queue)
        channel.consumers.clear()
        pending = list(channel.unacked.values())
        channel.unacked.clear()
        if channel.tx is not None:
            pending.extend(unacked for _, unacked, _ in channel.tx.settlements)
            channel.tx = None
        if self.observer is not None:
            for unacked in pending:
                self.observer(Fate(
                    "requeued", unacked.entry.message, queue=unacked.queue.name,
                    connection=channel.connection.id, channel=channel.number, requeue=True,
                    reason="channel closed",
                ))
        touched = delivery.requeue(pending)
        for queue in emptied:
            if not queue.deleted:
                self._remove_queue(queue, effects)
        # The queues this channel consumed from go on too: requeued messages, and a single
        # active consumer's successor that must take over a backlog.
        self._dispatch_all(dict.fromkeys([*touched, *consumed]), effects)

    # -- exchanges and bindings -------------------------------------------------------------

    # -- queues -----------------------------------------------------------------------------

    # -- consumers --------------------------------------------------------------------------

    def _qos(self, command: c.Qos, now: float) -> Outcome:
        channel = self._channel(command)
        if not 0 <= command.prefetch_count <= 0xFFFF:
            raise PreconditionFailed(
                f"invalid prefetch_count {command.prefetch_count}: must be 0..65535"
            )
        effects: list[Effect] = []
        if command.global_:
            channel.global_prefetch = command.prefetch_count
            self._dispatch_all(delivery.wake_consumers(channel), effects)
        else:
            channel.prefetch_count = command.prefetch_count
        return Outcome(None, effects)

    def _consume(self, command: c.Consume, now: float) -> Outcome:
        channel = self._channel(command)
        tag = command.consumer_tag
        if command.queue == REPLY_QUEUE:
            return self._consume_reply_to(channel, tag, command.no_ack)
        if tag in channel.consumers or (tag and tag == channel.reply_consumer):
            raise NotAllowed(f"attempt to reuse consumer tag '{tag}'")
        queue = self._usable_queue(channel, command.queue)
        if queue.consumers and (command.exclusive or queue.has_exclusive_consumer()):
            raise AccessRefused(f"{queue_text(queue.name)} in exclusive use")
        priority = consumer_priority(command.arguments)
        if not tag:
            tag = self.make_name("amq.ctag-")
            while tag in channel.consumers:
                tag = self.make_name("amq.ctag-")
        consumer = Consumer(
            channel, queue, tag, no_ack=command.no_ack, exclusive=command.exclusive,
            prefetch_count=channel.prefetch_count, arguments=dict(command.arguments or {}),
            priority=priority,
        )
        channel.consumers[tag] = consumer
        queue.add_consumer(consumer)
        self._queue_used(queue)
        effects: list[Effect] = []
        self._dispatch(queue, effects)
        return Outcome(ConsumeOk(tag), effects)

    def _cancel(self, command: c.Cancel, now: float) -> Outcome:
        channel = self._channel(command)
        consumer = channel.consumers.pop(command.consumer_tag, None)
        effects: list[Effect] = []
        if command.consumer_tag and command.consumer_tag == channel.reply_consumer:
            self._cancel_reply_to(channel)
        if consumer is not None:
            queue = consumer.queue
            queue.remove_consumer(consumer)
            self._queue_used(queue)
            if queue.features is not None and not queue.deleted:
                self._dispatch_special(queue, effects)  # a single active consumer hands over
            # Its unacked deliveries stay unacked on the channel until acked or closed.
            if queue.auto_delete and not queue.consumers and not queue.deleted:
                self._remove_queue(queue, effects)
        # An unknown tag is not an error (RabbitMQ answers cancel-ok).
        return Outcome(CancelOk(command.consumer_tag), effects)

    # -- publish and deliver ----------------------------------------------------------------

    def publish(self, command: c.Publish, now: float) -> Outcome:
        """``basic.publish``: route, enqueue, deliver, confirm. The hot path."""
        channel = self._channel(command)
        message = self._accept(channel, command.message)
        effects: list[Effect] = []
        self._publish_accepted(channel, message, command.mandatory, effects)
        return Outcome(None, effects)

    def _publish_many(self, command: c.PublishMany, now: float) -> Outcome:
        """Several publishes on one channel as one input: all are checked before the first is
        carried out, so a refused batch changes nothing (the adapter then replays it one
        publish at a time to fail at the right one)."""
        channel = self._channel(command)
        accepted = [(self._accept(channel, message), mandatory)
                    for message, mandatory in command.messages]
        effects: list[Effect] = []
        if not channel.confirm or channel.tx is not None:
            for message, mandatory in accepted:
                self._publish_accepted(channel, message, mandatory, effects)
            return Outcome(None, effects)
        # Confirm mode: one ``multiple`` confirm for the whole batch when every publish was
        # taken (every earlier publish of the channel is confirmed already, so it covers
        # exactly this batch), one confirm each when a queue refused one (reject-publish).
        # Measured with the single-consumer dispatch path (delivery.py): broker CPU 10.5 -> 8.5
        # us/message in bench/suite.py --only native (49 of 50 confirm effects less a batch).
        results = [self._route(channel, message, mandatory, effects)
                   for message, mandatory in accepted]
        first = channel.next_publish_seq
        channel.next_publish_seq = first + len(results)
        connection, number = channel.connection.id, channel.number
        if all(results):
            effects.append(Confirm(connection, number, first + len(results) - 1, multiple=True))
        else:
            effects.extend(Confirm(connection, number, first + offset, ack=taken)
                           for offset, taken in enumerate(results))
        return Outcome(None, effects)

    def _accept(self, channel: Channel, message: Message) -> Message:
        """Every check a publish must pass, before anything changes; the message to route
        (with its direct reply-to address filled in)."""
        exchange = self.topology.exchanges.get(message.exchange)
        if exchange is None:
            raise NotFound(f"no exchange '{message.exchange}' in vhost '/'")
        if exchange.internal:
            raise AccessRefused(
                f"cannot publish to internal exchange '{message.exchange}' in vhost '/'"
            )
        properties = message.properties
        user_id = properties.user_id
        if user_id is not None and user_id != channel.connection.user:
            raise PreconditionFailed(
                f"user_id property set to '{user_id}' but authenticated user was "
                f"'{channel.connection.user}'"
            )
        if properties.expiration is not None or properties.reply_to is not None:
            if properties.expiration is not None:
                parse_expiration(properties.expiration)  # RabbitMQ refuses a bad one: 406
            if properties.reply_to == REPLY_QUEUE:
                message = self._reply_address(channel, message)
        return message

    def _publish_accepted(
        self, channel: Channel, message: Message, mandatory: bool, effects: list[Effect]
    ) -> None:
        if channel.tx is not None:
            channel.tx.publishes.append((message, mandatory))
            return
        accepted = self._route(channel, message, mandatory, effects)
        if channel.confirm:
            seq = channel.next_publish_seq
            channel.next_publish_seq = seq + 1
            # A queue with x-overflow reject-publish refused it: basic.nack (RabbitMQ).
            effects.append(Confirm(channel.connection.id, channel.number, seq, ack=accepted))

    def _route(
        self, channel: Channel, message: Message, mandatory: bool, effects: list[Effect]
    ) -> bool:
        """Route and enqueue; False if a queue refused the message (``reject-publish``)."""
        self.published += 1
        exchange = self.topology.exchanges[message.exchange]
        properties = message.properties
        headers = properties.headers
        if headers or properties.expiration is not None:
            return self._route_special(channel, exchange, message, mandatory, effects)
        queues = self.topology.route(exchange, message.routing_key, headers)
        if not queues:
            return self._route_special(channel, exchange, message, mandatory, effects)
        return self._enqueue_routed(channel, message, queues, None, effects)

    def _route_special(
        self, channel: Channel, exchange: Exchange, message: Message, mandatory: bool,
        effects: list[Effect],
    ) -> bool:
        """``_route`` for messages with headers (CC/BCC), an expiration, or no queue (direct
        reply-to, alternate exchange, mandatory return)."""
        properties = message.properties
        headers = properties.headers
        queues: Collection[Queue]
        if headers and ("CC" in headers or "BCC" in headers):
            message, queues = self._route_cc(exchange, message)
        else:
            queues = self.topology.route(exchange, message.routing_key, headers)
            if not queues:
                if message.exchange == "" and message.routing_key.startswith(REPLY_PREFIX) and (
                        self._deliver_reply(message, effects)):
                    return True
                if "alternate-exchange" in exchange.arguments:
                    queues = self._route_keys(exchange, (message.routing_key,), headers)
        ttl = None
        if properties.expiration is not None:
            ttl = parse_expiration(properties.expiration) / 1000
        accepted = self._enqueue_routed(channel, message, queues, ttl, effects)
        if not queues and mandatory:
            # AMQP: "This flag tells the server how to react if the message cannot be routed to
            # a queue. If this flag is set, the server will return an unroutable message."
            self.returned += 1
            effects.append(
                Return(channel.connection.id, channel.number, 312, "NO_ROUTE", message)
            )
            if self.observer is not None:
                self.observer(Fate("returned", message, connection=channel.connection.id,
                                   channel=channel.number, reason="312 NO_ROUTE"))
        return accepted

    def _enqueue_routed(
        self, channel: Channel, message: Message, queues: Collection[Queue], ttl: float | None,
        effects: list[Effect],
    ) -> bool:
        """Enqueue a routed message in each of its queues and deliver what can be delivered;
        False if a queue refused it (``reject-publish``). ``ttl``: the message's own TTL."""
        if self.observer is not None:
            self.observer(Fate(
                "routed", message, queues=tuple(queue.name for queue in queues),
                connection=channel.connection.id, channel=channel.number,
            ))
        accepted = True
        for queue in queues:
            if queue.features is None and ttl is None:
                queue.enqueue(message)
                # Dispatch only into a queue that was empty: messages already waiting mean no
                # consumer had credit at the end of the last dispatch, and everything that gives
                # credit back (ack, qos, a new consumer, a drained socket) dispatches itself.
                # Under a publisher flood this saves one futile dispatch per publish (the
                # consumer's window is full; measured: 690,000 dispatches for 360,000
                # deliveries before).
                if queue.consumers and len(queue.ready) == 1:
                    self._dispatch(queue, effects)
            elif not self._enqueue_special(queue, message, ttl, effects):
                accepted = False
        return accepted

    def _route_cc(self, exchange: Exchange, message: Message) -> tuple[Message, list[Queue]]:
        """Sender-selected distribution (RabbitMQ): "CC" and "BCC" headers add routing keys
        on the same exchange; "BCC" is removed before delivery."""
        headers = message.properties.headers
        assert headers is not None
        keys = [message.routing_key, *deadletter.routing_keys(message)[1:],
                *_string_list(headers.get("BCC"))]
        queues = list(self._route_keys(exchange, keys, headers))
        if "BCC" in headers:
            kept = {key: value for key, value in headers.items() if key != "BCC"}
            message = replace(message, properties=replace(message.properties, headers=kept))
        return message, queues

    def _get(self, command: c.Get, now: float) -> Outcome:
        channel = self._channel(command)
        queue = self._usable_queue(channel, command.queue)
        features = queue.features
        effects: list[Effect] = []
        if features is None:
            entry = queue.checkout()
        else:
            self._queue_used(queue)
            entry = features.checkout(queue, now)
            self._after_change(queue, effects)
        if entry is None:
            return Outcome(GET_EMPTY, effects)
        tag = channel.take_delivery_tag()
        if command.no_ack:
            queue.settle(entry)
        else:
            channel.unacked[tag] = Unacked(queue, entry, None)
        self.delivered += 1
        message = entry.message
        if features is not None and features.limits.quorum:
            message = with_delivery_count(entry)
        if self.observer is not None:
            self.observer(Fate(
                "delivered", message, queue=queue.name, connection=channel.connection.id,
                channel=channel.number, delivery_tag=tag, redelivered=entry.redelivered,
                no_ack=command.no_ack,
            ))
        return Outcome(
            GetOk(tag, entry.redelivered, message.exchange, message.routing_key,
                  len(queue.ready), message), effects,
        )

    # -- acknowledgements -------------------------------------------------------------------

    def ack(self, command: c.Ack, now: float) -> Outcome:
        """``basic.ack``: settle, free credit, deliver more. The other hot path."""
        channel = self._channel(command)
        taken = delivery.take_unacked(channel, command.delivery_tag, command.multiple)
        return self._settle(channel, taken, delivery.ACK, "acked")

    def _ack_many(self, command: c.AckMany, now: float) -> Outcome:
        """Several single acks on one channel as one input, settled together and followed by
        one dispatch. Every tag is checked before any is taken, so a refused batch changes
        nothing (the adapter then replays it one ack at a time)."""
        channel = self._channel(command)
        unacked = channel.unacked
        tags = command.delivery_tags
        for tag in tags:
            if tag not in unacked:
                raise PreconditionFailed(f"unknown delivery tag {tag}")
        if len(set(tags)) != len(tags):
            seen: set[int] = set()
            for tag in tags:  # the second ack of the same tag is the unknown one
                if tag in seen:
                    raise PreconditionFailed(f"unknown delivery tag {tag}")
                seen.add(tag)
        taken = [(tag, unacked.pop(tag)) for tag in tags]
        return self._settle(channel, taken, delivery.ACK, "acked")

    def _nack(self, command: c.Nack, now: float) -> Outcome:
        channel = self._channel(command)
        taken = delivery.take_unacked(channel, command.delivery_tag, command.multiple)
        return self._settle(channel, taken, _requeue_or_discard(command.requeue), "nacked")

    def _reject(self, command: c.Reject, now: float) -> Outcome:
        channel = self._channel(command)
        taken = delivery.take_unacked(channel, command.delivery_tag, False)
        return self._settle(channel, taken, _requeue_or_discard(command.requeue), "rejected")

    def _settle(
        self, channel: Channel, taken: list[tuple[int, Unacked]], action: str, verb: str
    ) -> Outcome:
        if channel.tx is not None:
            # Transactional: settled at commit; credit stays taken until then (RabbitMQ).
            channel.tx.settlements.extend((tag, unacked, action) for tag, unacked in taken)
            return Outcome()
        effects: list[Effect] = []
        self._apply_settlements(channel, [unacked for _, unacked in taken], action, effects, verb)
        return Outcome(None, effects)

    def _recover(self, command: c.Recover, now: float) -> Outcome:
        channel = self._channel(command)
        if not command.requeue:
            # RabbitMQ does not implement redelivery to the original recipient.
            raise NotImplementedFeature("requeue=false")
        pending = list(channel.unacked.values())
        channel.unacked.clear()
        effects: list[Effect] = []
        self._apply_settlements(channel, pending, delivery.REQUEUE, effects, "requeued")
        return Outcome(None, effects)

    # -- confirms and transactions ----------------------------------------------------------

    def _confirm_select(self, command: c.ConfirmSelect, now: float) -> Outcome:
        channel = self._channel(command)
        if channel.tx is not None:
            raise PreconditionFailed("cannot switch from tx to confirm mode")
        channel.confirm = True
        return Outcome()

    def _tx_select(self, command: c.TxSelect, now: float) -> Outcome:
        channel = self._channel(command)
        if channel.confirm:
            raise PreconditionFailed("cannot switch from confirm to tx mode")
        if channel.tx is None:
            channel.tx = TxBuffer([], [])
        return Outcome()

    def _tx_channel(self, command: c.TxCommit | c.TxRollback) -> tuple[Channel, TxBuffer]:
        channel = self._channel(command)
        if channel.tx is None:
            raise PreconditionFailed("channel is not transactional")
        return channel, channel.tx

    def _tx_commit(self, command: c.TxCommit, now: float) -> Outcome:
        channel, tx = self._tx_channel(command)
        channel.tx = TxBuffer([], [])
        effects: list[Effect] = []
        for action in (delivery.ACK, delivery.REQUEUE, delivery.DISCARD):
            group = [unacked for _, unacked, kind in tx.settlements if kind == action]
            if group:
                self._apply_settlements(channel, group, action, effects)
        for message, mandatory in tx.publishes:
            if message.exchange in self.topology.exchanges:
                self._route(channel, message, mandatory, effects)
        return Outcome(None, effects)

    def _tx_rollback(self, command: c.TxRollback, now: float) -> Outcome:
        channel, tx = self._tx_channel(command)
        # RabbitMQ puts the acknowledged-but-uncommitted deliveries back as unacked.
        restored = dict(channel.unacked)
        restored.update((tag, unacked) for tag, unacked, _ in tx.settlements)
        channel.unacked = dict(sorted(restored.items()))
        channel.tx = TxBuffer([], [])
        return Outcome()


def _requeue_or_discard(requeue: bool) -> str:
    return delivery.REQUEUE if requeue else delivery.DISCARD


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item.decode(errors="replace") if isinstance(item, bytes) else item
            for item in value if isinstance(item, str | bytes)]
