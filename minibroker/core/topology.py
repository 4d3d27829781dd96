"""Topology: exchanges, queues and bindings of one virtual host, and the rules that change them.

Rules:

1. Every check happens before any change, so a refused command leaves the topology untouched.
   Error texts follow RabbitMQ's wording (``"no queue 'q' in vhost '/'"``) because clients and
   their users recognise them.
2. The default exchange ``""`` routes to the queue named by the routing key (AMQP §3.1.3.1, "The
   default exchange [...] every queue is automatically bound to it by its queue name"); it cannot
   be declared, bound, unbound or deleted (403, RabbitMQ's rule).
3. Names starting with ``amq.`` are reserved: declaring a new one is refused with 403, while
   redeclaring an existing ``amq.*`` exchange with identical properties succeeds.
4. Deleting a queue or an exchange removes every binding that leads to it; an auto-delete exchange
   goes away when its last binding as a source is removed (and that can cascade).
5. Routing through exchange-to-exchange bindings walks each exchange at most once per message, so
   cycles terminate, and reaches each queue at most once however many paths lead to it.
6. Alternate exchange (RabbitMQ): "whenever an exchange with a configured AE cannot route a
   message to any queue, it publishes the message to the specified AE instead"; chains are
   followed, each exchange once.
7. With a ``journal`` (``journal.py``), every change to a durable exchange and to a binding
   between durable objects is recorded where it happens (the cascades of rule 4 included:
   the store deletes the bindings of a deleted queue or exchange itself).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from minibroker.core.equivalence import check_arguments, check_flag, type_mismatch
from minibroker.core.exchanges import (
    Binding,
    Destination,
    DestinationKind,
    DirectExchange,
    Exchange,
    exchange_class,
)
from minibroker.core.journal import BIND, UNBIND, Journal
from minibroker.errors import AccessRefused, AMQPError, NotFound, PreconditionFailed
from minibroker.message import FieldTable

if TYPE_CHECKING:
    from minibroker.core.queues import Queue

__all__ = ["VHOST", "Topology", "exchange_text", "queue_text"]

VHOST = "/"

#: Queue arguments RabbitMQ compares on redeclare, per queue type and in its order (the
#: ``queue_arguments`` of ``rabbit_classic_queue`` / ``rabbit_quorum_queue``, 3.10.8); other
#: ``x-`` arguments are accepted and ignored.
CLASSIC_QUEUE_ARGS = (
    "x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
    "x-max-length", "x-max-length-bytes", "x-max-priority", "x-overflow", "x-queue-mode",
    "x-queue-version", "x-single-active-consumer", "x-queue-type", "x-queue-master-locator",
)
QUORUM_QUEUE_ARGS = (
    "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy",
    "x-expires", "x-max-length", "x-max-length-bytes", "x-max-in-memory-length",
    "x-max-in-memory-bytes", "x-overflow", "x-single-active-consumer", "x-queue-type",
    "x-quorum-initial-group-size", "x-delivery-limit", "x-message-ttl",
    "x-queue-leader-locator",
)
#: Exchange arguments RabbitMQ compares on redeclare (``rabbit_exchange:assert_equivalence``).
EQUIVALENCE_CHECKED_EXCHANGE_ARGS = ("alternate-exchange",)

#: Exchanges every virtual host starts with: (name, type, internal).
PREDECLARED_EXCHANGES = (
    ("amq.direct", "direct", False),
    ("amq.fanout", "fanout", False),
    ("amq.topic", "topic", False),
    ("amq.headers", "headers", False),
    ("amq.match", "headers", False),
    ("amq.rabbitmq.trace", "topic", True),
)


def queue_text(name: str) -> str:
    return f"queue '{name}' in vhost '{VHOST}'"


def exchange_text(name: str) -> str:
    return f"exchange '{name}' in vhost '{VHOST}'"


class Topology:
    """Exchanges and queues by name, with the bindings between them."""

    def __init__(self) -> None:
        self.exchanges: dict[str, Exchange] = {"": DirectExchange("", durable=True)}
        self.queues: dict[str, Queue] = {}
        #: How many exchange-to-exchange bindings exist; 0 lets routing skip the graph walk.
        self.exchange_bindings = 0
        #: Records durable changes (rule 7); ``None`` in an in-memory broker.
        self.journal: Journal | None = None
        for name, type_name, internal in PREDECLARED_EXCHANGES:
            cls = exchange_class(type_name)
            assert cls is not None
            self.exchanges[name] = cls(name, durable=True, internal=internal)

    # -- lookups ----------------------------------------------------------------------------

    def exchange(self, name: str) -> Exchange:
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise NotFound(f"no {exchange_text(name)}")
        return exchange

    def queue(self, name: str) -> Queue:
        queue = self.queues.get(name)
        if queue is None:
            raise NotFound(f"no {queue_text(name)}")
        return queue

    # -- exchanges --------------------------------------------------------------------------

    def declare_exchange(
        self, name: str, type_name: str, *, passive: bool, durable: bool, auto_delete: bool,
        internal: bool, arguments: FieldTable,
        unknown_type: type[AMQPError] = PreconditionFailed,
    ) -> Exchange:
        """``exchange.declare`` in RabbitMQ's order of checks (``rabbit_channel``): the type
        first, then the default exchange, then (for a new exchange) the name and the
        ``alternate-exchange`` argument, then equivalence. ``unknown_type`` is the error an
        unknown type raises (the version profile's choice: 503 or 406)."""
        if passive:
            if name == "":
                raise AccessRefused("operation not permitted on the default exchange")
            return self.exchange(name)
        cls = exchange_class(type_name)
        if cls is None:
            raise unknown_type(f"unknown exchange type '{type_name}'")
        if name == "":
            raise AccessRefused("operation not permitted on the default exchange")
        existing = self.exchanges.get(name)
        if existing is None:
            if name.startswith("amq."):
                raise AccessRefused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
            if "alternate-exchange" in arguments:
                alternate = arguments["alternate-exchange"]
                if not isinstance(alternate, str):
                    # rabbit_misc:r_arg: the argument names an exchange, so only a longstr.
                    raise type_mismatch(alternate, "alternate-exchange", exchange_text(name))
            exchange = cls(
                name, durable=durable, auto_delete=auto_delete, internal=internal,
                arguments=arguments,
            )
            self.exchanges[name] = exchange
            if durable and self.journal is not None:
                self.journal.declare_exchange(exchange)
            return exchange
        what = exchange_text(name)
        check_flag(what, "type", type_name, existing.type_name)
        check_flag(what, "durable", durable, existing.durable)
        check_flag(what, "auto_delete", auto_delete, existing.auto_delete)
        check_flag(what, "internal", internal, existing.internal)
        check_arguments(what, EQUIVALENCE_CHECKED_EXCHANGE_ARGS, arguments, existing.arguments)
        return existing

    def delete_exchange(self, name: str, *, if_unused: bool) -> None:
        if name == "":
            raise AccessRefused("operation not permitted on the default exchange")
        exchange = self.exchanges.get(name)
        if exchange is None:
            return  # AMQP: deleting a missing exchange succeeds (RabbitMQ answers delete-ok)
        if name.startswith("amq."):
            raise AccessRefused(f"deletion of system {exchange_text(name)} not allowed")
        if if_unused and exchange.binding_count:
            raise PreconditionFailed(f"{exchange_text(name)} in use")
        self._remove_exchange(exchange)

    def _remove_exchange(self, exchange: Exchange) -> None:
        del self.exchanges[exchange.name]
        if exchange.durable and self.journal is not None:
            self.journal.delete_exchange(exchange.name)
        for binding in exchange.bindings():
            if binding.destination.kind is DestinationKind.EXCHANGE:
                self.exchange_bindings -= 1
        self._unbind_everywhere(Destination(DestinationKind.EXCHANGE, exchange.name))

    def _unbind_everywhere(self, destination: Destination) -> None:
        """Remove every binding leading to ``destination``; auto-delete emptied sources."""
        emptied = []
        for source in self.exchanges.values():
            removed = source.unbind_destination(destination)
            if removed:
                if destination.kind is DestinationKind.EXCHANGE:
                    self.exchange_bindings -= removed
                if source.auto_delete and not source.binding_count:
                    emptied.append(source)
        for source in emptied:
            if source.name in self.exchanges:
                self._remove_exchange(source)

    # -- bindings ---------------------------------------------------------------------------

    def bind(
        self, source_name: str, destination: Destination, routing_key: str, arguments: FieldTable,
    ) -> None:
        if source_name == "" or (destination.kind is DestinationKind.EXCHANGE and
                                 destination.name == ""):
            raise AccessRefused("operation not permitted on the default exchange")
        if destination.kind is DestinationKind.EXCHANGE:
            self.exchange(destination.name)
        source = self.exchange(source_name)
        source.validate_binding(routing_key, arguments)
        if source.bind(destination, routing_key, arguments):
            if destination.kind is DestinationKind.EXCHANGE:
                self.exchange_bindings += 1
            self._record_binding(BIND, source, destination, routing_key, arguments)

    def unbind(
        self, source_name: str, destination: Destination, routing_key: str, arguments: FieldTable,
    ) -> None:
        if source_name == "" or (destination.kind is DestinationKind.EXCHANGE and
                                 destination.name == ""):
            raise AccessRefused("operation not permitted on the default exchange")
        source = self.exchanges.get(source_name)
        if source is None:
            return  # unbinding what does not exist succeeds, as in RabbitMQ
        if source.unbind(destination, routing_key, arguments):
            if destination.kind is DestinationKind.EXCHANGE:
                self.exchange_bindings -= 1
            self._record_binding(UNBIND, source, destination, routing_key, arguments)
            if source.auto_delete and not source.binding_count:
                self._remove_exchange(source)

    def _record_binding(self, op: int, source: Exchange, destination: Destination,
                        routing_key: str, arguments: FieldTable) -> None:
        """Rule 7: only a binding between durable objects is recorded."""
        journal = self.journal
        if journal is None or not source.durable:
            return
        if destination.kind is DestinationKind.QUEUE:
            queue = self.queues.get(destination.name)
            if queue is None or queue.journal is None:
                return
            kind = "queue"
        else:
            target = self.exchanges.get(destination.name)
            if target is None or not target.durable:
                return
            kind = "exchange"
        journal.binding(op, source.name, kind, destination.name, routing_key, arguments)

    def has_binding(
        self, source_name: str, destination: Destination, routing_key: str,
        arguments: FieldTable,
    ) -> bool:
        source = self.exchanges.get(source_name)
        return source is not None and source.has_binding(destination, routing_key, arguments)

    def bindings(self) -> list[Binding]:
        """Every binding, with its own copy of the arguments: introspection must not hand out
        the live table (statistics rule 1)."""
        result: list[Binding] = []
        for exchange in self.exchanges.values():
            result.extend(
                replace(binding, arguments=dict(binding.arguments))
                for binding in exchange.bindings()
            )
        return result

    # -- queues -----------------------------------------------------------------------------

    def check_queue_equivalent(
        self, queue: Queue, *, durable: bool, auto_delete: bool, arguments: FieldTable,
    ) -> None:
        """RabbitMQ's ``assert_equivalence`` after the exclusive-owner check (which the
        caller makes: a different ``exclusive`` flag is a 405, not an inequivalence)."""
        what = queue_text(queue.name)
        check_flag(what, "durable", durable, queue.durable)
        check_flag(what, "auto_delete", auto_delete, queue.auto_delete)
        keys = QUORUM_QUEUE_ARGS if queue.limits.quorum else CLASSIC_QUEUE_ARGS
        check_arguments(what, keys, arguments, queue.arguments)

    def add_queue(self, queue: Queue) -> None:
        self.queues[queue.name] = queue

    def remove_queue(self, queue: Queue) -> int:
        """Delete ``queue`` and its bindings; return how many ready messages died with it.
        The caller cancels its consumers."""
        count = queue.delete()
        del self.queues[queue.name]
        self._unbind_everywhere(Destination(DestinationKind.QUEUE, queue.name))
        return count

    # -- routing ----------------------------------------------------------------------------

    def route(
        self, exchange: Exchange, routing_key: str, headers: FieldTable | None,
    ) -> Collection[Queue]:
        """The queues a message published to ``exchange`` with ``routing_key`` reaches."""
        if exchange.name == "":
            queue = self.queues.get(routing_key)
            return (queue,) if queue is not None else ()
        destinations = exchange.route(routing_key, headers)
        queues = self.queues
        if not self.exchange_bindings:
            # Without exchange-to-exchange bindings every destination is a queue.
            return [queues[destination.name] for destination in destinations]
        found: dict[str, Queue] = {}
        visited = {exchange.name}
        pending: list[Collection[Destination]] = [destinations]
        while pending:
            for destination in pending.pop():
                if destination.kind is DestinationKind.QUEUE:
                    found[destination.name] = queues[destination.name]
                elif destination.name not in visited:
                    visited.add(destination.name)
                    pending.append(
                        self.exchanges[destination.name].route(routing_key, headers)
                    )
        return found.values()

    def route_keys(
        self, exchange: Exchange, keys: Sequence[str], headers: FieldTable | None,
    ) -> Collection[Queue]:
        """The queues reached by publishing to ``exchange`` with any of ``keys`` (CC/BCC), or
        through its alternate exchanges when they reach none (rule 6)."""
        route = self.route
        seen = {exchange.name}
        while True:
            if len(keys) == 1:
                queues = route(exchange, keys[0], headers)
            else:
                found: dict[str, Queue] = {}
                for key in keys:
                    found.update((queue.name, queue) for queue in route(exchange, key, headers))
                queues = found.values()
            if queues:
                return queues
            alternate = exchange.arguments.get("alternate-exchange")
            if not isinstance(alternate, str) or alternate in seen:
                return queues
            seen.add(alternate)
            following = self.exchanges.get(alternate)
            if following is None:
                return queues
            exchange = following

    def new_queue_name(self, make_name: Callable[[str], str]) -> str:
        while True:
            name = make_name("amq.gen-")
            if name not in self.queues:
                return name
