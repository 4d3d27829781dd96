"""An in-memory link: a native client :class:`Connection` joined to a real broker, no sockets.

Rules:

1. Both ends run on the test's event loop. The broker is a started :class:`BrokerServer` (its
   listener is never used); the client is a :class:`Connection` opened through the link.
2. Bytes written by one side reach the other on a later loop iteration, as a socket's would.
   :meth:`MemoryLink.hold` stops the broker's bytes from reaching the client until
   :meth:`MemoryLink.release`, which hands them over in one read: so a test chooses what the
   client has decoded when it cancels a task.
3. :meth:`MemoryLink.settle` runs the loop until neither direction has bytes in flight and
   the client has written what it buffered: the observable "everything sent has been handled".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from minibroker.client.connection import Connection
from minibroker.client.params import ConnectionParameters
from minibroker.clock import Clock
from minibroker.config import ServerConfig
from minibroker.server import BrokerServer
from minibroker.server.protocol import BrokerProtocol

__all__ = ["MemoryLink", "linked"]


class _End:
    """One side's transport: what it writes goes to the other side's protocol."""

    def __init__(self, link: MemoryLink, name: str, peer: tuple[str, int]) -> None:
        self.link = link
        self.name = name
        self.peer = peer
        self.deliver: Callable[[bytes], None] | None = None
        self.lose: Callable[[Exception | None], None] | None = None
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.link._send(self, data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.link._close()

    def abort(self) -> None:
        self.link._close()

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.peer if name == "peername" else default


class MemoryLink:
    def __init__(self, server: BrokerServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.to_server = _End(self, "client", ("broker", 5680))
        self.to_client = _End(self, "server", ("127.0.0.1", 1))  # loopback: guest may log in
        self._held = False
        self._held_bytes: list[bytes] = []
        self._in_flight = 0
        self._closed = False

    async def connect(self, factory: Callable[[], asyncio.Protocol]) -> None:
        """The :data:`~minibroker.client.connection.Connector` the client opens with."""
        client = factory()
        server = BrokerProtocol(self.server)
        server.connection_made(self.to_client)  # type: ignore[arg-type]
        client.connection_made(self.to_server)  # type: ignore[arg-type]
        self.to_server.deliver, self.to_server.lose = server.data_received, server.connection_lost
        self.to_client.deliver, self.to_client.lose = client.data_received, client.connection_lost

    def _send(self, end: _End, data: bytes) -> None:
        if end is self.to_client and self._held:
            self._held_bytes.append(data)
            return
        self._in_flight += 1
        self.loop.call_soon(self._arrive, end, data)

    def _arrive(self, end: _End, data: bytes) -> None:
        self._in_flight -= 1
        if not self._closed and end.deliver is not None:
            end.deliver(data)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for end in (self.to_server, self.to_client):
            end.closed = True
            if end.lose is not None:
                self.loop.call_soon(end.lose, None)

    # -- what tests use ------------------------------------------------------------------------

    def hold(self) -> None:
        """Keep the broker's bytes from the client (rule 2)."""
        self._held = True

    def release(self) -> None:
        """Hand the client every byte held back, in one read, now (rule 2)."""
        self._held = False
        held, self._held_bytes = self._held_bytes, []
        if held and not self._closed and self.to_client.deliver is not None:
            self.to_client.deliver(b"".join(held))

    async def settle(self) -> None:
        """Run the loop until nothing has been in flight for a few iterations (rule 3): each
        side flushes what it wrote once per loop iteration."""
        quiet = 0
        for _ in range(1000):
            await asyncio.sleep(0)
            quiet = 0 if self._in_flight else quiet + 1
            if quiet == 3:
                return
        raise AssertionError("the link never settled")


@asynccontextmanager
async def linked(config: ServerConfig | None = None, *, clock: Clock | None = None,
                 server_clock: Clock | None = None, **params: object,
                 ) -> AsyncIterator[tuple[MemoryLink, Connection]]:
    """A started broker and a client connected to it through a :class:`MemoryLink`."""
    server = BrokerServer(config or ServerConfig(port=0, heartbeat=0), clock=server_clock)
    await server.start()
    try:
        link = MemoryLink(server)
        connection = Connection(ConnectionParameters(**params), clock)  # type: ignore[arg-type]
        async with asyncio.timeout(10):
            await connection._open(link.connect)
        try:
            yield link, connection
        finally:
            if not connection.is_closed:
                async with asyncio.timeout(10):
                    await connection.aclose()
    finally:
        await server.close()
    assert server.internal_errors == 0, "the broker logged an internal error"
