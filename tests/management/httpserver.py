"""A tiny HTTP server for tests: the HTTP codec and the management app on a real socket.

It plugs the codec into an asyncio protocol the way the shell's session pipeline is expected
to (bytes in -> requests -> ``app.handle`` -> response bytes, in order, one input processed
completely before the next), with a core of its own on the loop's thread. Real HTTP clients
(pyrabbit2, a browser) can then talk to the API before the shell serves it.

Run it by hand to look at the web page (``--demo``: a few clients and steady traffic)::

    python -m tests.management.httpserver 15680 --demo
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from minibroker.protocols.http import ExpectContinue, HTTPCodec, HTTPError, Response
from tests.management.harness import World

T = TypeVar("T")


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, world: World) -> None:
        self.world = world
        self.codec = HTTPCodec()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.codec.receive_data(data)
        self._answer()

    def eof_received(self) -> bool:
        self.codec.receive_data(b"")
        self._answer()
        return False

    def _answer(self) -> None:
        assert self.transport is not None
        out: list[bytes] = []
        codec, app = self.codec, self.world.app
        try:
            while (event := codec.next_frame()) is not None:
                if isinstance(event, ExpectContinue):
                    out.append(codec.send(Response(100)))
                else:
                    out.append(codec.send(app.handle(event)))
        except HTTPError as err:
            out.append(codec.send(app.error_response(err)))
        if out:
            self.transport.write(b"".join(out))
        if codec.must_close or codec.closed:
            self.transport.close()


class ApiServer:
    """The management API on 127.0.0.1:<port> (0: any free port), served from a thread."""

    def __init__(self, port: int = 0) -> None:
        self.world = World()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._requested_port = port
        self.port = 0
        self._server: asyncio.Server | None = None

    def __enter__(self) -> ApiServer:
        self._thread.start()
        self._server = self.call_async(self._start())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _start(self) -> asyncio.Server:
        return await self.loop.create_server(lambda: HTTPProtocol(self.world), "127.0.0.1",
                                             self._requested_port)

    def call_async(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def call(self, function: Callable[[], T]) -> T:
        """Run ``function`` on the loop's thread (where the core lives) and return its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function())
            except BaseException as exc:
                future.set_exception(exc)
        self.loop.call_soon_threadsafe(run)
        return future.result(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            # Close on the loop's thread: asyncio.Server is not thread-safe, and a connection
            # finishing on the loop while another thread closes the server wakes its waiters twice.
            server = self._server

            async def close() -> None:
                server.close()
                await server.wait_closed()
            self.call_async(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def demo_traffic(server: ApiServer, period: float = 0.5) -> None:
    """Clients, queues and a steady trickle of messages, so the page has something to show
    (the sampler is ticked as the shell would tick it)."""
    import time

    from minibroker.core import commands as c
    from minibroker.core.effects import Deliver, singles
    from minibroker.message import Message

    world = server.world
    world.clock.now = time.time()
    world.sampler.interval = 1.0
    world.client(1, properties={"connection_name": "orders-service"}, channels=2)
    world.client(2, properties={"connection_name": "billing-worker"})
    world.run(c.DeclareExchange(1, 1, "orders", "topic", durable=True))
    for queue, key in (("orders.eu", "eu.#"), ("orders.us", "us.#"), ("audit", "#")):
        world.run(c.DeclareQueue(1, 1, queue, durable=True))
        world.run(c.BindQueue(1, 1, queue, "orders", key))
    step = 0
    delivered: list[int] = []

    def run(command: c.Command) -> None:
        outcome = world.run(command)
        delivered.extend(effect.delivery_tag for effect in singles(outcome.effects)
                         if isinstance(effect, Deliver))

    world.run(c.Qos(2, 1, 20))
    run(c.Consume(2, 1, "orders.eu", "billing"))

    def tick() -> None:
        nonlocal step
        step += 1
        world.clock.now = time.time()
        for i in range(3 + step % 7):
            region = "eu" if i % 3 else "us"
            run(c.Publish(1, 2, Message("orders", f"{region}.order", b"order %d" % step)))
        for tag in delivered[: 1 + step % 4]:
            delivered.remove(tag)
            run(c.Ack(2, 1, tag))
        if step % 10 == 0:
            world.run(c.PurgeQueue(1, 1, "audit"))
        world.sampler.tick(world.clock.now)
        server.loop.call_later(period, tick)

    server.call(lambda: server.loop.call_soon(tick))


def main() -> None:
    args = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    port = int(args[0]) if args else 15680
    with ApiServer(port) as server:
        if "--demo" in sys.argv:
            demo_traffic(server)
        print(f"management API on {server.url} (guest/guest); Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
