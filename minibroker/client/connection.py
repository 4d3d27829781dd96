"""The native client connection: one TCP socket, the handshake, heartbeats, channel demux.

Rules:

1. One ``asyncio.Protocol`` per connection. Every frame of a read is decoded by the shared
   :class:`NativeCodec` and dispatched synchronously, in wire order, to its channel.
2. Output is buffered and written once per loop iteration, or at once when 64 KiB are pending;
   calls that can produce unbounded output (publish, ack) wait in :meth:`_drain` while the
   transport has paused writing (its buffer passed the high-water mark).
3. Handshake (docs/protocol.md): preamble + Hello → HelloOk (the broker's limits) → Tune (ours,
   each at most the broker's) → TuneOk. Then the connection is open.
4. Heartbeats (AMQP §4.2.7): we send one whenever nothing was sent for half the negotiated
   interval, and give up on a broker that sent nothing for two intervals.
5. A closed connection stays closed: each waiting and each later call raises
   :class:`ConnectionClosed`, whose ``error`` holds the broker's error (e.g. 530 NOT_ALLOWED)
   when the broker closed it. AMQP §1.4.2.9 (connection.close): "After sending this method, any
   received methods except Close and Close-OK MUST be discarded."
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Generator
from types import TracebackType
from typing import Any, cast

from minibroker.client.channel import Channel
from minibroker.client.params import DEFAULT_URL, ConnectionParameters
from minibroker.errors import (
    AMQPError,
    ClientError,
    ConnectionClosed,
    ProtocolError,
    UnexpectedFrame,
)
from minibroker.errors import error_for_code as _error_for_code
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import DEFAULT_MAX_FRAME_SIZE, NativeCodec

__all__ = ["Connection", "connect"]

log = logging.getLogger("minibroker.client")

_FLUSH_THRESHOLD = 64 * 1024


class Connection:
    """An open connection to a broker; create it with :func:`connect`."""

    def __init__(self, params: ConnectionParameters) -> None:
        self.params = params
        self._loop = asyncio.get_running_loop()
        self._codec = NativeCodec(role="client",
                                  max_frame_size=params.max_frame_size or DEFAULT_MAX_FRAME_SIZE)
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
        self._heartbeat_timer: asyncio.TimerHandle | None = None
        self._last_sent = self._last_received = self._loop.time()
        #: Negotiated in the handshake (rule 3).
        self.server_version = ""
        self.max_frame_size = 0
        self.channel_max = 0
        self.heartbeat = 0

    # -- opening ------------------------------------------------------------------------------

    async def _open(self) -> Connection:
        params = self.params
        try:
            async with asyncio.timeout(params.connect_timeout):
                await self._loop.create_connection(lambda: _Protocol(self), params.host,
                                                   params.port)
                self._write(self._codec.send_preamble() + self._codec.send(f.Hello(
                    params.client_name, params.username, params.password,
                    {"product": "minibroker", "platform": "Python"})))
                await self._opened
        except TimeoutError:
            self._abort(ConnectionClosed(f"timed out connecting to {params.host}:{params.port}"))
            raise _copy(self._closed) from None
        except OSError as exc:
            raise ConnectionClosed(f"cannot connect to {params.host}:{params.port}: {exc}") \
                from exc
        except BaseException:
            self._abort(ConnectionClosed("connection attempt abandoned"))
            raise
        return self

    def _on_hello_ok(self, hello: f.HelloOk) -> None:
        params = self.params

        def choose(ours: int | None, theirs: int) -> int:
            return theirs if ours is None else min(ours, theirs)

        self.server_version = hello.server_version
        self.max_frame_size = choose(params.max_frame_size, hello.max_frame_size)
        self.channel_max = choose(params.channel_max, hello.channel_max or 0xFFFF)
        self.heartbeat = choose(params.heartbeat, hello.heartbeat)
        self._codec.max_frame_size = self.max_frame_size
        self._send(f.Tune(self.max_frame_size, self.channel_max, self.heartbeat))

    def _on_tune_ok(self) -> None:
        if self.heartbeat:
            self._schedule_heartbeat()
        if not self._opened.done():
            self._opened.set_result(None)

    # -- public API ---------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._closed is not None or self._close_ok is not None

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
            self._send(f.ConnectionClose(200, "Normal shutdown"))
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

    close = aclose

    # -- output -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed is not None:
            raise _copy(self._closed)
        if self._close_ok is not None:
            raise ConnectionClosed("connection is closing")

    def _send(self, frame: f.Frame) -> None:
        self._write(self._codec.send(frame))

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
            self._last_sent = self._loop.time()

    async def _drain(self) -> None:
        """Wait while the transport has paused writing (rule 2)."""
        await self._writable.wait()
        self._check_open()

    async def _send_and_drain(self, frame: f.Frame) -> None:
        self._check_open()
        self._send(frame)
        if not self._writable.is_set():
            await self._drain()

    # -- input --------------------------------------------------------------------------------

    def _data_received(self, data: bytes) -> None:
        self._last_received = self._loop.time()
        codec = self._codec
        try:
            codec.receive_data(data)
            while frames := codec.frames():
                for frame in frames:
                    if self._closed is not None:
                        return
                    number = frame.channel
                    if number:
                        channel = self._channels.get(number)
                        # A channel we no longer know: frames that crossed our close. Dropped.
                        if channel is not None and self._close_ok is None:
                            channel._on_frame(frame)
                    else:
                        self._on_connection_frame(frame)
        except ProtocolError as exc:
            self._fail(exc)

    def _on_connection_frame(self, frame: f.Frame) -> None:
        kind = type(frame)
        if kind is f.Heartbeat:
            return
        if kind is f.ConnectionClose:
            self._on_close(frame)  # type: ignore[arg-type]
        elif kind is f.ConnectionCloseOk:
            if self._close_ok is not None and not self._close_ok.done():
                self._close_ok.set_result(None)
        elif self._close_ok is not None:
            return  # rule 5: discarded while closing
        elif kind is f.HelloOk and self.max_frame_size == 0:
            self._on_hello_ok(frame)  # type: ignore[arg-type]
        elif kind is f.TuneOk and not self._opened.done() and self.max_frame_size:
            self._on_tune_ok()
        else:
            self._protocol_violation(f"unexpected {kind.__name__} on channel 0")

    def _on_close(self, frame: f.ConnectionClose) -> None:
        """The broker closed the connection: answer close-ok, then drop the socket."""
        error = None
        if frame.reply_code != 200:
            error = _error_for_code(frame.reply_code, frame.reply_text)
        self._send(f.ConnectionCloseOk())
        self._flush()
        if self._close_ok is not None and not self._close_ok.done():
            self._close_ok.set_result(None)  # both sides closed at once: ours is answered
        text = f": {error}" if error is not None else ""
        self._finish(ConnectionClosed(f"the broker closed the connection{text}", error),
                     requested=error is None and self._close_ok is not None)
        if self._transport is not None:
            self._transport.close()

    def _protocol_violation(self, text: str) -> None:
        self._fail(UnexpectedFrame(text))

    def _fail(self, error: AMQPError) -> None:
        """The broker broke the protocol: tell it why, close, fail everything."""
        log.warning("closing the connection: %s", error)
        if self._closed is None:
            self._send(f.ConnectionClose(error.reply_code, error.reply_text[:255]))
            self._flush()
        self._abort(ConnectionClosed(f"protocol error: {error}", error))

    def _abort(self, closed: ConnectionClosed) -> None:
        self._finish(closed, requested=False)
        if self._transport is not None:
            self._transport.close()

    # -- heartbeats ---------------------------------------------------------------------------

    def _schedule_heartbeat(self) -> None:
        half = self.heartbeat / 2
        at = min(self._last_sent + half, self._last_received + 2 * self.heartbeat)
        self._heartbeat_timer = self._loop.call_at(max(at, self._loop.time() + 0.01),
                                                   self._on_heartbeat_timer)

    def _on_heartbeat_timer(self) -> None:
        self._heartbeat_timer = None
        if self._closed is not None:
            return
        now = self._loop.time()
        if now - self._last_received >= 2 * self.heartbeat:
            self._abort(ConnectionClosed(
                f"no frame from the broker for {2 * self.heartbeat} s (heartbeat timeout)"))
            return
        if now - self._last_sent >= self.heartbeat / 2:
            self._send(f.Heartbeat())
            self._flush()
        self._schedule_heartbeat()

    # -- closing ------------------------------------------------------------------------------

    def _finish(self, closed: ConnectionClosed, *, requested: bool) -> None:
        """Mark the connection closed and fail or end everything that depends on it."""
        if self._closed is not None:
            return
        self._closed = closed
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
            self._heartbeat_timer = None
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
        self._finish(ConnectionClosed(f"connection lost{detail}"), requested=False)
        if not self._lost.done():
            self._lost.set_result(None)

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

    def __init__(self, params: ConnectionParameters) -> None:
        self._params = params
        self._connection: Connection | None = None

    def __await__(self) -> Generator[Any, None, Connection]:
        return Connection(self._params)._open().__await__()

    async def __aenter__(self) -> Connection:
        self._connection = await Connection(self._params)._open()
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
) -> _Connect:
    """Connect to a broker: ``async with connect(url) as conn`` or ``conn = await connect(url)``.

    Keyword arguments override the URL's options (see ``minibroker.client.params``)."""
    params = ConnectionParameters.from_url(
        url, username=username, password=password, heartbeat=heartbeat,
        max_frame_size=max_frame_size, channel_max=channel_max, client_name=client_name,
        connect_timeout=connect_timeout, close_timeout=close_timeout)
    return _Connect(params)


def _copy(closed: ConnectionClosed | None) -> ConnectionClosed:
    assert closed is not None
    return ConnectionClosed(str(closed), closed.error)
