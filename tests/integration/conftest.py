"""Integration fixtures: a real broker on 127.0.0.1, port 0, on the test's own event loop.

Rules:

1. ``run_broker(scenario, config=..., clock=...)`` runs ``await scenario(server)`` under
   ``asyncio.run`` with a started :class:`BrokerServer` (``start()`` returns once it accepts:
   that is the readiness signal, nothing sleeps). The whole scenario is bounded by ``timeout``.
2. Afterwards the server is closed, and a test fails if the broker logged an internal error.
3. :class:`ManualClock` (the test toolkit's, ``minibroker.testing``) drives heartbeat checks
   without waiting in real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import pytest

from minibroker.config import ServerConfig
from minibroker.server import BrokerServer
from minibroker.testing import ManualClock

__all__ = ["ManualClock", "RunBroker"]

Scenario = Callable[[BrokerServer], Awaitable[None]]

#: Defaults for test brokers: any free port, and a short grace so shutdown is quick.
TEST_CONFIG = ServerConfig(port=0, shutdown_grace=0.2)


class RunBroker(Protocol):
    def __call__(
        self, scenario: Scenario, *, config: ServerConfig = ..., clock: ManualClock | None = ...,
        timeout: float = ...,
    ) -> None: ...


@pytest.fixture
def run_broker() -> RunBroker:
    def run(
        scenario: Scenario, *, config: ServerConfig = TEST_CONFIG,
        clock: ManualClock | None = None, timeout: float = 10.0,
    ) -> None:
        async def main() -> None:
            server = BrokerServer(config, clock=clock)
            await server.start()
            try:
                async with asyncio.timeout(timeout):
                    await scenario(server)
            finally:
                await server.close()
            assert server.internal_errors == 0, "the broker logged an internal error"

        asyncio.run(main())

    return run
