"""Storage benchmark: recovery time and memory for many persistent messages on disk.

A first process plays the broker before the crash: it publishes ``--messages`` (default
1,000,000) 16-byte persistent messages into one durable queue (1,000 per flush, like a loop
iteration under load), keeping each one in a deque of the core's ``QueueEntry`` objects as the
broker's queue would, then dies with ``os._exit`` (as ``kill -9`` would: no clean-shutdown
marker) or closes the store cleanly. A second process plays the restarted broker. Per run it
reports:

- ``open``: the time ``DurableStore(directory)`` takes (scan, replay, index; wall and CPU);
- ``first``: until the head message is built (what a broker needs to serve it);
- ``all``: until every message is a ``QueueEntry`` in a deque again, as before the crash;
- memory: RSS growth per message in both processes (the second one also right after the
  open: the recovered state before any message is built), and their ratio (after / before).

The machine is shared and noisy: every number is repeated ``--runs`` times (default 3) and
reported as min / median / max; CPU time is steadier than wall time. Results go in
docs/storage.md.

    python bench/storage_recovery.py [--messages 1000000] [--runs 3] [--dir PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

BEFORE = """
import collections, json, os, sys
from minibroker.core.queues import QueueEntry
from minibroker.message import Message, Properties
from minibroker.storage import DurableStore, QueueDefinition
from bench.storage_recovery import rss
directory, count, clean = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "clean"
store = DurableStore(directory, sync="never")
queue = store.declare_queue(QueueDefinition("q"))
ready = collections.deque()
properties = Properties(delivery_mode=2)
start = rss()
for msg_id in range(1, count + 1):
    message = Message("", "q", msg_id.to_bytes(16, "big"), properties)
    queue.publish(msg_id, message)
    ready.append(QueueEntry(msg_id, message))
    if msg_id % 1000 == 0:
        store.flush()
store.flush()
print(json.dumps({"rss": rss() - start}), flush=True)
if clean:
    store.close()
os.sync()  # written with sync="never" for speed: put it on disk as sync="always" would have
os._exit(0)
"""

AFTER = """
import collections, json, sys, time
from minibroker.core.queues import QueueEntry
from minibroker.storage import DurableStore
from bench.storage_recovery import rss
start = rss()
wall, cpu = time.perf_counter(), time.process_time()
store = DurableStore(sys.argv[1])
opened = (time.perf_counter() - wall, time.process_time() - cpu)
at_open = rss() - start
recovered = store.recovered.queues.pop(("/", "q"))
messages = iter(recovered)
ready = collections.deque()
head = next(messages)
ready.append(QueueEntry(head.msg_id, head.message))
first = (time.perf_counter() - wall, time.process_time() - cpu)
for m in messages:
    entry = QueueEntry(m.msg_id, m.message)
    entry.redelivered = m.redelivered
    ready.append(entry)
del recovered, messages
done = (time.perf_counter() - wall, time.process_time() - cpu)
print(json.dumps({"open": opened, "first": first, "all": done, "rss": rss() - start,
                  "rss_open": at_open,
                  "messages": len(ready), "clean": store.recovered.report.clean}))
store.abandon()
"""


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run(script: str, *args: str) -> dict[str, object]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                            text=True, check=True, cwd=root)
    return json.loads(result.stdout.splitlines()[0])  # type: ignore[no-any-return]


def spread(values: list[float], unit: str, digits: int = 2) -> str:
    return (f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / "
            f"{max(values):.{digits}f} {unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="mb-recovery-", dir=args.dir)
    n = args.messages
    try:
        for stop in ("kill", "clean"):
            rows: dict[str, list[float]] = {}
            size = 0
            for _ in range(args.runs):
                directory = os.path.join(base, "data")
                shutil.rmtree(directory, ignore_errors=True)
                before = run(BEFORE, directory, str(n), stop)
                messages = os.path.join(directory, "messages")
                size = sum(os.path.getsize(os.path.join(messages, f))
                           for f in os.listdir(messages))
                after = run(AFTER, directory)
                assert after["messages"] == n and after["clean"] == (stop == "clean")
                for phase in ("open", "first", "all"):
                    wall, cpu = after[phase]  # type: ignore[misc]
                    rows.setdefault(f"{phase} wall", []).append(wall)
                    rows.setdefault(f"{phase} CPU", []).append(cpu)
                rows.setdefault("RSS/msg before", []).append(before["rss"] / n)  # type: ignore[operator]
                rows.setdefault("RSS/msg at open", []).append(
                    after["rss_open"] / n)  # type: ignore[operator]
                rows.setdefault("RSS/msg after", []).append(after["rss"] / n)  # type: ignore[operator]
                rows.setdefault("after/before", []).append(
                    after["rss"] / before["rss"])  # type: ignore[operator]
            print(f"{n:,} x 16 B persistent, {'kill -9' if stop == 'kill' else 'clean stop'}, "
                  f"{size / 1e6:.1f} MB of segments (min / median / max of {args.runs}):")
            for name, values in rows.items():
                unit = "s" if "wall" in name or "CPU" in name else (
                    "B" if "RSS" in name else "x")
                print(f"  {name:16} {spread(values, unit)}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
