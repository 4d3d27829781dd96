"""A minimal native-protocol client for integration tests: the codec over an asyncio stream.

Rules:

1. It does exactly what the test says — no automatic replies, no heartbeats, no reconnects —
   so a test can misbehave on purpose (stop reading, stay silent, send bad bytes).
2. Every wait is bounded (``timeout``); a frame that is not the expected one fails the test
   with the frame in the message.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import TypeVar

from minibroker.message import EMPTY_PROPERTIES, Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec

__all__ = ["RawClient"]

F = TypeVar("F", bound=f.Frame)
TIMEOUT = 5.0


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.codec = NativeCodec(role="client")
        self.received: deque[f.Frame] = deque()
        self.hello_ok: f.HelloOk | None = None

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        handshake: bool = True,
        username: str | None = "guest",
        password: str | None = "guest",
        heartbeat: int = 0,
        max_frame_size: int = 0,
        receive_buffer: int | None = None,
    ) -> RawClient:
        """Connect to 127.0.0.1:``port``; with ``handshake``, run it through TuneOk.

        ``receive_buffer`` shrinks the socket's kernel receive buffer (SO_RCVBUF) so that a
        client that stops reading pushes back on the broker quickly."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(
            sock=sock, limit=receive_buffer or 2**16
        )
        client = cls(reader, writer)
        if handshake:
            client.send_raw(client.codec.send_preamble())
            client.send(f.Hello("rawclient", username, password))
            client.hello_ok = await client.expect(f.HelloOk)
            client.send(f.Tune(max_frame_size, 0, heartbeat))
            await client.expect(f.TuneOk)
            if max_frame_size:
                client.codec.max_frame_size = max_frame_size
        return client

    # -- sending ----------------------------------------------------------------------------

    def send(self, *frames: f.Frame) -> None:
        self.writer.write(self.codec.send_many(frames))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    # -- receiving --------------------------------------------------------------------------

    async def recv(self, timeout: float = TIMEOUT) -> f.Frame:
        """The next frame; raises EOFError when the server closed the socket first."""
        async with asyncio.timeout(timeout):
            while not self.received:
                data = await self.reader.read(2**16)
                if not data:
                    raise EOFError("the server closed the connection")
                self.codec.receive_data(data)
                self.received.extend(self.codec.frames())
        return self.received.popleft()

    async def expect(self, cls: type[F], timeout: float = TIMEOUT) -> F:
        frame = await self.recv(timeout)
        assert isinstance(frame, cls), f"expected {cls.__name__}, got {frame!r}"
        return frame

    async def frames_until_eof(self, timeout: float = TIMEOUT) -> list[f.Frame]:
        """Every frame until the server closes the socket (fails if it does not in time)."""
        frames: list[f.Frame] = []
        while True:
            try:
                frames.append(await self.recv(timeout))
            except EOFError:
                return frames

    async def raw_until_eof(self, timeout: float = TIMEOUT) -> bytes:
        async with asyncio.timeout(timeout):
            return await self.reader.read()

    async def call(self, request: f.Frame, reply: type[F]) -> F:
        """Send a synchronous request and wait for its reply."""
        self.send(request)
        return await self.expect(reply)

    # -- conveniences -----------------------------------------------------------------------

    async def open_channel(self, channel: int = 1) -> None:
        await self.call(f.ChannelOpen(channel), f.ChannelOpenOk)

    async def declare_queue(self, queue: str, channel: int = 1) -> f.QueueDeclareOk:
        return await self.call(
            f.QueueDeclare(channel, queue, False, False, False, False, {}), f.QueueDeclareOk
        )

    def publish(
        self, body: bytes, routing_key: str, *, exchange: str = "", channel: int = 1,
        mandatory: bool = False, properties: Properties = EMPTY_PROPERTIES,
    ) -> None:
        self.send(f.Publish(channel, exchange, routing_key, mandatory,
                            properties, body))

    async def consume(
        self, queue: str, *, channel: int = 1, no_ack: bool = False, tag: str = ""
    ) -> str:
        ok = await self.call(f.Consume(channel, queue, tag, no_ack, False, {}), f.ConsumeOk)
        return ok.consumer_tag

    async def close(self) -> None:
        """Close politely: ConnectionClose, wait for close-ok, then the socket."""
        self.send(f.ConnectionClose(200, "bye"))
        await self.expect(f.ConnectionCloseOk)
        self.abort()

    def abort(self) -> None:
        self.writer.close()
