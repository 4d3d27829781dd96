"""The AMQP 0-9-1 session: one client socket speaking AMQP, glued to the broker core.

``AMQPConnection`` (sans-IO) turns octets into events and writes the protocol's own replies;
``mapping`` turns method frames into core commands and core replies/effects into octets; this
class runs the commands on the server and does the I/O around them.

Rules:

1. Reply before effects (AMQP §4.6): a command's reply frame is written before the effects it
   caused are applied (consume-ok precedes the first delivery; a return precedes its confirm,
   because the core lists it first).
2. Soft errors (core ``ChannelError``): channel.close with the reply code, the offending
   method's class/method id and RabbitMQ's text; the channel is closed in the core at once
   (its unacked messages are requeued) and its input ignored until the client's close-ok.
3. Hard errors (core connection errors, codec ``ProtocolError``): connection.close, the
   connection leaves the core at once, the socket closes after the client's close-ok or
   :data:`CLOSE_GRACE` seconds. Other connections are unaffected.
4. The hot path — basic.publish, basic.ack, basic.deliver — skips the generic dispatch.
5. Heartbeats: the server's sweep calls :meth:`AMQPSession.check_heartbeat`; "octets moved"
   is a flag set per read and per flush, never a clock read per frame.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING

from minibroker.core.commands import (
    Ack,
    AckMany,
    CloseChannel,
    CloseConnection,
    OpenChannel,
    OpenConnection,
    PublishMany,
)
from minibroker.core.effects import Deliver, Effect
from minibroker.errors import AMQPError, ChannelError
from minibroker.protocols.amqp091.connection import (
    AMQPConnection,
    ChannelClosed,
    ChannelOpened,
    CloseSocket,
    ConnectionClosing,
    ConnectionOpened,
    State,
)
from minibroker.protocols.amqp091.events import HotRun
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame
from minibroker.protocols.amqp091.mapping import (
    command_for,
    deliver_bytes,
    effect_bytes,
    publish_command,
    reply_bytes,
)
from minibroker.protocols.amqp091.methods import (
    BasicAck,
    BasicPublish,
    ConnectionBlocked,
    ConnectionUnblocked,
    Method,
)
from minibroker.server.session import Session

if TYPE_CHECKING:
    from minibroker.server.server import BrokerServer

__all__ = ["CLOSE_GRACE", "AMQPSession"]

log = logging.getLogger("minibroker.server")
trace_log = logging.getLogger("minibroker.trace")

#: Seconds to wait for the client's connection.close-ok after we sent connection.close.
CLOSE_GRACE = 1.0


class _Replay(Exception):
    """Internal: handle a run frame by frame (fault injection wants every publish alone)."""


class AMQPSession(Session):
    protocol_name = "amqp"

    def __init__(
        self, server: BrokerServer, connection_id: int, transport: asyncio.Transport, peer: str
    ) -> None:
        super().__init__(server, connection_id, transport, peer)
        config = server.config
        self.connection = AMQPConnection(
            self.write, users=config.users, frame_max=config.max_frame_size,
            channel_max=config.channel_max, heartbeat=config.heartbeat, now=server.now(),
        )
        self._tracing = config.trace
        if config.trace:
            self.connection.trace = self._trace
        self._received = False
        self._sent = False
        #: The close-grace timer; the handshake timeout is the shell's, for every protocol
        #: (``ServerConfig.handshake_timeout``, ``BrokerProtocol.handshake_expired``).
        self._timer: asyncio.TimerHandle | None = None

    # -- input -------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._received = True
        connection = self.connection
        connection.receive_data(data)
        for event in connection.events():
            kind = type(event)
            if kind is ContentMethod or kind is MethodFrame:
                self._frame(event)  # type: ignore[arg-type]
            elif kind is HotRun:
                self._run(event.frames)  # type: ignore[union-attr]
            elif kind is ChannelOpened:
                self.server.execute(OpenChannel(self.id, event.channel))  # type: ignore[union-attr]
            elif kind is ChannelClosed:
                outcome = self.server.execute(
                    CloseChannel(self.id, event.channel)  # type: ignore[union-attr]
                )
                self.server.apply_effects(outcome.effects)
            elif kind is ConnectionOpened:
                self._opened(event)  # type: ignore[arg-type]
            elif kind is ConnectionClosing:
                self._closing()
            elif kind is CloseSocket:
                self._close_now()

    def _opened(self, event: ConnectionOpened) -> None:
        properties = event.client_properties
        name = properties.get("connection_name")
        self.server.execute(OpenConnection(
            self.id, user=event.user, peer=self.peer, client_properties=properties,
            connection_name=name if isinstance(name, str) else "",
        ))
        self.server.register(self)
        self.registered = self.handshake_done = True

    def _frame(self, frame: MethodFrame | ContentMethod) -> None:
        method = frame.method
        server = self.server
        try:
            kind = type(method)
            if kind is BasicPublish:  # rule 4
                command = publish_command(self.id, frame)  # type: ignore[arg-type]
                effects = server.execute(command).effects
                if effects:
                    server.apply_effects(effects)
                return
            if kind is BasicAck:
                ack: BasicAck = method  # type: ignore[assignment]
                effects = server.execute(
                    Ack(self.id, frame.channel, ack.delivery_tag, ack.multiple)
                ).effects
                if effects:
                    server.apply_effects(effects)
                return
            generic = command_for(self.id, frame)
            if generic is None:
                return
            outcome = server.execute(generic)
            out = reply_bytes(frame.channel, method, outcome.reply, self.connection.frame_max)
            hook = server.reply_hook
            if hook is not None and hook(self, generic,
                                         partial(self._finish, out, outcome.effects)):
                return
            if out is not None:
                self.write(out)
                if self._tracing:
                    self._trace("out", frame.channel, f"reply to {method.NAME}: {outcome.reply}")
            if outcome.effects:
                server.apply_effects(outcome.effects)
        except ChannelError as err:
            self._channel_error(frame.channel, err, method)
        except AMQPError as err:
            self._connection_error(err, method)

    def _run(self, frames: tuple[ContentMethod, ...] | tuple[MethodFrame, ...]) -> None:
        """A run of publishes or single acks of one channel (rule 4) as one core input
        (``PublishMany``/``AckMany``). The core checks a whole batch before it changes anything;
        if it refuses one, the run is replayed frame by frame, so what came before the faulty
        frame takes effect and the channel then closes, as if the frames had come one by one.
        (With the pipelining benchmark client: see docs/benchmarks.md, scenario 2.)"""
        server = self.server
        first = frames[0]
        command: PublishMany | AckMany
        try:
            if not server.batch_inputs:
                raise _Replay
            if type(first) is ContentMethod:
                publishes = [publish_command(self.id, frame) for frame in frames
                             if type(frame) is ContentMethod]
                command = PublishMany(self.id, first.channel, tuple(
                    (publish.message, publish.mandatory) for publish in publishes
                ))
            else:
                command = AckMany(self.id, first.channel, tuple(
                    frame.method.delivery_tag for frame in frames
                    if isinstance(frame.method, BasicAck)
                ))
            outcome = server.execute(command)
        except (AMQPError, _Replay):
            connection = self.connection
            for frame in frames:
                state = connection.channels.get(frame.channel)
                if connection.state is not State.OPEN or state is None or state.name != "OPEN":
                    continue  # the channel closed on an earlier frame of the run
                self._frame(frame)
            return
        if outcome.effects:
            server.apply_effects(outcome.effects)

    def _finish(self, out: bytes | None, effects: list[Effect]) -> None:
        """Send a reply and apply its effects (held back by ``server.reply_hook``)."""
        if self.connection.state is not State.OPEN:
            return
        if out is not None:
            self.write(out)
        if effects:
            self.server.apply_effects(effects)

    def close_channel(self, channel: int, reply_code: int, reply_text: str) -> bool:
        state = self.connection.channels.get(channel)
        if self.connection.state is not State.OPEN or state is None or state.name != "OPEN":
            return False
        self.connection.close_channel(channel, reply_code, reply_text)
        outcome = self.server.execute(CloseChannel(self.id, channel))
        self.server.apply_effects(outcome.effects)
        return True

    def set_blocked(self, reason: str | None) -> bool:
        # RabbitMQ sends connection.blocked / unblocked only to clients that announced the
        # "connection.blocked" capability in connection.start-ok.
        connection = self.connection
        if (connection.state is not State.OPEN
                or connection.client_capabilities.get("connection.blocked") is not True):
            return False
        if reason is None:
            connection.send_method(0, ConnectionUnblocked())
        else:
            connection.send_method(0, ConnectionBlocked(reason))
        return True

    # -- errors ------------------------------------------------------------------------------

    def _channel_error(self, channel: int, err: AMQPError, method: Method) -> None:
        log.warning(
            "%s: connection %d channel %d: %s on %s", self.peer, self.id, channel, err,
            method.NAME,
        )
        self.connection.close_channel(
            channel, err.reply_code, err.reply_text, method.CLASS_ID, method.METHOD_ID
        )
        # The channel is gone for the core right away: its unacked messages go back now.
        outcome = self.server.execute(CloseChannel(self.id, channel))
        self.server.apply_effects(outcome.effects)

    def _connection_error(self, err: AMQPError, method: Method | None) -> None:
        log.warning("%s: connection %d: %s", self.peer, self.id, err)
        class_id, method_id = err.class_id, err.method_id
        if not class_id and method is not None:
            class_id, method_id = method.CLASS_ID, method.METHOD_ID
        if self.connection.close_connection(err.reply_code, err.text, class_id, method_id):
            self._closing()

    def _closing(self) -> None:
        """We sent connection.close (rule 3)."""
        self._leave_core()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.server.loop.call_later(CLOSE_GRACE, self._close_now)

    def _close_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._leave_core()
        if not self.closed:
            self.close_transport()

    def _leave_core(self) -> None:
        if not self.registered:
            return
        self.registered = False
        outcome = self.server.execute(CloseConnection(self.id))
        self.server.unregister(self)
        self.server.apply_effects(outcome.effects)

    # -- output ------------------------------------------------------------------------------

    def on_effect(self, effect: Effect) -> None:
        if self._tracing:
            self._trace("out", effect.channel, effect)
        if type(effect) is Deliver:  # rule 4
            self.write(deliver_bytes(effect, self.connection.frame_max))
            return
        out = effect_bytes(effect, self.connection.frame_max,
                           self.connection.consumer_cancel_notify)
        if out is not None:
            self.write(out)

    def flush(self) -> None:
        if self._out:
            self._sent = True
        super().flush()

    def _trace(self, direction: str, channel: int, item: object) -> None:
        trace_log.info("[%d] %s ch%d %s", self.id, direction, channel, item)

    # -- lifecycle ---------------------------------------------------------------------------

    def connection_lost(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._leave_core()

    def shutdown(self, reply_code: int, reply_text: str) -> None:
        if self.closed:
            return
        if self.connection.state is State.OPEN:
            if self.connection.close_connection(reply_code, reply_text):
                self._closing()
        elif self.connection.state is not State.CLOSING:
            self._close_now()

    def check_heartbeat(self, now: float) -> None:
        # While we do not read it (flow control, fairness, a fault) its silence is ours: count
        # it as heard, and keep sending heartbeats (RabbitMQ pauses only the peer monitor).
        sent, received = self._sent, self._received or self.reading_held
        self._sent = self._received = False
        if not self.connection.tick(now, sent=sent, received=received):
            log.warning(
                "%s: connection %d missed heartbeats (%d s); closing", self.peer, self.id,
                self.connection.heartbeat,
            )
            self._close_now()
