"""AMQP 0-9-1 against RabbitMQ, every shape the suite compares: 16 B and 1 KiB, ack and no-ack,
fanout to 10 queues, topic with 10,000 bindings; throughput and broker CPU per message, same run.

Rules:

1. Same load shape as ``scenarios_throughput.pipeline`` (confirm window 1,000, prefetch 100,
   one ack per delivery unless no-ack); the same minimal AMQP client for both brokers.
2. For each case minibroker and RabbitMQ are measured in alternation, a warm-up each, then
   the median-rate run of three (one with ``--quick``), so drift over time hits both alike.
3. Goals: throughput ≥ 1.0x RabbitMQ's and broker CPU per delivery ≤ 0.5x RabbitMQ's, both
   in the same run. Without RabbitMQ only minibroker's rows are printed.
4. Everything made on RabbitMQ is deleted again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from clients import OPENERS
from harness import Broker, Context, Row, start_minibroker
from scenarios_routing import ROUTING_KEY, decoy_keys
from scenarios_throughput import Measure, pipeline

PREFIX = "minibroker-bench-amqp"


@dataclass(frozen=True)
class Case:
    label: str
    size: int = 16
    no_ack: bool = False
    kind: str = "queue"  #: "queue" (default exchange), "fanout" (x10) or "topic" (10,000)


CASES = (
    Case("16 B, ack"), Case("16 B, no-ack", no_ack=True), Case("1 KiB, ack", size=1024),
    Case("1 KiB, no-ack", size=1024, no_ack=True), Case("fanout x10, 16 B, ack", kind="fanout"),
    Case("topic 10,000 bindings, 16 B, ack", kind="topic"),
)


async def _setup(broker: Broker, case: Case) -> tuple[str, str, tuple[str, ...],
                                                     Callable[[], Awaitable[None]]]:
    """Declare what the case needs; return exchange, routing key, queues and the cleanup."""
    control = await OPENERS["AMQP"](broker)
    exchange, key = "", PREFIX
    queues: tuple[str, ...] = (PREFIX,)
    if case.kind == "fanout":
        exchange, key = f"{PREFIX}-fanout", ""
        queues = tuple(f"{PREFIX}-fanout-{i}" for i in range(10))
        await control.declare_exchange(exchange, "fanout")
    elif case.kind == "topic":
        exchange, key, queues = f"{PREFIX}-topic", ROUTING_KEY, (f"{PREFIX}-topic",)
        await control.declare_exchange(exchange, "topic")
    for queue in queues:
        await control.declare_queue(queue)
        await control.purge(queue)
    if case.kind == "fanout":
        for queue in queues:
            await control.bind(queue, exchange, [""])
    elif case.kind == "topic":
        await control.bind(queues[0], exchange, ["bench.*.key", *decoy_keys(9_999)])

    async def cleanup() -> None:
        for queue in queues:
            await control.delete_queue(queue)
        if exchange:
            await control.delete_exchange(exchange)
        await control.close()

    return exchange, key, queues, cleanup


async def _measure(ctx: Context, broker: Broker, case: Case, count: int) -> Measure:
    exchange, key, queues, cleanup = await _setup(broker, case)
    try:
        def run(n: int) -> Awaitable[Measure]:
            return pipeline(broker, OPENERS["AMQP"], count=n, exchange=exchange,
                            routing_key=key, queues=queues, size=case.size, no_ack=case.no_ack)
        await run(min(count // 10, 5000))
        runs = sorted([await run(count) for _ in range(ctx.n(3, 1))], key=lambda r: r.rate)
        return runs[len(runs) // 2]
    finally:
        await cleanup()


async def amqp_vs_rabbitmq(ctx: Context) -> list[Row]:
    """Scenario 2b: every case, minibroker then RabbitMQ (rule 2)."""
    rows: list[Row] = []
    broker = start_minibroker("uvloop")
    try:
        for case in CASES:
            count = ctx.n(100_000, 20_000) // (10 if case.kind == "fanout" else 1)
            mb = await _measure(ctx, broker, case, count)
            unit, one = ("deliveries", "delivery") if case.kind == "fanout" else ("msgs", "msg")
            scenario = f"2b AMQP {case.label}"
            rows += [Row(scenario, "minibroker", f"{unit}/s", f"{mb.rate:,.0f}"),
                     Row(scenario, "minibroker", f"broker CPU µs/{one}",
                         f"{mb.cpu_us:.1f}")]
            if ctx.rabbit is None:
                continue
            rb = await _measure(ctx, ctx.rabbit, case, count)
            rows += [Row(scenario, "RabbitMQ", f"{unit}/s", f"{rb.rate:,.0f}"),
                     Row(scenario, "RabbitMQ", f"broker CPU µs/{one}",
                         f"{rb.cpu_us:.1f}"),
                     Row(scenario, "minibroker / RabbitMQ", "throughput ratio",
                         f"{mb.rate / rb.rate:.2f}x", "≥ 1.0x", mb.rate >= rb.rate),
                     Row(scenario, "minibroker / RabbitMQ", "CPU/delivery ratio",
                         f"{mb.cpu_us / rb.cpu_us:.2f}x", "≤ 0.5x",
                         mb.cpu_us <= 0.5 * rb.cpu_us)]
    finally:
        broker.stop()
    return rows
