"""A real Celery app against minibroker: a worker thread runs a task and returns its result over
the ``rpc://`` result backend (checklist item 103: pidbox, reply queues with x-expires...)."""

from __future__ import annotations

from collections.abc import Iterator

import celery
import pytest
from celery.contrib.testing.worker import start_worker

from tests.compat.conftest import TIMEOUT, ServerThread, make_server


@pytest.fixture(scope="module")
def celery_broker() -> Iterator[ServerThread]:
    running = make_server()
    try:
        yield running
    finally:
        running.stop()
    assert running.server.internal_errors == 0


@pytest.fixture(scope="module")
def app(celery_broker: ServerThread) -> Iterator[celery.Celery]:
    broker = celery_broker
    app = celery.Celery(
        "minibroker_compat",
        broker=f"pyamqp://guest:guest@127.0.0.1:{broker.port}//",
        backend="rpc://",
        set_as_current=False,
    )
    app.conf.update(
        broker_connection_timeout=TIMEOUT,
        broker_connection_retry_on_startup=False,
        worker_hijack_root_logger=False,
        task_default_queue="minibroker-compat",
        result_expires=60,
        # The worker's event loop wakes on its broker-heartbeat timer (every heartbeat/2 s);
        # a short interval lets the test worker notice shutdown promptly, and exercises
        # heartbeats both ways.
        broker_heartbeat=2,
    )

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="fail")
    def fail() -> None:
        raise ValueError("task failed on purpose")

    yield app
    app.close()


def test_worker_runs_task_and_returns_result_over_rpc(app: celery.Celery) -> None:
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=TIMEOUT):
        result = app.send_task("add", args=(2, 3))
        assert result.get(timeout=TIMEOUT) == 5
        second = app.send_task("add", args=(40, 2))
        assert second.get(timeout=TIMEOUT) == 42


def test_task_exception_travels_back(app: celery.Celery) -> None:
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=TIMEOUT):
        result = app.send_task("fail")
        with pytest.raises(ValueError, match="task failed on purpose"):
            result.get(timeout=TIMEOUT)


def test_control_ping_reaches_worker(app: celery.Celery) -> None:
    # Broadcast over the celery.pidbox fanout, reply over reply.celery.pidbox (x-expires queues).
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=TIMEOUT):
        replies = app.control.ping(timeout=2.0)
    assert len(replies) == 1
    assert next(iter(replies[0].values())) == {"ok": "pong"}
