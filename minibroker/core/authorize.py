"""The permission gate: a connection's commands checked against its user's permissions
(``principal.py``) before the core runs them — the access table applied to core commands.

Rules:

1. One :class:`Gate` per connection, made when its vhost opened. The session calls
   :meth:`Gate.check` with each command before running it; a refusal raises the principal's
   error (403 ACCESS_REFUSED on the channel, RabbitMQ's texts) and the command never runs, so
   a refused operation changes nothing.
2. Checks that depend on what exists (a declare of a new exchange or queue, the type of a
   bind's source exchange, a publish to a topic exchange) read the vhost's topology, never
   change it. Argument checks RabbitMQ makes before permissions (an unknown exchange type) are
   left to the core: the gate lets such a command through unchecked so the core answers it.
3. A server-named queue is checked under a name like the one it will get: the gate runs
   before the core generates the name, so it makes its own with the injected ``make_name``
   (``amq.gen-`` and a random part, as RabbitMQ names the queue in its refusal).
4. The publish path is the hot path: the exchanges the user may write to are remembered per
   gate until the registry's epoch moves, topic permissions are looked at only when the user
   has any in this vhost, and :meth:`Gate.passes` answers an allowed publish without the
   topology (one type test, one comparison, one set lookup).
"""

from __future__ import annotations

from collections.abc import Callable

from minibroker.core import commands as c
from minibroker.core.access import AccessControl
from minibroker.core.deadletter import header_keys
from minibroker.core.exchanges import EXCHANGE_TYPES
from minibroker.core.principal import Principal
from minibroker.core.topology import Topology
from minibroker.message import FieldTable, Message

__all__ = ["Gate"]

#: The name prefix of server-named queues (rule 3).
SERVER_NAMED_PREFIX = "amq.gen-"


def _argument(arguments: FieldTable | None, key: str) -> str | None:
    value = arguments.get(key) if arguments else None
    return value if isinstance(value, str) else None


class Gate:
    """The permission checks of one connection (rule 1)."""

    __slots__ = ("_access", "_epoch", "_make_name", "_topic", "_written", "principal")

    def __init__(self, access: AccessControl, principal: Principal, *,
                 make_name: Callable[[str], str] | None = None) -> None:
        self._access = access
        self.principal = principal
        self._make_name = make_name
        #: Exchanges the user may write to, as of registry epoch ``_epoch`` (rule 4).
        self._written: set[str] = set()
        self._epoch = -1
        #: Does the user have topic permissions in this vhost (as of ``_epoch``)?
        self._topic = False

    def passes(self, command: object) -> bool:
        """The publish fast path (rule 4): True when ``command`` is a publish the gate has
        already allowed and that needs no topology; otherwise call :meth:`check`."""
        if type(command) is c.Publish and self._epoch == self._access.epoch and not self._topic:
            return command.message.exchange in self._written
        return False

    def check(self, command: object, topology: Topology) -> None:
        """Raise the refusal ``command`` gets, if any (rules 1-3)."""
        kind = type(command)
        if kind is c.Publish or kind is c.PublishMany:
            if self._epoch != self._access.epoch:
                self._renew()
            if kind is c.Publish:
                self._publish(command.message, topology)  # type: ignore[attr-defined]
            elif command.uniform:  # type: ignore[attr-defined]  # one exchange, one key
                self._publish(command.messages[0][0], topology)  # type: ignore[attr-defined]
            else:
                last = None
                for message, _ in command.messages:  # type: ignore[attr-defined]
                    if message.exchange != last or self._topic:
                        self._publish(message, topology)
                        last = message.exchange
        elif kind in _CHECKED:
            self._other(command, topology)

    # -- publish (rule 4) -------------------------------------------------------------------

    def _renew(self) -> None:
        """The registry changed: forget what was allowed."""
        access, principal = self._access, self.principal
        self._epoch = access.epoch
        self._written.clear()
        self._topic = bool(access.topic_permissions(principal.user, principal.vhost))

    def _publish(self, message: Message, topology: Topology) -> None:
        exchange = message.exchange
        principal = self.principal
        if exchange not in self._written:
            principal.basic_publish(exchange)
            if len(self._written) >= 256:
                self._written.clear()
            self._written.add(exchange)
        if not self._topic:
            return
        found = topology.exchanges.get(exchange)
        if found is None or found.internal:
            return  # the core answers 404 / 403 for these, in RabbitMQ's order
        headers = message.properties.headers or {}
        cc_bcc = [key for name in ("CC", "BCC") for key in header_keys(headers.get(name))]
        principal.publish_routing_keys(exchange, found.type_name, message.routing_key, cc_bcc)

    # -- the rest of the access table -------------------------------------------------------

    def _other(self, command: object, topology: Topology) -> None:
        principal = self.principal
        if isinstance(command, c.DeclareExchange):
            if not command.passive and command.type not in EXCHANGE_TYPES:
                return  # rule 2: the core refuses the type first
            principal.exchange_declare(
                command.exchange, passive=command.passive,
                exists=command.exchange in topology.exchanges,
                alternate_exchange=_argument(command.arguments, "alternate-exchange"))
        elif isinstance(command, c.DeleteExchange):
            principal.exchange_delete(command.exchange)
        elif isinstance(command, c.DeclareQueue):
            server_named = command.queue == ""
            name = command.queue
            if server_named:
                make_name = self._make_name
                name = SERVER_NAMED_PREFIX if make_name is None else make_name(
                    SERVER_NAMED_PREFIX)
            principal.queue_declare(
                name, passive=command.passive, exists=name in topology.queues,
                server_named=server_named,
                dead_letter_exchange=_argument(command.arguments, "x-dead-letter-exchange"),
                queue_count=len(topology.queues))
        elif isinstance(command, c.DeleteQueue):
            principal.queue_delete(command.queue)
        elif isinstance(command, c.PurgeQueue):
            principal.queue_purge(command.queue)
        elif isinstance(command, c.Get):
            principal.basic_get(command.queue)
        elif isinstance(command, c.Consume):
            principal.basic_consume(command.queue)
        elif isinstance(command, (c.ReadStream, c.CommitOffset, c.QueryOffset)):
            # The native stream reads: read on the stream, as RabbitMQ's stream protocol
            # checks reading, storing and querying offsets (rabbit_stream_reader).
            principal.basic_get(command.queue)
        elif isinstance(command, (c.BindQueue, c.UnbindQueue)):
            source = topology.exchanges.get(command.exchange)
            principal.queue_bind(command.queue, command.exchange, command.routing_key,
                                 exchange_type=None if source is None else source.type_name)
        elif isinstance(command, (c.BindExchange, c.UnbindExchange)):
            source = topology.exchanges.get(command.source)
            principal.exchange_bind(command.destination, command.source, command.routing_key,
                                    source_type=None if source is None else source.type_name)


#: The commands :meth:`Gate._other` checks (the rest need no permission: acks, qos...).
_CHECKED = frozenset({
    c.DeclareExchange, c.DeleteExchange, c.DeclareQueue, c.DeleteQueue, c.PurgeQueue, c.Get,
    c.Consume, c.BindQueue, c.UnbindQueue, c.BindExchange, c.UnbindExchange,
    c.ReadStream, c.CommitOffset, c.QueryOffset,
})
