"""Differential scenarios, one per row of the RabbitMQ version profile (``core/generations.py``).

Rules:

1. ``ROW_SCENARIOS`` names, for every row of ``generations.ROWS``, the scenario that shows it
   (``test_differential.py`` checks that none is missing). Under the 3.10 profile minibroker
   must give what the local RabbitMQ 3.10 gives (the recording); under the newest profile it
   must give ``NEWEST_OUTCOMES[scenario]``, which this module writes down from RabbitMQ's
   source and release notes (each entry says where), since no newer broker runs here.
2. The scenarios are registered like every other (``differential.scenario``) and follow
   ``differential.py``'s rules; quorum queues act asynchronously in RabbitMQ, so every count
   is awaited on the broker (``wait_until``), never on a sleep.
"""

from __future__ import annotations

from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from minibroker.core import generations
from tests.compat.differential import NEWEST_OUTCOMES, Env, Outcome, ready, scenario
from tests.compat.differential_features import WAIT, dead_letter_target, wait_until

QUORUM = {"x-queue-type": "quorum"}

#: row name -> the scenario that shows it.
ROW_SCENARIOS = {
    generations.UNKNOWN_EXCHANGE_TYPE_CLOSES_CONNECTION.name: "exchange_unknown_type",
    generations.QUORUM_DEFAULT_DELIVERY_LIMIT.name: "quorum_default_delivery_limit",
    generations.QUORUM_NEGATIVE_DELIVERY_LIMIT_UNLIMITED.name: "quorum_negative_delivery_limit",
    generations.QUORUM_FIRST_GET_DELIVERY_COUNT.name: "quorum_delivery_count_first_delivery",
    generations.STREAM_PREFETCH_TEXT.name: "stream_consume_refusals",
    generations.STREAM_AUTO_ACK_TEXT.name: "stream_consume_refusals",
    generations.STREAM_SETTLES_ANY_OUTCOME.name: "stream_nack_reject_refused",
    generations.STREAM_FILTERING.name: "stream_filtering",
}


def _count(properties: Any) -> Any:
    return (properties.headers or {}).get("x-delivery-count", "absent")


def _settled(ch: BlockingChannel, q: str, dlq: str) -> list[int]:
    """[ready in q, ready in dlq] once the message is in exactly one of them."""
    counts: list[int] = []

    def one_place() -> bool:
        counts[:] = [ready(ch, q)[0], ready(ch, dlq)[0]]
        return sum(counts) == 1

    wait_until(ch, one_place)
    return counts


def _get_and_requeue(ch: BlockingChannel, q: str, dlq: str, times: int) -> list[Any]:
    """Take the one message of quorum queue ``q`` and nack it back, up to ``times`` times or
    until it is dead-lettered to ``dlq``: [x-delivery-count of each get, where it is now]."""
    counts = []
    for _ in range(times):
        if _settled(ch, q, dlq)[0] == 0:
            break
        method, properties, _ = ch.basic_get(q)
        counts.append(_count(properties))
        ch.basic_nack(method.delivery_tag, requeue=True)
    return [counts, _settled(ch, q, dlq)]


@scenario
def quorum_default_delivery_limit(env: Env) -> Outcome:
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    q = env.q("qq")
    ch.queue_declare(q, durable=True, arguments={**QUORUM, "x-dead-letter-exchange": dlx})
    ch.basic_publish("", q, b"poison")
    counts, where = _get_and_requeue(ch, q, dlq, 22)
    return [len(counts), counts[-1], where]


# rabbit_quorum_queue ?DEFAULT_DELIVERY_LIMIT (4.0, PR #11937): the 21st return exceeds 20, so
# the message is dead-lettered after 21 deliveries and a 22nd get never happens; the 21st get
# carried x-delivery-count 20.
NEWEST_OUTCOMES["quorum_default_delivery_limit"] = [21, 20, [0, 1]]


@scenario
def quorum_negative_delivery_limit(env: Env) -> Outcome:
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    q = env.q("qq")
    ch.queue_declare(q, durable=True, arguments={**QUORUM, "x-dead-letter-exchange": dlx,
                                                 "x-delivery-limit": -1})
    ch.basic_publish("", q, b"poison")
    return _get_and_requeue(ch, q, dlq, 3)


# rabbit_fifo:init/1 (4.0): a negative delivery_limit is undefined, i.e. no limit (and a first
# basic.get carries no x-delivery-count, the row below).
NEWEST_OUTCOMES["quorum_negative_delivery_limit"] = [["absent", 1, 2], [1, 0]]


@scenario
def quorum_delivery_count_first_delivery(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("qq")
    ch.queue_declare(q, durable=True, arguments=QUORUM)
    ch.basic_publish("", q, b"a")
    out: Outcome = []
    for method, properties, _ in ch.consume(q, inactivity_timeout=WAIT):
        assert method is not None, "no delivery"
        out.append(["consume", _count(properties), method.redelivered])
        if len(out) == 2:
            ch.basic_ack(method.delivery_tag)
            break
        ch.basic_nack(method.delivery_tag, requeue=True)
    ch.cancel()
    ch.basic_publish("", q, b"b")
    for _ in range(2):
        wait_until(ch, lambda: ready(ch, q)[0] == 1)
        method, properties, _ = ch.basic_get(q)
        out.append(["get", _count(properties), method.redelivered])
        ch.basic_nack(method.delivery_tag, requeue=True)
    return out


# rabbit_fifo_client:add_delivery_count_header/2 (4.0): no acquired_count yet, no header; 3.10's
# dequeue/4 added x-delivery-count 0 to a first basic.get.
NEWEST_OUTCOMES["quorum_delivery_count_first_delivery"] = [
    ["consume", "absent", False], ["consume", 1, True],
    ["get", "absent", False], ["get", 1, True],
]
