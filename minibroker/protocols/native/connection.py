"""The native protocol's connection state machine, for both roles: sans-IO, driven with bytes.

:class:`NativeConnection` owns the codec, the handshake, the connection and channel states,
the close handshakes and the heartbeat timing of one connection (``docs/protocol.md`` sections
3-5). It does no I/O and reads no clock: it writes through the ``write`` callable it was given
and takes the time as an argument (rule 5). What concerns its owner — the core on the server,
the waiting calls in the client — comes out of :meth:`~NativeConnection.events` as frames and
the events of ``protocols/events.py`` (the ones ``protocols/amqp091/connection.py`` yields).

Rules:

1. Server handshake: preamble, ``Hello`` (the login, ``handshake.py``), ``HelloOk`` with our
   limits, ``Tune`` (the client's, each at most ours), then the owner's ``open_vhost`` check
   of the Hello's vhost (a refusal is its 530), :class:`ConnectionOpened` and, unless the
   owner closed the connection while handling it, ``TuneOk``. ``ChannelOpen`` asks the
   owner's ``admit_channel`` before the open-ok. Any other frame before
   that is 505 UNEXPECTED_FRAME; a bad preamble is answered with ours, then the socket closes.
   Client handshake: preamble and ``Hello`` (:meth:`start`), ``HelloOk`` → ``Tune`` with our
   wishes → ``TuneOk`` → :class:`ConnectionOpened`.
2. Lazy events: :meth:`~NativeConnection.events` handles one frame at a time, so what it writes
   itself (open-ok, close-ok) lands after what the owner wrote for earlier frames. Runs of
   publishes, or of single acks, of one open channel come as one :class:`HotRun`; a run a
   lane read (``lanes.py`` rule 5) is such a run by itself, a sequence of its frames.
3. Server channel rules: ``ChannelOpen`` needs a number in 1..channel_max that is not open
   (504 otherwise); any other frame on a channel that is not open is 504 CHANNEL_ERROR. After we
   sent ``ChannelClose``, frames on that channel are ignored until the client's
   ``ChannelCloseOk``; a ``ChannelClose`` crossing ours is answered with close-ok (AMQP
   channel.close: "After sending this method, any received methods except Close and Close-OK
   MUST be discarded. The response to receiving a Close after sending Close must be to send
   Close-Ok."). A ``ChannelCloseOk`` for a channel we did not close is 505.
4. Hard errors (bad bytes 501/502/503, rule 3's 504/505, login 403) send ``ConnectionClose``
   and yield :class:`ConnectionClosing`; from then on only ``ConnectionClose`` and
   ``ConnectionCloseOk`` are read, and nothing at all after bad bytes. The client role does
   the same when the server breaks the protocol (its owner then drops the socket).
5. Heartbeats: with an interval ``h`` > 0, :meth:`tick` writes a ``Heartbeat`` when nothing was
   sent for ``h/2`` seconds and reports the peer dead once it sent nothing for more than ``2h``.
   The owner says when bytes crossed the socket (``now`` of :meth:`receive_data`,
   :meth:`note_sent`); ``tick(now, heard=True)`` counts the peer as heard (a socket we do not
   read proves nothing by its silence).
6. Server output: runs of positive confirms go out as one ``ConfirmAck(multiple=True)``
   (:class:`ConfirmCoalescer`) before any other frame of their channel, at the latest when the
   owner calls :meth:`flush_held` before writing to the socket.
7. Client channels: the server's ``ChannelClose`` is answered with close-ok, then
   :class:`ChannelEnded`; so is the close-ok to ours (``by_peer=False``). Frames of a channel
   we are closing are handed over (the client library keeps a late confirm), those of a
   channel we no longer know are dropped.
8. A run of deliveries (:meth:`~NativeConnection.send_deliver_run`) writes what
   :meth:`~NativeConnection.send_deliver` of each delivery in turn would: one codec call and
   one write when it is not traced and no confirm is held for its channel, else (and for a
   run with a delivery that cannot be sent, after the ones before it) delivery by delivery.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Container, Iterator, Sequence
from typing import Any, Literal

from minibroker import __version__
from minibroker.core.access import LoginRefused
from minibroker.errors import AMQPError, ChannelStateError, ProtocolError, UnexpectedFrame
from minibroker.message import FieldTable, Message, Properties
from minibroker.protocols import events as ev
from minibroker.protocols.native import frames as f
from minibroker.protocols.native import streamframes as sf
from minibroker.protocols.native.codec import DEFAULT_MAX_FRAME_SIZE, NativeCodec
from minibroker.protocols.native.confirms import ConfirmCoalescer
from minibroker.protocols.native.handshake import LoginCheck, client_tune, login, server_limits
from minibroker.protocols.native.lanes import AckRun, PublishRun
from minibroker.protocols.native.parts import OversizedPublish

__all__ = ["NativeConnection", "State", "short"]

Event = (f.Frame | ev.HotRun | ev.ConnectionOpened | ev.ChannelOpened | ev.ChannelEnded
         | ev.ConnectionClosing | ev.CloseSocket)
_SHORTSTR_MAX = 255
_LANE_RUNS = (PublishRun, AckRun)


def short(text: str) -> str:
    """``text`` cut to fit a ShortStr (255 UTF-8 bytes) without splitting a character: an error
    text must never turn into a second error."""
    if len(text) <= _SHORTSTR_MAX // 4:
        return text
    raw = text.encode()
    if len(raw) <= _SHORTSTR_MAX:
        return text
    return raw[:_SHORTSTR_MAX].decode(errors="ignore")


class State(enum.Enum):
    PREAMBLE = "preamble"  #: server: waiting for the 8-byte preamble
    HELLO = "hello"  #: server: waiting for Hello; client: Hello sent, waiting for HelloOk
    TUNE = "tune"  #: server: HelloOk sent, waiting for Tune; client: waiting for TuneOk
    OPEN = "open"  #: channels may be used
    CLOSING = "closing"  #: we sent ConnectionClose, waiting for ConnectionCloseOk
    CLOSED = "closed"  #: the socket must close


class _Channel(enum.Enum):
    OPENING = 0  #: client: ChannelOpen sent
    OPEN = 1
    CLOSING = 2  #: we sent ChannelClose (rule 3)


_OPENING, _OPEN, _CLOSING = _Channel.OPENING, _Channel.OPEN, _Channel.CLOSING
#: Frames of a channel that are work for the owner (not the channel's own open and close).
_CHANNEL_CONTROL = (f.ChannelOpen, f.ChannelOpenOk, f.ChannelClose, f.ChannelCloseOk)
_WORK = frozenset(cls for cls in f.FRAME_TYPES
                  if not issubclass(cls, f.ConnectionFrame) and cls not in _CHANNEL_CONTROL)


class NativeConnection:
    """One native-protocol connection, server or client side (see the module rules)."""

    def __init__(
        self,
        role: Literal["server", "client"],
        write: Callable[[bytes], None],
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        channel_max: int = 2047,
        heartbeat: int = 60,
        login: LoginCheck | None = None,
        open_vhost: Callable[[str, str], None] | None = None,
        admit_channel: Callable[[], None] | None = None,
        now: float = 0.0,
    ) -> None:
        """``max_frame_size``, ``channel_max``, ``heartbeat``: the server's offer (server role;
        a client states its wishes in :meth:`start`)."""
        self.role = role
        self._write = write
        self.codec = NativeCodec(role=role,
                                 max_frame_size=max_frame_size or DEFAULT_MAX_FRAME_SIZE)
        self.state = State.PREAMBLE if role == "server" else State.HELLO
        self.max_frame_size = max_frame_size
        self.channel_max = channel_max
        self.heartbeat = heartbeat
        self._login = login
        #: The owner's checks (as ``AMQPConnection``'s): the vhost at the handshake's end,
        #: each channel before its open-ok; both raise the connection error to close with.
        self.open_vhost = open_vhost
        self.admit_channel = admit_channel
        #: The vhost the client asked for (``Hello.vhost``).
        self.vhost = "/"
        self.user = "guest"
        self.client_name = ""
        self.server_version = ""
        #: Channel number -> its state (rule 3).
        self.channels: dict[int, _Channel] = {}
        self.confirms = ConfirmCoalescer()
        #: Optional ``trace(direction, frame)`` hook ("in"/"out") for frame logging.
        self.trace: Callable[[str, f.Frame], None] | None = None
        self._input_broken = False
        self._peer_properties: FieldTable = {}
        self._wishes: tuple[int | None, int | None, int | None] = (None, None, None)
        self._offer = f.HelloOk("", 0, 0, 0)  # the server's limits, once Hello came
        self._last_received = self._last_sent = now

    @property
    def is_closed(self) -> bool:
        """The socket must close: nothing more is read."""
        return self.state is State.CLOSED

    def channel_is_open(self, channel: int) -> bool:
        return self.state is State.OPEN and self.channels.get(channel) is _OPEN

    # -- output ------------------------------------------------------------------------------

    def send(self, frame: f.Frame) -> None:
        """Write one frame, after the held confirms of its channel (rule 6)."""
        held = self.confirms.pending
        if held and (frame.channel in held or frame.channel == 0):
            for confirm in self.confirms.take(frame.channel):
                self._emit(confirm)
        self._emit(frame)

    def _emit(self, frame: f.Frame) -> None:
        if self.trace is not None:
            self.trace("out", frame)
        self._write(self.codec.send(frame))

    def send_deliver(self, channel: int, consumer_tag: str, delivery_tag: int,
                     redelivered: bool, exchange: str, routing_key: str,
                     properties: Properties, body: bytes) -> None:
        """``send(Deliver(...))`` without building the frame: the server's hottest write."""
        if self.trace is None and channel not in self.confirms.pending:
            self._write(self.codec.send_deliver(channel, consumer_tag, delivery_tag,
                                                redelivered, exchange, routing_key, properties,
                                                body))
        else:
            self.send(f.Deliver(channel, consumer_tag, delivery_tag, redelivered, exchange,
                                routing_key, properties, body))

    def send_deliver_run(self, channel: int, consumer_tag: str, first_tag: int,
                         messages: Sequence[Message], redelivered: Container[int]) -> None:
        """A run of deliveries to one consumer, the i-th under tag ``first_tag + i``, written
        at once: exactly what :meth:`send_deliver` of each in turn would write (rule 8)."""
        if self.trace is None and channel not in self.confirms.pending:
            try:
                data = self.codec.send_deliver_run(channel, consumer_tag, first_tag, messages,
                                                   redelivered)
            except Exception:
                # One of them cannot be sent: the ones before it go out, then it fails, as
                # single deliveries would (encoding is deterministic, so it fails again).
                self._send_singles(channel, consumer_tag, first_tag, messages, redelivered)
                raise
            self._write(data)
        else:  # traced, or confirms held for the channel: go out in front of the first
            self._send_singles(channel, consumer_tag, first_tag, messages, redelivered)

    def _send_singles(self, channel: int, consumer_tag: str, first_tag: int,
                      messages: Sequence[Message], redelivered: Container[int]) -> None:
        for tag, message in enumerate(messages, first_tag):
            self.send_deliver(channel, consumer_tag, tag, tag in redelivered, message.exchange,
                              message.routing_key, message.properties, message.body)

    def send_fetch_ok(self, channel: int, next_offset: int,
                      runs: Sequence[tuple[int, int, bytes]]) -> None:
        """``send(StreamFetchOk(...))`` from runs of encoded entries ``(first_offset, count,
        entries)``, joined as they are (``codec.send_fetch_ok``); the trace shows each run's
        first offset and count."""
        data = self.codec.send_fetch_ok(channel, next_offset,
                                        [(first, entries) for first, _, entries in runs])
        held = self.confirms.pending
        if held and channel in held:
            for confirm in self.confirms.take(channel):
                self._emit(confirm)
        if self.trace is not None:
            # (each run's first offset and count, not its entries: the trace names runs)
            self.trace("out", sf.StreamFetchOk(
                channel, next_offset,
                [[first, count] for first, count, _ in runs]))  # type: ignore[misc]
        self._write(data)

    def send_confirm(self, channel: int, delivery_tag: int, multiple: bool, ack: bool) -> bool:
        """A publisher confirm; returns False when it was held back (rule 6): the owner must
        then make sure :meth:`flush_held` runs before this loop iteration's write."""
        frame = self.confirms.add(channel, delivery_tag, multiple, ack)
        if frame is None:
            return False
        self.send(frame)
        return True

    def flush_held(self) -> None:
        """Write every confirm held back (rule 6): call it before writing to the socket."""
        if self.confirms.pending:
            for confirm in self.confirms.take(0):
                self._emit(confirm)

    def note_sent(self, now: float) -> None:
        """The owner wrote bytes to the socket at ``now`` (rule 5)."""
        self._last_sent = now

    def close_channel(self, channel: int, reply_code: int, reply_text: str) -> bool:
        """Close an open channel from our side; its input is ignored until close-ok (rule 3).
        False when the channel is not open."""
        state = self.channels.get(channel)
        if (state is not _OPEN and state is not _OPENING) or self.state is not State.OPEN:
            return False
        self.channels[channel] = _CLOSING
        self.send(f.ChannelClose(channel, reply_code, short(reply_text)))
        return True

    def close(self, reply_code: int,
              reply_text: str) -> ev.ConnectionClosing | ev.CloseSocket | None:
        """Send ``ConnectionClose`` (an error or a shutdown); None if already closing (rule 4).
        Before the preamble there is no protocol to say it in: the socket just closes."""
        if self.state in (State.CLOSING, State.CLOSED):
            return None
        if self.state is State.PREAMBLE:
            self.state = State.CLOSED
            return ev.CloseSocket("closed before the preamble")
        self.state = State.CLOSING
        text = short(reply_text)
        self.send(f.ConnectionClose(reply_code, text))
        return ev.ConnectionClosing(reply_code, text)

    # -- input -------------------------------------------------------------------------------

    def receive_data(self, data: bytes, *, now: float) -> None:
        """Bytes read from the socket at ``now``."""
        if self._input_broken or self.state is State.CLOSED:
            return
        self._last_received = now
        self.codec.receive_data(data)

    def events(self) -> Iterator[Event]:
        """Handle every buffered frame, one at a time (rule 2), yielding what the owner acts
        on. Stops after a :class:`CloseSocket`."""
        codec, channels = self.codec, self.channels
        server = self.role == "server"
        while not self._input_broken and self.state is not State.CLOSED:
            preamble = self.state is State.PREAMBLE and codec.awaiting_preamble
            try:
                # Rule 2: the lanes' runs come as runs, not a frame a message (lanes.py
                # rule 5); traced input is traced frame by frame.
                frames: list[Any] = (codec.frames_and_runs() if server and self.trace is None
                                     else codec.frames())
            except ProtocolError as err:
                self._input_broken = True
                yield from self._bad_input(err, preamble)
                return
            if preamble and not codec.awaiting_preamble:
                self.state = State.HELLO
            if not frames:
                return
            count, index = len(frames), 0
            while index < count:
                frame = frames[index]
                index += 1
                if type(frame) in _LANE_RUNS:
                    run: PublishRun | AckRun = frame
                    if (self.state is State.OPEN and self.trace is None
                            and channels.get(run.channel) is _OPEN):
                        yield ev.HotRun(run) if len(run) > 1 else run[0]
                        continue
                    # Anything else (the channel not open, the connection closing): the
                    # frames one by one, as they came (rules 3 and 4 name the first).
                    index -= 1
                    frames[index:index + 1] = list(run)
                    count = len(frames)
                    continue
                if self.trace is not None:
                    self.trace("in", frame)
                state = self.state
                kind = type(frame)
                if state is State.OPEN and kind in _WORK:
                    channel = frame.channel
                    state_of_channel = channels.get(channel)
                    if state_of_channel is not _OPEN:
                        if state_of_channel is _CLOSING and not server:
                            yield frame  # rule 7: the client library decides
                            continue
                        event = self._not_open(frame)
                        if event is not None:
                            yield event
                        continue
                    if server and (kind is f.Publish
                                   or (type(frame) is f.Ack and not frame.multiple)):
                        end = _run_end(frames, index - 1, count)
                        if end > index:
                            if self.trace is not None:
                                for later in frames[index:end]:
                                    self.trace("in", later)
                            yield ev.HotRun(frames[index - 1:end])
                            index = end
                            continue
                    yield frame
                    continue
                if self.is_closed:  # a CloseSocket was the last event
                    return
                yield from self._control(frame)

    def _bad_input(self, err: ProtocolError, preamble: bool) -> Iterator[Event]:
        """The codec refused the bytes: nothing after them can be trusted (rule 4)."""
        if preamble:
            # Like AMQP §4.2.2: answer with the protocol version we speak, then close.
            self._write(self.codec.send_preamble())
            self.state = State.CLOSED
            yield ev.CloseSocket(f"bad native preamble: {err.text}")
            return
        if self.state is State.CLOSING:
            self.state = State.CLOSED
            yield ev.CloseSocket(f"bad bytes while closing: {err.text}")
            return
        closing = self.close(err.reply_code, err.reply_text)
        if closing is not None:
            yield closing

    def _not_open(self, frame: f.Frame) -> ev.ConnectionClosing | ev.CloseSocket | None:
        """Work on a channel that is not open: ignored while we close it (rule 3), dropped on the
        client side (frames that crossed our close), 504 on the server side otherwise."""
        state = self.channels.get(frame.channel)
        if state is _CLOSING or self.role == "client":
            return None
        err = ChannelStateError(f"{type(frame).__name__} on channel {frame.channel}, which is "
                                "not open")
        return self.close(err.reply_code, err.reply_text)

    def _control(self, frame: f.Frame) -> Iterator[Event]:
        """Every frame that is not work for an open channel."""
        kind, state = type(frame), self.state
        if kind is f.Heartbeat:
            return  # any bytes count as life (rule 5)
        if isinstance(frame, f.ConnectionClose):
            # Answered in any state (rule 4's quote, for connection.close).
            self.send(f.ConnectionCloseOk())
            self.state = State.CLOSED
            yield ev.CloseSocket("the peer closed the connection", frame.reply_code,
                              frame.reply_text, by_peer=True)
            return
        if state is State.CLOSING:
            if kind is f.ConnectionCloseOk:
                self.state = State.CLOSED
                yield ev.CloseSocket("connection closed")
            return  # rule 4: discarded
        try:
            if self.role == "server":
                yield from self._server_control(frame)
            else:
                yield from self._client_control(frame)
        except AMQPError as err:
            closing = self.close(err.reply_code, err.reply_text)
            if closing is not None:
                yield closing

    # -- server role -------------------------------------------------------------------------

    def _server_control(self, frame: f.Frame) -> Iterator[Event]:
        kind, state = type(frame), self.state
        if state is State.HELLO and isinstance(frame, f.Hello):
            self._hello(frame)
        elif state is State.TUNE and isinstance(frame, f.Tune):
            yield from self._tune(frame)
        elif state is not State.OPEN:
            expected = "Hello" if state is State.HELLO else "Tune"
            raise UnexpectedFrame(f"expected {expected}, got {kind.__name__}")
        elif kind is f.ChannelOpen:
            yield from self._open_channel(frame.channel)
        elif kind is f.ChannelClose:
            yield from self._channel_close(frame.channel)
        elif kind is f.ChannelCloseOk:
            self._channel_close_ok(frame.channel)
        elif isinstance(frame, OversizedPublish):
            yield from self._oversized(frame)
        else:  # Hello, Tune, ConnectionCloseOk
            raise UnexpectedFrame(f"{kind.__name__} on a connection that is already open")

    def _hello(self, hello: f.Hello) -> None:
        self.client_name = hello.client_name
        self._peer_properties = hello.client_properties
        self.vhost = hello.vhost
        if self._login is None:
            raise LoginRefused("PLAIN", "no login check configured")
        self.user = login(self._login, hello)
        self._offer = f.HelloOk(__version__, self.max_frame_size, self.channel_max,
                                self.heartbeat)
        self.send(self._offer)
        self.state = State.TUNE

    def _tune(self, tune: f.Tune) -> Iterator[Event]:
        self._apply(server_limits(self._offer, tune))
        if self.open_vhost is not None:
            self.open_vhost(self.user, self.vhost)
        self.state = State.OPEN
        yield ev.ConnectionOpened(self.user, self.vhost, self._peer_properties,
                                  self.client_name)
        if self.state is State.OPEN:  # rule 1: unless the owner refused it meanwhile
            self.send(f.TuneOk())

    def _open_channel(self, channel: int) -> Iterator[Event]:
        if not 1 <= channel <= self.channel_max:
            raise ChannelStateError(f"channel {channel} is not in 1..{self.channel_max}")
        state = self.channels.get(channel)
        if state is _CLOSING:
            return  # ignored until the client's close-ok (rule 3)
        if state is _OPEN:
            raise ChannelStateError(f"second ChannelOpen on channel {channel}, already open")
        if self.admit_channel is not None:
            self.admit_channel()
        self.channels[channel] = _OPEN
        self.confirms.reset(channel)
        yield ev.ChannelOpened(channel)
        self.send(f.ChannelOpenOk(channel))

    def _oversized(self, frame: OversizedPublish) -> Iterator[Event]:
        """A Publish over ``max_message_size`` (``codec.py`` rule 6; its body was dropped):
        406 on its channel, as AMQP answers, and the channel is gone for the core."""
        if self.close_channel(frame.channel, 406, frame.reply_text):
            yield ev.ChannelEnded(frame.channel, 406, frame.reply_text, by_peer=False)

    def _channel_close(self, channel: int) -> Iterator[Event]:
        state = self.channels.get(channel)
        if state is _CLOSING:  # both sides closed at once: answer, still await close-ok
            self.send(f.ChannelCloseOk(channel))
            return
        if state is None:
            raise ChannelStateError(f"ChannelClose on channel {channel}, which is not open")
        del self.channels[channel]
        self.send(f.ChannelCloseOk(channel))
        yield ev.ChannelEnded(channel)

    def _channel_close_ok(self, channel: int) -> None:
        state = self.channels.get(channel)
        if state is _OPEN:
            raise UnexpectedFrame(f"ChannelCloseOk on channel {channel}: we did not close it")
        if state is None:
            raise ChannelStateError(f"ChannelCloseOk on channel {channel}, which is not open")
        del self.channels[channel]

    # -- client role -------------------------------------------------------------------------

    def start(self, client_name: str, username: str | None, password: str | None,
              client_properties: FieldTable, *, max_frame_size: int | None = None,
              channel_max: int | None = None, heartbeat: int | None = None,
              vhost: str = "/") -> None:
        """Client role: write the preamble and ``Hello`` (rule 1). The limits are our wishes
        for Tune; None takes the server's offer."""
        self._wishes = (max_frame_size, channel_max, heartbeat)
        self.codec.expect_greeting = True  # a stranger's answer is named as such (codec rule 8)
        self._write(self.codec.send_preamble())
        self.send(f.Hello(client_name, username, password, client_properties, vhost))

    def open_channel(self, channel: int) -> None:
        """Client role: ask for a channel; its ``ChannelOpenOk`` comes out of :meth:`events`."""
        self.channels[channel] = _OPENING
        self.send(f.ChannelOpen(channel))

    def _client_control(self, frame: f.Frame) -> Iterator[Event]:
        kind, state = type(frame), self.state
        channel = frame.channel
        if isinstance(frame, f.HelloOk) and state is State.HELLO:
            self._hello_ok(frame)
        elif kind is f.TuneOk and state is State.TUNE:
            self.state = State.OPEN
            yield ev.ConnectionOpened(self.user, "/", {"server_version": self.server_version})
        elif kind is f.ConnectionCloseOk:
            return  # an answer to nothing we sent
        elif not channel or state is not State.OPEN:
            raise UnexpectedFrame(f"unexpected {kind.__name__} on channel {channel}")
        elif channel not in self.channels:
            return  # a channel we no longer know: frames that crossed our close
        elif kind is f.ChannelOpenOk:
            if self.channels[channel] is _OPENING:
                self.channels[channel] = _OPEN
            yield frame
        elif isinstance(frame, f.ChannelClose):
            del self.channels[channel]
            self.send(f.ChannelCloseOk(channel))
            yield ev.ChannelEnded(channel, frame.reply_code, frame.reply_text)
        elif kind is f.ChannelCloseOk:
            del self.channels[channel]
            yield ev.ChannelEnded(channel, by_peer=False)
        else:
            raise UnexpectedFrame(f"unexpected {kind.__name__} on channel {channel}")

    def _hello_ok(self, hello: f.HelloOk) -> None:
        self.server_version = hello.server_version
        tune = client_tune(hello, *self._wishes)
        self._apply(tune)
        self.send(tune)
        self.state = State.TUNE

    def _apply(self, limits: f.Tune) -> None:
        """Both sides use the Tune values from now on (``docs/protocol.md`` section 3)."""
        self.max_frame_size = self.codec.max_frame_size = limits.max_frame_size
        self.channel_max = limits.channel_max
        self.heartbeat = limits.heartbeat

    # -- heartbeats --------------------------------------------------------------------------

    def tick(self, now: float, *, heard: bool = False) -> bool:
        """Heartbeat bookkeeping (rule 5): writes a heartbeat when one is due; returns False
        when the peer is dead. ``heard``: count the peer as heard at ``now``."""
        if heard:
            self._last_received = now
        interval = self.heartbeat
        if self.state is not State.OPEN or not interval:
            return True
        if now - self._last_received > 2 * interval:
            return False
        if now - self._last_sent >= interval / 2:
            self.send(f.Heartbeat())
        return True

    def next_tick(self) -> float | None:
        """When :meth:`tick` has something to do next (None: heartbeats are off)."""
        interval = self.heartbeat
        if self.state is not State.OPEN or not interval:
            return None
        return min(self._last_sent + interval / 2, self._last_received + 2 * interval)


def _run_end(frames: list[f.Frame], start: int, count: int) -> int:
    """Where the run of frames like ``frames[start]`` (publishes, or single acks, of the same
    channel) ends."""
    first = frames[start]
    kind, channel = type(first), first.channel
    end = start + 1
    if kind is f.Publish:
        while end < count and type(frames[end]) is kind and frames[end].channel == channel:
            end += 1
    else:
        while (end < count and type(ack := frames[end]) is f.Ack and ack.channel == channel
               and not ack.multiple):
            end += 1
    return end
