"""The two ways to run a test broker: on the test's own event loop, or on a thread of its own.

Rules:

1. ``running_broker(**options)`` (``async with``) starts a broker on the running loop, on
   127.0.0.1 and a port the kernel chooses (port 0), and enters once the socket accepts
   connections: ``start()`` returning is the readiness signal, nothing polls or sleeps. No fixed
   port, no global state, no files (unless ``data_dir`` is given): any number can run at
   once, in any pytest-xdist worker.
2. ``broker_in_thread(**options)`` (``with``) runs the same broker on a new event loop in a
   daemon thread, for synchronous code (pika's BlockingConnection, kombu, Celery, the blocking
   client). Every method of its handle may be called from any thread: the work runs on the
   broker's loop and the caller waits for its result.
3. ``options`` are :class:`~minibroker.config.ServerConfig` fields (``heartbeat=0``,
   ``users=...``, ``rabbitmq="3.10"`` to answer as that RabbitMQ version), plus ``clock``
   (e.g. a :class:`~minibroker.testing.ManualClock`), ``history_size``, and ``loop``
   ("auto", "asyncio", "uvloop") for the thread variant, and ``management=True`` to serve
   the management HTTP API on any free port (``.management_url``). ``data_dir=path`` keeps
   durable state there (``crash()``, ``restart()``); by default nothing touches the disk.
4. Leaving the block closes the broker gracefully: clients hear 320 CONNECTION_FORCED and get
   ``shutdown_grace`` (0.2 s here) to close; the loop and its sockets are gone afterwards.
5. Every ``wait_for_*`` has an awaitable twin ``wait_for_*_async`` with the same arguments. On
   a thread handle the plain form blocks, and refuses (``RuntimeError`` naming the twin) to
   block a thread whose event loop is running: the app under test on that loop could not run
   while it waited. On an asyncio handle both forms are the same coroutine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from minibroker.config import LoopKind, ServerConfig
from minibroker.core.broker import Broker
from minibroker.server.clock import Clock
from minibroker.server.loop import loop_factory
from minibroker.server.server import BrokerServer
from minibroker.testing.actions import Actions
from minibroker.testing.api import BrokerAPI
from minibroker.testing.conditions import Condition
from minibroker.testing.controller import Controller
from minibroker.testing.history import DEFAULT_HISTORY_SIZE

__all__ = ["RunningBroker", "ThreadBroker", "broker_in_thread", "running_broker"]

_T = TypeVar("_T")

#: Test brokers: any free port on the loopback interface, and a short shutdown.
TEST_CONFIG = ServerConfig(host="127.0.0.1", port=0, shutdown_grace=0.2)
DEFAULT_TIMEOUT = 5.0
#: How long a thread handle waits for the broker's loop to run a call before giving up.
CALL_TIMEOUT = 30.0


def _controller(config: ServerConfig | None, clock: Clock | None, history_size: int,
                options: dict[str, Any]) -> Controller:
    base = config or TEST_CONFIG
    if options.pop("management", False):  # the management API on any free port
        options.setdefault("management_port", 0)
    return Controller(dataclasses.replace(base, **options), clock, history_size)


class _Handle(BrokerAPI):
    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._actions = Actions(controller)

    @property
    def server(self) -> BrokerServer:
        """The live server (loop thread only; inspection methods are the safe way)."""
        return self._controller.server

    @property
    def broker(self) -> Broker:
        """The live core (loop thread only; replaced by :meth:`reset`)."""
        return self._controller.broker

    @property
    def clock(self) -> Clock | None:
        return self._controller.clock

    @property
    def management_url(self) -> str:
        """The management HTTP API and web page (``management=True``), e.g.
        ``http://127.0.0.1:41234/``; log in as a broker user (guest/guest)."""
        url = self._controller.server.management_url
        if url is None:
            raise RuntimeError("the management API is off: start the broker with "
                               "management=True")
        return url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


class RunningBroker(_Handle):
    """A test broker on the current event loop (from :func:`running_broker`)."""

    def _call(self, function: Callable[[], _T]) -> _T:
        return function()

    async def wait_for(self, condition: Condition, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Return once ``condition`` holds; :class:`WaitTimeout` after ``timeout`` s."""
        check, description = condition
        await self._controller.wait_for(check, description, timeout)

    async def wait_for_queue(self, queue: str, *, ready: int | None = None,
                             unacked: int | None = None, consumers: int | None = None,
                             timeout: float = DEFAULT_TIMEOUT) -> None:
        await self.wait_for(self.queue_condition(queue, ready=ready, unacked=unacked,
                                                 consumers=consumers), timeout)

    async def wait_for_fate(self, kind: str, count: int = 1, *, queue: str | None = None,
                            exchange: str | None = None, routing_key: str | None = None,
                            timeout: float = DEFAULT_TIMEOUT) -> None:
        await self.wait_for(self.fate_condition(kind, count, queue=queue, exchange=exchange,
                                                routing_key=routing_key), timeout)

    async def wait_for_ack(self, count: int = 1, *, queue: str | None = None,
                           timeout: float = DEFAULT_TIMEOUT) -> None:
        await self.wait_for_fate("acked", count, queue=queue, timeout=timeout)

    async def wait_for_publish(self, count: int = 1, *, exchange: str | None = None,
                               routing_key: str | None = None,
                               timeout: float = DEFAULT_TIMEOUT) -> None:
        await self.wait_for(self.publish_condition(count, exchange=exchange,
                                                   routing_key=routing_key), timeout)

    async def wait_for_consumer(self, queue: str, count: int = 1,
                                timeout: float = DEFAULT_TIMEOUT) -> None:
        await self.wait_for(self.consumer_condition(queue, count), timeout)

    async def wait_for_connections(self, count: int, timeout: float = DEFAULT_TIMEOUT, *,
                                   name: str | None = None) -> None:
        await self.wait_for(self.connections_condition(count, name=name), timeout)

    async def wait_for_idle(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        await self.wait_for(self.idle_condition(), timeout)

    # The same names as a thread handle's awaitable twins, so async code runs on either handle.
    wait_for_async = wait_for
    wait_for_queue_async = wait_for_queue
    wait_for_fate_async = wait_for_fate
    wait_for_ack_async = wait_for_ack
    wait_for_publish_async = wait_for_publish
    wait_for_consumer_async = wait_for_consumer
    wait_for_connections_async = wait_for_connections
    wait_for_idle_async = wait_for_idle

    async def stop(self) -> None:
        """Stop abruptly: every socket reset, no close frames (``start()`` comes back)."""
        await self._controller.stop()

    async def start(self) -> None:
        """Listen again on the same port, with the same state (see ``controller.py``)."""
        await self._controller.start()

    async def restart(self) -> None:
        """Stop and start again: without ``data_dir`` the same state comes back; with one a
        clean shutdown, then recovery from the directory (``controller.py`` rules 4-5)."""
        await self._controller.restart()

    async def crash(self) -> None:
        """As ``kill -9`` and a restart: connections reset, nothing written that was not
        written; with ``data_dir`` the durable state comes back from the directory (messages
        ``redelivered``), without one the broker comes back empty."""
        await self._controller.crash()


@asynccontextmanager
async def running_broker(
    *, config: ServerConfig | None = None, clock: Clock | None = None,
    history_size: int = DEFAULT_HISTORY_SIZE, **options: Any,
) -> AsyncIterator[RunningBroker]:
    """A broker on the running loop, ready when entered (rule 1)."""
    controller = _controller(config, clock, history_size, options)
    await controller.start()
    try:
        yield RunningBroker(controller)
    finally:
        if controller.running:
            await controller.close()


class ThreadBroker(_Handle):
    """A test broker on its own loop thread (from :func:`broker_in_thread`); thread-safe."""

    def __init__(self, controller: Controller, loop: asyncio.AbstractEventLoop,
                 thread: threading.Thread) -> None:
        super().__init__(controller)
        self.loop = loop
        self._thread = thread

    def _call(self, function: Callable[[], _T]) -> _T:
        if threading.current_thread() is self._thread:
            return function()
        result: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(function())
            except BaseException as exc:
                result.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return result.result(CALL_TIMEOUT)

    def _run(self, coroutine: Any, timeout: float) -> None:
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a blocking wait on the broker's own thread would never end")
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout + CALL_TIMEOUT)

    def _wait(self, condition: Condition, timeout: float, method: str) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a blocking wait on the broker's own thread would never end")
        if _loop_running():
            raise RuntimeError(
                f"{method}() blocks its thread, and an event loop is running in this one (an "
                "async test?): the code under test on that loop could not run while it waits. "
                f"Use `await broker.{method}_async(...)`, with the same arguments."
            )
        check, description = condition
        self._run(self._controller.wait_for(check, description, timeout), timeout)

    async def _wait_async(self, condition: Condition, timeout: float) -> None:
        check, description = condition
        future = asyncio.run_coroutine_threadsafe(
            self._controller.wait_for(check, description, timeout), self.loop)
        await asyncio.wrap_future(future)

    # Every wait comes twice: blocking (sync tests, other threads) and awaitable (``_async``:
    # async tests, whose loop must keep running while they wait). Same arguments.

    def wait_for(self, condition: Condition, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Block until ``condition`` holds; :class:`WaitTimeout` after ``timeout`` s."""
        self._wait(condition, timeout, "wait_for")

    async def wait_for_async(self, condition: Condition,
                             timeout: float = DEFAULT_TIMEOUT) -> None:
        """:meth:`wait_for` for async tests: awaits without blocking the test's own loop."""
        await self._wait_async(condition, timeout)

    def wait_for_queue(self, queue: str, *, ready: int | None = None,
                       unacked: int | None = None, consumers: int | None = None,
                       timeout: float = DEFAULT_TIMEOUT) -> None:
        self._wait(self.queue_condition(queue, ready=ready, unacked=unacked,
                                        consumers=consumers), timeout, "wait_for_queue")

    async def wait_for_queue_async(self, queue: str, *, ready: int | None = None,
                                   unacked: int | None = None, consumers: int | None = None,
                                   timeout: float = DEFAULT_TIMEOUT) -> None:
        await self._wait_async(self.queue_condition(queue, ready=ready, unacked=unacked,
                                                    consumers=consumers), timeout)

    def wait_for_fate(self, kind: str, count: int = 1, *, queue: str | None = None,
                      exchange: str | None = None, routing_key: str | None = None,
                      timeout: float = DEFAULT_TIMEOUT) -> None:
        self._wait(self.fate_condition(kind, count, queue=queue, exchange=exchange,
                                       routing_key=routing_key), timeout, "wait_for_fate")

    async def wait_for_fate_async(self, kind: str, count: int = 1, *, queue: str | None = None,
                                  exchange: str | None = None, routing_key: str | None = None,
                                  timeout: float = DEFAULT_TIMEOUT) -> None:
        await self._wait_async(self.fate_condition(kind, count, queue=queue, exchange=exchange,
                                                   routing_key=routing_key), timeout)

    def wait_for_ack(self, count: int = 1, *, queue: str | None = None,
                     timeout: float = DEFAULT_TIMEOUT) -> None:
        self._wait(self.fate_condition("acked", count, queue=queue), timeout, "wait_for_ack")

    async def wait_for_ack_async(self, count: int = 1, *, queue: str | None = None,
                                 timeout: float = DEFAULT_TIMEOUT) -> None:
        await self._wait_async(self.fate_condition("acked", count, queue=queue), timeout)

    def wait_for_publish(self, count: int = 1, *, exchange: str | None = None,
                         routing_key: str | None = None,
                         timeout: float = DEFAULT_TIMEOUT) -> None:
        self._wait(self.publish_condition(count, exchange=exchange, routing_key=routing_key),
                   timeout, "wait_for_publish")

    async def wait_for_publish_async(self, count: int = 1, *, exchange: str | None = None,
                                     routing_key: str | None = None,
                                     timeout: float = DEFAULT_TIMEOUT) -> None:
        await self._wait_async(self.publish_condition(count, exchange=exchange,
                                                      routing_key=routing_key), timeout)

    def wait_for_consumer(self, queue: str, count: int = 1,
                          timeout: float = DEFAULT_TIMEOUT) -> None:
        self._wait(self.consumer_condition(queue, count), timeout, "wait_for_consumer")

    async def wait_for_consumer_async(self, queue: str, count: int = 1,
                                      timeout: float = DEFAULT_TIMEOUT) -> None:
        await self._wait_async(self.consumer_condition(queue, count), timeout)

    def wait_for_connections(self, count: int, timeout: float = DEFAULT_TIMEOUT, *,
                             name: str | None = None) -> None:
        self._wait(self.connections_condition(count, name=name), timeout,
                   "wait_for_connections")

    async def wait_for_connections_async(self, count: int, timeout: float = DEFAULT_TIMEOUT, *,
                                         name: str | None = None) -> None:
        await self._wait_async(self.connections_condition(count, name=name), timeout)

    def wait_for_idle(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._wait(self.idle_condition(), timeout, "wait_for_idle")

    async def wait_for_idle_async(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        await self._wait_async(self.idle_condition(), timeout)

    def stop(self) -> None:
        """Stop abruptly (see :meth:`RunningBroker.stop`)."""
        self._run(self._controller.stop(), 0)

    def start(self) -> None:
        self._run(self._controller.start(), 0)

    def restart(self) -> None:
        """See :meth:`RunningBroker.restart`."""
        self._run(self._controller.restart(), 0)

    def crash(self) -> None:
        """See :meth:`RunningBroker.crash`."""
        self._run(self._controller.crash(), 0)


@contextmanager
def broker_in_thread(
    *, config: ServerConfig | None = None, clock: Clock | None = None,
    history_size: int = DEFAULT_HISTORY_SIZE, loop: LoopKind = "auto", **options: Any,
) -> Iterator[ThreadBroker]:
    """A broker on a background loop thread, ready when entered (rule 2)."""
    controller = _controller(config, clock, history_size, options)
    ready: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
    stopping: list[asyncio.Event] = []

    async def main() -> None:
        stop = asyncio.Event()
        stopping.append(stop)
        try:
            await controller.start()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(asyncio.get_running_loop())
        await stop.wait()
        if controller.running:
            await controller.close()

    def run() -> None:
        with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
            runner.run(main())

    thread = threading.Thread(target=run, name="minibroker-test-broker", daemon=True)
    thread.start()
    broker_loop = ready.result(CALL_TIMEOUT)
    try:
        yield ThreadBroker(controller, broker_loop, thread)
    finally:
        broker_loop.call_soon_threadsafe(stopping[0].set)
        thread.join(CALL_TIMEOUT)


def _loop_running() -> bool:
    """Is an event loop running in the calling thread?"""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
