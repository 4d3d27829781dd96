"""Throughput, broker CPU per message and latency through the native protocol (run by hand).

    python bench/throughput.py                 # every scenario, asyncio and uvloop
    python bench/throughput.py --quick         # fewer messages
    python bench/throughput.py --persistent    # durable queue, delivery_mode 2, a data
                                               # directory with --sync always (16 B, ack only)

One publisher and one consumer on one queue, each on its own connection. The broker runs as a
separate process (``python -m minibroker --port 0``) so its CPU time can be read from /proc
before and after each run: broker CPU per message = (user + system time) / messages.

Load shape: the publisher pipelines — it keeps up to ``--window`` publishes in flight in
confirm mode and never waits for a round trip per message; the consumer acks each message
(prefetch 100) or consumes with no-ack. Latency is measured separately at a fixed moderate rate:
each body carries its send time, and the consumer records receive - send.

Prints a markdown table; copy it into docs/benchmarks.md with the date and machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from minibroker.message import Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec

CLK_TCK = os.sysconf("SC_CLK_TCK")
QUEUE = "bench"
#: ``--persistent`` (set once by ``main``).
PERSISTENT = False


def broker_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


class Link(asyncio.Protocol):
    """A minimal native-protocol client connection for load generation."""

    def __init__(self) -> None:
        self.codec = NativeCodec(role="client")
        self.transport: asyncio.Transport | None = None
        self.frames: asyncio.Queue[f.Frame] = asyncio.Queue()
        self.on_frames: list[object] = []
        self.handler = self._enqueue

    def _enqueue(self, frames: list[f.Frame]) -> None:
        for frame in frames:
            self.frames.put_nowait(frame)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.codec.receive_data(data)
        self.handler(self.codec.frames())

    def send(self, *frames: f.Frame) -> None:
        assert self.transport is not None
        self.transport.write(self.codec.send_many(frames))

    async def expect(self, kind: type[f.Frame]) -> f.Frame:
        frame = await asyncio.wait_for(self.frames.get(), 10)
        if not isinstance(frame, kind):
            raise RuntimeError(f"expected {kind.__name__}, got {frame!r}")
        return frame


async def open_link(port: int) -> Link:
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(Link, "127.0.0.1", port)
    assert link.transport is not None
    link.transport.write(link.codec.send_preamble())
    link.send(f.Hello("bench", "guest", "guest"))
    hello = await link.expect(f.HelloOk)
    assert isinstance(hello, f.HelloOk)
    link.send(f.Tune(hello.max_frame_size, hello.channel_max, 0))
    await link.expect(f.TuneOk)
    link.send(f.ChannelOpen(1))
    await link.expect(f.ChannelOpenOk)
    return link


@dataclass
class Result:
    label: str
    messages: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.messages * 1e6


async def run_throughput(port: int, pid: int, *, count: int, size: int, no_ack: bool,
                         window: int) -> Result:
    publisher = await open_link(port)
    consumer = await open_link(port)
    publisher.send(f.QueueDeclare(1, QUEUE, False, PERSISTENT, False, False, {}))
    await publisher.expect(f.QueueDeclareOk)
    publisher.send(f.QueuePurge(1, QUEUE))
    await publisher.expect(f.QueuePurgeOk)
    publisher.send(f.ConfirmSelect(1))
    await publisher.expect(f.ConfirmSelectOk)
    consumer.send(f.Qos(1, 100, False))
    await consumer.expect(f.QosOk)

    done = asyncio.get_running_loop().create_future()
    received = 0

    def on_deliveries(frames: list[f.Frame]) -> None:
        nonlocal received
        tags = [frame.delivery_tag for frame in frames if isinstance(frame, f.Deliver)]
        received += len(tags)
        if tags and not no_ack:
            # One ack per message, as the load shape says, written in one go per read.
            consumer.send(*[f.Ack(1, tag) for tag in tags])
        if received >= count and not done.done():
            done.set_result(None)

    consumer.send(f.Consume(1, QUEUE, "bench", no_ack, False, {}))
    await consumer.expect(f.ConsumeOk)
    consumer.handler = on_deliveries

    body = b"x" * size
    properties = Properties(delivery_mode=2) if PERSISTENT else Properties()
    one = publisher.codec.send(f.Publish(1, "", QUEUE, False, properties, body))
    confirmed = 0
    can_send = asyncio.Event()
    can_send.set()

    def on_confirms(frames: list[f.Frame]) -> None:
        nonlocal confirmed
        for frame in frames:
            if isinstance(frame, f.ConfirmAck):
                confirmed = frame.delivery_tag if frame.multiple else max(confirmed,
                                                                         frame.delivery_tag)
        can_send.set()

    publisher.handler = on_confirms
    cpu0 = broker_cpu_seconds(pid)
    t0 = time.perf_counter()
    sent = 0
    assert publisher.transport is not None
    while sent < count:
        room = min(window - (sent - confirmed), count - sent)
        if room <= 0:
            can_send.clear()
            await can_send.wait()
            continue
        publisher.transport.write(one * room)
        sent += room
        await asyncio.sleep(0)
    await asyncio.wait_for(done, 120)
    seconds = time.perf_counter() - t0
    cpu = broker_cpu_seconds(pid) - cpu0
    for link in (publisher, consumer):
        assert link.transport is not None
        link.transport.close()
    kind = "no-ack" if no_ack else "ack"
    return Result(f"{size} B, {kind}", count, seconds, cpu)


async def run_latency(port: int, *, rate: int, seconds: float) -> tuple[float, float]:
    publisher = await open_link(port)
    consumer = await open_link(port)
    publisher.send(f.QueueDeclare(1, QUEUE, False, PERSISTENT, False, False, {}))
    await publisher.expect(f.QueueDeclareOk)
    consumer.send(f.Qos(1, 100, False))
    await consumer.expect(f.QosOk)
    latencies: list[float] = []

    def on_deliveries(frames: list[f.Frame]) -> None:
        now = time.perf_counter()
        for frame in frames:
            if isinstance(frame, f.Deliver):
                latencies.append(now - struct.unpack("d", frame.body[:8])[0])
                consumer.send(f.Ack(1, frame.delivery_tag))

    consumer.send(f.Consume(1, QUEUE, "lat", False, False, {}))
    await consumer.expect(f.ConsumeOk)
    consumer.handler = on_deliveries
    interval = 1 / rate
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        target = start + i * interval
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = struct.pack("d", time.perf_counter()) + b"\0" * 8
        publisher.send(f.Publish(1, "", QUEUE, False, Properties(), body))
    deadline = time.perf_counter() + 5
    while len(latencies) < n and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    for link in (publisher, consumer):
        assert link.transport is not None
        link.transport.close()
    latencies.sort()
    p50 = statistics.median(latencies) * 1e6
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1e6
    return p50, p99


def start_broker(loop: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "minibroker", "--port", "0", "--management-port", "0",
         "--loop", loop,
         "--log-level", "WARNING",
         *(["--data-dir", tempfile.mkdtemp(prefix="minibroker-bench-"), "--sync", "always"]
           if PERSISTENT else ["--in-memory"])],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"minibroker://[^:]+:(\d+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"broker did not start: {line!r}")
    return proc, int(match.group(1))


async def scenario(loop_kind: str, quick: bool, window: int) -> list[str]:
    proc, port = start_broker(loop_kind)
    rows = []
    try:
        count = 20_000 if quick else 200_000
        loads = ((16, False),) if PERSISTENT else ((16, False), (16, True), (1024, False))
        for size, no_ack in loads:
            await run_throughput(port, proc.pid, count=2000, size=size, no_ack=no_ack,
                                 window=window)  # warm-up
            result = await run_throughput(port, proc.pid, count=count, size=size, no_ack=no_ack,
                                          window=window)
            rows.append(f"| native | {loop_kind} | {result.label} | {result.rate:,.0f} | "
                        f"{result.cpu_us:.1f} | |")
        if PERSISTENT:
            return rows
        p50, p99 = await run_latency(port, rate=1000, seconds=2 if quick else 5)
        rows.append(f"| native | {loop_kind} | latency at 1,000 msg/s (16 B, ack) | | | "
                    f"p50 {p50:.0f} µs, p99 {p99:.0f} µs |")
    finally:
        proc.terminate()
        proc.wait(10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--window", type=int, default=1000, help="publishes in flight")
    parser.add_argument("--loops", default="asyncio,uvloop", help="broker loops to measure")
    parser.add_argument("--persistent", action="store_true",
                        help="durable queue, persistent messages, a data directory")
    args = parser.parse_args()
    global PERSISTENT
    PERSISTENT = args.persistent
    print(f"# {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    print("| protocol | broker loop | load | msgs/s | broker CPU µs/msg | latency |")
    print("|---|---|---|---:|---:|---|")
    for loop_kind in args.loops.split(","):
        for row in asyncio.run(scenario(loop_kind, args.quick, args.window)):
            print(row, flush=True)


if __name__ == "__main__":
    main()
