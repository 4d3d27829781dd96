"""Users, vhosts, permissions and limits on the reference RabbitMQ, through ``rabbitmqctl``.

The differential security tests need accounts that only an administrator can make. This module
makes them with the broker's own CLI and removes them afterwards.

Rules:

1. Everything is created in one ``import_definitions`` call (the CLI takes about a second per
   call) and removed in one ``eval`` call, with one CLI call per item as the fallback.
2. Removal runs even when a test failed or the import failed halfway (``provisioned`` is a
   context manager, and ``remove`` removes whatever of the document exists).
3. Only names this run generated are touched (``mbsec-<run>-…``): other test runs against the
   same broker keep theirs. The reference broker itself is never stopped or reconfigured.
4. Skip, do not fail, when ``MINIBROKER_RABBITMQ_URL`` is unset, when ``rabbitmqctl`` is not on
   the PATH, or when it cannot talk to the node (for instance without the rights to read the
   Erlang cookie).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pika
import pytest
from pika.exceptions import AMQPError, ChannelClosedByBroker

CTL_TIMEOUT = 60.0
#: How long an import may take to become visible (3.10 imports asynchronously).
IMPORT_TIMEOUT = 60.0


def rabbitmqctl(*args: str, stdin: str | None = None) -> str:
    """Run ``rabbitmqctl -q ARGS``; raise ``RuntimeError`` with its output when it fails."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise FileNotFoundError("rabbitmqctl is not on the PATH")
    done = subprocess.run([ctl, "-q", *args], input=stdin, capture_output=True, text=True,
                          timeout=CTL_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): "
                           f"{done.stdout.strip()} {done.stderr.strip()}")
    return done.stdout


def reference_broker() -> tuple[str, int]:
    """(host, port) of ``MINIBROKER_RABBITMQ_URL`` when rabbitmqctl can administer it, or skip
    (rule 4)."""
    url = os.environ.get("MINIBROKER_RABBITMQ_URL")
    if not url:
        pytest.skip("MINIBROKER_RABBITMQ_URL is not set: no reference RabbitMQ to compare with")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not on the PATH: cannot create users and vhosts")
    try:
        rabbitmqctl("list_vhosts")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        pytest.skip(f"rabbitmqctl cannot administer the reference broker: {err}")
    parts = urlparse(url)
    return parts.hostname or "127.0.0.1", parts.port or 5672


def _erlang_binaries(names: list[str]) -> str:
    for name in names:
        # Generated names only (rule 3): nothing that could break out of the literal.
        if not all(char.isalnum() or char in "-_." for char in name):
            raise ValueError(f"refusing to pass {name!r} to rabbitmqctl eval")
    return "[" + ", ".join(f'<<"{name}">>' for name in names) + "]"


def remove(document: dict[str, Any]) -> None:
    """Delete the document's vhosts (with everything in them) and users (rule 1)."""
    vhosts = [vhost["name"] for vhost in document.get("vhosts", [])]
    users = [user["name"] for user in document.get("users", [])]
    expression = (
        f"[rabbit_vhost:delete(V, <<\"minibroker-tests\">>) || V <- {_erlang_binaries(vhosts)},"
        " rabbit_vhost:exists(V)],"
        f" [rabbit_auth_backend_internal:delete_user(U, <<\"minibroker-tests\">>)"
        f" || U <- {_erlang_binaries(users)}, rabbit_auth_backend_internal:exists(U)], ok."
    )
    try:
        rabbitmqctl("eval", expression)
        return
    except (RuntimeError, subprocess.TimeoutExpired):
        pass  # an internal API that moved: one CLI call per item instead
    for vhost in vhosts:
        with contextlib.suppress(RuntimeError):
            rabbitmqctl("delete_vhost", vhost)
    for user in users:
        with contextlib.suppress(RuntimeError):
            rabbitmqctl("delete_user", user)


def _await_import(host: str, port: int, document: dict[str, Any]) -> None:
    """Wait (bounded) until the sentinel queue, imported last, exists."""
    sentinel = document["queues"][-1]
    deadline = time.monotonic() + IMPORT_TIMEOUT
    while True:
        try:
            params = pika.ConnectionParameters(
                host, port, sentinel["vhost"], pika.PlainCredentials("guest", "guest"),
                connection_attempts=1, socket_timeout=5)
            connection = pika.BlockingConnection(params)
            try:
                connection.channel().queue_declare(sentinel["name"], passive=True)
                return
            finally:
                if connection.is_open:
                    connection.close()
        except (ChannelClosedByBroker, AMQPError):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the definitions import did not finish within {IMPORT_TIMEOUT} s") from None
            time.sleep(0.2)  # polling an asynchronous import; there is no event to wait on


@contextlib.contextmanager
def provisioned(host: str, port: int, document: dict[str, Any]) -> Iterator[None]:
    """The document's definitions exist inside the block and are removed after it (rule 2)."""
    try:
        rabbitmqctl("import_definitions", stdin=json.dumps(document))
        _await_import(host, port, document)
        yield
    finally:
        remove(document)


@dataclass
class RabbitAdmin:
    """What the :func:`rabbitmq_admin` fixture yields: the reference broker's address and a
    way to load definitions that are removed when the test ends."""

    host: str
    port: int
    _loaded: list[dict[str, Any]] = field(default_factory=list)

    def load(self, document: dict[str, Any]) -> None:
        """Import ``document`` (a RabbitMQ definitions document whose ``queues`` end with a
        sentinel queue, as ``access_runner.definitions`` makes them) and wait for it."""
        self._loaded.append(document)
        rabbitmqctl("import_definitions", stdin=json.dumps(document))
        _await_import(self.host, self.port, document)

    def remove_all(self) -> None:
        while self._loaded:
            remove(self._loaded.pop())


@pytest.fixture
def rabbitmq_admin() -> Iterator[RabbitAdmin]:
    """Users, vhosts, permissions and limits on the reference RabbitMQ for one test, removed
    afterwards even when the test fails (rule 2); skips as rule 4 says."""
    admin = RabbitAdmin(*reference_broker())
    try:
        yield admin
    finally:
        admin.remove_all()
