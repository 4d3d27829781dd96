"""Routing cost in the sans-IO core: microseconds per routed message, by exchange type and size.

Run by hand (not a test):  python bench/routing.py [--quick]

What it measures: only ``Exchange.route(routing_key, headers)`` on a pre-built exchange, in a
tight loop over pre-generated routing keys (no broker, no queues, no I/O). Each row is the best of
several repeats, as µs per message. Topic bindings look like ``region.service.level``: mostly
literal keys with a mix of ``*`` and ``#`` patterns, over 1,000 regions x 1,000 services. Half the
routing keys are random, half are made from a bound pattern, so every key matches only a few
bindings (the "matched" column is the average number of destinations per message).
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from collections.abc import Callable

from minibroker.core.exchanges import (
    Destination,
    DestinationKind,
    DirectExchange,
    Exchange,
    FanoutExchange,
    HeadersExchange,
    TopicExchange,
)
from minibroker.message import FieldTable

REGIONS = [f"region{i}" for i in range(1000)]
SERVICES = [f"service{i}" for i in range(1000)]
LEVELS = ["debug", "info", "warning", "error", "critical"]


def queue(i: int) -> Destination:
    return Destination(DestinationKind.QUEUE, f"q{i}")


def topic_binding_key(rng: random.Random) -> str:
    region, service, level = rng.choice(REGIONS), rng.choice(SERVICES), rng.choice(LEVELS)
    roll = rng.random()
    if roll < 0.60:
        return f"{region}.{service}.{level}"
    if roll < 0.80:
        return f"{region}.{service}.*"
    if roll < 0.90:
        return f"{region}.{service}.#"
    if roll < 0.95:
        return f"*.{service}.{level}"
    return f"{region}.*.{level}"


def random_key(rng: random.Random) -> str:
    return f"{rng.choice(REGIONS)}.{rng.choice(SERVICES)}.{rng.choice(LEVELS)}"


def routing_keys(rng: random.Random, count: int, exchange: Exchange) -> list[str]:
    """Half random keys (they mostly match nothing), half keys made to hit a bound pattern."""
    bound = [binding.binding_key for binding in exchange.bindings()]
    keys = []
    for i in range(count):
        if i % 2 or not bound:
            keys.append(random_key(rng))
            continue
        words = []
        for word in rng.choice(bound).split("."):
            if word == "*":
                words.append(rng.choice(SERVICES))
            elif word == "#":
                words.extend(rng.choice(LEVELS) for _ in range(rng.randrange(2)))
            else:
                words.append(word)
        keys.append(".".join(words))
    return keys


def build_topic(bindings: int, rng: random.Random) -> TopicExchange:
    exchange = TopicExchange("bench.topic")
    if bindings == 1:
        exchange.bind(queue(0), "region1.#", {})
        return exchange
    while exchange.binding_count < bindings:
        exchange.bind(queue(exchange.binding_count % 5000), topic_binding_key(rng), {})
    return exchange


def time_route(
    route: Callable[[str, FieldTable | None], object],
    keys: list[str],
    headers: FieldTable | None,
    repeats: int,
) -> float:
    """Best-of-``repeats`` µs per message."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for key in keys:
            route(key, headers)
        best = min(best, time.perf_counter() - start)
    return best / len(keys) * 1e6


def average_matched(exchange: Exchange, keys: list[str], headers: FieldTable | None) -> float:
    return sum(len(exchange.route(key, headers)) for key in keys) / len(keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer keys and repeats")
    args = parser.parse_args(argv)
    n_keys, repeats = (2_000, 3) if args.quick else (20_000, 7)

    rng = random.Random(20261127)
    rows: list[tuple[str, int, float, float, str]] = []

    for size in (1, 100, 10_000, 100_000):
        built = time.perf_counter()
        exchange = build_topic(size, rng)
        bind_us = (time.perf_counter() - built) / size * 1e6
        keys = routing_keys(rng, n_keys, exchange)
        us = time_route(exchange.route, keys, None, repeats)
        note = f"bind {bind_us:.1f} µs/binding, {exchange.trie_node_count:,} trie nodes"
        rows.append(("topic", size, us, average_matched(exchange, keys, None), note))

    for size in (1, 100, 100_000):
        direct = DirectExchange("bench.direct")
        for i in range(size):
            direct.bind(queue(i), f"key{i}", {})
        direct_keys = [f"key{rng.randrange(size)}" for _ in range(n_keys)]
        us = time_route(direct.route, direct_keys, None, repeats)
        rows.append(("direct", size, us, average_matched(direct, direct_keys, None), ""))

    keys = [random_key(rng) for _ in range(n_keys)]
    fanout = FanoutExchange("bench.fanout")
    for i in range(10):
        fanout.bind(queue(i), "", {})
    us = time_route(fanout.route, keys, None, repeats)
    rows.append(("fanout", 10, us, average_matched(fanout, keys, None), ""))

    headers_exchange = HeadersExchange("bench.headers")
    for i in range(10):
        headers_exchange.bind(queue(i), "", {"x-match": "any", "service": f"service{i}", "n": i})
    headers: FieldTable = {"service": "service3", "level": "error", "n": 7}
    us = time_route(headers_exchange.route, keys, headers, repeats)
    rows.append(("headers", 10, us, average_matched(headers_exchange, keys, headers), ""))

    print(f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.machine()}, {n_keys:,} routing keys, best of {repeats}")
    print(f"{'exchange':<8} {'bindings':>9} {'µs/msg':>8} {'matched':>8}  notes")
    for kind, size, us, matched, note in rows:
        print(f"{kind:<8} {size:>9,} {us:>8.2f} {matched:>8.2f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
