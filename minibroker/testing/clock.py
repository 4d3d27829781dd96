"""A manual clock for test brokers: time moves only when the test says so.

Rules:

1. ``ManualClock`` implements the server's ``Clock`` protocol (``now``, ``call_at``), so every
   timer the broker arms through its clock — the core's deadlines (TTL, queue expiry, consumer
   timeouts) — waits for :meth:`ManualClock.advance`.
2. ``advance(seconds)`` fires every timer due, in deadline order, with ``now()`` equal to each
   timer's deadline while it runs (deterministic, whatever the callbacks schedule), then runs
   the attached servers' sweep (heartbeats, handshake timeouts) at the final time. Everything
   has fired when it returns.
3. Thread safety: called from a thread other than the attached broker's loop thread,
   ``advance`` runs on that loop (``call_soon_threadsafe``) and returns once it has finished
   there. A clock serves the brokers of one loop at a time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minibroker.server.server import BrokerServer

__all__ = ["ManualClock"]


class _Timer:
    __slots__ = ("callback", "cancelled", "seq", "when")

    def __init__(self, when: float, seq: int, callback: Callable[[], None]) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def __lt__(self, other: _Timer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told (:meth:`advance`); due timers fire on the way."""

    def __init__(self, start: float = 0.0) -> None:
        self._time = start
        self._timers: list[_Timer] = []
        self._seq = 0
        self._servers: list[BrokerServer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    @property
    def time(self) -> float:
        return self._time

    def now(self) -> float:
        return self._time

    def call_at(self, when: float, callback: Callable[[], None]) -> Callable[[], None]:
        self._seq += 1
        timer = _Timer(when, self._seq, callback)
        heapq.heappush(self._timers, timer)
        return timer.cancel

    @property
    def pending(self) -> int:
        """Timers armed and not yet fired or cancelled."""
        return sum(1 for timer in self._timers if not timer.cancelled)

    # -- servers ----------------------------------------------------------------------------

    def attach(self, server: BrokerServer) -> None:
        """Run ``server``'s sweep on every advance (done by the toolkit when it starts one)."""
        loop = server.loop
        if self._loop is not None and self._loop is not loop and self._servers:
            raise RuntimeError("a ManualClock serves the brokers of one event loop at a time")
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._servers.append(server)

    def detach(self, server: BrokerServer) -> None:
        if server in self._servers:
            self._servers.remove(server)

    # -- moving time ------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing everything due (rule 2)."""
        if seconds < 0:
            raise ValueError(f"time only moves forward: advance({seconds})")
        loop = self._loop
        if (loop is None or not self._servers or loop.is_closed()
                or threading.get_ident() == self._loop_thread):
            self._advance(seconds)
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                self._advance(seconds)
            except BaseException as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

        loop.call_soon_threadsafe(run)
        done.result()

    def _advance(self, seconds: float) -> None:
        target = self._time + seconds
        timers = self._timers
        while timers and timers[0].when <= target:
            timer = heapq.heappop(timers)
            if timer.cancelled:
                continue
            self._time = max(self._time, timer.when)
            timer.callback()
        self._time = target
        for server in list(self._servers):
            if not server.closing:
                server.fire_timers()

    def __repr__(self) -> str:
        return f"ManualClock(time={self._time}, pending={self.pending})"
