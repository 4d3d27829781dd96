"""The test handle's actions: declare, bind, publish, get, purge, delete — no client needed.

Rules:

1. Every action is one core command (``Broker.handle``, through the server's ``execute`` like
   a client's command) on the toolkit's own connection, :data:`TOOLKIT_CONNECTION`: opened just
   before the command and closed just after it, on the broker's loop, in one go. So it never
   shows in ``connections()``, ``statistics()`` or ``wait_for_connections``, and it never
   takes a connection id a client would get (clients are numbered from 1).
2. Errors are the core's, as a client's channel would get them: ``NotFound`` (404),
   ``PreconditionFailed`` (406), ``ResourceLocked`` (405)..., raised to the test with the
   broker left as it was.
3. What an action sets in motion is carried out as for a client: a publish or a purge that
   starts deliveries to consumers, a deleted queue that cancels its consumers. Waiters are
   checked afterwards. Armed faults apply too (``nack_publishes`` refuses a handle's publish
   as it would any other).
4. A published message must be one the wire could carry: its names and properties go through
   the native codec (both directions) first, so a property no client could send (a 300-byte
   ``correlation_id``, a header integer beyond 64 bits) is refused here, with the codec's
   error, rather than breaking the consumer it would be delivered to. The body is not sent
   through it: its size is not the native frame's business (AMQP clients split big bodies).
"""

from __future__ import annotations

from collections.abc import Mapping

from minibroker.core import commands as c
from minibroker.core.effects import Effect, GetOk, QueueDeclareOk, QueueDeleteOk, QueuePurgeOk
from minibroker.core.fates import Fate
from minibroker.message import FieldTable, Message, Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec
from minibroker.testing.controller import Controller
from minibroker.valueclass import valueclass

__all__ = ["TOOLKIT_CONNECTION", "Actions", "GotMessage", "default_user"]

#: The connection id of the handle's own actions (in the history's events, for instance).
TOOLKIT_CONNECTION = -1
_CHANNEL = 1


@valueclass(frozen=True)
class GotMessage:
    """A message taken from a queue by :meth:`~minibroker.testing.BrokerAPI.get`."""

    exchange: str
    routing_key: str
    body: bytes
    properties: Properties
    redelivered: bool
    #: Messages still ready in the queue after this one.
    message_count: int


class Actions:
    """Runs the actions on the broker's loop (rule 1); the handles call it through ``_call``."""

    def __init__(self, controller: Controller) -> None:
        self._controller = controller

    def _run(self, command: c.Command) -> object:
        controller = self._controller
        server = controller.server
        user, _ = default_user(controller.config.users)
        effects: list[Effect] = []
        server.execute(c.OpenConnection(TOOLKIT_CONNECTION, user=user, peer="test toolkit",
                                        connection_name="minibroker.testing"))
        try:
            server.execute(c.OpenChannel(TOOLKIT_CONNECTION, _CHANNEL))
            if type(command) is c.Publish:  # armed publish faults apply to the handle too
                outcome = controller.faults.publish(command)
            else:
                outcome = server.execute(command)
            effects.extend(outcome.effects)
            return outcome.reply
        finally:
            # The connection has no consumer, nothing unacked (gets are no-ack) and no exclusive
            # queue: closing it changes nothing else.
            effects.extend(server.execute(c.CloseConnection(TOOLKIT_CONNECTION)).effects)
            if server.durability is not None:
                # The action answered, as a reply to a client would: what it changed is
                # written first (``server/durability.py`` rule 2).
                server.durability.flush()
            server.apply_effects([effect for effect in effects
                                  if effect.connection != TOOLKIT_CONNECTION])
            controller.check_waiters()

    # -- topology -------------------------------------------------------------------------------

    def declare_exchange(self, exchange: str, type: str, durable: bool, auto_delete: bool,
                         internal: bool, arguments: FieldTable | None) -> None:
        self._run(c.DeclareExchange(TOOLKIT_CONNECTION, _CHANNEL, exchange, type, False,
                                    durable, auto_delete, internal, arguments or None))

    def declare_queue(self, queue: str, durable: bool, auto_delete: bool,
                      arguments: FieldTable | None) -> str:
        reply = self._run(c.DeclareQueue(TOOLKIT_CONNECTION, _CHANNEL, queue, False, durable,
                                         False, auto_delete, arguments or None))
        assert isinstance(reply, QueueDeclareOk)
        return reply.queue

    def bind(self, queue: str, exchange: str, routing_key: str,
             arguments: FieldTable | None) -> None:
        self._run(c.BindQueue(TOOLKIT_CONNECTION, _CHANNEL, queue, exchange, routing_key,
                              arguments or None))

    def bind_exchange(self, destination: str, source: str, routing_key: str,
                      arguments: FieldTable | None) -> None:
        self._run(c.BindExchange(TOOLKIT_CONNECTION, _CHANNEL, destination, source,
                                 routing_key, arguments or None))

    def delete_queue(self, queue: str, if_unused: bool, if_empty: bool) -> int:
        reply = self._run(c.DeleteQueue(TOOLKIT_CONNECTION, _CHANNEL, queue, if_unused,
                                        if_empty))
        assert isinstance(reply, QueueDeleteOk)
        return reply.message_count

    def delete_exchange(self, exchange: str, if_unused: bool) -> None:
        self._run(c.DeleteExchange(TOOLKIT_CONNECTION, _CHANNEL, exchange, if_unused))

    # -- messages -------------------------------------------------------------------------------

    def publish(self, message: Message, mandatory: bool) -> tuple[str, ...]:
        message = _carried_by_the_wire(message)
        broker = self._controller.broker
        observer = broker.observer
        routed: list[tuple[str, ...]] = []

        def watch(fate: Fate) -> None:
            if fate.kind == "routed" and fate.message is message:
                routed.append(fate.queues)
            if observer is not None:
                observer(fate)

        broker.observer = watch
        try:
            self._run(c.Publish(TOOLKIT_CONNECTION, _CHANNEL, message, mandatory))
        finally:
            broker.observer = observer
        return routed[0] if routed else ()

    def get(self, queue: str) -> GotMessage | None:
        reply = self._run(c.Get(TOOLKIT_CONNECTION, _CHANNEL, queue, no_ack=True))
        if not isinstance(reply, GetOk):
            return None
        message = reply.message
        return GotMessage(reply.exchange, reply.routing_key, bytes(message.body),
                          message.properties, reply.redelivered, reply.message_count)

    def purge(self, queue: str) -> int:
        reply = self._run(c.PurgeQueue(TOOLKIT_CONNECTION, _CHANNEL, queue))
        assert isinstance(reply, QueuePurgeOk)
        return reply.message_count


def default_user(users: Mapping[str, str]) -> tuple[str, str]:
    """The login the handle's URLs and actions use: guest when configured (RabbitMQ's default
    user), else the first configured user (guest/guest when there is none: nobody logs in)."""
    if "guest" in users or not users:
        return "guest", users.get("guest", "guest")
    user = next(iter(users))
    return user, users[user]


def _carried_by_the_wire(message: Message) -> Message:
    """Rule 4: the message as the broker would receive it from a native client."""
    sender = NativeCodec(role="client")
    receiver = NativeCodec(role="server")
    frame = f.Publish(_CHANNEL, message.exchange, message.routing_key, False,
                      message.properties, b"")
    receiver.receive_data(sender.send_preamble() + sender.send(frame))
    received = receiver.next_frame()
    assert isinstance(received, f.Publish)
    return Message(received.exchange, received.routing_key, message.body, received.properties)

