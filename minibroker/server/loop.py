"""Choosing the event loop: uvloop when installed (and asked for), plain asyncio otherwise.

Rule: ``auto`` never fails; ``uvloop`` fails with a clear message when uvloop is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from minibroker.config import LoopKind

__all__ = ["loop_factory", "run"]

_T = TypeVar("_T")


def loop_factory(kind: LoopKind) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise RuntimeError("--loop uvloop: uvloop is not installed") from None
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, _T], kind: LoopKind = "auto") -> _T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)
