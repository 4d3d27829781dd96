"""Differential scenarios for RabbitMQ's queue features, part 1: the registry and helpers, then
message TTL, dead-lettering and queue expiry. Part 2 (``differential_features_limits.py``) has
length limits, argument validation, priorities and quorum queues; part 3
(``differential_features_routing.py``) alternate exchanges, consumer features, direct reply-to
and CC/BCC. ``test_differential_features.py`` compares minibroker with the recorded RabbitMQ
outcomes and, when a RabbitMQ is reachable, with RabbitMQ itself.

Rules:

1. These scenarios live in their own registry (``FEATURE_SCENARIOS``), not in the shared
   ``SCENARIOS``, so ``test_differential.py`` never runs them and each can carry its own
   ``xfail`` while the core catches up. Names, cleanup and outcome shape follow
   ``differential.py`` (``Env``, ``attempt``, ``<prefix>`` in place of the run's names).
2. Time-based behaviour is observed on the broker, never by sleeping: a dead-lettered copy is
   awaited with a bounded consume, a count by polling a passive declare between bounded
   ``process_data_events`` calls, a deletion by mandatory probe publishes, and "this much time
   has passed" by a message of known TTL coming out of a dead-letter queue (``elapse``). TTLs
   are 50-200 ms and every wait is bounded by ``WAIT``, so a scenario takes well under a second
   when the broker behaves and a few seconds when a feature is missing.
3. Outcomes hold what a client can observe and RabbitMQ keeps stable: bodies, flags, reply codes
   and texts, counts, and the dead-letter headers without their timestamps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import NackError, UnroutableError

from tests.compat.differential import (
    Env,
    Outcome,
    Scenario,
    attempt,
    attempt_text,
    get_all,
    ready,
)

#: name -> scenario, in definition order (both parts).
FEATURE_SCENARIOS: dict[str, Scenario] = {}
#: Poll interval while waiting for the broker to act on a deadline (seconds).
POLL = 0.02
#: Upper bound for one wait on the broker. TTLs here are <= 200 ms, so this leaves a wide
#: margin while keeping a broker that never acts (a missing feature) from stalling the run.
WAIT = 3.0


def feature(fn: Scenario) -> Scenario:
    FEATURE_SCENARIOS[fn.__name__] = fn
    return fn


def run_feature(name: str, url: str) -> Outcome:
    """Run one feature scenario (like ``differential.run_scenario``, on our registry)."""
    env = Env(url)
    try:
        outcome = FEATURE_SCENARIOS[name](env)
    finally:
        env.close()
    result: Outcome = json.loads(json.dumps(outcome, default=str).replace(env.prefix, "<prefix>"))
    return result


# -- helpers --------------------------------------------------------------------------------------


def wait_until(channel: BlockingChannel, condition: Callable[[], bool]) -> bool:
    """Serve ``channel``'s connection until ``condition()`` holds or WAIT passes."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        channel.connection.process_data_events(time_limit=POLL)
    return True


def wait_for_ready(channel: BlockingChannel, queue: str, count: int) -> list[int]:
    """Poll ``queue`` until it holds ``count`` ready messages; the last [ready, consumers]."""
    last = ready(channel, queue)

    def reached() -> bool:
        nonlocal last
        last = ready(channel, queue)
        return last[0] == count

    wait_until(channel, reached)
    return last


def wait_for_deletion(env: Env, queue: str) -> str:
    """Wait until ``queue`` is gone without touching it: a passive declare would count as a
    redeclare and renew an ``x-expires`` lease, so probe with mandatory publishes through a
    fanout exchange bound to it until one comes back unroutable."""
    ch = env.channel()
    probe = env.x("probe")
    ch.exchange_declare(probe, "fanout")
    ch.queue_bind(queue, probe)
    ch.confirm_delivery()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            ch.basic_publish(probe, "", b"probe", mandatory=True)
        except UnroutableError:
            return "deleted"
        ch.connection.process_data_events(time_limit=POLL)
    return "still there"


def death(properties: pika.BasicProperties) -> dict[str, Any]:
    """The dead-letter view of a message: x-death entries without ``time``, the
    x-first-death-* headers, any headers not starting with ``x-`` (CC/BCC), and whether
    ``expiration`` was kept. (``x-last-death-*`` only exists in newer releases.)"""
    headers = properties.headers or {}
    view: dict[str, Any] = {
        "x-death": [{key: value for key, value in sorted(entry.items()) if key != "time"}
                    for entry in headers.get("x-death", [])],
    }
    view.update({key: headers[key] for key in sorted(headers)
                 if key.startswith("x-first-death") or not key.startswith("x-")})
    view["expiration"] = properties.expiration
    return view


def receive(channel: BlockingChannel, queue: str, count: int) -> list[Any]:
    """Consume ``count`` messages of ``queue`` (auto-ack) as [body, routing_key, death view];
    fewer if the broker sends nothing for WAIT."""
    got: list[Any] = []
    if count == 0:
        return got
    for method, properties, body in channel.consume(queue, auto_ack=True,
                                                    inactivity_timeout=WAIT):
        if method is None:
            break
        got.append([body.decode(), method.routing_key, death(properties)])
        if len(got) == count:
            break
    channel.cancel()
    return got


def dead_letter_target(env: Env, ch: BlockingChannel, tag: str = "dlx",
                       binding_keys: tuple[str, ...] = ("#",)) -> tuple[str, str]:
    """A topic exchange and a queue bound to it with ``binding_keys``: (exchange, queue)."""
    dlx, dlq = env.x(tag), env.q(tag)
    ch.exchange_declare(dlx, "topic")
    ch.queue_declare(dlq)
    for key in binding_keys:
        ch.queue_bind(dlq, dlx, key)
    return dlx, dlq


def publish_confirmed(ch: BlockingChannel, exchange: str, routing_key: str, body: str,
                      properties: pika.BasicProperties | None = None) -> str:
    """Publish on a confirm channel: "ack" or "nack" (RabbitMQ's basic.nack)."""
    try:
        ch.basic_publish(exchange, routing_key, body.encode(), properties)
    except NackError:
        return "nack"
    return "ack"


def elapse(env: Env, milliseconds: int) -> bool:
    """Wait until the broker has let ``milliseconds`` pass: a message with that TTL expires
    from a queue of its own into a dead-letter queue. True when it came out in time."""
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch, "clock-dl")
    clock = env.q("clock")
    ch.queue_declare(clock, arguments={"x-dead-letter-exchange": dlx})
    ch.basic_publish("", clock, b"tick", pika.BasicProperties(expiration=str(milliseconds)))
    return len(receive(ch, dlq, 1)) == 1


# -- message TTL ----------------------------------------------------------------------------------


@feature
def ttl_lower_of_queue_and_message_applies(env: Env) -> Outcome:
    # [TTL] "When both a per-queue and a per-message TTL are specified, the lower value of the
    # two will be chosen." Each message is alone at its queue's head, so head-only expiry and
    # eager expiry give the same order.
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    short_queue, short_message = env.q("queue-ttl"), env.q("message-ttl")
    ch.queue_declare(short_queue, arguments={"x-message-ttl": 100,
                                             "x-dead-letter-exchange": dlx})
    ch.queue_declare(short_message, arguments={"x-message-ttl": 60000,
                                               "x-dead-letter-exchange": dlx})
    ch.basic_publish("", short_queue, b"queue-ttl wins", pika.BasicProperties(expiration="60000"))
    ch.basic_publish("", short_message, b"message-ttl wins", pika.BasicProperties(expiration="100"))
    got = receive(env.channel(), dlq, 2)
    return [sorted(got), ready(ch, short_queue), ready(ch, short_message)]


@feature
def ttl_expires_without_dead_letter_exchange(env: Env) -> Outcome:
    ch = env.channel()
    by_queue, by_message = env.q("by-queue"), env.q("by-message")
    ch.queue_declare(by_queue, arguments={"x-message-ttl": 50})
    ch.queue_declare(by_message)
    for i in range(3):
        ch.basic_publish("", by_queue, f"q{i}".encode())
        ch.basic_publish("", by_message, f"m{i}".encode(), pika.BasicProperties(expiration="50"))
    ch.basic_publish("", by_message, b"kept")  # no expiration: behind the expiring ones
    return [wait_for_ready(ch, by_queue, 0), wait_for_ready(ch, by_message, 1),
            get_all(ch, by_message)]


@feature
def ttl_expiration_zero(env: Env) -> Outcome:
    # [TTL] expiration 0: "expire ... unless they can be delivered to a consumer immediately".
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    idle, consumed = env.q("idle"), env.q("consumed")
    for q in (idle, consumed):
        ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx})
    got: list[str] = []
    consumer = env.channel()
    consumer.basic_consume(consumed, lambda c, m, p, b: got.append(b.decode()), auto_ack=True)
    zero = pika.BasicProperties(expiration="0")
    ch.basic_publish("", idle, b"nobody waiting", zero)
    ch.basic_publish("", consumed, b"delivered at once", zero)
    wait_until(consumer, lambda: bool(got))
    return [got, receive(env.channel(), dlq, 1), ready(ch, idle)]


@feature
def ttl_invalid_expiration(env: Env) -> Outcome:
    q = env.q("a")
    env.channel().queue_declare(q)
    out = []
    for expiration in ("abc", "-1", "1.5"):
        ch = env.channel()
        ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=expiration))
        out.append(attempt_text(partial(ch.queue_declare, q, passive=True)))
    out.append(ready(env.channel(), q))
    return out


@feature
def ttl_per_message_expires_only_at_head(env: Env) -> Outcome:
    # [TTL] "Queues that had a per-message TTL applied to them retroactively (when they already
    # had messages) will discard the messages when specific events occur ... only when expired
    # messages reach the head of a queue": a short-lived message behind a long-lived one stays
    # counted until it reaches the head, and is then discarded instead of delivered.
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"long", pika.BasicProperties(expiration="60000"))
    ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="50"))
    out: Outcome = [elapse(env, 150), ready(ch, q)]
    out.append(get_all(ch, q))
    out.append(ready(ch, q))
    return out


@feature
def ttl_unacked_message_expires_on_requeue(env: Env) -> Outcome:
    # An unacked message does not expire while delivered; requeued after its TTL it is
    # dead-lettered as expired rather than delivered again.
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    q = env.q("a")
    ch.queue_declare(q, arguments={"x-message-ttl": 50, "x-dead-letter-exchange": dlx})
    ch.basic_publish("", q, b"held")
    method, _, _ = ch.basic_get(q)
    out: Outcome = [elapse(env, 150), ready(ch, dlq)]
    ch.basic_nack(method.delivery_tag, requeue=True)
    out.append(receive(env.channel(), dlq, 1))
    out.append(ready(ch, q))
    return out


# -- dead-lettering -------------------------------------------------------------------------------


@feature
def dead_letter_on_reject_and_nack(env: Env) -> Outcome:
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    plain, rerouted = env.q("plain"), env.q("rerouted")
    ch.queue_declare(plain, arguments={"x-dead-letter-exchange": dlx})
    ch.queue_declare(rerouted, arguments={"x-dead-letter-exchange": dlx,
                                          "x-dead-letter-routing-key": "dl-key"})
    source = env.x("src")
    ch.exchange_declare(source, "direct")
    ch.queue_bind(plain, source, "orig")
    ch.basic_publish(source, "orig", b"rejected")
    ch.basic_publish(source, "orig", b"nacked", pika.BasicProperties(expiration="60000"))
    ch.basic_publish("", rerouted, b"rerouted")
    ch.basic_publish("", plain, b"requeued")  # requeue=true: no dead-lettering
    tags = [ch.basic_get(plain)[0].delivery_tag for _ in range(3)]
    ch.basic_reject(tags[0], requeue=False)
    ch.basic_nack(tags[1], requeue=False)
    ch.basic_nack(tags[2], requeue=True)
    ch.basic_nack(ch.basic_get(rerouted)[0].delivery_tag, multiple=True, requeue=False)
    return [receive(env.channel(), dlq, 3), get_all(ch, plain)]


@feature
def dead_letter_to_default_exchange_and_cycle_count(env: Env) -> Outcome:
    # Two queues dead-lettering into each other through the default exchange: x-death keeps
    # one entry per (queue, reason), most recent first, and counts repeats.
    ch = env.channel()
    first, second = env.q("first"), env.q("second")
    ch.queue_declare(first, arguments={"x-dead-letter-exchange": "",
                                       "x-dead-letter-routing-key": second})
    ch.queue_declare(second, arguments={"x-dead-letter-exchange": "",
                                        "x-dead-letter-routing-key": first})
    ch.basic_publish("", first, b"bounced")
    views = []
    for queue in (first, second, first):
        wait_for_ready(ch, queue, 1)  # dead-lettering is asynchronous in RabbitMQ
        method, properties, _ = ch.basic_get(queue)
        views.append(death(properties))
        ch.basic_reject(method.delivery_tag, requeue=False)
    wait_for_ready(ch, second, 1)
    method, properties, body = ch.basic_get(second, auto_ack=True)
    views.append(death(properties))
    return [body.decode(), method.routing_key == second, views]


@feature
def dead_letter_exchange_missing_drops(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q, arguments={"x-dead-letter-exchange": env.x("missing")})
    ch.basic_publish("", q, b"lost")
    ch.basic_reject(ch.basic_get(q)[0].delivery_tag, requeue=False)
    return [ready(ch, q), attempt(lambda: ch.queue_declare(q, passive=True))]


# -- queue expiry --------------------------------------------------------------------------------


@feature
def x_expires_deletes_unused_queue(env: Env) -> Outcome:
    # [TTL] "unused": no consumers, no basic.get, no redeclare. The consumed queue is declared
    # first, so once the idle one is gone it has been unused-but-consumed for longer.
    # The consumer's channel is opened first so that only the declare's round trip separates
    # the declare from the consume: on a loaded machine a channel.open in between took RabbitMQ
    # past the 100 ms and the consumed queue expired before its consumer came.
    ch, consumer = env.channel(), env.channel()
    consumed, idle = env.q("consumed"), env.q("idle")
    consumer.queue_declare(consumed, arguments={"x-expires": 100})
    consumer.basic_consume(consumed, lambda *args: None)
    ch.queue_declare(idle, arguments={"x-expires": 100})
    ch.basic_publish("", idle, b"messages do not keep it alive")
    out: Outcome = [wait_for_deletion(env, idle)]
    for queue in (idle, consumed):
        check = env.channel()
        out.append(attempt(partial(check.queue_declare, queue, passive=True)))
    return out
