"""Restart after kill -9 with many persistent messages: time to serve, and memory, end to end.

1. A broker process (``python -m minibroker --data-dir D``) is filled with ``--messages``
   (default 1,000,000) persistent 16-byte messages in one durable queue over AMQP (a
   pipelining publisher in confirm mode, ``bench/amqp_throughput.py``'s client), and its RSS is
   read: *before*. Then it is killed with SIGKILL.
2. A new broker process starts on the directory. Measured from its spawn: the ready line
   (listening), then a ``basic.get`` that returns the head message (served). Then, once every
   message is loaded (the queue's message count is back), its RSS: *after*.

    python bench/restart_after_kill.py [--messages 1000000] [--runs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.amqp_throughput import Target, open_link  # noqa: E402
from minibroker.message import Properties  # noqa: E402
from minibroker.protocols.amqp091 import methods as m  # noqa: E402
from minibroker.protocols.amqp091.frames import Frame, MethodFrame  # noqa: E402

QUEUE = "restart-bench"


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def start(directory: str, sync: str) -> tuple[subprocess.Popen[str], int, float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "minibroker", "--port", "0", "--management-port", "0",
         "--heartbeat", "0", "--data-dir",
         directory, "--sync", sync, "--log-level", "error",
         # a million queued messages must not raise the resource alarm (no consumer drains)
         "--memory-high-water", str(4 << 30), "--queue-high-water", str(1 << 30)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 120)
    line = process.stdout.readline() if ready else ""
    found = re.search(r"amqp://guest:guest@127\.0\.0\.1:(\d+)/", line)
    if not found:
        process.kill()
        raise RuntimeError(f"no ready line: {line!r}")
    return process, int(found.group(1)), time.perf_counter() - started


async def fill(port: int, count: int) -> None:
    target = Target("minibroker", f"amqp://guest:guest@127.0.0.1:{port}/", 0)
    link = await open_link(target)
    await link.call(m.QueueDeclare(queue=QUEUE, durable=True), m.QueueDeclareOk)
    await link.call(m.ConfirmSelect(), m.ConfirmSelectOk)
    one = link.codec.encode_content(1, m.BasicPublish(routing_key=QUEUE),
                                    Properties(delivery_mode=2), b"x" * 16)
    confirmed = 0
    more = asyncio.Event()

    def on_frames(frames: list[Frame]) -> None:
        nonlocal confirmed
        for frame in frames:
            if isinstance(frame, MethodFrame) and isinstance(frame.method, m.BasicAck):
                confirmed = max(confirmed, frame.method.delivery_tag)
        more.set()

    link.handler = on_frames
    sent = 0
    while confirmed < count:
        room = min(10_000 - (sent - confirmed), count - sent)
        if room > 0:
            link.write(one * room)
            sent += room
        more.clear()
        await more.wait()
    await link.close()


def one_run(count: int) -> dict[str, float]:
    directory = tempfile.mkdtemp(prefix="restart-bench-")
    try:
        process, port, _ = start(directory, "never")
        asyncio.run(fill(port, count))
        before = rss(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        process, port, listening = start(directory, "always")
        t0 = time.perf_counter() - listening
        connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
        channel = connection.channel()
        method, _properties, body = channel.basic_get(QUEUE)
        served = time.perf_counter() - t0
        assert method is not None and method.redelivered and body == b"x" * 16
        channel.basic_nack(method.delivery_tag, requeue=True)
        deadline = time.monotonic() + 300
        while channel.queue_declare(QUEUE, passive=True).method.message_count < count:
            if time.monotonic() > deadline:
                raise RuntimeError("not every message came back")
            time.sleep(0.2)  # polling another process's progress, bounded
        loaded = time.perf_counter() - t0
        after = rss(process.pid)
        connection.close()
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        return {"listening s": listening, "first message served s": served,
                "all loaded s": loaded, "RSS before MB": before / 1e6,
                "RSS after MB": after / 1e6, "after / before": after / before}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    runs = [one_run(args.messages) for _ in range(args.runs)]
    print(f"# {time.strftime('%Y-%m-%d')}, {args.messages:,} persistent 16-byte messages, "
          f"{args.runs} runs (min / median / max)")
    for key in runs[0]:
        values = sorted(run[key] for run in runs)
        print(f"{key}: {values[0]:.2f} / {statistics.median(values):.2f} / {values[-1]:.2f}")


if __name__ == "__main__":
    main()
