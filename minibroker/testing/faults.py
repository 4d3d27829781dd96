"""Fault injection for a test broker: refused publishes, late or lost replies, blocked publishers.

Rules:

1. Nothing here costs anything until a fault is armed: the injector is the server's
   ``interceptor`` (``server/adapter.py``) only while a fault is armed, and steps down when the
   last one is used up. While it is registered, sessions hand it every command on its own (no
   batches), so it sees each publish as the client sent it.
2. ``nack_publishes(count, queue=|exchange=)``: the next ``count`` publishes that the exchange
   would route to ``queue`` (or that name ``exchange``) are *not enqueued*: RabbitMQ's
   ``basic.nack`` to a publisher means "the broker could not take responsibility for the
   message", so the useful fault is a message that really is gone. On a channel in confirm mode
   the publisher gets ``basic.nack`` for it (its sequence number is used as usual); on a channel
   without confirms the message is silently dropped. Publishes that the core would refuse (no
   such exchange...) are not counted: they fail as they would.
3. ``delay_reply(method, seconds)`` / ``drop_reply(method)``: the reply to the next ``count``
   commands of an AMQP method that reaches the core (``queue.declare``, ``basic.consume``,
   ``queue.bind``...) is sent ``seconds`` later on the broker's clock (a ``ManualClock`` delays
   it until ``advance``) or never. The command itself is carried out at once; its effects (e.g.
   the first deliveries after a consume-ok) are held with the reply, so they still follow it.
4. ``block()``: AMQP clients that announced the ``connection.blocked`` capability get
   ``connection.blocked``; any connection (either protocol) that publishes while blocked stops
   being read after that publish, as RabbitMQ's resource alarms do. ``unblock()`` resumes them
   and sends ``connection.unblocked``. The native protocol has no notification: a native
   publisher just stops making progress (TCP backpressure) until ``unblock()``.
"""

from __future__ import annotations

from collections.abc import Callable

from minibroker.core import commands as c
from minibroker.core.effects import Confirm, Effect, Outcome
from minibroker.message import Message
from minibroker.server.server import BrokerServer
from minibroker.server.session import Session
from minibroker.testing.history import Recorder
from minibroker.valueclass import valueclass

__all__ = ["METHOD_COMMANDS", "FaultInjector"]

#: AMQP method names -> the core command each becomes (the methods whose reply can be faulted).
METHOD_COMMANDS: dict[str, type] = {
    "exchange.declare": c.DeclareExchange, "exchange.delete": c.DeleteExchange,
    "exchange.bind": c.BindExchange, "exchange.unbind": c.UnbindExchange,
    "queue.declare": c.DeclareQueue, "queue.delete": c.DeleteQueue, "queue.bind": c.BindQueue,
    "queue.unbind": c.UnbindQueue, "queue.purge": c.PurgeQueue, "basic.qos": c.Qos,
    "basic.consume": c.Consume, "basic.cancel": c.Cancel, "basic.get": c.Get,
    "basic.recover": c.Recover, "confirm.select": c.ConfirmSelect, "tx.select": c.TxSelect,
    "tx.commit": c.TxCommit, "tx.rollback": c.TxRollback,
}

#: Where a refused publish is sent instead: the default exchange, a queue name that cannot exist
#: (queue.declare with an empty name makes the server choose one), so it is routed nowhere.
_NOWHERE = ""


@valueclass()
class _PublishNack:
    remaining: int
    queue: str | None
    exchange: str | None


@valueclass()
class _ReplyFault:
    command: type
    remaining: int
    delay: float | None  #: None = drop


class FaultInjector:
    """The faults armed on one server (loop thread only); an ``Interceptor`` while armed."""

    def __init__(self, server: BrokerServer, recorder: Recorder) -> None:
        self.server = server
        self.recorder = recorder
        self._nacks: list[_PublishNack] = []
        self._replies: list[_ReplyFault] = []
        self.blocked: str | None = None
        self._paused: set[Session] = set()
        #: Faults carried out so far (e.g. publishes refused), for the test's assertions.
        self.refused = 0

    # -- arming -----------------------------------------------------------------------------

    def nack_publishes(self, count: int, *, queue: str | None, exchange: str | None) -> None:
        if (queue is None) == (exchange is None):
            raise ValueError("nack_publishes needs exactly one of queue= or exchange=")
        if count < 1:
            raise ValueError("count must be at least 1")
        self._nacks.append(_PublishNack(count, queue, exchange))
        self._install()

    def fault_reply(self, method: str, count: int, delay: float | None) -> None:
        command = METHOD_COMMANDS.get(method)
        if command is None:
            known = ", ".join(sorted(METHOD_COMMANDS))
            raise ValueError(f"no reply of {method!r} can be faulted; known methods: {known}")
        if count < 1:
            raise ValueError("count must be at least 1")
        self._replies.append(_ReplyFault(command, count, delay))
        self._install()

    def block(self, reason: str) -> int:
        """Returns how many connections were told (AMQP ones with the capability)."""
        self.blocked = reason
        self._install()
        return sum(session.set_blocked(reason) for session in list(self.server.sessions.values()))

    def unblock(self) -> int:
        if self.blocked is None:
            return 0
        self.blocked = None
        for session in self._paused:
            if not session.closed:
                session.release_reading("fault")
        self._paused.clear()
        told = sum(session.set_blocked(None) for session in list(self.server.sessions.values()))
        self._install()
        return told

    def clear(self) -> None:
        self._nacks.clear()
        self._replies.clear()
        self.unblock()
        self.refused = 0
        self._install()

    def _install(self) -> None:
        armed = bool(self._nacks or self._replies) or self.blocked is not None
        self.server.interceptor = self if armed else None

    # -- publishes --------------------------------------------------------------------------

    def execute(self, session: Session, command: c.Command) -> Outcome:
        """Run a session's command: publishes meet the armed publish faults (rules 2, 4)."""
        if type(command) is not c.Publish:
            return self.server.execute(command)
        outcome = self.publish(command)
        if self.blocked is not None and session not in self._paused:
            session.hold_reading("fault")  # rule 4: read no more from a publisher
            self._paused.add(session)
        return outcome

    def publish(self, command: c.Publish) -> Outcome:
        """Run a publish through the armed nack faults; the test handle's publishes come here
        too, since they reach the core without a session."""
        if self._nacks:
            fault = self._matching_nack(command.message)
            if fault is not None:
                return self._refuse(command, fault)
        return self.server.execute(command)

    def _matching_nack(self, message: Message) -> _PublishNack | None:
        topology = self.server.broker.topology
        exchange = topology.exchanges.get(message.exchange)
        if exchange is None:
            return None  # the core refuses it (404), as without the fault
        routed: set[str] | None = None
        for fault in self._nacks:
            if fault.exchange is not None:
                if fault.exchange == message.exchange:
                    return fault
                continue
            if routed is None:
                queues = topology.route(exchange, message.routing_key,
                                        message.properties.headers)
                routed = {queue.name for queue in queues}
            if fault.queue in routed:
                return fault
        return None

    def _refuse(self, command: c.Publish, fault: _PublishNack) -> Outcome:
        fault.remaining -= 1
        if not fault.remaining:
            self._nacks.remove(fault)
            self._install()
        self.refused += 1
        # Publishing the original to nowhere runs every check the core makes on a publish and
        # takes the channel's next confirm sequence number: the confirm is turned into a nack.
        stand_in = Message(_NOWHERE, _NOWHERE, b"")
        recorder = self.recorder
        broker = self.server.broker
        observer, broker.observer = broker.observer, None  # the stand-in is not history
        try:
            outcome = self.server.execute(c.Publish(command.connection, command.channel,
                                                    stand_in))
        finally:
            broker.observer = observer
        target = f"queue '{fault.queue}'" if fault.queue else f"exchange '{fault.exchange}'"
        recorder.refused(command.message, command.connection, command.channel,
                         f"injected publish nack ({target})")
        effects: list[Effect] = []
        for effect in outcome.effects:
            if type(effect) is Confirm:
                effect = Confirm(effect.connection, effect.channel, effect.delivery_tag,
                                 effect.multiple, ack=False)
            effects.append(effect)
        return Outcome(None, effects)

    # -- replies ----------------------------------------------------------------------------

    def hold_reply(self, session: Session, command: c.Command,
                   send: Callable[[], None]) -> bool:
        """Rule 3: hold back, or drop, the reply to a command a reply fault names."""
        for fault in self._replies:
            if type(command) is fault.command:
                break
        else:
            return False
        fault.remaining -= 1
        if not fault.remaining:
            self._replies.remove(fault)
            self._install()
        if fault.delay is not None:
            server = self.server
            server.clock.call_at(server.now() + fault.delay, send)
        return True
