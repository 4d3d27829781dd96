"""``python -m minibroker`` with users, vhosts and TLS, as a user runs it: a subprocess, its
ready line, logins over real sockets, and settings that cannot work refused in one line."""

from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from pika.exceptions import ProbableAuthenticationError

from tests.integration.test_cli import TIMEOUT, _command, _environment, _ready_line
from tests.unit.security.test_tls import Files

TLS_PORT = re.compile(r", TLS on port (\d+) \(minibrokers://, amqps://\)")


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def _run(*args: str) -> Iterator[tuple[int, str]]:
    process = subprocess.Popen(
        _command("--port", "0", "--heartbeat", "0", "--in-memory", *args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment())
    try:
        line = _ready_line(process)
        port = re.search(r"minibroker://127\.0\.0\.1:(\d+)", line)
        assert port, f"unexpected ready line {line!r}"
        yield int(port.group(1)), line
    finally:
        process.kill()
        process.communicate(timeout=TIMEOUT)


def _params(port: int, user: str, password: str, vhost: str = "/",
            **options: object) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        "127.0.0.1", port, vhost, pika.PlainCredentials(user, password),
        connection_attempts=1, socket_timeout=TIMEOUT, stack_timeout=TIMEOUT, **options)


def test_users_and_vhosts_from_the_command_line() -> None:
    for port, line in _run("--user", "app:s3cret@orders", "--vhost", "audit"):
        assert "s3cret" not in line and f" and amqp://127.0.0.1:{port}/ " in line
        connection = pika.BlockingConnection(_params(port, "app", "s3cret", "orders"))
        connection.channel().queue_declare("jobs")
        connection.close()
        with pytest.raises(ProbableAuthenticationError):
            pika.BlockingConnection(_params(port, "guest", "guest"))


def test_a_tls_port_serves_amqps(files: Files) -> None:
    for _, line in _run("--tls-port", "0", "--certfile", files.server_cert,
                        "--keyfile", files.server_key):
        found = TLS_PORT.search(line)
        assert found, line
        context = ssl.create_default_context(cafile=files.cafile)
        connection = pika.BlockingConnection(_params(
            int(found.group(1)), "guest", "guest",
            ssl_options=pika.SSLOptions(context, "localhost")))
        connection.close()


@pytest.mark.parametrize(("args", "message"), [
    (["--tls-port", "0", "--certfile", "/nonexistent/cert.pem"], "certfile"),
    (["--tls-port", "0", "--certfile", "c.pem", "--verify-peer"], "verify_peer needs a cafile"),
    (["--certfile", "c.pem"], "need --tls-port"),
    (["--user", "nopassword"], "expected NAME:PASSWORD"),
])
def test_security_settings_that_cannot_work_are_one_line_and_exit_2(
    args: list[str], message: str,
) -> None:
    result = subprocess.run(_command("--port", "0", "--in-memory", *args), capture_output=True,
                            text=True, timeout=TIMEOUT, env=_environment())
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
