"""The command line's collector tuning (``server/collector.py``): frozen start-up, a higher
young threshold; run in a child process, since it changes the process's collector."""

from __future__ import annotations

import subprocess
import sys

from minibroker.server.collector import YOUNG_THRESHOLD

_PROBE = """
import gc
from minibroker.server.collector import tune_collector
before = gc.get_threshold()
tune_collector()
print(gc.get_freeze_count() > 0, gc.get_threshold()[0], gc.get_threshold()[1:] == before[1:])
"""


def test_tuning_freezes_what_is_alive_and_raises_only_the_young_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", str(YOUNG_THRESHOLD), "True"]


def test_an_embedded_broker_leaves_the_collector_alone() -> None:
    probe = """
import asyncio, gc
from minibroker.testing import running_broker
before = gc.get_threshold(), gc.get_freeze_count()
async def main():
    async with running_broker():
        pass
asyncio.run(main())
print((gc.get_threshold(), gc.get_freeze_count()) == before)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True"]
