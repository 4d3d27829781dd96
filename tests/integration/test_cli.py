"""``python -m minibroker`` as a user runs it: a subprocess, its ready line, signals, exit codes.

The ready line on stdout is the readiness signal; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from minibroker.protocols.native import frames as f
from tests.integration.rawclient import RawClient

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"^minibroker listening on minibroker://127\.0\.0\.1:(\d+) \(native\)")
TIMEOUT = 10


def _command(*args: str) -> list[str]:
    # Any free management port: brokers of parallel tests must not contend for the default.
    return [sys.executable, "-m", "minibroker", "--management-port", "0", *args]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # The default data directory is per user: each broker here gets its own, fresh one.
    env["MINIBROKER_DATA_DIR"] = tempfile.mkdtemp(prefix="minibroker-cli-test-")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def broker_process() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        _command("--port", "0", "--heartbeat", "0"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=_environment(),
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=TIMEOUT)


def test_ready_line_then_sigterm_exits_zero(broker_process: subprocess.Popen[str]) -> None:
    assert broker_process.stdout is not None
    line = _ready_line(broker_process)
    found = READY.match(line)
    assert found, f"unexpected ready line {line!r}"
    assert line.count("\n") == 1
    port = int(found.group(1))

    async def session() -> None:
        client = await RawClient.connect(port)
        await client.open_channel()
        await client.declare_queue("cli")
        broker_process.send_signal(signal.SIGTERM)
        close = await client.expect(f.ConnectionClose)  # graceful: clients are told
        assert close.reply_code == 320
        client.send(f.ConnectionCloseOk())
        assert await client.frames_until_eof() == []

    asyncio.run(asyncio.wait_for(session(), TIMEOUT))
    assert broker_process.wait(timeout=TIMEOUT) == 0


def test_sigint_exits_zero(broker_process: subprocess.Popen[str]) -> None:
    assert broker_process.stdout is not None
    assert READY.match(_ready_line(broker_process))
    broker_process.send_signal(signal.SIGINT)
    assert broker_process.wait(timeout=TIMEOUT) == 0


def _ready_line(process: subprocess.Popen[str]) -> str:
    """The broker's first stdout line, its readiness signal; fail instead of hanging."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], TIMEOUT)
    assert readable, f"no ready line within {TIMEOUT} s"
    return process.stdout.readline()


def test_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            _command("--port", str(port)), capture_output=True, text=True, timeout=TIMEOUT,
            env=_environment(),
        )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and str(port) in lines[0], result.stderr


def test_help_explains_every_option() -> None:
    result = subprocess.run(
        _command("--help"), capture_output=True, text=True, timeout=TIMEOUT, env=_environment()
    )
    assert result.returncode == 0
    from minibroker.cli import build_parser

    for action in build_parser()._actions:
        if not action.option_strings:
            continue
        assert action.help, f"{action.option_strings} has no help text"
        # The option's line in the help output carries (the start of) its explanation.
        assert action.help.split()[0] in result.stdout, action.option_strings
    assert "5680" in result.stdout


def test_a_host_name_that_does_not_resolve_is_said_in_words() -> None:
    # .invalid never resolves (RFC 6761), whatever the local DNS does with other names.
    result = subprocess.run(
        _command("--host", "no-such-host.invalid", "--port", "0"), capture_output=True,
        text=True, timeout=TIMEOUT, env=_environment(),
    )
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("minibroker: cannot listen on no-such-host.invalid: the host name "
                           "does not resolve ("), line
    assert "Unknown error" not in line


def test_loop_uvloop_without_uvloop_is_one_line_and_no_warning() -> None:
    script = ("import sys\n"
              "sys.modules['uvloop'] = None  # as if uvloop were not installed\n"
              "from minibroker.cli import main\n"
              "sys.exit(main(['--loop', 'uvloop', '--port', '0', '--no-management']))\n")
    result = subprocess.run([sys.executable, "-W", "default", "-c", script],
                            capture_output=True, text=True, timeout=TIMEOUT, env=_environment())
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "minibroker: --loop uvloop: uvloop is not installed\n"


def test_rabbitmq_version_makes_the_broker_answer_as_that_release() -> None:
    # RabbitMQ 3.10 closes the connection (503) on an unknown exchange type; 4.2 the channel.
    process = subprocess.Popen(
        _command("--port", "0", "--heartbeat", "0", "--rabbitmq-version", "3.10"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(),
    )
    try:
        found = READY.match(_ready_line(process))
        assert found

        async def session() -> None:
            client = await RawClient.connect(int(found.group(1)))
            await client.open_channel()
            client.send(f.ExchangeDeclare(1, "x", "no-such-type", False, False, False, False, {}))
            close = await client.expect(f.ConnectionClose)
            assert (close.reply_code, close.reply_text) == (
                503, "COMMAND_INVALID - unknown exchange type 'no-such-type'"
            )

        asyncio.run(asyncio.wait_for(session(), TIMEOUT))
    finally:
        process.kill()
        process.communicate(timeout=TIMEOUT)


def test_an_unmodelled_rabbitmq_version_is_a_usage_error() -> None:
    result = subprocess.run(
        _command("--rabbitmq-version", "3.9"), capture_output=True, text=True,
        timeout=TIMEOUT, env=_environment(),
    )
    assert result.returncode == 2
    assert "RabbitMQ 3.9 is not modelled" in result.stderr


def test_rabbitmq_version_flag_reaches_the_core_the_server_builds() -> None:
    """``--rabbitmq-version`` / ``ServerConfig.rabbitmq`` is the profile of every core the
    server builds, including a fresh one after ``reset``."""
    from minibroker.config import ServerConfig
    from minibroker.server.server import BrokerServer

    server = BrokerServer(ServerConfig(port=0, rabbitmq="3.10"))
    assert server.broker.profile.name == "3.10"
    assert server.new_broker().profile.name == "3.10"
