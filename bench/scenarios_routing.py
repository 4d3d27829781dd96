"""Routing scenarios end to end: fanout to 10 queues, and a topic exchange with 10,000 bindings.

Rules:

1. Same load shape as ``scenarios_throughput.pipeline`` (confirm window, prefetch 100, one ack
   per delivery); fanout has one consumer connection per queue.
2. Topic: the measured queue is bound with the one key that matches (``bench.*.key``, routing
   key ``bench.hot.key``); the decoys are bindings of the same queue with patterns that never
   match that key, spread over the trie's shapes (literal first word, ``*``, ``#``). The 10- and
   the 10,000-binding exchanges live side by side in one broker and are measured in alternation,
   median of the rounds, so drift over time hits both alike.
3. Everything made on RabbitMQ is deleted again.
"""

from __future__ import annotations

import statistics

from clients import OPENERS
from harness import Broker, Context, Row, start_minibroker
from scenarios_throughput import Measure, pipeline

FANOUT = "minibroker-bench-fanout"
TOPIC = "minibroker-bench-topic"
ROUTING_KEY = "bench.hot.key"


def decoy_keys(n: int) -> list[str]:
    """Rule 2: ``n`` binding keys that never match ``bench.hot.key``."""
    shapes = ("d{i}.hot.key", "bench.d{i}.*", "*.d{i}.key", "bench.hot.d{i}", "#.d{i}",
              "d{i}.#")
    return [shapes[i % len(shapes)].format(i=i) for i in range(n)]


async def _fanout_on(ctx: Context, broker: Broker, protocol: str) -> Measure:
    opener = OPENERS[protocol]
    control = await opener(broker)
    queues = tuple(f"{FANOUT}-{i}" for i in range(10))
    await control.declare_exchange(FANOUT, "fanout")
    for queue in queues:
        await control.declare_queue(queue)
        await control.purge(queue)
        await control.bind(queue, FANOUT, [""])
    try:
        count = ctx.n(20_000, 5_000)
        await pipeline(broker, opener, count=count // 10, exchange=FANOUT, queues=queues)
        return await pipeline(broker, opener, count=count, exchange=FANOUT, queues=queues)
    finally:
        for queue in queues:
            await control.delete_queue(queue)
        await control.delete_exchange(FANOUT)
        await control.close()


async def fanout(ctx: Context) -> list[Row]:
    """Scenario 3: one publisher, a fanout exchange, 10 queues each with its consumer."""
    rows: list[Row] = []
    targets: list[tuple[str, Broker, str]] = []
    broker = start_minibroker("uvloop")
    try:
        targets = [("minibroker", broker, "native"), ("minibroker", broker, "AMQP")]
        if ctx.rabbit is not None:
            targets.append(("RabbitMQ", ctx.rabbit, "AMQP"))
        for name, target, protocol in targets:
            r = await _fanout_on(ctx, target, protocol)
            rows.append(Row("3 fanout x10", name, f"deliveries/s ({protocol})",
                            f"{r.rate:,.0f}"))
            rows.append(Row("3 fanout x10", name, f"broker CPU µs/delivery ({protocol})",
                            f"{r.cpu_us:.1f}"))
    finally:
        broker.stop()
    return rows


async def _topic_on(ctx: Context, broker: Broker, protocol: str) -> dict[int, float]:
    opener = OPENERS[protocol]
    control = await opener(broker)
    sizes = (10, 10_000)
    for size in sizes:
        exchange, queue = f"{TOPIC}-{size}", f"{TOPIC}-{size}"
        await control.declare_exchange(exchange, "topic")
        await control.declare_queue(queue)
        await control.purge(queue)
        await control.bind(queue, exchange, ["bench.*.key", *decoy_keys(size - 1)])
    try:
        count = ctx.n(100_000, 20_000)
        rates: dict[int, list[float]] = {size: [] for size in sizes}
        for size in sizes:  # warm-up
            await pipeline(broker, opener, count=count // 10, exchange=f"{TOPIC}-{size}",
                           routing_key=ROUTING_KEY, queues=(f"{TOPIC}-{size}",))
        for _ in range(ctx.n(3, 1)):
            for size in sizes:
                r = await pipeline(broker, opener, count=count, exchange=f"{TOPIC}-{size}",
                                   routing_key=ROUTING_KEY, queues=(f"{TOPIC}-{size}",))
                rates[size].append(r.rate)
        return {size: statistics.median(values) for size, values in rates.items()}
    finally:
        for size in sizes:
            await control.delete_queue(f"{TOPIC}-{size}")
            await control.delete_exchange(f"{TOPIC}-{size}")
        await control.close()


async def topic(ctx: Context) -> list[Row]:
    """Scenario 4: throughput through a topic exchange with 10 vs 10,000 bindings."""
    rows: list[Row] = []
    broker = start_minibroker("uvloop")
    try:
        targets = [("minibroker", broker, "native")]
        if ctx.rabbit is not None:
            targets.append(("RabbitMQ", ctx.rabbit, "AMQP"))
        for name, target, protocol in targets:
            rates = await _topic_on(ctx, target, protocol)
            ratio = rates[10_000] / rates[10]
            rows += [
                Row("4 topic", name, f"msgs/s, 10 bindings ({protocol})", f"{rates[10]:,.0f}"),
                Row("4 topic", name, f"msgs/s, 10,000 bindings ({protocol})",
                    f"{rates[10_000]:,.0f}"),
                Row("4 topic", name, "10,000 / 10 bindings", f"{ratio:.2f}x",
                    "≥ 0.90x" if name == "minibroker" else "",
                    ratio >= 0.9 if name == "minibroker" else None),
            ]
    finally:
        broker.stop()
    return rows
