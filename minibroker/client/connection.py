"""The native client connection: one TCP socket driving the protocol's sans-IO connection.

The wire rules — handshake, channel states, close handshakes, heartbeat timing — are the
:class:`~minibroker.protocols.native.connection.NativeConnection`'s (client role), the same
object the server drives; this module does the asyncio around it and wakes the waiting calls.

Rules:

1. One ``asyncio.Protocol`` per connection. Every frame of a read is handled synchronously, in
   wire order, by its channel.
2. Output is buffered and written once per loop iteration, or at once when 64 KiB are pending;
   calls that can produce unbounded output (publish, ack) wait in :meth:`drain` while the
   transport has paused writing (its buffer passed the high-water mark).
3. Handshake (docs/protocol.md): preamble + Hello → HelloOk (the broker's limits) → Tune (ours,
   each at most the broker's) → TuneOk. Then the connection is open.
4. Heartbeats follow the :class:`~minibroker.clock.Clock` the connection was given (the event
   loop's by default): one timer, re-armed for the connection's next heartbeat deadline.
5. A closed connection stays closed: each waiting and each later call raises
   :class:`ConnectionClosed`, whose ``error`` holds the broker's error (e.g. 530 NOT_ALLOWED)
   when the broker closed it. AMQP §1.4.2.9 (connection.close): "After sending this method, any
   received methods except Close and Close-OK MUST be discarded."
6. Closing is ``await conn.aclose()`` (or leaving ``async with``); there is no ``close()`` to
   forget the ``await`` on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, cast

from minibroker.client.channel import Channel
from minibroker.client.params import DEFAULT_URL, ConnectionParameters
from minibroker.clock import Clock, LoopClock
from minibroker.errors import (
    AMQPError,
    ClientError,
    ConnectionClosed,
    FrameError,
    UnexpectedFrame,
    error_for_code,
)
from minibroker.protocols.events import ChannelEnded, CloseSocket, ConnectionClosing
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import MIN_FRAME_SIZE, PREAMBLE, NativeCodec
from minibroker.protocols.native.connection import NativeConnection
from minibroker.protocols.native.greeting import QUOTED, check_greeting
from minibroker.tls import client_context

__all__ = ["Connection", "connect"]

log = logging.getLogger("minibroker.client")

#: Makes the transport for a protocol factory (in place of ``loop.create_connection``).
Connector = Callable[[Callable[[], asyncio.Protocol]], Awaitable[object]]

_FLUSH_THRESHOLD = 64 * 1024


class Connection:
    """An open connection to a broker; create it with :func:`connect`."""

    def __init__(self, params: ConnectionParameters, clock: Clock | None = None) -> None:
        self.params = params
        self._loop = asyncio.get_running_loop()
        self._clock = clock if clock is not None else LoopClock(self._loop)
        self._conn = NativeConnection("client", self._write, now=self._clock.now(),
                                      max_frame_size=params.max_frame_size or 0)
        self._transport: asyncio.Transport | None = None
        self._channels: dict[int, Channel] = {}
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_handle: asyncio.Handle | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._close_ok: asyncio.Future[None] | None = None
        self._closed: ConnectionClosed | None = None
        self._cancel_heartbeat: Callable[[], None] | None = None

    # -- opening ------------------------------------------------------------------------------

    async def _open(self, connector: Connector | None = None) -> Connection:
        """Connect the socket (``connector``: a test's in-memory link instead) and shake
        hands (rule 3)."""
        params = self.params
        where = f"{params.host}:{params.port}"
        try:
            async with asyncio.timeout(params.connect_timeout):
                if connector is None:
                    context = None
                    if params.tls:  # minibrokers:// (params.py rule 5)
                        context = client_context(cafile=params.cafile, certfile=params.certfile,
                                                 keyfile=params.keyfile)
                    await self._loop.create_connection(lambda: _Protocol(self), params.host,
                                                       params.port, ssl=context)
                else:
                    await connector(lambda: _Protocol(self))
                # No credentials in the URL: guest/guest, as AMQP clients default (the broker
                # never picks a user for a client).
                username, password = ((params.username, params.password)
                                      if params.username is not None else ("guest", "guest"))
                self._conn.start(params.client_name, username, password,
                                 {"product": "minibroker", "platform": "Python"},
                                 max_frame_size=params.max_frame_size,
                                 channel_max=params.channel_max, heartbeat=params.heartbeat,
                                 vhost=params.vhost)
                await self._opened
        except TimeoutError:
            if self._transport is None:
                text = f"timed out connecting to {where}"
            else:  # the TCP connection was made: whatever listens there does not answer
                text = (f"timed out connecting to {where}: no answer to our Hello within "
                        f"{params.connect_timeout:g} s (is a minibroker listening there?)")
            self._abort(ConnectionClosed(text))
            raise _copy(self._closed) from None
        except OSError as exc:
            raise ConnectionClosed(f"cannot connect to {params.host}:{params.port}: {exc}") \
                from exc
        except BaseException:
            self._abort(ConnectionClosed("connection attempt abandoned"))
            raise
        return self

    # -- public API ---------------------------------------------------------------------------

    @property
    def server_version(self) -> str:
        return self._conn.server_version

    @property
    def max_frame_size(self) -> int:
        """Negotiated in the handshake (rule 3)."""
        return self._conn.max_frame_size if self._opened.done() else 0

    @property
    def channel_max(self) -> int:
        return self._conn.channel_max if self._opened.done() else 0

    @property
    def heartbeat(self) -> int:
        return self._conn.heartbeat if self._opened.done() else 0

    @property
    def codec(self) -> NativeCodec:
        """The connection's codec, for :func:`~minibroker.client.publish.encode_publish` on the
        event loop's thread (another thread needs a codec of its own)."""
        return self._conn.codec

    @property
    def is_closed(self) -> bool:
        return self._closed is not None or self._close_ok is not None

    @property
    def writable(self) -> bool:
        """The socket takes more data now; else :meth:`drain` waits until it does (rule 2)."""
        return self._writable.is_set()

    async def channel(self) -> Channel:
        """Open a new channel (the lowest free number)."""
        self._check_open()
        number = next((n for n in range(1, self.channel_max + 1) if n not in self._channels), 0)
        if not number:
            raise ClientError(f"all {self.channel_max} channels are in use")
        channel = Channel(self, number)
        self._channels[number] = channel
        await channel._open()
        return channel

    async def drain(self) -> None:
        """Wait while the transport has paused writing (rule 2); raises once closed."""
        await self._writable.wait()
        self._check_open()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (``ConnectionClose`` 200) and wait until the socket is closed.
        The broker requeues every message this connection had not acknowledged."""
        if self._closed is None and self._close_ok is None:
            self._close_ok = self._loop.create_future()
            self._conn.close(200, "Normal shutdown")
            self._flush()
            try:
                async with asyncio.timeout(self.params.close_timeout):
                    await asyncio.shield(self._close_ok)
            except TimeoutError:
                log.warning("no close-ok from the broker within %.1f s",
                            self.params.close_timeout)
            self._finish(ConnectionClosed("connection closed"), requested=True)
        if self._transport is not None:
            self._transport.close()
            await asyncio.shield(self._lost)

    # -- output -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed is not None:
            raise _copy(self._closed)
        if self._close_ok is not None:
            raise ConnectionClosed("connection is closing")

    def _send(self, frame: f.Frame) -> None:
        self._conn.send(frame)

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= _FLUSH_THRESHOLD:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        out = self._out
        if not out:
            return
        self._out = []
        self._out_size = 0
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            self._conn.note_sent(self._clock.now())

    async def _send_and_drain(self, frame: f.Frame) -> None:
        self._check_open()
        self._send(frame)
        if not self._writable.is_set():
            await self.drain()

    # -- input --------------------------------------------------------------------------------

    def _data_received(self, data: bytes) -> None:
        conn = self._conn
        conn.receive_data(data, now=self._clock.now())
        for event in conn.events():
            if self._closed is not None:
                return
            if isinstance(event, f.Frame):
                channel = self._channels.get(event.channel)
                if channel is not None and self._close_ok is None:
                    channel._on_frame(event)
            elif type(event) is ChannelEnded:
                ended = self._channels.get(event.channel)
                if ended is not None:
                    ended._on_ended(event)
            elif type(event) is CloseSocket:
                self._on_close_socket(event)
            elif type(event) is ConnectionClosing:  # the broker broke the protocol
                self._abort_with(error_for_code(event.reply_code, event.reply_text))
            else:  # ConnectionOpened
                self._on_opened()

    def _on_opened(self) -> None:
        self._schedule_heartbeat()
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_close_socket(self, event: CloseSocket) -> None:
        if not event.by_peer:  # the close-ok to our close
            if self._close_ok is not None and not self._close_ok.done():
                self._close_ok.set_result(None)
            return
        # The broker closed the connection; the close-ok is written: flush it, then drop.
        error = None
        if event.reply_code != 200:
            error = error_for_code(event.reply_code, event.reply_text)
        self._flush()
        if self._close_ok is not None and not self._close_ok.done():
            self._close_ok.set_result(None)  # both sides closed at once: ours is answered
        text = f": {error}" if error is not None else ""
        self._finish(ConnectionClosed(f"the broker closed the connection{text}", error),
                     requested=error is None and self._close_ok is not None)
        if self._transport is not None:
            self._transport.close()

    def _protocol_violation(self, text: str) -> None:
        """The broker sent a frame that answers nothing (rule 1 of ``channel.py``)."""
        error = UnexpectedFrame(text)
        self._conn.close(error.reply_code, error.reply_text)
        self._abort_with(error)

    def _abort_with(self, error: AMQPError) -> None:
        """We refused what the broker sent and told it why (the close is written): flush it,
        close the socket, fail everything. Not logged above debug: every waiting and later
        call raises it, so the application hears it once (rule 5)."""
        log.debug("closing the connection: %s", error)
        self._flush()
        if self._opened.done():
            text = f"protocol error: {error}"
        else:  # e.g. codec rule 8: not a minibroker at all
            text = f"cannot connect to {self.params.host}:{self.params.port}: {error.text}"
        self._abort(ConnectionClosed(text, error))

    def _abort(self, closed: ConnectionClosed) -> None:
        self._finish(closed, requested=False)
        if self._transport is not None:
            self._transport.close()

    # -- heartbeats (rule 4) --------------------------------------------------------------------

    def _schedule_heartbeat(self) -> None:
        at = self._conn.next_tick()
        if at is None or self._closed is not None:
            return
        # (no earlier than 10 ms ahead: a deadline in the past must not spin)
        self._cancel_heartbeat = self._clock.call_at(max(at, self._clock.now() + 0.01),
                                                     self._on_heartbeat_timer)

    def _on_heartbeat_timer(self) -> None:
        self._cancel_heartbeat = None
        if self._closed is not None:
            return
        now = self._clock.now()
        if not self._conn.tick(now):
            self._abort(ConnectionClosed(
                f"no frame from the broker for {2 * self.heartbeat} s (heartbeat timeout)"))
            return
        self._flush()
        self._schedule_heartbeat()

    # -- closing ------------------------------------------------------------------------------

    def _finish(self, closed: ConnectionClosed, *, requested: bool) -> None:
        """Mark the connection closed and fail or end everything that depends on it."""
        if self._closed is not None:
            return
        self._closed = closed
        if self._cancel_heartbeat is not None:
            self._cancel_heartbeat()
            self._cancel_heartbeat = None
        self._writable.set()  # wake drain waiters; they raise
        if not self._opened.done():
            self._opened.set_exception(_copy(closed))
        if self._close_ok is not None and not self._close_ok.done():
            self._close_ok.set_result(None)
        for channel in list(self._channels.values()):
            channel._on_connection_closed(closed, requested)
        self._channels.clear()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        detail = f": {exc}" if exc is not None else ""
        text = f"connection lost{detail}"
        if not self._opened.done():  # hung up on our Hello: say what it was, if it said
            text = self._hung_up(detail)
        self._finish(ConnectionClosed(text), requested=False)
        if not self._lost.done():
            self._lost.set_result(None)

    def _hung_up(self, detail: str) -> str:
        """Why the connection closed before the handshake completed, quoting what the other
        side sent (``greeting.py``)."""
        where = f"{self.params.host}:{self.params.port}"
        said = self._conn.codec.peek(QUOTED)
        if len(said) >= 4:
            try:
                check_greeting(said, False, preamble=PREAMBLE, min_frame_size=MIN_FRAME_SIZE)
            except FrameError as exc:
                return f"cannot connect to {where}: {exc.text}"
        after = f", after sending {said!r}" if said else ""
        return (f"{where} closed the connection during the handshake{after}{detail} (is a "
                f"minibroker listening there?)")

    def __repr__(self) -> str:
        state = "closed" if self._closed is not None else "open"
        return f"<Connection {self.params.host}:{self.params.port} {state}>"


class _Protocol(asyncio.Protocol):
    """Hands the transport's events to the :class:`Connection` (rule 1)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connection._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._connection._data_received(data)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._connection_lost(exc)

    def pause_writing(self) -> None:
        self._connection._writable.clear()

    def resume_writing(self) -> None:
        self._connection._writable.set()


class _Connect:
    """What :func:`connect` returns: await it, or use it with ``async with``."""

    def __init__(self, params: ConnectionParameters, clock: Clock | None) -> None:
        self._params = params
        self._clock = clock
        self._connection: Connection | None = None

    def __await__(self) -> Generator[Any, None, Connection]:
        return Connection(self._params, self._clock)._open().__await__()

    async def __aenter__(self) -> Connection:
        self._connection = await Connection(self._params, self._clock)._open()
        return self._connection

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            await self._connection.aclose()


def connect(
    url: str = DEFAULT_URL, *, username: str | None = None, password: str | None = None,
    heartbeat: int | None = None, max_frame_size: int | None = None,
    channel_max: int | None = None, client_name: str | None = None,
    connect_timeout: float | None = None, close_timeout: float | None = None,
    clock: Clock | None = None,
) -> _Connect:
    """Connect to a broker: ``async with connect(url) as conn`` or ``conn = await connect(url)``.

    Keyword arguments override the URL's options (see ``minibroker.client.params``); ``clock``
    drives the heartbeats (rule 4: the event loop's clock by default, a
    :class:`~minibroker.testing.ManualClock` in a test that moves time itself)."""
    params = ConnectionParameters.from_url(
        url, username=username, password=password, heartbeat=heartbeat,
        max_frame_size=max_frame_size, channel_max=channel_max, client_name=client_name,
        connect_timeout=connect_timeout, close_timeout=close_timeout)
    return _Connect(params, clock)


def _copy(closed: ConnectionClosed | None) -> ConnectionClosed:
    assert closed is not None
    return ConnectionClosed(str(closed), closed.error)
