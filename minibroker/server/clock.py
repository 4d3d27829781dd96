"""The server's clock is the one every layer shares (``minibroker/clock.py``)."""

from minibroker.clock import Clock, LoopClock

__all__ = ["Clock", "LoopClock"]
