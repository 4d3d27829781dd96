"""Differential scenarios for stream queues (``x-queue-type: stream``) over AMQP 0-9-1: the same
pika scenario against minibroker and against RabbitMQ must give the same outcome.

Rules:

1. The scenarios are registered like every other (``differential.scenario``) and run by
   ``test_differential.py``: recorded from RabbitMQ 3.10 in ``rabbitmq_outcomes.json``, and
   where the newest RabbitMQ answers differently (the profile rows ``STREAM_*`` of
   ``core/generations.py``) that answer is written down in ``NEWEST_OUTCOMES``, with where
   in RabbitMQ it comes from.
2. A stream consumer must never hold a delivery pika has not handed over when its channel
   closes: pika rejects such pending deliveries on cancel, and RabbitMQ 3.10 answers a reject
   on a stream with 540. So every read uses a prefetch window exactly as large as what it
   reads (``read``), and a consumer attached at the tail reads only what the scenario
   publishes after attaching.
3. Nothing waits for an absence: "no more deliveries" is shown by the window (a consumer with
   prefetch N holds N) and by what arrives after an ack or a later publish.
4. Left out on purpose (unit tests cover them): where RabbitMQ 3.10 fails with 541
   INTERNAL_ERROR (``x-max-age: "-1D"``, ``x-stream-offset: "xyz"``, ``basic.recover`` on a
   stream delivery) minibroker answers 406/540; chunk boundaries (``last`` with batched
   publishes), which depend on timing in both brokers.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from tests.compat.differential import (
    NEWEST_OUTCOMES,
    TIMEOUT,
    Env,
    Outcome,
    attempt_text,
    scenario,
)

STREAM = {"x-queue-type": "stream"}


# -- helpers --------------------------------------------------------------------------------------


def declare_stream(env: Env, tag: str, **arguments: Any) -> tuple[BlockingChannel, str]:
    ch = env.channel()
    name = env.q(tag)
    ch.queue_declare(name, durable=True, arguments={**STREAM, **arguments})
    return ch, name


def publish_each(ch: BlockingChannel, queue: str, bodies: list[str]) -> None:
    """Publish one by one with confirms: each message is stored (and chunked) on its own."""
    ch.confirm_delivery()
    for body in bodies:
        ch.basic_publish("", queue, body.encode())


class Reader:
    """A stream consumer on its own channel whose deliveries are collected as
    [body, x-stream-offset, delivery tag, redelivered]."""

    def __init__(self, env: Env, queue: str, prefetch: int, **arguments: Any) -> None:
        self.channel = env.channel()
        self.channel.basic_qos(prefetch_count=prefetch)
        self.got: list[Any] = []
        self.tag = self.channel.basic_consume(queue, self._on_message, arguments=arguments)

    def _on_message(self, channel: BlockingChannel, method: Any, properties: Any,
                    body: bytes) -> None:
        offset = (properties.headers or {}).get("x-stream-offset")
        self.got.append([body.decode(), offset, method.delivery_tag, method.redelivered])

    def until(self, count: int) -> list[Any]:
        """Serve the connection until ``count`` deliveries in all arrived (or TIMEOUT)."""
        deadline = time.monotonic() + TIMEOUT
        while len(self.got) < count and time.monotonic() < deadline:
            self.channel.connection.process_data_events(time_limit=0.02)
        return list(self.got)


def read(env: Env, queue: str, count: int, **arguments: Any) -> list[Any]:
    """Attach with a window of ``count`` and read that many (rule 2)."""
    return Reader(env, queue, count, **arguments).until(count)


def declare_refusal(env: Env, arguments: dict[str, Any], *, durable: bool = True,
                    exclusive: bool = False, auto_delete: bool = False) -> Any:
    ch = env.channel()
    name = env.q("declared")
    return attempt_text(partial(
        ch.queue_declare, name, durable=durable, exclusive=exclusive, auto_delete=auto_delete,
        arguments={**STREAM, **arguments},
    ))


def consume_refusal(env: Env, queue: str, *, prefetch: int = 0, global_prefetch: int = 0,
                    auto_ack: bool = False, arguments: dict[str, Any] | None = None) -> Any:
    ch = env.channel()

    def consume() -> None:
        if prefetch:
            ch.basic_qos(prefetch_count=prefetch)
        if global_prefetch:
            ch.basic_qos(prefetch_count=global_prefetch, global_qos=True)
        ch.basic_consume(queue, lambda *_: None, auto_ack=auto_ack, arguments=arguments)
        ch.queue_declare(queue, passive=True)  # a round trip: a refusal has arrived by now

    return attempt_text(consume)


def after(ch: BlockingChannel, action: Callable[[], Any], queue: str) -> Any:
    """Run ``action`` then a round trip on ``ch``: how the broker answered the action."""
    def run() -> None:
        action()
        ch.queue_declare(queue, passive=True)
    return attempt_text(run)


# -- declaration ---------------------------------------------------------------------------------


@scenario
def stream_declare_properties(env: Env) -> Outcome:
    # "Stream queues ... must be durable, not exclusive and not auto-delete."
    big = {"x-stream-max-segment-size-bytes": 3_000_000_001}
    return [
        declare_refusal(env, {}, durable=False),
        declare_refusal(env, {}, exclusive=True),
        declare_refusal(env, {}, auto_delete=True),
        # The order: refused arguments, then auto-delete, exclusive, durable, segment size.
        declare_refusal(env, {"x-dead-letter-exchange": "d"}, durable=False),
        declare_refusal(env, {}, durable=False, auto_delete=True),
        declare_refusal(env, {}, durable=False, exclusive=True),
        declare_refusal(env, {}, exclusive=True, auto_delete=True),
        declare_refusal(env, big, durable=False),
        declare_refusal(env, big),
        declare_refusal(env, {"x-stream-max-segment-size-bytes": 3_000_000_000}),
    ]


@scenario
def stream_declare_argument_values(env: Env) -> Outcome:
    cases: list[dict[str, Any]] = [
        {"x-max-length-bytes": 1000}, {"x-max-length-bytes": 0}, {"x-max-length-bytes": -1},
        {"x-max-length-bytes": "x"}, {"x-max-age": "7D"}, {"x-max-age": "1Y"},
        {"x-max-age": "12h"}, {"x-max-age": "30m"}, {"x-max-age": "45s"}, {"x-max-age": "2M"},
        {"x-max-age": "7X"}, {"x-max-age": "0s"}, {"x-max-age": "10"}, {"x-max-age": "1h30m"},
        {"x-max-age": "1.5h"}, {"x-max-age": 5}, {"x-max-age": b"1D"},
        {"x-stream-max-segment-size-bytes": 1000}, {"x-stream-max-segment-size-bytes": 0},
        {"x-stream-max-segment-size-bytes": -1}, {"x-stream-max-segment-size-bytes": "x"},
        {"x-stream-max-segment-size-bytes": True}, {"x-initial-cluster-size": 1},
        {"x-initial-cluster-size": "a"}, {"x-initial-cluster-size": -1},
        {"x-initial-cluster-size": 0}, {"x-queue-leader-locator": "client-local"},
        {"x-queue-leader-locator": "balanced"}, {"x-queue-leader-locator": "foo"},
        {"x-queue-leader-locator": 1}, {"x-unknown-argument": 1},
        {"x-max-age": "7X", "x-stream-max-segment-size-bytes": -1},
        {"x-max-length-bytes": -1, "x-max-age": "7X"},
        {"x-stream-max-segment-size-bytes": -1, "x-max-length-bytes": -1},
    ]
    outcome = []
    for arguments in cases:
        ch = env.channel()
        name = env.q("values")
        result = attempt_text(partial(ch.queue_declare, name, durable=True,
                                      arguments={**STREAM, **arguments}))
        if result == "ok":
            ch.queue_delete(name)
        outcome.append([sorted(arguments), result])
    return outcome


@scenario
def stream_declare_refused_arguments(env: Env) -> Outcome:
    refused: list[dict[str, Any]] = [
        {"x-dead-letter-exchange": "d"}, {"x-dead-letter-routing-key": "k"},
        {"x-expires": 1000}, {"x-expires": -1}, {"x-overflow": "drop-head"},
        {"x-max-priority": 5}, {"x-single-active-consumer": True}, {"x-message-ttl": 1000},
        {"x-message-ttl": "x"}, {"x-max-length": 10}, {"x-delivery-limit": 3},
        {"x-max-in-memory-length": 3}, {"x-max-in-memory-bytes": 3}, {"x-queue-mode": "lazy"},
        {"x-queue-master-locator": "client-local"},
        # The first refused argument in the order the client sent them is named...
        {"x-message-ttl": 1, "x-dead-letter-exchange": "d"},
        {"x-dead-letter-exchange": "d", "x-message-ttl": 1},
        # ...after the values of the arguments streams support were checked.
        {"x-dead-letter-exchange": "d", "x-max-length-bytes": -1},
    ]
    return [[list(arguments), declare_refusal(env, arguments)] for arguments in refused]


@scenario
def stream_redeclare_equivalence(env: Env) -> Outcome:
    base = {**STREAM, "x-max-age": "1D", "x-stream-max-segment-size-bytes": 1000,
            "x-max-length-bytes": 10000, "x-initial-cluster-size": 1,
            "x-queue-leader-locator": "client-local"}
    ch = env.channel()
    name = env.q("equivalence")
    ch.queue_declare(name, durable=True, arguments=base)
    changes: list[tuple[str, Any]] = [
        ("x-max-age", "2D"), ("x-stream-max-segment-size-bytes", 2000),
        ("x-max-length-bytes", 1), ("x-initial-cluster-size", 3),
        ("x-queue-leader-locator", "random"), ("x-queue-type", "classic"),
        ("x-unknown-argument", 1),
    ]
    outcome = []
    for key, value in changes:
        arguments = {**base, key: value}
        outcome.append([key, attempt_text(
            partial(env.channel().queue_declare, name, durable=True, arguments=arguments))])
    for key in ("x-max-age", "x-stream-max-segment-size-bytes", "x-initial-cluster-size",
                "x-queue-leader-locator", "x-queue-type"):
        arguments = {k: v for k, v in base.items() if k != key}
        outcome.append(["without " + key, attempt_text(
            partial(env.channel().queue_declare, name, durable=True, arguments=arguments))])
    outcome.append(["durable", attempt_text(
        partial(env.channel().queue_declare, name, durable=False, arguments=base))])
    outcome.append(["exclusive", attempt_text(
        partial(env.channel().queue_declare, name, durable=True, exclusive=True,
                arguments=base))])
    ok = env.channel().queue_declare(name, durable=True, arguments=base).method
    outcome.append(["same", ok.message_count, ok.consumer_count])
    return outcome


# -- consuming: what streams refuse --------------------------------------------------------------


@scenario
def stream_consume_refusals(env: Env) -> Outcome:
    _, name = declare_stream(env, "refusals")
    return [
        consume_refusal(env, name),
        consume_refusal(env, name, prefetch=10, auto_ack=True),
        consume_refusal(env, name, auto_ack=True),
        consume_refusal(env, name, global_prefetch=10),
    ]


_REFUSALS = "<prefix>-q-refusals' in vhost '/'"
# rabbit_stream_queue:consume/3 (4.0): "consumer prefetch count is not set for stream ~ts",
# "automatic acknowledgement not supported by stream ~ts" (3.13 still had 3.10's texts).
NEWEST_OUTCOMES["stream_consume_refusals"] = [
    ["channel", 406, "PRECONDITION_FAILED - consumer prefetch count is not set for stream "
                     f"queue '{_REFUSALS}"],
    ["connection", 540, "NOT_IMPLEMENTED - automatic acknowledgement not supported by stream "
                        f"queue '{_REFUSALS}"],
    ["channel", 406, "PRECONDITION_FAILED - consumer prefetch count is not set for stream "
                     f"queue '{_REFUSALS}"],
    ["channel", 406, "PRECONDITION_FAILED - consumer prefetch count is not set for stream "
                     f"queue '{_REFUSALS}"],
]


@scenario
def stream_consume_argument_refusals(env: Env) -> Outcome:
    _, name = declare_stream(env, "refusals")
    return [
        consume_refusal(env, name, prefetch=10, global_prefetch=10),
        consume_refusal(env, name, prefetch=10, arguments={"x-priority": 5}),
        consume_refusal(env, name, prefetch=10, arguments={"x-priority": "a"}),
        consume_refusal(env, name, arguments={"x-priority": 5}),
        consume_refusal(env, name, prefetch=10, arguments={"x-cancel-on-ha-failover": True}),
        consume_refusal(env, name, prefetch=10, auto_ack=True, arguments={"x-priority": 1}),
        consume_refusal(env, name, prefetch=10, arguments={"x-single-active-consumer": True}),
        consume_refusal(env, name, prefetch=10, arguments={"x-stream-offset": 3}),
    ]


@scenario
def stream_offset_argument_values(env: Env) -> Outcome:
    _, name = declare_stream(env, "offsets")
    values: list[Any] = ["0s", "10", "1h ", "1.5h", "1h30m", "first", "last", "next",
                         b"first", "5m", "1M", "1Y", "99999999999Y", 7, -7]
    outcome = [[str(value), consume_refusal(env, name, prefetch=5,
                                            arguments={"x-stream-offset": value})]
               for value in values]
    # The offset is checked first of all, before the window and the other arguments.
    bad = {"x-stream-offset": "0s"}
    outcome.append(["no prefetch", consume_refusal(env, name, arguments=bad)])
    outcome.append(["auto-ack", consume_refusal(env, name, prefetch=5, auto_ack=True,
                                                arguments=bad)])
    outcome.append(["x-priority", consume_refusal(env, name, prefetch=5,
                                                  arguments={**bad, "x-priority": 1})])
    return outcome


@scenario
def stream_get_purge_are_refused(env: Env) -> Outcome:
    ch, name = declare_stream(env, "get")
    publish_each(ch, name, ["a"])
    return [
        attempt_text(partial(env.channel().basic_get, name)),
        attempt_text(partial(env.channel().basic_get, name, auto_ack=True)),
        attempt_text(partial(env.channel().queue_purge, name)),
    ]


# -- consuming: offsets, windows, acknowledgements ------------------------------------------------


@scenario
def stream_offsets(env: Env) -> Outcome:
    ch, name = declare_stream(env, "offsets")
    publish_each(ch, name, [f"m{i}" for i in range(5)])
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    outcome: list[Any] = [
        ["default", None],
        ["first", read(env, name, 5, **{"x-stream-offset": "first"})],
        ["last", read(env, name, 1, **{"x-stream-offset": "last"})],
        ["0", read(env, name, 5, **{"x-stream-offset": 0})],
        ["2", read(env, name, 3, **{"x-stream-offset": 2})],
        ["-1", read(env, name, 5, **{"x-stream-offset": -1})],
        ["1Y", read(env, name, 5, **{"x-stream-offset": "1Y"})],
        ["an hour ago", read(env, name, 5, **{"x-stream-offset": past})],
    ]
    # Attached at the tail: only what is published afterwards arrives.
    tails = [Reader(env, name, 2), Reader(env, name, 2, **{"x-stream-offset": "next"}),
             Reader(env, name, 2, **{"x-stream-offset": 5}),
             Reader(env, name, 2, **{"x-stream-offset": datetime.datetime.now(datetime.UTC)
                                     + datetime.timedelta(hours=1)})]
    publish_each(ch, name, ["m5", "m6"])
    outcome[0][1] = tails[0].until(2)
    outcome.extend([["next", tails[1].until(2)], ["5", tails[2].until(2)],
                    ["an hour ahead", tails[3].until(2)]])
    return outcome


@scenario
def stream_window_and_acks(env: Env) -> Outcome:
    ch, name = declare_stream(env, "window")
    publish_each(ch, name, [f"m{i}" for i in range(6)])
    reader = Reader(env, name, 2, **{"x-stream-offset": "first"})
    outcome: list[Any] = [reader.until(2)]
    reader.channel.basic_ack(1)  # one credit back: one more delivery
    outcome.append(reader.until(3))
    reader.channel.basic_ack(3, multiple=True)  # two credits back
    outcome.append(reader.until(5))
    outcome.append(after(reader.channel, partial(reader.channel.basic_ack, 99), name))
    second = Reader(env, name, 3, **{"x-stream-offset": 3})
    second.until(3)
    second.channel.basic_ack(1)
    outcome.append(after(second.channel, partial(second.channel.basic_ack, 1), name))
    return outcome


@scenario
def stream_qos_changes_after_consume(env: Env) -> Outcome:
    # The window is fixed at basic.consume; a later qos, global or not, changes nothing.
    ch, name = declare_stream(env, "qos")
    publish_each(ch, name, ["a", "b", "c"])
    reader = Reader(env, name, 1, **{"x-stream-offset": "first"})
    got = reader.until(1)
    reader.channel.basic_qos(prefetch_count=3)
    reader.channel.basic_qos(prefetch_count=3, global_qos=True)
    reader.channel.basic_ack(1)
    return [got, reader.until(2), after(reader.channel, lambda: None, name)]


@scenario
def stream_nack_reject_refused(env: Env) -> Outcome:
    ch, name = declare_stream(env, "nack")
    publish_each(ch, name, ["a", "b", "c"])
    outcome = []
    for settle in (partial(BlockingChannel.basic_nack, delivery_tag=1, requeue=True),
                   partial(BlockingChannel.basic_nack, delivery_tag=1, requeue=False),
                   partial(BlockingChannel.basic_reject, delivery_tag=1, requeue=True),
                   partial(BlockingChannel.basic_reject, delivery_tag=1, requeue=False),
                   partial(BlockingChannel.basic_nack, delivery_tag=0, multiple=True)):
        reader = Reader(env, name, 2, **{"x-stream-offset": "first"})
        reader.until(2)
        answer = after(reader.channel, partial(settle, reader.channel), name)
        # Credit back: the third message arrives (nothing is redelivered).
        outcome.append([answer, reader.until(3) if answer == "ok" else reader.got])
    return outcome


# rabbit_stream_queue:settle/5 since 3.13 (PR #9644, "treat discard and return like settle"):
# every outcome gives the consumer its credit back, like an ack.
_READ = [["a", 0, 1, False], ["b", 1, 2, False], ["c", 2, 3, False]]
NEWEST_OUTCOMES["stream_nack_reject_refused"] = [["ok", _READ] for _ in range(5)]


@scenario
def stream_cancel_then_ack(env: Env) -> Outcome:
    # An ack after cancel-ok only settles. (Had an ack before the cancel given credit for a
    # third message, pika would reject that delivery on cancel: 540 from RabbitMQ.)
    ch, name = declare_stream(env, "cancel")
    publish_each(ch, name, ["a", "b"])
    reader = Reader(env, name, 2, **{"x-stream-offset": "first"})
    got = reader.until(2)
    reader.channel.basic_cancel(reader.tag)
    untouched = after(reader.channel, lambda: None, name)
    return [got, untouched, after(reader.channel, partial(reader.channel.basic_ack, 1), name)]


@scenario
def stream_closed_channel_forgets_deliveries(env: Env) -> Outcome:
    ch, name = declare_stream(env, "close")
    publish_each(ch, name, ["a", "b", "c"])
    reader = Reader(env, name, 2, **{"x-stream-offset": "first"})
    first = reader.until(2)
    reader.channel.close()
    return [first, read(env, name, 3, **{"x-stream-offset": "first"}),
            ch.queue_declare(name, passive=True).method.consumer_count]


@scenario
def stream_consumers_each_read_everything(env: Env) -> Outcome:
    ch, name = declare_stream(env, "fanout")
    publish_each(ch, name, ["a", "b", "c"])
    readers = [Reader(env, name, 3, **{"x-stream-offset": "first"}),
               Reader(env, name, 3, **{"x-stream-offset": 1})]
    # Exclusive is ignored for streams: a second exclusive consumer is accepted too.
    exclusive = env.channel()
    exclusive.basic_qos(prefetch_count=1)
    exclusive.basic_consume(name, lambda *_: None, exclusive=True,
                            arguments={"x-stream-offset": "next"})
    other = env.channel()
    other.basic_qos(prefetch_count=1)
    second = attempt_text(partial(other.basic_consume, name, lambda *_: None, exclusive=True,
                                  arguments={"x-stream-offset": "next"}))
    ok = ch.queue_declare(name, passive=True).method
    return [readers[0].until(3), readers[1].until(2), second, ok.consumer_count]


@scenario
def stream_routing_and_headers(env: Env) -> Outcome:
    ch, name = declare_stream(env, "routing")
    fanout = env.x("fanout")
    ch.exchange_declare(fanout, "fanout")
    ch.queue_bind(name, fanout)
    ch.confirm_delivery()
    ch.basic_publish(fanout, "any", b"via exchange", mandatory=True)
    ch.basic_publish("", name, b"offset header replaced",
                     pika.BasicProperties(headers={"x-stream-offset": 99, "h": "kept"},
                                          expiration="1", delivery_mode=2), mandatory=True)
    reader = env.channel()
    reader.basic_qos(prefetch_count=2)
    got: list[Any] = []

    def keep(channel: BlockingChannel, method: Any, properties: Any, body: bytes) -> None:
        got.append([body.decode(), method.exchange, method.routing_key, properties.headers,
                    properties.expiration, properties.delivery_mode])

    reader.basic_consume(name, keep, arguments={"x-stream-offset": "first"})
    deadline = time.monotonic() + TIMEOUT
    while len(got) < 2 and time.monotonic() < deadline:
        reader.connection.process_data_events(time_limit=0.02)
    return got


@scenario
def stream_delete_cancels_consumers(env: Env) -> Outcome:
    ch, name = declare_stream(env, "delete")
    publish_each(ch, name, ["a"])
    consumer = env.channel()
    consumer.basic_qos(prefetch_count=1)
    cancelled: list[bool] = []
    consumer.add_on_cancel_callback(lambda frame: cancelled.append(True))
    consumer.basic_consume(name, lambda *_: None, arguments={"x-stream-offset": "next"})
    deleted = env.channel().queue_delete(name, if_unused=True, if_empty=True).method
    deadline = time.monotonic() + TIMEOUT
    while not cancelled and time.monotonic() < deadline:
        consumer.connection.process_data_events(time_limit=0.02)
    return [deleted.message_count, cancelled]


@scenario
def stream_filtering(env: Env) -> Outcome:
    # RabbitMQ 3.13's stream filtering; 3.10 ignores the arguments.
    outcome: list[Any] = [declare_refusal(env, {"x-stream-filter-size-bytes": 10})]
    ch, name = declare_stream(env, "filtered")
    ch.confirm_delivery()
    for value in ("eu", "us", None, "eu"):
        headers = None if value is None else {"x-stream-filter-value": value}
        ch.basic_publish("", name, (value or "none").encode(),
                         pika.BasicProperties(headers=headers))
    outcome.append(read(env, name, 2, **{"x-stream-offset": "first", "x-stream-filter": "eu"}))
    outcome.append(read(env, name, 3, **{"x-stream-offset": "first", "x-stream-filter": ["eu"],
                                          "x-stream-match-unfiltered": True}))
    return outcome


# rabbit_stream_queue:check_filter_size/1 and filter_spec/1 (3.13): a filter size outside
# 16..255 is refused; each message here is a chunk of its own (published one confirm at a
# time), so the chunks a filtered consumer reads are exactly its messages (a Bloom filter's
# false positive could add one in RabbitMQ; minibroker checks each message exactly).
NEWEST_OUTCOMES["stream_filtering"] = [
    ["channel", 406, "PRECONDITION_FAILED - Invalid value for  x-stream-filter-size-bytes"],
    [["eu", 0, 1, False], ["eu", 3, 2, False]],
    [["eu", 0, 1, False], ["none", 2, 2, False], ["eu", 3, 3, False]],
]
