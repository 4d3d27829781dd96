"""Client unit tests run on a fresh event loop each, bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

Run = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]


@pytest.fixture
def run() -> Run:
    def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
        async def bounded() -> None:
            async with asyncio.timeout(20):
                await scenario()

        asyncio.run(bounded())

    return run
