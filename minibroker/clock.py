"""Clocks: the core never reads time; the server and the client ask the clock they were given.

Rules:

1. Every timer in the broker (heartbeats, handshake timeouts, the core's deadlines: TTL,
   expiry) uses the server's clock, and every timer of a native client (its heartbeats) uses
   the client's, so a manual clock (``minibroker.testing``) controls all of them.
2. The default is :class:`LoopClock`, the event loop's monotonic clock.
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
