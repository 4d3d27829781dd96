"""Clocks for the shell: the core never reads time, the server asks its clock.

Rule: every timer in the broker (heartbeats, and the core's deadlines: TTL, expiry) uses the
server's clock, so a manual clock (``minibroker.testing``) controls all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "LoopClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on this clock's own scale (only differences matter)."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` once the clock reaches ``when``; returns a cancel function."""
        ...


class LoopClock:
    """Real time: the event loop's monotonic clock."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def now(self) -> float:
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Callable[[], None]:
        return self._loop.call_at(when, callback).cancel
