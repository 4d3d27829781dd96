"""The kill -9 loop of ``bench/kill9_loop.py`` against the real process: a publisher with
confirms and unique ids and an acking consumer, the broker killed with SIGKILL at random
moments and restarted on the same data directory; then everything is drained. No confirmed
message may be lost, and a message delivered twice must say ``redelivered`` the second time.

The short run is bounded (3 cycles, 60 s); the long one (30 cycles) is marked slow."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _loop() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kill9_loop", ROOT / "bench" / "kill9_loop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _check(cycles: int, seconds: float, tmp_path: Path) -> None:
    loop = _loop()
    result = loop.run(loop.Minibroker(str(tmp_path), "always"), cycles, seconds, seed=3,
                      kill_after=(0.1, 0.5))
    assert result["cycles"] >= 1
    assert result["confirmed"] > 0
    assert result["lost"] == 0, result
    assert result["duplicates (not flagged redelivered)"] == 0, result


def test_kill9_loop_short(tmp_path: Path) -> None:
    _check(3, 60.0, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MINIBROKER_SLOW_TESTS"),
                    reason="long kill -9 loop: set MINIBROKER_SLOW_TESTS=1")
def test_kill9_loop_long(tmp_path: Path) -> None:
    _check(30, 600.0, tmp_path)
