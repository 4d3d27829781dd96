"""The pytest plugin: a fresh minibroker per test, or one per session reset between tests.

Fixtures: ``minibroker`` (a :class:`~minibroker.testing.ThreadBroker` per test),
``minibroker_url``, ``minibroker_amqp_url``, ``minibroker_session`` (one broker for the whole
session, per xdist worker) and ``minibroker_shared`` (the session broker after ``reset()``).
``@pytest.mark.minibroker(heartbeat=0, clock=ManualClock(), ...)`` passes options to the
per-test broker.

Rules:

1. The broker runs on its own loop thread, so the same fixture serves sync tests, async tests
   and any async plugin's loop: it never depends on the test's loop. Async tests wait with the
   awaitable twins, ``await minibroker.wait_for_queue_async(...)`` (the blocking form would
   stall their loop, and refuses to).
2. ``async def`` tests that use one of this plugin's fixtures and that no other plugin claims
   (no ``asyncio``/``anyio``/``trio`` marker, no ``anyio_backend`` fixture, no pytest-asyncio in
   auto mode) are run by this plugin, each on a fresh asyncio loop; other async tests are left
   to whatever the suite uses. Async fixtures are not supported here: use pytest-asyncio or anyio.
3. ``--minibroker-url=amqp://...`` runs the same tests against that broker: the URL fixtures
   point to it, and anything needing the in-process broker (inspection, faults, clock, reset)
   skips the test with a reason saying so.
4. A test fails at teardown if the broker logged an internal error while it ran.
5. pytest loads this plugin in every session of an environment that has minibroker installed:
   loading it imports no broker (nor asyncio) until a test uses one of the fixtures.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from minibroker.testing.handles import ThreadBroker

__all__ = ["RemoteBroker"]

_ASYNC_MARKERS = ("asyncio", "anyio", "trio")
#: The plugin's fixtures: only tests that use one of them are run by this plugin (rule 2).
_FIXTURES = frozenset({
    "minibroker", "minibroker_url", "minibroker_amqp_url", "minibroker_session",
    "minibroker_shared", "minibroker_vhost",
})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("minibroker")
    group.addoption(
        "--minibroker-url", dest="minibroker_url", default=None, metavar="URL",
        help="run the tests that use the minibroker fixtures against this broker "
             "(amqp://user:pass@host:port/ or minibroker://host:port) instead of an "
             "in-process minibroker; inspection and fault helpers then skip",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "minibroker(**options): options for the per-test broker of the `minibroker` fixture "
        "(ServerConfig fields such as heartbeat=0, clock=ManualClock(), history_size=...)",
    )


class RemoteBroker:
    """The fixture's value under ``--minibroker-url``: addresses only (rule 3)."""

    def __init__(self, url: str) -> None:
        self.given_url = url
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (5672 if parts.scheme == "amqp" else 5680)
        self.internal_errors = 0

    @property
    def url(self) -> str:
        if self.scheme != "minibroker":
            self._skip("the native protocol's url")
        return self.given_url

    @property
    def amqp_url(self) -> str:
        if self.scheme == "amqp":
            return self.given_url
        # A minibroker:// URL: the same port speaks AMQP, with the same login.
        parts = urlsplit(self.given_url)
        login = "guest:guest" if parts.username is None else parts.netloc.rpartition("@")[0]
        return f"amqp://{login}@{self.host}:{self.port}/"

    def _skip(self, what: str) -> NoReturn:
        pytest.skip(f"{what} needs the in-process minibroker; this run uses "
                    f"--minibroker-url={self.given_url}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._skip(f"minibroker.{name}")


def _remote(config: pytest.Config) -> RemoteBroker | None:
    url = config.getoption("minibroker_url", None)
    return RemoteBroker(url) if url else None


def _check_errors(broker: ThreadBroker, before: int) -> None:
    errors = broker.internal_errors - before
    if errors:
        pytest.fail(f"the broker logged {errors} internal error(s) during this test "
                    "(see the log of 'minibroker.server')", pytrace=False)


@pytest.fixture
def minibroker(request: pytest.FixtureRequest) -> Iterator[ThreadBroker | RemoteBroker]:
    """A fresh broker for this test (rule 1), or the ``--minibroker-url`` broker."""
    remote = _remote(request.config)
    if remote is not None:
        yield remote
        return
    from minibroker.testing.handles import broker_in_thread

    marker = request.node.get_closest_marker("minibroker")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    with broker_in_thread(**options) as broker:
        yield broker
    _check_errors(broker, 0)


@pytest.fixture
def minibroker_url(minibroker: ThreadBroker | RemoteBroker) -> str:
    return minibroker.url


@pytest.fixture
def minibroker_amqp_url(minibroker: ThreadBroker | RemoteBroker) -> str:
    return minibroker.amqp_url


@pytest.fixture(scope="session")
def minibroker_session(request: pytest.FixtureRequest) -> Iterator[ThreadBroker | RemoteBroker]:
    """One broker for the whole session (per xdist worker); see ``minibroker_shared``."""
    remote = _remote(request.config)
    if remote is not None:
        yield remote
        return
    from minibroker.testing.handles import broker_in_thread

    with broker_in_thread() as broker:
        yield broker


@pytest.fixture
def minibroker_shared(
    minibroker_session: ThreadBroker | RemoteBroker,
) -> Iterator[ThreadBroker | RemoteBroker]:
    """The session broker, ``reset()`` before this test: fresh state without a new port.
    (Against ``--minibroker-url`` nothing is reset: use unique names.)"""
    broker = minibroker_session
    if isinstance(broker, RemoteBroker):
        yield broker
        return
    broker.reset()
    before = broker.internal_errors
    yield broker
    _check_errors(broker, before)


@pytest.fixture
def minibroker_vhost(
    minibroker_session: ThreadBroker | RemoteBroker, request: pytest.FixtureRequest,
) -> Iterator[str]:
    """A vhost of this test's own on the session broker (``guest`` may do anything in it):
    its name. Connect with ``minibroker_session.amqp_url_in(vhost)`` / ``url_in(vhost)``;
    the vhost and everything in it go after the test."""
    broker = minibroker_session
    if isinstance(broker, RemoteBroker):
        broker._skip("a vhost of its own")
    vhost = "test-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    broker.add_vhost(vhost)
    broker.set_permissions("guest", vhost)
    before = broker.internal_errors
    try:
        yield vhost
    finally:
        broker.delete_vhost(vhost)
    _check_errors(broker, before)


def _claimed_elsewhere(item: pytest.Function) -> bool:
    if any(item.get_closest_marker(name) is not None for name in _ASYNC_MARKERS):
        return True
    if "anyio_backend" in item.fixturenames:
        return True
    config = item.config
    if config.pluginmanager.hasplugin("asyncio"):
        try:
            mode = config.getini("asyncio_mode")
        except ValueError:
            mode = None
        if mode == "auto" or config.getoption("asyncio_mode", None) == "auto":
            return True
    return False


@pytest.hookimpl
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test nobody else claimed on a fresh asyncio loop (rule 2)."""
    function = pyfuncitem.obj
    if (not inspect.iscoroutinefunction(function) or _claimed_elsewhere(pyfuncitem)
            or not _FIXTURES.intersection(pyfuncitem.fixturenames)):
        # Installing minibroker must not change how a suite's other async tests run.
        return None
    import asyncio

    funcargs = pyfuncitem.funcargs
    arguments = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    with asyncio.Runner() as runner:
        runner.run(function(**arguments))
    return True
