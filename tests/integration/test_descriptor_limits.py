"""File descriptors at start (``server/flow.py`` rule 5), as a fresh process sees them: a soft
``RLIMIT_NOFILE`` below the hard one is raised to it, and a limit below what the broker wants
is one warning naming it; asyncio's shutdown noise about a closed listener is not an error,
and every other loop exception still reaches the handler that was there before."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from typing import Any

import pytest

from minibroker.server.flow import install_accept_error_handler

CHILD = """
import logging, resource, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
from minibroker.server.flow import raise_open_file_limit
wanted = (hard + 1) if hard != resource.RLIM_INFINITY else 10**9
print(raise_open_file_limit(wanted), resource.getrlimit(resource.RLIMIT_NOFILE)[0], wanted)
"""


def test_a_low_soft_limit_is_raised_and_a_shortfall_is_one_warning() -> None:
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           timeout=60, check=True)
    now, in_force, wanted = (int(word) for word in child.stdout.split())
    assert now == in_force > 256  # raised towards the hard limit
    warnings = child.stderr.splitlines()
    assert len(warnings) == 1, child.stderr
    assert warnings[0].startswith(f"RLIMIT_NOFILE is {now} (hard limit ")
    assert f"fewer than the {wanted} file descriptors wanted" in warnings[0]


def test_other_loop_exceptions_reach_the_previous_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[dict[str, Any]] = []
    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(lambda _loop, context: seen.append(context))
        install_accept_error_handler(loop)
        install_accept_error_handler(loop)  # twice: still one handler in front
        noise = {"message": "Exception in callback", "exception": ValueError("fd -1"),
                 "handle": "<Handle BaseSelectorEventLoop._start_serving(...)>"}
        other = {"message": "Task exception was never retrieved",
                 "exception": RuntimeError("boom")}
        with caplog.at_level(logging.DEBUG, logger="minibroker"):
            loop.call_exception_handler(noise)
            loop.call_exception_handler(other)
    finally:
        loop.close()
    assert seen == [other]
    assert [(record.levelno, record.getMessage()) for record in caplog.records
            if record.name.startswith("minibroker")] == [
        (logging.DEBUG, "accept retry after the listener closed: fd -1")]
