"""Fixtures for the compatibility tests: a real minibroker server for real AMQP clients.

The server runs on its own event loop in a background thread (the clients under test are
blocking or bring their own loop). It listens on port 0; ``started`` is an explicit signal, so
no test sleeps waiting for it. A test fails if the server logged an internal error.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import pika
import pytest

from minibroker.clock import Clock
from minibroker.config import ServerConfig
from minibroker.server.server import BrokerServer
from tests.conftest import REFERENCE_VERSION

#: Upper bound for any single client call in these tests (seconds).
TIMEOUT = 10.0


class ServerThread:
    """A :class:`BrokerServer` on an event loop in a daemon thread."""

    def __init__(self, config: ServerConfig | None = None, clock: Clock | None = None) -> None:
        self.server = BrokerServer(config or ServerConfig(port=0), clock=clock)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="minibroker", daemon=True)
        self._started: Future[None] = Future()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:  # report a failed start to the test, not to stderr
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        self.loop.run_forever()
        self.loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.result(timeout=TIMEOUT)
        return self

    def stop(self) -> None:
        if not self.loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(self.server.close(), self.loop)
        future.result(timeout=TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=TIMEOUT)

    def call(self, fn, *args):  # type: ignore[no-untyped-def]
        """Run ``fn(*args)`` on the server's loop and return its result (for inspecting the
        core from a test without racing the loop)."""
        done: Future[object] = Future()

        def run() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return done.result(timeout=TIMEOUT)

    @property
    def port(self) -> int:
        return self.server.amqp_port

    @property
    def url(self) -> str:
        return self.server.amqp_url


@pytest.fixture
def broker() -> Iterator[ServerThread]:
    running = ServerThread().start()
    try:
        yield running
    finally:
        running.stop()
    assert running.server.internal_errors == 0, "the server logged an internal error"


def make_server(config: ServerConfig | None = None, clock: Clock | None = None) -> ServerThread:
    return ServerThread(config, clock).start()


@pytest.fixture(scope="module")
def module_broker() -> Iterator[ServerThread]:
    """One broker for a whole module of differential scenarios (each uses its own names),
    answering as RabbitMQ 3.10, the reference the recorded outcomes come from."""
    running = make_server(ServerConfig(port=0, rabbitmq="3.10"))
    try:
        yield running
    finally:
        running.stop()
    assert running.server.internal_errors == 0, "the server logged an internal error"


@pytest.fixture(scope="module")
def newest_broker() -> Iterator[ServerThread]:
    """Like ``module_broker``, answering as the newest RabbitMQ modelled (the default)."""
    running = make_server()
    try:
        yield running
    finally:
        running.stop()
    assert running.server.internal_errors == 0, "the server logged an internal error"


@pytest.fixture(scope="module")
def rabbitmq(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(url, version) of the reference RabbitMQ from ``MINIBROKER_RABBITMQ_URL``, or skip."""
    url = os.environ.get("MINIBROKER_RABBITMQ_URL")
    if not url:
        pytest.skip("MINIBROKER_RABBITMQ_URL is not set: no reference RabbitMQ to compare with")
    params = pika.URLParameters(url)
    params.socket_timeout = 3
    params.connection_attempts = 1
    try:
        connection = pika.BlockingConnection(params)
    except pika.exceptions.AMQPError as err:
        pytest.skip(f"RabbitMQ at MINIBROKER_RABBITMQ_URL is unreachable: {err!r}")
    version = str(connection._impl.server_properties.get("version", ""))
    connection.close()
    request.config.stash[REFERENCE_VERSION] = version  # for the summary's differential count
    return url, version
