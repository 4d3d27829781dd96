"""The benchmark suite: every scenario against minibroker (and RabbitMQ when present), one table.

    python bench/suite.py                    # everything, a few minutes
    python bench/suite.py --quick            # smaller counts, about a minute
    python bench/suite.py --only topic       # one scenario (repeat --only for several)
    python bench/suite.py --profile x.prof   # native 16 B ack with the broker under cProfile
    MINIBROKER_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/ python bench/suite.py

Rules:

1. Run by hand, never by CI; nothing here is asserted. Each scenario starts its own minibroker
   subprocess (``harness.start_minibroker``), so scenarios are independent and ``--only``
   gives the same numbers as the full run.
2. RabbitMQ rows appear only when ``MINIBROKER_RABBITMQ_URL`` is set and reachable; whatever
   the suite creates there is deleted again.
3. The output is one markdown table — scenario, broker, metric, value, goal, met? — headed by
   the date, Python version, CPU count and the commit, ready to paste into docs/benchmarks.md.
4. The load generator runs on uvloop when installed (its CPU competes with the broker's on a
   small machine, so the cheaper loop keeps the broker the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios_amqp
import scenarios_latency
import scenarios_memory
import scenarios_routing
import scenarios_throughput
from harness import Context, Row, print_table, rabbitmq

Scenario = Callable[[Context], Awaitable[list[Row]]]
SCENARIOS: dict[str, Scenario] = {
    "native": scenarios_throughput.native,
    "amqp": scenarios_throughput.amqp,
    "amqp-vs-rabbitmq": scenarios_amqp.amqp_vs_rabbitmq,
    "fanout": scenarios_routing.fanout,
    "topic": scenarios_routing.topic,
    "latency": scenarios_latency.latency,
    "memory": scenarios_memory.memory,
    "flood": scenarios_memory.flood,
    "slow-consumer": scenarios_memory.slow_consumer,
    "idle-connections": scenarios_memory.idle_connections,
}


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True,
                               cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


async def run(args: argparse.Namespace) -> None:
    rabbit, reason = await rabbitmq(os.environ.get("MINIBROKER_RABBITMQ_URL"))
    if rabbit is None:
        print(f"# RabbitMQ rows skipped: {reason}")
    ctx = Context(args.quick, rabbit, reason, args.profile)
    if args.profile:
        await scenarios_throughput.profile(ctx, args.profile)
        return
    rows: list[Row] = []
    for name in args.only or SCENARIOS:
        t0 = time.perf_counter()
        got = await SCENARIOS[name](ctx)
        print(f"# {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        for row in got:
            print(f"#   {row.broker}: {row.metric} = {row.value}", file=sys.stderr, flush=True)
        rows += got
    print(f"\n# {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs {platform.machine()}, commit {commit()}"
          f"{', quick' if args.quick else ''}\n")
    print_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts and durations")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), metavar="NAME",
                        help=f"run only this scenario; one of {', '.join(SCENARIOS)}")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the native 16 B ack case with the broker under cProfile")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(run(args))


if __name__ == "__main__":
    main()
