"""Declarations: the handlers that change the topology (exchanges, queues, bindings, purge).

Rules:

1. Each handler checks everything (channel, names, exclusivity, equivalence) through
   ``Topology`` and ``BrokerState`` lookups before it changes anything.
2. Texts follow RabbitMQ's wording; the rules themselves are documented in ``topology.py``.
3. Queues are born and die through the queue lifecycle (``lifecycle.py``), which keeps their
   timers; a declare (active or passive) of an existing queue counts as a use of it.
4. ``x-queue-type: stream`` declares a stream (``streams.py``): its arguments, equivalence,
   declare-ok and delete-ok counts are the stream's; ``queue.purge`` of a stream is refused.
"""

from __future__ import annotations

from minibroker.core import commands as c
from minibroker.core.arguments import queue_limits
from minibroker.core.effects import Effect, Outcome, QueueDeclareOk, QueueDeleteOk, QueuePurgeOk
from minibroker.core.exchanges import Destination, DestinationKind
from minibroker.core.generations import UNKNOWN_EXCHANGE_TYPE_CLOSES_CONNECTION
from minibroker.core.lifecycle import QueueLifecycle
from minibroker.core.replyto import REPLY_QUEUE
from minibroker.core.state import BrokerState
from minibroker.core.streamargs import is_stream
from minibroker.core.streams import StreamQueue
from minibroker.core.topology import queue_text
from minibroker.errors import AccessRefused, CommandInvalid, NotFound, PreconditionFailed

__all__ = ["Declarations"]


class Declarations:
    """exchange.declare/delete/bind/unbind and queue.declare/delete/bind/unbind/purge."""

    def __init__(self, state: BrokerState, lifecycle: QueueLifecycle) -> None:
        self.state = state
        self.topology = state.topology
        self.lifecycle = lifecycle

    def declare_exchange(self, command: c.DeclareExchange, now: float) -> Outcome:
        self.state.channel(command)
        closes = self.state.profile[UNKNOWN_EXCHANGE_TYPE_CLOSES_CONNECTION]
        self.topology.declare_exchange(
            command.exchange, command.type, passive=command.passive, durable=command.durable,
            auto_delete=command.auto_delete, internal=command.internal,
            arguments=command.arguments or {},
            unknown_type=CommandInvalid if closes else PreconditionFailed,
        )
        return Outcome()

    def delete_exchange(self, command: c.DeleteExchange, now: float) -> Outcome:
        self.state.channel(command)
        self.topology.delete_exchange(command.exchange, if_unused=command.if_unused)
        return Outcome()

    def bind_exchange(self, command: c.BindExchange, now: float) -> Outcome:
        self.state.channel(command)
        destination = Destination(DestinationKind.EXCHANGE, command.destination)
        self.topology.bind(
            command.source, destination, command.routing_key, command.arguments or {}
        )
        return Outcome()

    def unbind_exchange(self, command: c.UnbindExchange, now: float) -> Outcome:
        self.state.channel(command)
        destination = Destination(DestinationKind.EXCHANGE, command.destination)
        self.topology.unbind(
            command.source, destination, command.routing_key, command.arguments or {}
        )
        return Outcome()

    def bind_queue(self, command: c.BindQueue, now: float) -> Outcome:
        channel = self.state.channel(command)
        if command.exchange == "":
            raise AccessRefused("operation not permitted on the default exchange")
        self.topology.exchange(command.exchange)
        queue = self.state.usable_queue(channel, command.queue)
        self.topology.bind(
            command.exchange, Destination(DestinationKind.QUEUE, queue.name),
            command.routing_key, command.arguments or {},
        )
        return Outcome()

    def unbind_queue(self, command: c.UnbindQueue, now: float) -> Outcome:
        channel = self.state.channel(command)
        name = self.state.queue_name(channel, command.queue)
        queue = self.topology.queues.get(name)
        destination = Destination(DestinationKind.QUEUE, name)
        arguments = command.arguments or {}
        if queue is not None and self.topology.has_binding(
                command.exchange, destination, command.routing_key, arguments):
            # rabbit_binding:remove checks exclusive access only for a binding that exists:
            # removing a missing one succeeds from any connection.
            self.state.check_exclusive(channel.connection, queue)
        self.topology.unbind(command.exchange, destination, command.routing_key, arguments)
        return Outcome()

    def declare_queue(self, command: c.DeclareQueue, now: float) -> Outcome:
        channel = self.state.channel(command)
        connection = channel.connection
        topology = self.topology
        arguments = command.arguments or {}
        if command.passive:
            name = command.queue or channel.last_queue or ""
            if name == REPLY_QUEUE:
                return Outcome(QueueDeclareOk(name, 0, 0))  # the pseudo-queue "exists"
            queue = topology.queues.get(name)
            if queue is None:
                raise NotFound(f"no {queue_text(name)}")
            self.state.check_exclusive(connection, queue)
            self.lifecycle.queue_used(queue, now)
        else:
            name = command.queue or topology.new_queue_name(self.state.make_name)
            existing = topology.queues.get(name)
            if existing is not None:
                # Errata: exclusivity is checked before equivalence; RabbitMQ checks it
                # strictly here, so a different exclusive flag is 405 (state.py rule 4).
                self.state.check_exclusive(
                    connection, existing, declared_exclusive=command.exclusive
                )
                if existing.stream is not None:
                    self.lifecycle.streams.check_equivalent(existing, command)
                else:
                    topology.check_queue_equivalent(
                        existing, durable=command.durable, auto_delete=command.auto_delete,
                        arguments=arguments,
                    )
                queue = existing
                self.lifecycle.queue_used(queue, now)
            else:
                if command.queue.startswith("amq."):
                    raise AccessRefused(
                        f"queue name '{command.queue}' contains reserved prefix 'amq.*'"
                    )
                if is_stream(arguments):
                    stream = self.lifecycle.streams.create(command, name, now)
                    channel.last_queue = name
                    return Outcome(stream.declare_ok())
                limits = queue_limits(
                    name, arguments, durable=command.durable, exclusive=command.exclusive,
                    auto_delete=command.auto_delete, profile=self.state.profile,
                )
                queue = self.lifecycle.create_queue(
                    name, durable=command.durable,
                    exclusive_owner=connection.id if command.exclusive else None,
                    auto_delete=command.auto_delete, arguments=arguments, limits=limits, now=now,
                )
                if command.exclusive:
                    connection.exclusive_queues.add(name)
        channel.last_queue = name
        if isinstance(queue, StreamQueue):
            return Outcome(queue.declare_ok())
        return Outcome(QueueDeclareOk(name, len(queue.ready), len(queue.consumers)))

    def delete_queue(self, command: c.DeleteQueue, now: float) -> Outcome:
        channel = self.state.channel(command)
        name = self.state.queue_name(channel, command.queue)
        queue = self.topology.queues.get(name)
        if queue is None:
            return Outcome(QueueDeleteOk(0))  # RabbitMQ: deleting a missing queue succeeds
        self.state.check_exclusive(channel.connection, queue)
        # Streams ignore if-unused (and hold nothing ready, so if-empty never refuses).
        if command.if_unused and queue.consumers and queue.stream is None:
            raise PreconditionFailed(f"{queue_text(name)} in use")
        if command.if_empty and queue.ready:
            raise PreconditionFailed(f"{queue_text(name)} not empty")
        effects: list[Effect] = []
        count = self.lifecycle.remove_queue(queue, effects)
        return Outcome(QueueDeleteOk(count), effects)

    def purge_queue(self, command: c.PurgeQueue, now: float) -> Outcome:
        queue = self.state.usable_queue(self.state.channel(command), command.queue)
        self.lifecycle.streams.refuse_purge(queue)
        self.lifecycle.observe_ready(queue, "purged")
        count = queue.purge()
        effects: list[Effect] = []
        if queue.features is not None:
            self.lifecycle.after_change(queue, now, effects)
        return Outcome(QueuePurgeOk(count), effects)
