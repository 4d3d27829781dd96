"""What every example does when run as a script: take the broker URL from the command line, and
say in one line when no broker answers there (instead of a traceback, or a group of them from
the example's task group).

    python examples/work_queue.py [URL]      (default minibroker://127.0.0.1:5680)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import minibroker
from minibroker.errors import ConnectionClosed

DEFAULT_URL = "minibroker://127.0.0.1:5680"


async def _cannot_connect(url: str) -> str | None:
    """Why a connection to ``url`` fails, or None when a broker lets us in."""
    try:
        async with minibroker.connect(url, connect_timeout=5):
            return None
    except ConnectionClosed as exc:
        if isinstance(exc.__cause__, OSError):  # refused, unreachable, a name that won't resolve
            return f"{exc}. Is a broker running there? Start one with: python -m minibroker"
        return str(exc)


def run_example(main: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL
    why = asyncio.run(_cannot_connect(url))
    if why is not None:
        sys.exit(f"{Path(sys.argv[0]).name}: {why}")
    asyncio.run(main(url))
