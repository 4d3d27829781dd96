"""Storage benchmark: fdatasync latency, and one node-wide log against one file per queue.

1. fdatasync latency on this disk: ``--samples`` appends of 4 KiB, each followed by an
   fdatasync; p50 / p90 / p99 / max.
2. The layout question. Group commit makes one round per batch: append the batch's records,
   then make them durable. With a node-wide log a round is one fdatasync whatever the number
   of queues; with one file per queue (RabbitMQ's classic queue index, LavinMQ's message
   stores) a round must fdatasync every file the batch touched. For K queues (1, 4, 16, 64)
   each round appends 256 records of 100 bytes spread over the K queues and makes them
   durable: in one file; in K files synced one after the other; in K files synced by 8
   threads at once (the best a per-queue layout can do without ``syncfs``). Reported:
   records/s (min / median / max of ``--runs`` runs of ``--rounds`` rounds each).

The machine is shared and noisy; the ratio between layouts is the number that matters.

    python bench/storage_layout.py [--samples 300] [--rounds 100] [--runs 3] [--dir PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

RECORDS_PER_ROUND = 256
RECORD = b"r" * 100


def fsync_latency(directory: str, samples: int) -> list[float]:
    fd = os.open(os.path.join(directory, "latency"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    latencies = []
    try:
        for _ in range(samples):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - started)
    finally:
        os.close(fd)
    return sorted(latencies)


def layout_run(directory: str, queues: int, rounds: int, layout: str,
               pool: ThreadPoolExecutor) -> float:
    files = 1 if layout == "node-wide" else queues
    fds = [os.open(os.path.join(directory, f"{layout}-{queues}-{n}"),
                   os.O_WRONLY | os.O_CREAT | os.O_APPEND) for n in range(files)]
    try:
        started = time.perf_counter()
        for _ in range(rounds):
            chunks: list[list[bytes]] = [[] for _ in fds]
            for record in range(RECORDS_PER_ROUND):
                chunks[(record % queues) % files].append(RECORD)
            for fd, chunk in zip(fds, chunks, strict=True):
                os.write(fd, b"".join(chunk))
            if layout == "per-queue, parallel":
                list(pool.map(os.fdatasync, fds))
            else:
                for fd in fds:
                    os.fdatasync(fd)
        elapsed = time.perf_counter() - started
    finally:
        for fd in fds:
            os.close(fd)
    return rounds * RECORDS_PER_ROUND / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="mb-layout-", dir=args.dir)
    try:
        latencies = fsync_latency(directory, args.samples)
        n = len(latencies)
        print(f"fdatasync after a 4 KiB append ({n} samples): "
              f"p50 {latencies[n // 2] * 1e3:.2f} ms, p90 {latencies[n * 9 // 10] * 1e3:.2f} ms"
              f", p99 {latencies[min(n - 1, n * 99 // 100)] * 1e3:.2f} ms, "
              f"max {latencies[-1] * 1e3:.2f} ms")
        print(f"records/s, {RECORDS_PER_ROUND} records of {len(RECORD)} B per group-commit "
              f"round (min / median / max of {args.runs} runs of {args.rounds} rounds), and "
              "the node-wide log's speed-up, measured pairwise run by run (the noise of a "
              "shared disk moves both sides of a pair alike):")
        layouts = ("node-wide", "per-queue, serial", "per-queue, parallel")
        with ThreadPoolExecutor(8) as pool:
            for queues in (1, 4, 16, 64):
                rates: dict[str, list[float]] = {layout: [] for layout in layouts}
                for _ in range(args.runs):
                    for layout in layouts if queues > 1 else layouts[:1]:
                        rates[layout].append(
                            layout_run(directory, queues, args.rounds, layout, pool))
                for layout in layouts if queues > 1 else layouts[:1]:
                    r = rates[layout]
                    line = (f"  {queues:3} queues, {layout:20} {min(r):10,.0f} / "
                            f"{statistics.median(r):10,.0f} / {max(r):10,.0f}")
                    if layout != "node-wide":
                        ratios = [a / b for a, b in zip(rates["node-wide"], r, strict=True)]
                        line += (f"   node-wide x{min(ratios):.1f} / "
                                 f"x{statistics.median(ratios):.1f} / x{max(ratios):.1f}")
                    print(line)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
