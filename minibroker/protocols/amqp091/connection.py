"""The AMQP 0-9-1 connection state machine, server side: sans-IO, driven with octets.

:class:`AMQPConnection` owns the codec, the handshake (Start / Start-Ok / Tune / Tune-Ok /
Open), the connection and channel states, the close handshakes and the heartbeat timing. It
does no I/O and reads no clock: it writes octets through the ``write`` callable it was given
and takes ``now`` as an argument. Everything that concerns the broker core (queues, messages)
is handed to its owner as events; the owner maps them (``mapping.py``).

Rules:

1. Lazy events: :meth:`AMQPConnection.events` is a generator that handles one frame at a time,
   so a control reply it writes (channel.open-ok, channel.close-ok...) lands in the output after
   every reply its owner wrote for earlier frames — replies leave in request order (AMQP §4.7).
2. The owner gets the codec's own :class:`MethodFrame`/:class:`ContentMethod` objects for work on
   open channels (the hot path allocates no event of its own), plus a few events:
   :class:`ConnectionOpened`, :class:`ChannelOpened`, :class:`ChannelEnded` (the client closed
   it: release it in the core), :class:`ConnectionClosing` (we sent connection.close: leave the
   core, close the socket after the peer's close-ok or a grace period) and
   :class:`CloseSocket` (close it now).
3. Handshake order violations and bad tune-ok values close the socket without a word (AMQP
   §4.10.2, RabbitMQ); bad credentials send 403 ACCESS_REFUSED first only to clients that
   advertised ``authentication_failure_close``; an unknown vhost is 530 NOT_ALLOWED.
4. Channel rules (RabbitMQ's observed answers): a method on a channel that is not open is 504
   CHANNEL_ERROR "expected 'channel.open'"; a second channel.open is 504 "second
   'channel.open' seen"; a non-connection method on channel 0 is 504; a connection method on a
   non-zero channel is 503 COMMAND_INVALID; channel.flow active=false is 540 NOT_IMPLEMENTED.
5. After the server sent channel.close, every frame on that channel except channel.close and
   channel.close-ok is ignored (AMQP §2.3.7); after it sent connection.close, every frame but
   connection.close and connection.close-ok is ignored.
6. Heartbeats (AMQP §4.2.7, RabbitMQ's heartbeat guide): with a negotiated interval H > 0 a
   heartbeat frame is written when nothing was sent for H/2 seconds, and a peer silent for more
   than 2·H seconds is dead. H = 0 in tune-ok disables both, whatever the server proposed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from enum import Enum

from minibroker.config import login_ok
from minibroker.errors import ProtocolError
from minibroker.message import FieldTable
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.events import (
    ChannelEnded,
    ChannelOpened,
    CloseSocket,
    ConnectionClosing,
    ConnectionOpened,
    Event,
    HotRun,
)
from minibroker.protocols.amqp091.frames import (
    BadProtocolHeader,
    Frame,
    Heartbeat,
    MethodFrame,
    ProtocolHeader,
    encode_heartbeat,
    encode_method,
)
from minibroker.protocols.amqp091.handshake import (
    LOGIN_REFUSED,
    credentials,
    reply_text,
    server_properties,
)
from minibroker.protocols.amqp091.spec import FRAME_MIN_SIZE, PROTOCOL_HEADER

__all__ = [
    "AMQPConnection",
    "ChannelEnded",
    "ChannelOpened",
    "CloseSocket",
    "ConnectionClosing",
    "ConnectionOpened",
    "Event",
    "State",
    "reply_text",
    "server_properties",
]

log = logging.getLogger("minibroker.server")


class State(Enum):
    #: Waiting for ``AMQP 0 0 9 1``.
    AWAIT_HEADER = 0
    #: connection.start sent.
    AWAIT_START_OK = 1
    #: connection.tune sent.
    AWAIT_TUNE_OK = 2
    #: Negotiated; waiting for connection.open.
    AWAIT_OPEN = 3
    #: connection.open-ok sent: channels work.
    OPEN = 4
    #: We sent connection.close; waiting for close-ok (rule 5).
    CLOSING = 5
    #: Done; the socket must close.
    CLOSED = 6


class _Channel(Enum):
    OPEN = 0
    #: We sent channel.close; waiting for close-ok (rule 5).
    CLOSING = 1


_OPEN = _Channel.OPEN
_CLOSING = _Channel.CLOSING


class AMQPConnection:
    """One server-side AMQP 0-9-1 connection, from the protocol header to the socket close."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        *,
        users: Mapping[str, str],
        frame_max: int = 131072,
        channel_max: int = 2047,
        heartbeat: int = 60,
        now: float = 0.0,
    ) -> None:
        self._write = write
        self.users = users
        self.codec = AMQPCodec("server")
        self.state = State.AWAIT_HEADER
        self.channels: dict[int, _Channel] = {}
        #: The server's proposals (connection.tune), then the negotiated values.
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = heartbeat
        self._proposed_frame_max = frame_max
        self.user = ""
        self.mechanism = ""
        self.client_properties: FieldTable = {}
        self.client_capabilities: FieldTable = {}
        #: The client asked to hear about consumers the broker cancels (basic.cancel).
        self.consumer_cancel_notify = False
        #: Optional ``trace(direction, channel, method)`` hook for frame logging.
        self.trace: Callable[[str, int, object], None] | None = None
        self._last_in = now
        self._last_out = now

    # -- output ------------------------------------------------------------------------------

    def send_method(self, channel: int, method: m.Method) -> None:
        if self.trace is not None:
            self.trace("out", channel, method)
        self._write(encode_method(channel, method))

    def close_channel(
        self, channel: int, reply_code: int, text: str, class_id: int = 0, method_id: int = 0
    ) -> None:
        """Send channel.close for a soft error; the channel then ignores input (rule 5)."""
        if self.channels.get(channel) is not _OPEN:
            return
        self.channels[channel] = _CLOSING
        self.send_method(
            channel, m.ChannelClose(reply_code, reply_text(reply_code, text), class_id, method_id)
        )

    def close_connection(
        self, reply_code: int, text: str, class_id: int = 0, method_id: int = 0
    ) -> ConnectionClosing | None:
        """Send connection.close (a hard error or a shutdown); ``None`` if already closing."""
        if self.state in (State.CLOSING, State.CLOSED):
            return None
        self.state = State.CLOSING
        text = reply_text(reply_code, text)
        self.send_method(0, m.ConnectionClose(reply_code, text, class_id, method_id))
        return ConnectionClosing(reply_code, text)

    # -- input -------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        self.codec.receive_data(data)

    def events(self) -> Iterator[Event]:
        """Handle every buffered frame, one at a time (rule 1), yielding what the owner acts on.
        Stops after a :class:`CloseSocket`."""
        codec = self.codec
        channels = self.channels
        while True:
            try:
                frames = codec.frames()
            except BadProtocolHeader:
                # AMQP §4.2.2: "the server MUST respond with a valid protocol header [...] and
                # then close the socket connection".
                self._write(PROTOCOL_HEADER)
                self.state = State.CLOSED
                yield CloseSocket("unsupported protocol header")
                return
            except ProtocolError as err:
                if self.state is not State.OPEN:
                    self.state = State.CLOSED
                    yield CloseSocket(f"bad frame during the handshake: {err.text}")
                    return
                closing = self.close_connection(
                    err.reply_code, err.text, err.class_id, err.method_id
                )
                if closing is not None:
                    yield closing
                return
            if not frames:
                return
            run: list[Frame] = []  # a run of publishes or single acks of one channel
            for frame in frames:
                if self.trace is not None:
                    self.trace("in", getattr(frame, "channel", 0), frame)
                if run and not _runs_with(frame, run):
                    # The run is handled before this frame is even looked at: handling it may
                    # close the channel, and then this frame must find the channel closing.
                    yield _run_event(run)
                    run = []
                # The hot path: work for an open channel on an open connection.
                if (
                    self.state is State.OPEN
                    and type(frame) is not Heartbeat
                    and channels.get(frame.channel) is _OPEN  # type: ignore[union-attr]
                    and frame.method.CLASS_ID > 20  # type: ignore[union-attr]
                ):
                    if _batchable(frame):
                        run.append(frame)
                        continue
                    yield frame  # type: ignore[misc]
                    continue
                event = self._control(frame)
                if event is None:
                    continue
                yield event
                if type(event) is CloseSocket:
                    return
            if run:
                yield _run_event(run)

    # -- the slow path: handshake, channel and connection control ---------------------------

    def _control(self, frame: Frame) -> Event | None:
        state = self.state
        if type(frame) is Heartbeat:
            return None  # liveness only; the owner notes every octet received
        if state is State.OPEN:
            return self._running(frame)
        if state is State.CLOSING:
            kind = type(getattr(frame, "method", None))
            if kind is m.ConnectionClose or kind is m.ConnectionCloseOk:
                if kind is m.ConnectionClose:
                    self.send_method(0, m.ConnectionCloseOk())
                self.state = State.CLOSED
                return CloseSocket("connection closed")
            return None
        if state is State.CLOSED:
            return None
        return self._handshake(frame)

    def _handshake(self, frame: Frame) -> Event | None:
        state = self.state
        if state is State.AWAIT_HEADER and type(frame) is ProtocolHeader:
            self.state = State.AWAIT_START_OK
            self.send_method(0, m.ConnectionStart(
                0, 9, server_properties(), "AMQPLAIN PLAIN", "en_US",
            ))
            return None
        method = frame.method if type(frame) is MethodFrame else None
        if method is None or frame.channel != 0:  # type: ignore[union-attr]
            return self._drop("unexpected frame during the handshake")
        if state is State.AWAIT_START_OK and type(method) is m.ConnectionStartOk:
            return self._start_ok(method)
        if state is State.AWAIT_TUNE_OK and type(method) is m.ConnectionTuneOk:
            return self._tune_ok(method)
        if state is State.AWAIT_OPEN and type(method) is m.ConnectionOpen:
            if method.virtual_host != "/":
                return self.close_connection(
                    530, f"vhost {method.virtual_host} not found",
                    m.ConnectionOpen.CLASS_ID, m.ConnectionOpen.METHOD_ID,
                )
            self.state = State.OPEN
            self.send_method(0, m.ConnectionOpenOk(""))
            return ConnectionOpened(self.user, method.virtual_host, self.client_properties)
        if type(method) is m.ConnectionClose:
            self.send_method(0, m.ConnectionCloseOk())
            self.state = State.CLOSED
            return CloseSocket("client closed during the handshake")
        return self._drop(f"unexpected {method.NAME} during the handshake")

    def _drop(self, reason: str) -> CloseSocket:
        self.state = State.CLOSED
        return CloseSocket(reason)

    def _start_ok(self, method: m.ConnectionStartOk) -> Event | None:
        self.client_properties = method.client_properties
        capabilities = method.client_properties.get("capabilities")
        if isinstance(capabilities, dict):
            self.client_capabilities = capabilities
            self.consumer_cancel_notify = capabilities.get("consumer_cancel_notify") is True
        mechanism = method.mechanism
        login = credentials(mechanism, method.response)
        if login is None:
            # AMQP: a mechanism the server did not offer, or an unreadable response: "the
            # server MUST close the socket without sending any further data".
            return self._drop(f"unusable mechanism {mechanism!r} or response")
        user, password = login
        if not login_ok(self.users, user, password):
            log.warning("login refused for user %r (mechanism %s)", user, mechanism)
            if self.client_capabilities.get("authentication_failure_close") is True:
                return self.close_connection(
                    403, LOGIN_REFUSED.format(mechanism),
                    m.ConnectionStartOk.CLASS_ID, m.ConnectionStartOk.METHOD_ID,
                )
            return self._drop("login refused")
        self.user = user
        self.mechanism = mechanism
        self.state = State.AWAIT_TUNE_OK
        self.send_method(0, m.ConnectionTune(self.channel_max, self.frame_max, self.heartbeat))
        return None

    def _tune_ok(self, method: m.ConnectionTuneOk) -> Event | None:
        frame_max = method.frame_max
        # Tune-ok rules: frame-max may not exceed the server's, must be at least frame-min-size,
        # and 0 ("no limit") is refused when the server has one (errata #10; RabbitMQ drops the
        # socket in all three cases).
        limit = self._proposed_frame_max
        if frame_max < FRAME_MIN_SIZE or (limit and frame_max > limit):
            return self._drop(f"tune-ok frame_max {frame_max} outside {FRAME_MIN_SIZE}..{limit}")
        self.frame_max = frame_max
        self.codec.frame_max = frame_max
        # channel-max 0 is "no limit" (errata #10): keep ours; otherwise the lower one.
        if method.channel_max and (not self.channel_max or method.channel_max < self.channel_max):
            self.channel_max = method.channel_max
        # The client decides: 0 disables heartbeats even though we proposed an interval.
        self.heartbeat = method.heartbeat
        self.state = State.AWAIT_OPEN
        return None

    def _running(self, frame: Frame) -> Event | None:
        channel: int = frame.channel  # type: ignore[union-attr]
        method: m.Method = frame.method  # type: ignore[union-attr]
        if channel == 0:
            return self._channel_zero(method)
        if method.CLASS_ID == 10:
            return self._hard(503, f"{method.NAME} on channel {channel}", method)
        state = self.channels.get(channel)
        kind = type(method)
        if kind is m.ChannelOpen:
            if state is not None:
                return self._hard(504, "second 'channel.open' seen", method)
            if self.channel_max and len(self.channels) >= self.channel_max:
                return self._hard(
                    530,
                    f"number of channels opened ({len(self.channels)}) has reached the"
                    f" negotiated channel_max ({self.channel_max})",
                    method,
                )
            self.channels[channel] = _OPEN
            self.send_method(channel, m.ChannelOpenOk(""))
            return ChannelOpened(channel)
        if state is None:
            return self._hard(504, "expected 'channel.open'", method)
        if state is _CLOSING:
            if kind is m.ChannelClose:
                # Both sides closed at once: answer, and the channel is gone (RabbitMQ).
                self.send_method(channel, m.ChannelCloseOk())
                del self.channels[channel]
            elif kind is m.ChannelCloseOk:
                del self.channels[channel]
            return None  # rule 5
        if kind is m.ChannelClose:
            self.send_method(channel, m.ChannelCloseOk())
            del self.channels[channel]
            return ChannelEnded(channel)
        if kind is m.ChannelFlow:
            if not method.active:  # type: ignore[attr-defined]
                # RabbitMQ never stops deliveries on request.
                return self._hard(540, "active=false", method)
            self.send_method(channel, m.ChannelFlowOk(True))
            return None
        if kind is m.ChannelCloseOk or kind is m.ChannelFlowOk:
            return None  # answers to nothing we sent; harmless
        return frame  # type: ignore[return-value]  # a channel-class method we do not know

    def _channel_zero(self, method: m.Method) -> Event | None:
        kind = type(method)
        if kind is m.ConnectionClose:
            self.send_method(0, m.ConnectionCloseOk())
            self.state = State.CLOSED
            return CloseSocket("client closed the connection")
        if kind is m.ConnectionUpdateSecret:
            # RabbitMQ extension: the secret is not checked again (no expiring credentials).
            self.send_method(0, m.ConnectionUpdateSecretOk())
            return None
        if kind is m.ConnectionBlocked or kind is m.ConnectionUnblocked:
            return None  # server-to-client notifications; a client has nothing to tell us
        return self._hard(504, "unexpected method in connection state running", method)

    def _hard(self, reply_code: int, text: str, method: m.Method) -> ConnectionClosing | None:
        return self.close_connection(reply_code, text, method.CLASS_ID, method.METHOD_ID)

    # -- heartbeats --------------------------------------------------------------------------

    def tick(self, now: float, *, sent: bool, received: bool) -> bool:
        """Heartbeat bookkeeping (rule 6): ``sent``/``received`` say whether any octet moved
        since the last tick. Writes a heartbeat when due; returns ``False`` when the peer is
        dead."""
        if received:
            self._last_in = now
        if sent:
            self._last_out = now
        interval = self.heartbeat
        if not interval or self.state.value < State.AWAIT_OPEN.value or self.state is State.CLOSED:
            return True
        if now - self._last_in > 2 * interval:
            return False
        if now - self._last_out >= interval / 2:
            self._last_out = now
            self._write(encode_heartbeat())
        return True


def _batchable(frame: Frame) -> bool:
    """A publish, or an ack of one delivery: what may join a :class:`HotRun`."""
    method = frame.method  # type: ignore[union-attr]
    if isinstance(method, m.BasicAck):
        return not method.multiple
    return type(method) is m.BasicPublish


def _runs_with(frame: Frame, run: list[Frame]) -> bool:
    """Does ``frame`` extend ``run`` (same channel, same method, batchable)?"""
    if not run:
        return False
    first = run[0]
    return (frame.channel == first.channel  # type: ignore[union-attr]
            and type(frame.method) is type(first.method)  # type: ignore[union-attr]
            and _batchable(frame))


def _run_event(run: list[Frame]) -> Event:
    """A run of one frame goes out as itself (the single-frame fast path)."""
    if len(run) == 1:
        return run[0]  # type: ignore[return-value]
    return HotRun(tuple(run))
