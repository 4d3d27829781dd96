"""Log lines for connections and channels closed by a protocol error, rate-limited.

A client that breaks the protocol gets one log line per close — peer, connection, code, text —
so an operator can see who and why. A client that breaks it 100,000 times a second must not
write 100,000 lines.

Rules:

1. A token bucket: :data:`RATE` lines per second on average, bursts of up to :data:`BURST`.
   A close that finds the bucket empty is counted, not logged.
2. The next line logged after some were held back is preceded by one line saying how many
   were suppressed; the server's periodic sweep says it too (:meth:`CloseLog.flush`), so a
   burst that stops is still reported.
3. The clock is the server's (``now`` in seconds, passed in): no clock is read here.
"""

from __future__ import annotations

import logging

__all__ = ["BURST", "RATE", "CloseLog"]

#: Lines per second on average, and the largest burst.
RATE = 10.0
BURST = 20


class CloseLog:
    def __init__(self, logger: logging.Logger, *, rate: float = RATE, burst: int = BURST) -> None:
        self.logger = logger
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None
        #: Lines held back since the last one logged (rule 2).
        self.suppressed = 0
        #: Lines held back in total (for tests and statistics).
        self.suppressed_total = 0

    def log(self, now: float, level: int, message: str, *args: object) -> bool:
        """Log one close (rule 1); False when it was suppressed."""
        if not self.logger.isEnabledFor(level):
            return False
        self._refill(now)
        if self._tokens < 1.0:
            self.suppressed += 1
            self.suppressed_total += 1
            return False
        self._tokens -= 1.0
        self.flush(now)
        self.logger.log(level, message, *args)
        return True

    def flush(self, now: float) -> None:
        """Rule 2: say how many lines were suppressed, if any."""
        if self.suppressed:
            count, self.suppressed = self.suppressed, 0
            self.logger.warning("suppressed %d more log lines about closed connections and "
                                "channels (at most %g a second)", count, self.rate)

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now if self._last is None else max(self._last, now)
