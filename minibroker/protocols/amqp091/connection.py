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
   §4.10.2, RabbitMQ): tune-ok's frame-max above ours, below 4096 or 0, and its channel-max
   above ours or 0 (RabbitMQ: "The channel_max (4000) sent by the client is higher than the
   server's maximum (2047)", in its log only). Bad credentials send 403 ACCESS_REFUSED first
   only to clients that advertised ``authentication_failure_close``; an unreadable SASL
   response (``sasl.py``) closes the socket without a word. connection.open asks the owner's
   ``open_vhost`` before the open-ok, channel.open its ``admit_channel``: their refusals (an
   unknown vhost, no access, a limit) are 530 NOT_ALLOWED with RabbitMQ's texts.
4. Channel rules (RabbitMQ's observed answers): a method on a channel that is not open is 504
   CHANNEL_ERROR "expected 'channel.open'"; a second channel.open is 504 "second
   'channel.open' seen"; a non-connection method on channel 0 is 504; a connection method on a
   non-zero channel is 503 COMMAND_INVALID; channel.flow active=false is 540 NOT_IMPLEMENTED.
   Frames that follow the client's channel.close in the same read still find the closing
   channel, as RabbitMQ's reader holds it until it has handled the read: channel.open is 504
   "second 'channel.open' seen" (and the close-ok is never written), a second close is
   answered again, a close-ok from the client drops ours, anything else is ignored. Otherwise
   the close-ok is written before anything that follows. A content header over
   ``max_message_size`` closes its channel with 406 ``message size N is larger than configured
   max size M`` (RabbitMQ's text; RabbitMQ says it after reading the whole body, we before
   keeping any of it) and yields :class:`ChannelEnded` with that code.
5. After the server sent channel.close, every frame on that channel except channel.close and
   channel.close-ok is ignored (AMQP §2.3.7); after it sent connection.close, every frame but
   connection.close and connection.close-ok is ignored.
6. Heartbeats (AMQP §4.2.7, RabbitMQ's heartbeat guide): with a negotiated interval H > 0 a
   heartbeat frame is written when nothing was sent for H/2 seconds, and a peer silent for more
   than 2·H seconds is dead. H = 0 in tune-ok disables both, whatever the server proposed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from enum import Enum

from minibroker.core.access import LoginRefused
from minibroker.errors import AMQPError, ConnectionLevelError, NotAllowed, ProtocolError
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
    ContentMethod,
    Frame,
    Heartbeat,
    MethodFrame,
    OversizedContent,
    ProtocolHeader,
    encode_heartbeat,
    encode_method,
)
from minibroker.protocols.amqp091.handshake import reply_text, server_properties
from minibroker.protocols.amqp091.sasl import read_response
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
        login: Callable[[str | None, str | None, str], str],
        open_vhost: Callable[[str, str], None] | None = None,
        admit_channel: Callable[[], None] | None = None,
        frame_max: int = 131072,
        channel_max: int = 2047,
        heartbeat: int = 60,
        max_message_size: int | None = None,
        now: float = 0.0,
    ) -> None:
        self._write = write
        #: ``login(user, password, mechanism)`` -> the user name, or ``LoginRefused``.
        self.login = login
        #: ``open_vhost(user, vhost)`` at connection.open, before open-ok: raises the
        #: 530 ``NotAllowed`` RabbitMQ answers (unknown vhost, no access, a connection limit).
        self.open_vhost = open_vhost
        #: ``admit_channel()`` at channel.open, before open-ok: raises 530 ``NotAllowed`` for
        #: the user's ``max-channels``.
        self.admit_channel = admit_channel
        self.codec = AMQPCodec("server", max_message_size=max_message_size)
        self.state = State.AWAIT_HEADER
        self.channels: dict[int, _Channel] = {}
        #: The server's proposals (connection.tune), then the negotiated values.
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = heartbeat
        self._proposed_frame_max = frame_max
        self._proposed_channel_max = channel_max
        #: Channels the client closed while handling the current read (rule 4), and the
        #: close-oks not yet written for them.
        self._closed_this_read: set[int] = set()
        self._close_oks: list[int] = []
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
        if self._close_oks:
            self._write_close_oks()
        if self.trace is not None:
            self.trace("out", channel, method)
        self._write(encode_method(channel, method))

    def _write_close_oks(self) -> None:
        """The close-oks of channels the client closed (rule 4), before anything later."""
        pending, self._close_oks = self._close_oks, []
        for channel in pending:
            self.send_method(channel, m.ChannelCloseOk())

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
        # Rule 4: RabbitMQ never gets to write the close-ok of a channel closed in this read.
        self._close_oks.clear()
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
                if self._close_oks:
                    self._write_close_oks()
                return
            if self._closed_this_read:
                self._closed_this_read.clear()
            run: list[Frame] = []  # a run of publishes or single acks of one channel
            # What the run is made of: its method class and channel. Each frame's own is found
            # once, inline (it was three calls a frame). With the codec's _whole_content,
            # bench/instructions.py amqp (callgrind): 156,556 -> 141,267 instructions a
            # message; no-ack 126,202 -> 112,514.
            run_kind: type[m.Method] | None = None
            run_channel = -1
            for frame in frames:
                if self.trace is not None:
                    self.trace("in", getattr(frame, "channel", 0), frame)
                kind = type(frame)
                batch_kind: type[m.Method] | None = None
                if kind is ContentMethod or kind is MethodFrame:
                    method = frame.method  # type: ignore[union-attr]
                    method_kind = type(method)
                    if method_kind is m.BasicPublish or (
                            method_kind is m.BasicAck and not method.multiple):  # type: ignore[union-attr]
                        batch_kind = method_kind  # a publish, or an ack of one delivery
                if run and (batch_kind is not run_kind
                            or frame.channel != run_channel):  # type: ignore[union-attr]
                    # The run is handled before this frame is even looked at: handling it may
                    # close the channel, and then this frame must find the channel closing.
                    if self._close_oks:
                        self._write_close_oks()
                    yield _run_event(run)
                    run = []
                # The hot path: work for an open channel on an open connection.
                if (
                    self.state is State.OPEN
                    and (kind is ContentMethod or kind is MethodFrame)
                    and channels.get(frame.channel) is _OPEN  # type: ignore[union-attr]
                    and frame.method.CLASS_ID > 20  # type: ignore[union-attr]
                ):
                    if batch_kind is not None:
                        if not run:
                            run_kind = batch_kind
                            run_channel = frame.channel  # type: ignore[union-attr]
                        run.append(frame)
                        continue
                    if self._close_oks:
                        self._write_close_oks()
                    yield frame  # type: ignore[misc]
                    continue
                event = self._control(frame)
                if event is None:
                    continue
                if self._close_oks and not (type(event) is ChannelEnded
                                            and event.reply_code == 200):
                    self._write_close_oks()
                yield event
                if type(event) is CloseSocket:
                    return
            if run:
                if self._close_oks:
                    self._write_close_oks()
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
            try:
                if self.open_vhost is not None:
                    self.open_vhost(self.user, method.virtual_host)
                elif method.virtual_host != "/":
                    raise NotAllowed(f"vhost {method.virtual_host} not found")
            except ConnectionLevelError as err:
                return self.close_connection(
                    err.reply_code, err.text,
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
        try:
            user, password = read_response(mechanism, method.response)
        except AMQPError as err:
            # AMQP: a mechanism the server did not offer, or an unreadable response: "the
            # server MUST close the socket without sending any further data". RabbitMQ also
            # refuses a PLAIN authorization identity here (sasl.py rule 2).
            return self._drop(f"{err.reply_code} {err.text}")
        try:
            user = self.login(user, password, mechanism)
        except LoginRefused as err:
            if self.client_capabilities.get("authentication_failure_close") is True:
                return self.close_connection(
                    403, err.text,
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
        # RabbitMQ holds channel-max to the same rule: not above ours, not 0 ("no limit") when
        # we have one. (Errata #10 reads 0 as "no limit"; RabbitMQ refuses it.)
        channel_max = method.channel_max
        proposed = self._proposed_channel_max
        if proposed and not 1 <= channel_max <= proposed:
            return self._drop(f"tune-ok channel_max {channel_max} outside 1..{proposed}")
        self.frame_max = frame_max
        self.codec.frame_max = frame_max
        self.channel_max = channel_max
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
        if state is None and channel in self._closed_this_read:
            return self._after_client_close(channel, method)
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
            if self.admit_channel is not None:
                try:
                    self.admit_channel()
                except ConnectionLevelError as err:
                    return self._hard(err.reply_code, err.text, method)
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
        if type(frame) is OversizedContent:
            return self._oversized(frame)
        if kind is m.ChannelClose:
            # Rule 4: the close-ok goes out before anything that follows it, unless a frame of
            # this read closes the connection first.
            self._close_oks.append(channel)
            del self.channels[channel]
            self._closed_this_read.add(channel)
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

    def _after_client_close(self, channel: int, method: m.Method) -> Event | None:
        """A frame for a channel the client closed earlier in the same read, which RabbitMQ
        still hands to the closing channel (rule 4)."""
        kind = type(method)
        if kind is m.ChannelOpen:
            return self._hard(504, "second 'channel.open' seen", method)
        if kind is m.ChannelClose:
            self._close_oks.append(channel)  # answered again
        elif kind is m.ChannelCloseOk and channel in self._close_oks:
            self._close_oks.remove(channel)  # RabbitMQ drops the channel without its close-ok
        return None  # anything else is ignored

    def _oversized(self, frame: OversizedContent) -> ChannelEnded:
        """A content header over ``max_message_size``, on an open channel (rule 4)."""
        method = frame.method
        text = f"message size {frame.body_size} is larger than configured max size {frame.limit}"
        self.close_channel(frame.channel, 406, text, method.CLASS_ID, method.METHOD_ID)
        return ChannelEnded(frame.channel, 406, reply_text(406, text), by_peer=False)

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


def _run_event(run: list[Frame]) -> Event:
    """A run of one frame goes out as itself (the single-frame fast path)."""
    if len(run) == 1:
        return run[0]  # type: ignore[return-value]
    return HotRun(tuple(run))
