"""The pytest plugin, run the way users run it: a sample suite in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import xdist  # noqa: F401 - the sample suite runs under it: a broken install fails

PLUGIN = "minibroker.testing.pytest_plugin"

SAMPLE = '''
import pika
import pytest
from minibroker import connect
from minibroker.blocking import connect as blocking_connect
from minibroker.testing import ManualClock


def test_sync_blocking_client(minibroker_url, minibroker):
    with blocking_connect(minibroker_url) as conn:
        conn.channel().declare_queue("jobs")
    assert [q.name for q in minibroker.queues()] == ["jobs"]


def test_pika(minibroker_amqp_url):
    connection = pika.BlockingConnection(pika.URLParameters(minibroker_amqp_url))
    connection.channel().queue_declare("via-pika")
    connection.close()


async def test_async_run_by_the_plugin(minibroker):
    async with connect(minibroker.url) as conn:
        channel = await conn.channel()
        await channel.declare_queue("q")
        await channel.publish("", "q", b"x")
        await minibroker.wait_for_async(minibroker.queue_condition("q", ready=1))


@pytest.mark.minibroker(clock=ManualClock(), heartbeat=0)
def test_marker_options(minibroker):
    assert minibroker.server.config.heartbeat == 0
    minibroker.clock.advance(5)


@pytest.mark.parametrize("n", range(3))
def test_shared_broker_is_reset_between_tests(minibroker_shared, n):
    assert minibroker_shared.queues() == ()
    with blocking_connect(minibroker_shared.url) as conn:
        conn.channel().declare_queue("left-behind")
'''

FAILING = '''
def test_internal_error_fails_at_teardown(minibroker):
    def fake_error():
        minibroker.server.internal_errors += 1
    minibroker._call(fake_error)
'''


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    plugin = [] if any(ep.value == PLUGIN for ep in entry_points(group="pytest11")) else [
        "-p", PLUGIN]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )


def _write(tmp_path: Path, name: str, source: str) -> None:
    (tmp_path / name).write_text(textwrap.dedent(source))


def test_sample_suite_passes_sync_async_marker_and_shared(tmp_path: Path) -> None:
    _write(tmp_path, "test_sample.py", SAMPLE)
    result = _run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout


def test_async_tests_that_do_not_use_the_broker_are_left_alone(tmp_path: Path) -> None:
    """Installing minibroker must not change how a suite's other async tests run: without an
    async plugin, pytest handles them as it always does (it refuses to run them)."""
    _write(tmp_path, "test_other.py", """
        async def test_unrelated():
            raise AssertionError("ran by the minibroker plugin")
    """)
    result = _run(tmp_path)
    assert "ran by the minibroker plugin" not in result.stdout, result.stdout
    assert "async def functions are not natively supported" in result.stdout, result.stdout


def test_sample_suite_under_xdist_with_three_workers(tmp_path: Path) -> None:
    _write(tmp_path, "test_sample.py", SAMPLE)
    _write(tmp_path, "test_more.py", SAMPLE)  # twice as many tests as workers can share
    result = _run(tmp_path, "-n", "3", "-vv")  # -q is in _run: net verbose
    assert result.returncode == 0, result.stdout + result.stderr
    assert "14 passed" in result.stdout
    assert "created: 3/3 workers" in result.stdout
    # Brokers in different worker processes ran side by side (no fixed port, no shared state).
    workers = {word for word in result.stdout.split() if word in ("[gw0]", "[gw1]", "[gw2]")}
    assert len(workers) >= 2


def test_an_internal_error_fails_the_test_at_teardown(tmp_path: Path) -> None:
    _write(tmp_path, "test_failing.py", FAILING)
    result = _run(tmp_path)
    assert result.returncode == 1
    assert "1 passed, 1 error" in result.stdout
    assert "the broker logged 1 internal error(s) during this test" in result.stdout


def test_against_a_broker_url_inspection_skips_with_a_reason(tmp_path: Path) -> None:
    # The "real broker" is a minibroker started by another process's fixture: any AMQP URL.
    from minibroker.testing import broker_in_thread

    _write(tmp_path, "test_sample.py", SAMPLE)
    with broker_in_thread() as real:
        result = _run(tmp_path, "-rs", f"--minibroker-url={real.amqp_url}")
    assert result.returncode == 0, result.stdout + result.stderr
    # pika needs only the URL: it runs; everything else needs the in-process broker.
    assert "1 passed, 6 skipped" in result.stdout
    assert "needs the in-process minibroker; this run uses --minibroker-url=amqp://" in (
        result.stdout)


def test_a_remote_native_url_gives_an_amqp_url_with_the_same_login() -> None:
    from minibroker.testing.pytest_plugin import RemoteBroker

    assert (RemoteBroker("minibroker://ann:p%40ss@broker.test:5681").amqp_url
            == "amqp://ann:p%40ss@broker.test:5681/")
    assert RemoteBroker("minibroker://broker.test").amqp_url == "amqp://guest:guest@broker.test:5680/"
