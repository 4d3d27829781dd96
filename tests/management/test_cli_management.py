"""``python -m minibroker`` serves the management API: its URL in the ready line, the flags."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20
READY = re.compile(r"^minibroker listening on .* \(AMQP 0-9-1\) and "
                   r"http://127\.0\.0\.1:(\d+)/ \(management\); ")


def _run(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "minibroker", "--port", "0", "--heartbeat", "0", "--in-memory",
         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=TIMEOUT)


def test_the_ready_line_names_the_management_url_and_it_answers() -> None:
    process = _run("--management-port", "0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = READY.match(line)
        assert found, line
        url = f"http://127.0.0.1:{found.group(1)}"
        request = urllib.request.Request(f"{url}/api/whoami",
                                         headers={"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            assert json.load(response)["name"] == "guest"
        with urllib.request.urlopen(f"{url}/", timeout=TIMEOUT) as response:
            assert b"<html" in response.read().lower()
    finally:
        assert _stop(process) is not None
    assert process.returncode == 0


def test_no_management_serves_no_url() -> None:
    process = _run("--no-management")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("minibroker listening on ") and "http://" not in line, line
    finally:
        _stop(process)


def test_a_management_port_in_use_is_one_clear_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _run("--management-port", str(port))
        out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert f"port {port} for the management API" in lines[0]
    assert "--management-port" in lines[0] and "--no-management" in lines[0]
