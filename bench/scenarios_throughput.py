"""Throughput scenarios: the pipelined publish → deliver → ack loop, native and AMQP.

Rules:

1. Load shape (the suite's default): 1 publisher and 1 consumer connection, 1 queue, 16-byte
   bodies, prefetch 100, one ack per delivery, and a publisher in confirm mode keeping up to
   ``window`` publishes in flight (:func:`pipeline`; the clients are in ``clients.py``).
2. A warm-up run precedes every measured run; with ``repeats`` > 1 the run with the median
   rate is reported (the VM's 2 cores are shared by broker and client, so single runs jitter).
3. Broker CPU per message is the broker process's CPU over the measured run / messages
   published (for fanout: / deliveries).
4. Queues and exchanges made on RabbitMQ are deleted before the scenario returns.
"""

from __future__ import annotations

import asyncio
import pstats
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from clients import OPENERS, Conn
from harness import Broker, Context, Row, start_minibroker

Opener = Callable[[Broker], Awaitable[Conn]]
QUEUE = "minibroker-bench"


@dataclass
class Measure:
    messages: int  #: published
    deliveries: int
    seconds: float
    cpu: float  #: broker CPU seconds over the run

    @property
    def rate(self) -> float:
        """Deliveries per second (= messages per second with one queue)."""
        return self.deliveries / self.seconds

    @property
    def cpu_us(self) -> float:
        """Broker CPU µs per delivery."""
        return self.cpu / self.deliveries * 1e6


async def pipeline(broker: Broker, opener: Opener, *, count: int, exchange: str = "",
                   routing_key: str = QUEUE, queues: tuple[str, ...] = (QUEUE,), size: int = 16,
                   no_ack: bool = False, window: int = 1000, prefetch: int = 100) -> Measure:
    """Rule 1: publish ``count`` messages, consume them from every queue; time the whole."""
    publisher = await opener(broker)
    consumers = [await opener(broker) for _ in queues]
    await publisher.confirm_select()
    expected = count * len(queues)
    received = 0
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def make_handler(conn: Conn) -> Callable[[list[int], list[bytes]], None]:
        def on_deliver(tags: list[int], bodies: list[bytes]) -> None:
            nonlocal received
            received += len(tags)
            if not no_ack:
                conn.write(conn.acks(tags))  # one ack per message, one write per read
            if received >= expected and not done.done():
                done.set_result(None)
        return on_deliver

    for conn, queue in zip(consumers, queues, strict=True):
        conn.on_deliver = make_handler(conn)
        await conn.consume(queue, prefetch, no_ack)

    one = publisher.publish_frame(exchange, routing_key, b"x" * size)
    confirmed = 0
    can_send = asyncio.Event()

    def on_confirm(tag: int) -> None:
        nonlocal confirmed
        confirmed = max(confirmed, tag)
        can_send.set()

    publisher.on_confirm = on_confirm
    cpu0, t0 = broker.cpu(), time.perf_counter()
    sent = 0
    while sent < count:
        room = min(window - (sent - confirmed), count - sent)
        if room <= 0:
            can_send.clear()
            await can_send.wait()
            continue
        publisher.write(one * room)
        sent += room
        await asyncio.sleep(0)
    await asyncio.wait_for(done, 600)
    seconds, cpu = time.perf_counter() - t0, broker.cpu() - cpu0
    for conn in (publisher, *consumers):
        await conn.close()
    return Measure(count, received, seconds, cpu)


async def measured(ctx: Context, run: Callable[[int], Awaitable[Measure]], count: int) -> Measure:
    """Rule 2: warm up, then the median-rate run of ``repeats``."""
    await run(min(count // 10, 5000))
    runs = sorted([await run(count) for _ in range(1 if ctx.quick else 3)],
                  key=lambda r: r.rate)
    return runs[len(runs) // 2]


async def single_queue(ctx: Context, broker: Broker, protocol: str, count: int, *,
                       size: int = 16, no_ack: bool = False) -> Measure:
    opener = OPENERS[protocol]
    control = await opener(broker)
    await control.declare_queue(QUEUE)
    await control.purge(QUEUE)
    try:
        return await measured(ctx, lambda n: pipeline(broker, opener, count=n, size=size,
                                                       no_ack=no_ack), count)
    finally:
        await control.delete_queue(QUEUE)  # rule 4
        await control.close()


async def rabbit_amqp_rate(ctx: Context) -> float | None:
    """RabbitMQ's AMQP rate with the default load shape, measured once per suite run."""
    if ctx.rabbit is None:
        return None
    if "rabbit_amqp_rate" not in ctx.shared:
        result = await single_queue(ctx, ctx.rabbit, "AMQP", ctx.n(100_000, 20_000))
        ctx.shared["rabbit_amqp_rate"] = result.rate
        ctx.shared["rabbit_amqp_cpu"] = result.cpu_us
    return ctx.shared["rabbit_amqp_rate"]


async def native(ctx: Context) -> list[Row]:
    """Scenario 1: native protocol, uvloop and asyncio; 16 B ack, 16 B no-ack, 1 KiB ack."""
    rows: list[Row] = []
    count = ctx.n(100_000, 20_000)
    for loop in ("uvloop", "asyncio"):
        broker = start_minibroker(loop)
        try:
            for size, no_ack in ((16, False), (16, True), (1024, False)):
                r = await single_queue(ctx, broker, "native", count, size=size, no_ack=no_ack)
                label = f"{loop}, {size} B, {'no-ack' if no_ack else 'ack'}"
                rows.append(Row("1 native", "minibroker", f"msgs/s ({label})", f"{r.rate:,.0f}"))
                rows.append(Row("1 native", "minibroker", f"broker CPU µs/msg ({label})",
                                f"{r.cpu_us:.1f}"))
                if size == 16 and not no_ack:
                    rabbit = await rabbit_amqp_rate(ctx)
                    if rabbit is not None:
                        rows[-2].goal = f"≥ RabbitMQ AMQP ({rabbit:,.0f})"
                        rows[-2].met = r.rate >= rabbit
                    if loop == "uvloop":
                        rows[-1].goal, rows[-1].met = "≤ 10", r.cpu_us <= 10
        finally:
            broker.stop()
    return rows


async def amqp(ctx: Context) -> list[Row]:
    """Scenario 2: AMQP with the minimal pipelining client, minibroker vs RabbitMQ."""
    count = ctx.n(100_000, 20_000)
    broker = start_minibroker("uvloop")
    try:
        mb = await single_queue(ctx, broker, "AMQP", count)
    finally:
        broker.stop()
    rows = [Row("2 AMQP", "minibroker", "msgs/s", f"{mb.rate:,.0f}"),
            Row("2 AMQP", "minibroker", "broker CPU µs/msg", f"{mb.cpu_us:.1f}")]
    if await rabbit_amqp_rate(ctx) is None:
        return rows
    rate, cpu = ctx.shared["rabbit_amqp_rate"], ctx.shared["rabbit_amqp_cpu"]
    rows += [Row("2 AMQP", "RabbitMQ", "msgs/s", f"{rate:,.0f}"),
             Row("2 AMQP", "RabbitMQ", "broker CPU µs/msg", f"{cpu:.1f}"),
             Row("2 AMQP", "minibroker / RabbitMQ", "throughput ratio",
                 f"{mb.rate / rate:.2f}x", "≥ 0.5x", mb.rate / rate >= 0.5),
             Row("2 AMQP", "minibroker / RabbitMQ", "CPU/msg ratio",
                 f"{mb.cpu_us / cpu:.2f}x", "≤ 2x", mb.cpu_us / cpu <= 2)]
    return rows


async def profile(ctx: Context, path: str) -> None:
    """The native scenario's 16 B ack case with the broker under cProfile; prints the top."""
    broker = start_minibroker("uvloop", profile=path)
    try:
        r = await single_queue(ctx, broker, "native", ctx.n(100_000, 20_000))
    finally:
        broker.stop()
    print(f"# under cProfile: {r.rate:,.0f} msgs/s, {r.cpu_us:.1f} µs broker CPU per message")
    for order in ("tottime", "cumulative"):
        print(f"\n# top 15 by {order}")
        pstats.Stats(path).sort_stats(order).print_stats(15)
