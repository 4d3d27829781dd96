"""The AMQP 0-9-1 adapter: plugs ``protocols/amqp091/`` into the session pipeline.

The wire rules — handshake, channel states, closing, heartbeat timing — are the sans-IO
:class:`~minibroker.protocols.amqp091.connection.AMQPConnection`'s; methods ⇄ commands are
``protocols/amqp091/mapping.py``'s. This class only joins them to a
:class:`~minibroker.server.session.Session` (``adapter.py`` describes the interface).

Rules:

1. The hot path — basic.publish, basic.ack, basic.deliver — skips the generic dispatch.
2. Errors name the offending method: a channel.close or connection.close carries the class and
   method id of the method that caused it (RabbitMQ does the same).
3. Heartbeats: "octets moved" is a flag set per read and per write, never a clock read per
   frame; the connection turns the flags into times at each sweep.
4. connection.blocked / unblocked go only to clients that announced the
   ``connection.blocked`` capability (RabbitMQ's rule).
5. A connection closed by the broker during the handshake is dropped without a word (there is
   no connection yet to say it on).
6. Tracing (``--trace``) logs every frame received as the codec decoded it, and every frame
   sent as decoded back from the octets written (``protocols/amqp091/tracing.py``); untraced,
   writes go straight to the session.
7. A run of deliveries (``DeliverRun``, ``core/effects.py`` rule 5) is encoded at once
   (``mapping.deliver_run_bytes``) and written with one ``session.write``; a run with a
   delivery that cannot be encoded writes the ones before it, then fails as that delivery
   alone would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from minibroker.accounts import session_login
from minibroker.core.commands import Ack, AckMany, Command
from minibroker.core.effects import Deliver, DeliverRun, Effect, Reply
from minibroker.errors import AMQPError
from minibroker.protocols.amqp091.connection import AMQPConnection, State
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame
from minibroker.protocols.amqp091.mapping import (
    command_for,
    deliver_bytes,
    deliver_run_bytes,
    effect_bytes,
    publish_command,
    publish_many,
    reply_bytes,
)
from minibroker.protocols.amqp091.methods import (
    BasicAck,
    BasicPublish,
    ConnectionBlocked,
    ConnectionUnblocked,
)
from minibroker.protocols.amqp091.tracing import SentFrames, describe
from minibroker.protocols.events import CloseSocket, ConnectionClosing
from minibroker.protocols.tracing import log_frame

if TYPE_CHECKING:
    from minibroker.server.session import Session

__all__ = ["AMQPAdapter"]


class AMQPAdapter:
    """AMQP 0-9-1, for one session."""

    name: ClassVar[str] = "amqp"

    def __init__(self, session: Session) -> None:
        self.session = session
        server = session.server
        config = server.config
        self._write = session.write
        self._sent_frames: SentFrames | None = None
        if config.trace:  # rule 6
            self._sent_frames = SentFrames()
            self._write = self._traced_write
        self.connection = AMQPConnection(
            self._write, login=session_login(session),
            open_vhost=session.tenancy.open_vhost, admit_channel=session.tenancy.admit_channel,
            frame_max=config.max_frame_size,
            channel_max=config.channel_max, heartbeat=config.heartbeat, now=server.now(),
            max_message_size=config.max_message_size,
        )
        if config.trace:
            self.connection.trace = self._trace_received
        self._received = False
        self._sent = False

    @property
    def heartbeat(self) -> int:
        return self.connection.heartbeat

    # -- input ------------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        self._received = True
        self.connection.receive_data(data)

    def buffered_input(self) -> int:
        """Bytes received but not yet frames (the session's frame timeout watches them)."""
        return self.connection.codec.buffered

    def partial_input(self) -> int:
        """Bytes held for frames and messages not complete yet (flow control counts them)."""
        return self.connection.codec.partial_bytes

    def events(self) -> Iterator[Any]:
        return self.connection.events()

    def command(self, frame: MethodFrame | ContentMethod) -> Command | None:
        method = frame.method
        if type(method) is BasicPublish and type(frame) is ContentMethod:  # rule 1
            return publish_command(self.session.id, frame)
        if type(method) is BasicAck:
            return Ack(self.session.id, frame.channel, method.delivery_tag, method.multiple)
        return command_for(self.session.id, frame)

    def batch_command(self, frames: Sequence[Any]) -> Command:
        first = frames[0]
        if type(first) is ContentMethod:
            return publish_many(self.session.id, frames)
        return AckMany(self.session.id, first.channel,
                       tuple(frame.method.delivery_tag for frame in frames))

    # -- output -----------------------------------------------------------------------------

    def send_reply(self, frame: MethodFrame | ContentMethod, reply: Reply | None) -> None:
        method = frame.method
        kind = type(method)
        if kind is BasicPublish or kind is BasicAck:
            return  # rule 1: no answer
        out = reply_bytes(frame.channel, method, reply, self.connection.frame_max)
        if out is not None:
            self._write(out)

    def send_effect(self, effect: Effect) -> None:
        if type(effect) is Deliver:  # rule 1
            self._write(deliver_bytes(effect, self.connection.frame_max))
            return
        if type(effect) is DeliverRun:  # rule 7
            frame_max = self.connection.frame_max
            try:
                data = deliver_run_bytes(effect, frame_max)
            except Exception:
                # One delivery cannot be encoded: the ones before it go out, then it fails,
                # as single deliveries would (encoding is deterministic: it fails again).
                for single in effect.deliveries():
                    self._write(deliver_bytes(single, frame_max))
                raise
            self._write(data)
            return
        out = effect_bytes(effect, self.connection.frame_max,
                           self.connection.consumer_cancel_notify)
        if out is not None:
            self._write(out)

    def before_flush(self) -> None:
        pass  # nothing is held back

    def flushed(self) -> None:
        self._sent = True

    def _trace_received(self, direction: str, channel: int, item: object) -> None:
        if direction == "in":  # what we send is traced from the octets (rule 6)
            channel, text = describe(item)  # type: ignore[arg-type]
            log_frame(self.session.peer, self.session.id, "in", channel, text)

    def _traced_write(self, data: bytes) -> None:
        self.session.write(data)
        assert self._sent_frames is not None
        for channel, text in self._sent_frames.feed(data):
            log_frame(self.session.peer, self.session.id, "out", channel, text)

    # -- state, closing, time ---------------------------------------------------------------

    def channel_is_open(self, channel: int) -> bool:
        state = self.connection.channels.get(channel)
        return (self.connection.state is State.OPEN and state is not None
                and state.name == "OPEN")

    def close_channel(self, channel: int, reply_code: int, reply_text: str, *,
                      frame: Any = None, error: AMQPError | None = None) -> bool:
        if not self.channel_is_open(channel):
            return False
        class_id = method_id = 0
        if frame is not None:  # rule 2
            class_id, method_id = frame.method.CLASS_ID, frame.method.METHOD_ID
        self.connection.close_channel(channel, reply_code, reply_text, class_id, method_id)
        return True

    def close_connection(self, reply_code: int, reply_text: str, *, frame: Any = None,
                         error: AMQPError | None = None) -> ConnectionClosing | CloseSocket | None:
        connection = self.connection
        if connection.state is State.CLOSING or connection.state is State.CLOSED:
            return None
        if connection.state is not State.OPEN:  # rule 5
            return CloseSocket("closed by the broker during the handshake")
        class_id = error.class_id if error is not None else 0
        method_id = error.method_id if error is not None else 0
        if not class_id and frame is not None:  # rule 2
            class_id, method_id = frame.method.CLASS_ID, frame.method.METHOD_ID
        text = error.text if error is not None else reply_text
        return connection.close_connection(reply_code, text, class_id, method_id)

    def tick(self, now: float, *, heard: bool) -> bool:
        # While we do not read it (flow control, fairness, a fault) its silence is ours: count
        # it as heard, and keep sending heartbeats (RabbitMQ pauses only the peer monitor).
        sent, received = self._sent, self._received or heard
        self._sent = self._received = False
        return self.connection.tick(now, sent=sent, received=received)

    def set_blocked(self, reason: str | None) -> bool:
        connection = self.connection
        if (connection.state is not State.OPEN
                or connection.client_capabilities.get("connection.blocked") is not True):
            return False  # rule 4
        if reason is None:
            connection.send_method(0, ConnectionUnblocked())
        else:
            connection.send_method(0, ConnectionBlocked(reason))
        return True
