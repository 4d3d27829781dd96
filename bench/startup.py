"""Startup benchmark for the test toolkit: how fast a test broker is ready, and whether it leaks.

Measures (results go in docs/benchmarks.md, "## Startup"):

1. ``running_broker()``: time from entering the context manager to the first completed native
   client connection (handshake done), median and p90 of ``--runs`` (default 100).
2. ``broker_in_thread()``: the same, from the test's thread with the blocking client.
3. ``--cycles`` (default 1,000) start/stop cycles of ``running_broker()`` and then of
   ``broker_in_thread()``, each with one client connection, reporting open file descriptors
   and RSS before and after.

Rule: every number comes from this script on the machine named in the results; nothing here
is asserted.

    python bench/startup.py [--runs 100] [--cycles 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
import time

import minibroker
import minibroker.blocking
from minibroker.testing import broker_in_thread, running_broker


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def rss_kib() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


async def async_ready_once() -> float:
    started = time.perf_counter()
    async with running_broker() as broker, minibroker.connect(broker.url):
        elapsed = time.perf_counter() - started
    return elapsed


def thread_ready_once() -> float:
    started = time.perf_counter()
    with broker_in_thread() as broker, minibroker.blocking.connect(broker.url):
        elapsed = time.perf_counter() - started
    return elapsed


async def cycles(count: int) -> None:
    for _ in range(count):
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            await conn.channel()


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return (f"median {statistics.median(ordered) * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms, "
            f"min {ordered[0] * 1000:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=1000)
    args = parser.parse_args(argv)
    print(f"CPython {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs")

    asyncio.run(async_ready_once())  # warm-up: imports, first loop
    samples: list[float] = []
    for _ in range(args.runs):
        samples.append(asyncio.run(async_ready_once()))
    print(f"running_broker() -> first connection: {describe(samples)}")

    thread_ready_once()
    samples = [thread_ready_once() for _ in range(args.runs)]
    print(f"broker_in_thread() -> first connection: {describe(samples)}")

    gc.collect()
    fds, rss = open_fds(), rss_kib()
    started = time.perf_counter()
    asyncio.run(cycles(args.cycles))
    elapsed = time.perf_counter() - started
    gc.collect()
    print(f"{args.cycles} start/connect/stop cycles in {elapsed:.1f} s "
          f"({elapsed / args.cycles * 1000:.2f} ms each): open fds {fds} -> {open_fds()}, "
          f"RSS {rss} KiB -> {rss_kib()} KiB")

    fds, rss = open_fds(), rss_kib()
    started = time.perf_counter()
    for _ in range(args.cycles):
        thread_ready_once()
    elapsed = time.perf_counter() - started
    gc.collect()
    print(f"{args.cycles} broker_in_thread() cycles in {elapsed:.1f} s "
          f"({elapsed / args.cycles * 1000:.2f} ms each): open fds {fds} -> {open_fds()}, "
          f"RSS {rss} KiB -> {rss_kib()} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
