"""Storage benchmark: persistent messages per second through group commit, as a broker does it.

An asyncio loop plays the broker with one publisher that keeps ``--window`` (default 1,000)
unconfirmed persistent messages in flight: it records publishes in a ``DurableStore``, flushes
once per loop iteration (every ``--batch`` publishes, default 100, like one read of frames),
and "confirms" a message when the store reports its sequence number durable, through
``loop.call_soon_threadsafe`` from the store's worker thread, exactly as the shell will wire
it. With ``--ack`` a consumer settles every confirmed message too (acks are records as well).

Reported per body size (16 B and 1 KiB): messages/s, fdatasyncs/s and messages per fdatasync
(the group-commit batch), and the loop thread's CPU per message (what the store adds to the
broker's hot path; the fdatasyncs run on the worker), as min / median / max of ``--runs`` runs
of ``--seconds`` each; and the same with ``sync="never"``. The machine is shared: compare
medians, quote ranges.

    python bench/storage_throughput.py [--seconds 5] [--runs 3] [--window 1000] [--ack]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections import deque

from minibroker.message import Message, Properties
from minibroker.storage import DurableStore, QueueDefinition


async def run_once(directory: str, size: int, seconds: float, window: int, batch: int,
                   ack: bool, sync: str) -> tuple[float, float, float]:
    loop = asyncio.get_running_loop()
    durable = 0
    rounds = 0
    wake = asyncio.Event()

    def synced(seq: int) -> None:
        nonlocal durable, rounds
        durable = max(durable, seq)
        rounds += 1
        wake.set()

    store = DurableStore(directory, sync=sync,  # type: ignore[arg-type]
                         on_durable=lambda seq: loop.call_soon_threadsafe(synced, seq))
    queue = store.declare_queue(QueueDefinition("q"))
    properties = Properties(delivery_mode=2)
    body = b"x" * size
    pending: deque[tuple[int, int]] = deque()  # (seq, msg_id) waiting for a confirm
    confirmed = 0
    msg_id = 0
    started = time.perf_counter()
    cpu = time.thread_time()  # the loop thread only: the worker's fdatasyncs are elsewhere
    deadline = started + seconds
    rounds_at_start = rounds
    while time.perf_counter() < deadline:
        while len(pending) < window:
            for _ in range(batch):
                msg_id += 1
                pending.append((queue.publish(msg_id, Message("", "q", body, properties)),
                                msg_id))
            store.flush()  # the end of one loop iteration
        wake.clear()
        await wake.wait()
        acked = []
        while pending and pending[0][0] <= durable:
            acked.append(pending.popleft()[1])
        confirmed += len(acked)
        if ack and acked:
            queue.settle(acked)
        store.maintain()
    elapsed = time.perf_counter() - started
    loop_cpu = time.thread_time() - cpu
    syncs = rounds - rounds_at_start
    store.close()
    return confirmed / elapsed, syncs / elapsed, loop_cpu / confirmed * 1e6


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f} / {statistics.median(values):,.0f} / {max(values):,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--ack", action="store_true")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    print(f"window {args.window}, {args.batch} publishes per flush, acks: {args.ack}; "
          f"min / median / max of {args.runs} runs of {args.seconds} s")
    for sync in ("always", "never"):
        for size in (16, 1024):
            rates, syncs, costs = [], [], []
            for _ in range(args.runs):
                directory = tempfile.mkdtemp(prefix="mb-throughput-", dir=args.dir)
                try:
                    rate, sync_rate, cost = asyncio.run(run_once(
                        directory, size, args.seconds, args.window, args.batch, args.ack, sync))
                finally:
                    shutil.rmtree(directory, ignore_errors=True)
                rates.append(rate)
                syncs.append(sync_rate)
                costs.append(cost)
            per_sync = [r / s for r, s in zip(rates, syncs, strict=True) if s]
            print(f"sync={sync:6} {size:5} B: {spread(rates)} msgs/s, "
                  f"{spread(syncs)} rounds/s, {spread(per_sync)} msgs per round, "
                  f"loop thread {min(costs):.1f} / {statistics.median(costs):.1f} / "
                  f"{max(costs):.1f} µs CPU per msg")


if __name__ == "__main__":
    main()
