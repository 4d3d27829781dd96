"""Every runnable example in ``examples/`` exits 0 by itself and prints what it promises.

Each runs as a subprocess (``python examples/<name>.py URL``) against a broker on port 0.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from minibroker.server import BrokerServer
from tests.integration.test_client import running_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT = 30


@pytest.fixture
def url() -> Iterator[str]:
    server: BrokerServer
    with running_server() as server:
        yield server.url


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_example(name: str, url: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), url], capture_output=True, text=True,
        timeout=TIMEOUT, env=_environment(), cwd=ROOT, check=False)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


def test_work_queue(url: str) -> None:
    lines = run_example("work_queue", url)
    assert lines[-1] == "All 6 tasks done by 2 workers."
    done = [line.split(" done with ")[1] for line in lines if " done with " in line]
    assert sorted(done) == sorted(f"'{task}'" for task in (
        "first task.", "second task...", "third task.", "fourth task....", "fifth task.",
        "sixth task.."))
    assert sum(line.endswith("stopping") for line in lines) == 2


def test_pubsub(url: str) -> None:
    lines = run_example("pubsub", url)
    assert lines[-1] == "Each of 2 subscribers received all 3 messages."
    for number in (1, 2):
        got = [line for line in lines if line.startswith(f"[subscriber {number}]")]
        assert [line.split("] ", 1)[1] for line in got] == [
            "info: service started", "warning: disk 91% full", "error: payment timeout"]


def test_topic_routing(url: str) -> None:
    lines = run_example("topic_routing", url)
    assert lines[-1] == "Every subscriber got exactly the messages its binding keys match."
    assert "critical (*.critical) got 2 messages" in lines
    assert "kernel (kern.#) got 2 messages" in lines
    assert "everything (# kern.*) got 4 messages" in lines


def test_rpc(url: str) -> None:
    lines = run_example("rpc", url)
    assert lines[-1] == "All RPC calls answered."
    for answer in ("fib(10) = 55", "fib(20) = 6765", "fib(30) = 832040"):
        assert f"[client] {answer}" in lines


def test_retry_with_delay(url: str) -> None:
    lines = run_example("retry_with_delay", url)
    assert lines[-1] == "Task done on attempt 3 after 2 delayed retries."
    assert "[worker] attempt 1 of 'resize image 42' failed: retrying in 200 ms" in lines
    assert "[worker] attempt 2 of 'resize image 42' failed: retrying in 200 ms" in lines
    assert ("[worker] attempt 3 of 'resize image 42' succeeded (x-death: rejected 2x from "
            "retry_work, expired 2x in retry_delay)") in lines


def test_examples_can_run_again_on_the_same_broker(url: str) -> None:
    """Examples clean up after themselves: a second run starts from a clean broker."""
    for name in ("work_queue", "rpc", "retry_with_delay"):
        run_example(name, url)
        run_example(name, url)


def test_readme_lists_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    scripts = sorted(path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_"))
    assert scripts, "no examples found"
    for script in scripts:
        assert script in readme, f"examples/README.md does not mention {script}"


@pytest.mark.parametrize("name", ["work_queue", "pubsub", "topic_routing", "rpc",
                                  "retry_with_delay"])
def test_without_a_broker_an_example_says_so_in_one_line(name: str) -> None:
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"minibroker://127.0.0.1:{closed.getsockname()[1]}"
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / f"{name}.py"), url], capture_output=True, text=True,
            timeout=TIMEOUT, env=_environment(), cwd=ROOT, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"{name}.py: cannot connect to 127.0.0.1:")
    assert done.stderr.endswith("Is a broker running there? Start one with: "
                                "python -m minibroker\n")


def test_a_refused_login_is_one_line_without_the_hint(url: str) -> None:
    wrong = url.replace("minibroker://", "minibroker://nobody:wrong@")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "rpc.py"), wrong], capture_output=True, text=True,
        timeout=TIMEOUT, env=_environment(), cwd=ROOT, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "Login was refused using authentication mechanism PLAIN" in done.stderr
    assert "Start one with" not in done.stderr


def test_event_log(url: str) -> None:
    lines = run_example("event_log", url)
    assert lines[-1] == (
        "Replaying the log from the start and resuming from an offset agree: "
        "{'alice': 60, 'bob': 15, 'carol': 7}.")
    assert "[projection 1] replayed 6 events up to offset 5: {'alice': 60, 'bob': 35}" in lines
    assert "[projection 2] replayed 6 events up to offset 5: {'alice': 60, 'bob': 35}" in lines
    assert any(line.startswith("[projection 1, resumed] replayed 3 events up to offset 8")
               for line in lines)
