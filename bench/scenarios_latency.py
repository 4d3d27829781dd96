"""Latency at a fixed moderate rate: p50 and p99 from publish to delivery.

Rules:

1. 1,000 and 10,000 messages per second, paced against the clock (not pipelined, no
   confirms), 16-byte bodies whose first 8 bytes are the send time (``perf_counter``;
   publisher and consumer are in this one process, so one clock); the consumer (prefetch
   100) acks each delivery.
2. Latency = receive time - send time, as seen by the client: it includes both clients' event
   loop and the kernel's loopback, which are the same for every broker.
3. The first 10% of the messages are a warm-up and not counted.
"""

from __future__ import annotations

import asyncio
import struct
import time

from clients import OPENERS
from harness import Broker, Context, Row, start_minibroker

QUEUE = "minibroker-bench-latency"
STAMP = struct.Struct("d")


async def measure(broker: Broker, protocol: str, *, rate: int, seconds: float) -> tuple[float,
                                                                                          float]:
    opener = OPENERS[protocol]
    publisher, consumer = await opener(broker), await opener(broker)
    await publisher.declare_queue(QUEUE)
    await publisher.purge(QUEUE)
    n = int(rate * seconds)
    latencies: list[float] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_deliver(tags: list[int], bodies: list[bytes]) -> None:
        now = time.perf_counter()
        latencies.extend(now - STAMP.unpack_from(body)[0] for body in bodies)
        consumer.write(consumer.acks(tags))
        if len(latencies) >= n and not done.done():
            done.set_result(None)

    consumer.on_deliver = on_deliver
    await consumer.consume(QUEUE, 100, False)
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = STAMP.pack(time.perf_counter()) + b"\0" * 8
        publisher.write(publisher.publish_frame("", QUEUE, body))
    await asyncio.wait_for(done, 30)
    await consumer.close()
    await publisher.delete_queue(QUEUE)
    await publisher.close()
    counted = sorted(latencies[n // 10:])
    p50 = counted[len(counted) // 2] * 1e6
    p99 = counted[min(len(counted) - 1, int(len(counted) * 0.99))] * 1e6
    return p50, p99


async def latency(ctx: Context) -> list[Row]:
    """Scenario 5: p50/p99 at 1,000 and 10,000 msg/s; minibroker native and AMQP, RabbitMQ
    AMQP."""
    rows = []
    for rate in (1000, 10_000):
        rows += await _latency_at(ctx, rate)
    return rows


async def _latency_at(ctx: Context, rate: int) -> list[Row]:
    seconds = ctx.n(10, 3)
    results: list[tuple[str, str, float, float]] = []
    broker = start_minibroker("uvloop")
    try:
        for protocol in ("native", "AMQP"):
            results.append(("minibroker", protocol,
                            *await measure(broker, protocol, rate=rate, seconds=seconds)))
    finally:
        broker.stop()
    if ctx.rabbit is not None:
        results.append(("RabbitMQ", "AMQP",
                        *await measure(ctx.rabbit, "AMQP", rate=rate, seconds=seconds)))
    reference = {"p50": results[-1][2], "p99": results[-1][3]} if ctx.rabbit else None
    rows = []
    for name, protocol, p50, p99 in results:
        for label, value in (("p50", p50), ("p99", p99)):
            row = Row(f"5 latency @{rate:,}/s", name, f"{label} µs ({protocol})",
                      f"{value:,.0f}")
            if reference and name == "minibroker":
                row.goal = f"≤ RabbitMQ ({reference[label]:,.0f})"
                row.met = value <= reference[label]
            rows.append(row)
    return rows
