"""The server side of one native-protocol connection: bytes in, core commands, frames out.

The wire format is ``protocols/native/codec.py``, frames <-> commands ``mapping.py``; this module
keeps the connection's state: handshake, open channels, heartbeats, closing, order of writes.

Rules:

1. Handshake: preamble, ``Hello`` (credentials, when sent, checked against ``config.users``:
   403 if wrong), ``HelloOk`` with our limits, ``Tune`` (may only lower them; 0 frame size or
   channel max = ours), ``TuneOk``; only then does the core learn about the connection. Any
   other frame before that is 505 UNEXPECTED_FRAME.
2. Every read is decoded in one pass (``codec.frames()``) and each frame is run to completion:
   command, reply frame, then the command's effects (the reply precedes what it caused).
3. A core ``ChannelError`` closes the channel: ``ChannelClose`` with its code, and the core
   channel is closed at once (unacked messages return to their queues). Until the client's
   ``ChannelCloseOk`` other frames on that channel are ignored; AMQP channel.close: "After
   sending this method, any received methods except Close and Close-OK MUST be discarded. The
   response to receiving a Close after sending Close must be to send Close-Ok."
4. Hard errors (bad bytes 501/502/503, a frame on a channel that is not open 504, a frame out of
   place 505, a core ``ConnectionLevelError``) send ``ConnectionClose`` with the code and a text
   naming the problem, release the connection in the core, and wait briefly for the client's
   ``ConnectionCloseOk`` before closing the socket. Nothing else is read after bad bytes. Each is
   logged at warning level with the peer address; other connections never notice.
5. Heartbeats: send one when nothing was sent for half the negotiated interval; a peer that sent
   no bytes at all for two intervals is dropped (the core then requeues its unacked messages).
6. Runs of positive confirms go out as one ``ConfirmAck(multiple=True)`` (mapping's
   ``ConfirmCoalescer``) before any other frame of their channel, at the latest at the flush.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from functools import partial
from typing import TYPE_CHECKING, cast

from minibroker import __version__
from minibroker.config import login_ok
from minibroker.core import commands as c
from minibroker.core import effects as e
from minibroker.errors import (
    AccessRefused,
    AMQPError,
    ChannelError,
    ChannelStateError,
    ConnectionForced,
    ConnectionLevelError,
    NotAllowed,
    ProtocolError,
    UnexpectedFrame,
)
from minibroker.message import FieldTable, Message
from minibroker.protocols.native import frames as f
from minibroker.protocols.native import mapping
from minibroker.protocols.native.codec import MIN_FRAME_SIZE, NativeCodec
from minibroker.server.session import Session

if TYPE_CHECKING:
    from minibroker.server.server import BrokerServer

__all__ = ["NativeSession", "State"]

log = logging.getLogger("minibroker.server")
trace_log = logging.getLogger("minibroker.trace")

_PREAMBLE_SIZE = 8
#: Channel states in ``NativeSession.channels``: open, or closed by us and awaiting close-ok.
OPEN, CLOSING = True, False


class State(enum.Enum):
    PREAMBLE = "preamble"  #: waiting for the 8-byte preamble
    HELLO = "hello"  #: waiting for Hello
    TUNE = "tune"  #: HelloOk sent, waiting for Tune
    OPEN = "open"  #: channels may be used
    CLOSING = "closing"  #: ConnectionClose sent, waiting for ConnectionCloseOk
    CLOSED = "closed"  #: socket closed or closing


class NativeSession(Session):
    """One client connection speaking the native msgpack protocol."""

    protocol_name = "native"

    def __init__(
        self, server: BrokerServer, connection_id: int, transport: asyncio.Transport, peer: str
    ) -> None:
        super().__init__(server, connection_id, transport, peer)
        config = server.config
        self.state = State.PREAMBLE
        self.user = "guest"
        self.client_name = ""
        self.client_properties: FieldTable = {}
        self.channel_max = config.channel_max
        self.heartbeat = config.heartbeat
        #: Channel number -> OPEN, or CLOSING after we sent ChannelClose.
        self.channels: dict[int, bool] = {}
        self._codec = NativeCodec(role="server", max_frame_size=config.max_frame_size)
        self._trace = config.trace
        self._input_broken = False
        self._grace: asyncio.TimerHandle | None = None
        self._last_heard = self._last_sent = 0.0
        self._confirms = mapping.ConfirmCoalescer()  # rule 6
        self._names: dict[str, str] = {}
        #: Frames of a large read still to process (``FAIR_SHARE`` per loop iteration).
        self._backlog: list[f.Frame] = []

    # -- input ------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is State.CLOSED or self._input_broken:
            return
        self._last_heard = self.server.now()
        if state is State.PREAMBLE:
            if not _preamble_ok(data[:_PREAMBLE_SIZE]):
                # Like AMQP §4.2.2: answer with the protocol version we speak, then close.
                log.warning("%s: bad native preamble %r; answering with ours and closing",
                            self.peer, data[:_PREAMBLE_SIZE])
                self.write(self._codec.send_preamble())
                self._close_now()
                return
            self.state = State.HELLO
        try:
            self._codec.receive_data(data)
        except ProtocolError as err:
            self._refuse_input(err)
            return
        self._pump()

    def _pump(self) -> None:
        """Process every complete frame in the codec's buffer, a fair share at a time."""
        codec = self._codec
        while True:
            try:
                frames = codec.frames()
            except ProtocolError as err:
                self._refuse_input(err)
                return
            if not frames:
                return
            if len(frames) > FAIR_SHARE:
                # Fairness: a read of thousands of publishes would keep every other connection
                # (a consumer's acks, above all) waiting until it is all done. Take a share now,
                # the rest in later loop iterations, and read no more meanwhile.
                self._backlog = frames[FAIR_SHARE:]
                frames = frames[:FAIR_SHARE]
                self.hold_reading("fairness")
                self.server.loop.call_soon(self._continue)
            try:
                self._process(frames)
            except ConnectionLevelError as err:
                self._fail(err)
            if self.state is State.CLOSED or self._backlog:
                return

    def _continue(self) -> None:
        """The next share of a large read (see ``_pump``), run like any input: flow control
        and the toolkit's hooks look at it afterwards."""
        if self.closed or self.state is State.CLOSED:
            self._backlog = []
            return
        frames, self._backlog = self._backlog[:FAIR_SHARE], self._backlog[FAIR_SHARE:]
        server = self.server
        published = server.broker.published
        more = bool(self._backlog)
        try:
            self._process(frames)
            if not more:
                self.release_reading("fairness")
                # What followed the backlog in the buffer: more frames, or the error a bad
                # frame raises once the good ones before it are out (_pump schedules its own
                # continuation if that is large again).
                self._pump()
        except ConnectionLevelError as err:
            self._fail(err)
        except Exception as exc:  # an internal error closes this connection only
            self.internal_error(exc)
            self.shutdown(541, "INTERNAL_ERROR")
        server.flow.after_input(self, published)
        if server.input_hooks:
            server.run_input_hooks()
        if more and self._backlog and not self.closed:
            server.loop.call_soon(self._continue)

    def _process(self, frames: list[f.Frame]) -> None:
        """Run each frame to completion (DESIGN.md "one loop, run to completion")."""
        server, cid, channels, trace = self.server, self.id, self.channels, self._trace
        execute, apply_effects = server.execute, server.apply_effects
        commands, reply_for = mapping.COMMANDS, mapping.reply_for
        index, count = 0, len(frames)
        while index < count:
            frame = frames[index]
            index += 1
            if trace:
                trace_log.info("%s #%d <- %s", self.peer, cid, mapping.describe(frame))
            if self.state is not State.OPEN:
                if self.state is State.CLOSED:
                    return
                self._outside_open(frame)
                continue
            kind = type(frame)
            if kind is f.Publish or (kind is f.Ack and not cast(f.Ack, frame).multiple):
                # The hot path: a run of publishes (or single acks) of one channel becomes
                # one core input, so the bookkeeping per input is paid once per read, not
                # once per message.
                end = _run_end(frames, index - 1, count) if server.batch_inputs else index
                if end - index > 0 and channels.get(frame.channel) is OPEN:
                    run = frames[index - 1:end]
                    if trace:
                        for later in run[1:]:
                            trace_log.info("%s #%d <- %s", self.peer, cid,
                                           mapping.describe(later))
                    index = end
                    self._run(run)
                    continue
                if kind is f.Publish:
                    self._publish(cast(f.Publish, frame))
                    continue
            to_command = commands.get(kind)
            if to_command is None:
                self._lifecycle(frame)
                continue
            channel = frame.channel
            if channels.get(channel) is not OPEN and self._skip(frame):
                continue
            command = to_command(frame, cid)
            try:
                outcome = execute(command)
            except ChannelError as err:
                self._channel_error(channel, err)
                continue
            reply = reply_for(frame, outcome.reply)
            hook = server.reply_hook
            if hook is not None and hook(self, command,
                                         partial(self._finish, reply, outcome.effects)):
                continue
            if reply is not None:
                self._send(reply)
            if outcome.effects:
                apply_effects(outcome.effects)

    def _publish(self, frame: f.Publish) -> None:
        """One publish: no reply, the body shared with the core, never copied."""
        channel = frame.channel
        if self.channels.get(channel) is not OPEN and self._skip(frame):
            return
        message = Message(self._name(frame.exchange), self._name(frame.routing_key), frame.body,
                          frame.properties)
        try:
            outcome = self.server.execute(c.Publish(self.id, channel, message, frame.mandatory))
        except ChannelError as err:
            self._channel_error(channel, err)
            return
        if outcome.effects:
            self.server.apply_effects(outcome.effects)

    def _name(self, text: str) -> str:
        """The one ``str`` object this connection uses for an exchange or routing key: the
        codec makes a new one per frame, and a queued message keeps its own for as long as it
        is queued (a million queued messages with the same 5-character routing key held 54 MB
        of copies)."""
        names = self._names
        known = names.get(text)
        if known is None:
            if len(names) >= _NAME_CACHE_SIZE:
                names.clear()  # bounded: ever new keys gain nothing and cost nothing
            names[text] = known = text
        return known

    def _run(self, run: list[f.Frame]) -> None:
        """A run of publishes or single acks of one open channel, as one core command. If the
        core refuses it (it checks the whole batch first and changes nothing), replay it frame
        by frame: the ones before the faulty frame take effect, then the channel closes."""
        first = run[0]
        command: c.PublishMany | c.AckMany
        if type(first) is f.Publish:
            name = self._name
            command = c.PublishMany(self.id, first.channel, tuple(
                (Message(name(frame.exchange), name(frame.routing_key), frame.body,
                         frame.properties), frame.mandatory)
                for frame in cast(list[f.Publish], run)
            ))
        else:
            command = c.AckMany(self.id, first.channel, tuple(
                frame.delivery_tag for frame in cast(list[f.Ack], run)
            ))
        try:
            outcome = self.server.execute(command)
        except ChannelError:
            self._process_one_by_one(run)
            return
        if outcome.effects:
            self.server.apply_effects(outcome.effects)

    def _process_one_by_one(self, run: list[f.Frame]) -> None:
        for frame in run:
            if self.state is not State.OPEN:
                return
            if isinstance(frame, f.Publish):
                self._publish(frame)
                continue
            channel = frame.channel
            if self.channels.get(channel) is not OPEN and self._skip(frame):
                continue
            try:
                outcome = self.server.execute(mapping.COMMANDS[type(frame)](frame, self.id))
            except ChannelError as err:
                self._channel_error(channel, err)
                continue
            if outcome.effects:
                self.server.apply_effects(outcome.effects)

    def _skip(self, frame: f.Frame) -> bool:
        """For a frame on a channel that is not OPEN: True to ignore it (rule 3), else raise."""
        if self.channels.get(frame.channel) is CLOSING:
            return True
        raise ChannelStateError(f"{type(frame).__name__} on channel {frame.channel}, which is "
                                "not open")

    def _lifecycle(self, frame: f.Frame) -> None:
        """Frames of an open connection that are not core commands."""
        kind = type(frame)
        channel = frame.channel
        if kind is f.Heartbeat:
            return  # any bytes count as life: _last_heard is already updated
        if kind is f.ChannelOpen:
            self._open_channel(channel)
        elif kind is f.ChannelClose:
            state = self.channels.get(channel)
            if state is CLOSING:  # both sides closed at once: answer, still await close-ok
                self._send(f.ChannelCloseOk(channel))
                return
            if state is None:
                self._skip(frame)  # raises 504
            outcome = self.server.execute(c.CloseChannel(self.id, channel))
            del self.channels[channel]
            self._send(f.ChannelCloseOk(channel))
            self.server.apply_effects(outcome.effects)
        elif kind is f.ChannelCloseOk:
            if self.channels.get(channel) is OPEN:
                raise UnexpectedFrame(f"ChannelCloseOk on channel {channel}: we did not close it")
            self._skip(frame)  # raises 504 unless the channel is CLOSING
            del self.channels[channel]
        elif kind is f.ConnectionClose:
            log.debug("%s: client closed native connection %d", self.peer, self.id)
            self._release()
            self._send(f.ConnectionCloseOk())
            self._close_now()
        else:  # Hello, Tune, ConnectionCloseOk
            raise UnexpectedFrame(f"{kind.__name__} on a connection that is already open")

    def _open_channel(self, channel: int) -> None:
        if not 1 <= channel <= self.channel_max:
            raise ChannelStateError(f"channel {channel} is not in 1..{self.channel_max}")
        state = self.channels.get(channel)
        if state is CLOSING:
            return  # ignored until the client's close-ok (rule 3)
        if state is OPEN:
            raise ChannelStateError(f"second ChannelOpen on channel {channel}, already open")
        self.server.execute(c.OpenChannel(self.id, channel))
        self.channels[channel] = OPEN
        self._confirms.reset(channel)
        self._send(f.ChannelOpenOk(channel))

    def _finish(self, reply: f.Frame | None, effects: list[e.Effect]) -> None:
        """Send a reply and apply its effects (held back by ``server.reply_hook``)."""
        if self.state is not State.OPEN:
            return
        if reply is not None:
            self._send(reply)
        if effects:
            self.server.apply_effects(effects)

    def close_channel(self, channel: int, reply_code: int, reply_text: str) -> bool:
        if self.state is not State.OPEN or self.channels.get(channel) is not OPEN:
            return False
        log.info("%s: closing channel %d of native connection %d: %d %s", self.peer, channel,
                 self.id, reply_code, reply_text)
        self._send(f.ChannelClose(channel, reply_code, mapping.short(reply_text)))
        self.channels[channel] = CLOSING
        outcome = self.server.execute(c.CloseChannel(self.id, channel))
        self.server.apply_effects(outcome.effects)
        return True

    def _channel_error(self, channel: int, err: ChannelError) -> None:
        log.info("%s: closing channel %d of native connection %d: %s", self.peer, channel,
                 self.id, err.reply_text)
        self._send(f.ChannelClose(channel, err.reply_code, mapping.short(err.reply_text)))
        self.channels[channel] = CLOSING
        outcome = self.server.execute(c.CloseChannel(self.id, channel))
        self.server.apply_effects(outcome.effects)

    # -- handshake and closing ----------------------------------------------------------------

    def _outside_open(self, frame: f.Frame) -> None:
        """A frame while the connection is not (or no longer) open."""
        kind, state = type(frame), self.state
        if state is State.CLOSING:
            # Rule 3's quote, for connection.close.
            if kind is f.ConnectionClose:
                self._send(f.ConnectionCloseOk())
                self._close_now()
            elif kind is f.ConnectionCloseOk:
                self._close_now()
        elif state is State.HELLO and isinstance(frame, f.Hello):
            self._hello(frame)
        elif state is State.TUNE and isinstance(frame, f.Tune):
            self._tune(frame)
        elif kind is f.ConnectionClose:  # the client gives up during the handshake
            self._send(f.ConnectionCloseOk())
            self._close_now()
        else:
            expected = "Hello" if state is State.HELLO else "Tune"
            raise UnexpectedFrame(f"expected {expected}, got {kind.__name__}")

    def _hello(self, hello: f.Hello) -> None:
        self.client_name = hello.client_name
        self.client_properties = hello.client_properties
        # A hello without credentials logs in as guest, with guest's configured password: so
        # it works exactly when guest/guest would (RabbitMQ's default user).
        user = hello.username if hello.username is not None else "guest"
        password = hello.password if hello.username is not None else "guest"
        if not login_ok(self.server.config.users, user, password):
            self._fail(AccessRefused(f"login refused for user '{user}'"))
            return
        self.user = user
        config = self.server.config
        self._send(f.HelloOk(__version__, config.max_frame_size, config.channel_max,
                             config.heartbeat))
        self.state = State.TUNE

    def _tune(self, tune: f.Tune) -> None:
        config = self.server.config
        # The client may lower the server's limits, never raise them (0 = "no preference").
        frame_max = min(tune.max_frame_size or config.max_frame_size, config.max_frame_size)
        if frame_max < MIN_FRAME_SIZE:
            raise NotAllowed(f"max_frame_size {frame_max} is below the minimum {MIN_FRAME_SIZE}")
        self._codec.max_frame_size = frame_max
        self.channel_max = min(tune.channel_max or config.channel_max, config.channel_max)
        self.heartbeat = min(tune.heartbeat, config.heartbeat)
        if self.server.closing:
            raise ConnectionForced("broker shutdown")
        self._send(f.TuneOk())
        self.server.execute(c.OpenConnection(
            self.id, user=self.user, peer=self.peer, connection_name=self.client_name,
            client_properties=self.client_properties,
        ))
        self.server.register(self)
        self.registered = self.handshake_done = True
        self.state = State.OPEN
        self._last_sent = self._last_heard = self.server.now()
        log.debug("%s: native connection %d open (user %r, client %r)", self.peer, self.id,
                  self.user, self.client_name)

    def _refuse_input(self, err: ProtocolError) -> None:
        """The codec refused the bytes: nothing after them can be trusted (rule 4)."""
        self._input_broken = True
        if self.state is not State.CLOSING:
            return self._fail(err)
        self._close_now()

    def _fail(self, err: AMQPError) -> None:
        log.warning("%s: closing native connection %d: %d %s", self.peer, self.id,
                    err.reply_code, err.reply_text)
        self._begin_close(err.reply_code, err.reply_text)

    def _begin_close(self, reply_code: int, reply_text: str) -> None:
        if self.state in (State.CLOSING, State.CLOSED):
            return
        self.state = State.CLOSING
        self._send(f.ConnectionClose(reply_code, mapping.short(reply_text)))
        self._release()
        self._grace = self.server.loop.call_later(self.server.config.shutdown_grace,
                                                  self._close_now)

    def _close_now(self) -> None:
        self.state = State.CLOSED
        if self._grace is not None:
            self._grace.cancel()  # idempotent
        if not self.closed:
            self.close_transport()

    def _release(self) -> None:
        """Forget the connection in the core: its unacked messages go back to their queues."""
        if not self.registered:
            return
        self.registered = False
        outcome = self.server.execute(c.CloseConnection(self.id))
        self.server.unregister(self)
        self.server.apply_effects(outcome.effects)

    def shutdown(self, reply_code: int, reply_text: str) -> None:
        log.info("%s: closing native connection %d: %d %s", self.peer, self.id, reply_code,
                 reply_text)
        self._begin_close(reply_code, reply_text)

    def connection_lost(self) -> None:
        self._close_now()  # the socket is gone already: this only cancels the grace timer
        self._release()

    def check_heartbeat(self, now: float) -> None:
        heartbeat = self.heartbeat
        if self.state is not State.OPEN or not heartbeat:
            return
        if self.reading_held:
            # We are not reading it (flow control, fairness, a fault): its silence is ours.
            # Keep sending our heartbeats, so the client does not give up on us either.
            self._last_heard = now
        if now - self._last_heard > 2 * heartbeat:
            log.warning("%s: native connection %d sent nothing for %.1f s (heartbeat %d s); "
                        "closing it", self.peer, self.id, now - self._last_heard, heartbeat)
            self._close_now()
        elif now - self._last_sent >= heartbeat / 2:
            self._send(f.Heartbeat())

    # -- output -----------------------------------------------------------------------------

    def _send(self, frame: f.Frame) -> None:
        pending = self._confirms.pending
        if pending and (frame.channel in pending or frame.channel == 0):
            for held in self._confirms.take(frame.channel):  # rule 6: keep per-channel order
                self._write_frame(held)
        self._write_frame(frame)

    def _write_frame(self, frame: f.Frame) -> None:
        if self._trace:
            trace_log.info("%s #%d -> %s", self.peer, self.id, mapping.describe(frame))
        self.write(self._codec.send(frame))

    def on_effect(self, effect: e.Effect) -> None:
        if type(effect) is e.Deliver and not self._trace and (
                effect.channel not in self._confirms.pending):
            # The hot path: encode straight from the effect (no frame object). Held confirms
            # of this channel would have to go first (rule 6), hence the test.
            message = effect.message
            self.write(self._codec.send_deliver(
                effect.channel, effect.consumer_tag, effect.delivery_tag, effect.redelivered,
                message.exchange, message.routing_key, message.properties, message.body,
            ))
            return
        if type(effect) is not e.Confirm:
            self._send(mapping.frame_for_effect(effect))
            return
        frame = self._confirms.add(effect)
        if frame is not None:
            self._send(frame)
        elif not self._flush_scheduled:  # held back: make sure it goes out this iteration
            self._flush_scheduled = True
            self.server.loop.call_soon(self.flush)

    def flush(self) -> None:
        if self._confirms.pending:
            for held in self._confirms.take(0):
                self._write_frame(held)
        if self._out:
            self._last_sent = self.server.now()
        super().flush()


#: Frames one connection may have processed per loop iteration before others get their turn.
FAIR_SHARE = 1024

#: Distinct exchange names and routing keys a connection keeps shared (``_name``).
_NAME_CACHE_SIZE = 1024


def _run_end(frames: list[f.Frame], start: int, count: int) -> int:
    """Where the run of frames like ``frames[start]`` (publishes, or single acks, of the
    same channel) ends."""
    first = frames[start]
    kind, channel = type(first), first.channel
    end = start + 1
    if kind is f.Publish:
        while end < count and type(frames[end]) is kind and frames[end].channel == channel:
            end += 1
    else:
        while (end < count and type(ack := frames[end]) is kind and ack.channel == channel
               and not cast(f.Ack, ack).multiple):
            end += 1
    return end


def _preamble_ok(header: bytes) -> bool:
    """Does the codec accept these 8 bytes as a preamble? (It alone knows our versions.)"""
    probe = NativeCodec(role="server")
    try:
        probe.receive_data(header)
        probe.frames()
    except ProtocolError:
        return False
    return True
