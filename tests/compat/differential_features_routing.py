"""Differential scenarios for RabbitMQ's queue features, part 3: alternate exchanges, single
active consumer, consumer priorities, direct reply-to and sender-selected distribution (CC/BCC).
Registered with ``differential_features.feature``; the rules of part 1
(``differential_features.py``) hold here too.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import UnroutableError

from tests.compat.differential import Env, Outcome, attempt, attempt_text, get_all, ready
from tests.compat.differential_features import (
    dead_letter_target,
    feature,
    receive,
    wait_for_ready,
    wait_until,
)

REPLY_TO = "amq.rabbitmq.reply-to"


def collect(bodies: list[str], channel: Any, method: Any, properties: Any, body: bytes) -> None:
    """A basic_consume callback (bind ``bodies`` with partial) that records each body."""
    bodies.append(body.decode())


def total_is(seen: dict[str, list[str]], count: int) -> bool:
    return sum(len(bodies) for bodies in seen.values()) == count

# -- alternate exchange -------------------------------------------------------------------------


@feature
def alternate_exchange_routing(env: Env) -> Outcome:
    # [AE] unroutable messages go to the AE; a mandatory publish is returned only if the AE
    # does not route it either.
    ch = env.channel()
    main, ae, q, caught = env.x("main"), env.x("ae"), env.q("main"), env.q("caught")
    ch.exchange_declare(ae, "fanout")
    ch.exchange_declare(main, "direct", arguments={"alternate-exchange": ae})
    for queue in (q, caught):
        ch.queue_declare(queue)
    ch.queue_bind(q, main, "known")
    ch.queue_bind(caught, ae)
    ch.confirm_delivery()
    out: Outcome = []
    for key in ("known", "unknown"):
        out.append(attempt(partial(ch.basic_publish, main, key, key.encode(), mandatory=True)))
    out.append([get_all(ch, q), get_all(ch, caught)])
    # an AE that does not exist, or routes nowhere: the mandatory publish comes back
    orphan, lost = env.x("orphan"), env.x("lost")
    ch.exchange_declare(orphan, "direct", arguments={"alternate-exchange": env.x("missing")})
    ch.exchange_declare(lost, "direct", arguments={"alternate-exchange": ae})
    ch.queue_unbind(caught, ae)
    for exchange in (orphan, lost):
        try:
            ch.basic_publish(exchange, "k", b"returned", mandatory=True)
            out.append("no return")
        except UnroutableError as err:
            returned = err.messages[0]
            out.append([returned.method.reply_code, returned.method.reply_text,
                        returned.method.exchange == exchange])
    return out


# -- consumers ---------------------------------------------------------------------------------


@feature
def single_active_consumer(env: Env) -> Outcome:
    # [CONS] only the first consumer receives; when it is cancelled the next one takes over.
    ch = env.channel()
    q = env.q("sac")
    ch.queue_declare(q, arguments={"x-single-active-consumer": True})
    connection = env.connect()
    seen: dict[str, list[str]] = {"first": [], "second": []}
    channels = {}
    for name in seen:
        consumer = connection.channel()
        consumer.basic_consume(q, lambda c, m, p, b, name=name: seen[name].append(b.decode()),
                               auto_ack=True, consumer_tag=name)
        channels[name] = consumer
    out: Outcome = [ready(ch, q)]
    for i in range(4):
        ch.basic_publish("", q, f"m{i}".encode())
    wait_until(channels["first"], lambda: len(seen["first"]) + len(seen["second"]) == 4)
    out.append({name: list(bodies) for name, bodies in seen.items()})
    channels["first"].basic_cancel("first")
    for i in range(4, 6):
        ch.basic_publish("", q, f"m{i}".encode())
    wait_until(channels["second"], lambda: len(seen["second"]) == 2)
    out.append(seen)
    return out


@feature
def single_active_consumer_failover_redelivers(env: Env) -> Outcome:
    # When the active consumer's channel closes, its unacked messages go back to the queue and
    # the next consumer (in subscription order) becomes active and receives them redelivered.
    ch = env.channel()
    q = env.q("sac")
    ch.queue_declare(q, arguments={"x-single-active-consumer": True})
    active = env.channel()
    active.basic_qos(prefetch_count=2)
    active.basic_consume(q, lambda *args: None, consumer_tag="active")
    connection = env.connect()
    got: dict[str, list[Any]] = {"second": [], "third": []}
    for name in got:
        consumer = connection.channel()
        consumer.basic_consume(q, lambda c, m, p, b, name=name: got[name].append(
            [b.decode(), m.redelivered]), auto_ack=True, consumer_tag=name)
    for i in range(3):
        ch.basic_publish("", q, f"m{i}".encode())
    out: Outcome = [wait_for_ready(ch, q, 1)]  # two in flight to the active consumer
    active.close()
    wait_until(consumer, lambda: len(got["second"]) + len(got["third"]) == 3)
    # which consumer took over and what it got; the order of requeued and waiting messages is
    # not something RabbitMQ keeps stable here
    out.append({name: sorted(deliveries) for name, deliveries in got.items()})
    return out


@feature
def consumer_priorities(env: Env) -> Outcome:
    # [CPRIO] the highest-priority consumer with prefetch room gets the message; lower ones get
    # messages only while it is full.
    out: Outcome = []
    for prefetch in (0, 2):
        ch = env.channel()
        q = env.q(f"prefetch{prefetch}")
        ch.queue_declare(q)
        connection = env.connect()
        seen: dict[str, list[str]] = {"low": [], "high": []}
        for name, priority in (("low", 1), ("high", 10)):
            consumer = connection.channel()
            if name == "high":
                consumer.basic_qos(prefetch_count=prefetch)
            consumer.basic_consume(q, partial(collect, seen[name]),
                                   arguments={"x-priority": priority})
        for i in range(6):
            ch.basic_publish("", q, f"m{i}".encode())
        wait_until(consumer, partial(total_is, seen, 6))
        out.append([prefetch, seen])
    return out


# -- direct reply-to -----------------------------------------------------------------------------


@feature
def direct_reply_to(env: Env) -> Outcome:
    # [DRT] the requester consumes the pseudo-queue (no-ack), publishes with reply_to set to it;
    # the broker rewrites reply_to to a routable name that reaches that consumer directly.
    server_queue = env.q("rpc")
    server = env.channel()
    server.queue_declare(server_queue)
    client = env.channel()
    replies: list[Any] = []
    client.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append(
        [b.decode(), m.exchange, m.redelivered, p.correlation_id]), auto_ack=True)
    client.basic_publish("", server_queue, b"request",
                         pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c1"))
    wait_for_ready(server, server_queue, 1)  # published on another connection
    _, properties, body = server.basic_get(server_queue, auto_ack=True)
    reply_to = properties.reply_to
    server.basic_publish("", reply_to, b"reply to " + body,
                         pika.BasicProperties(correlation_id=properties.correlation_id))
    wait_until(client, lambda: bool(replies))
    out: Outcome = [reply_to.startswith(REPLY_TO + "."), reply_to != REPLY_TO, replies]
    out.append(attempt(lambda: client.queue_declare(REPLY_TO, passive=True)))
    # a name that was never handed out: silently dropped, not an error
    server.basic_publish("", REPLY_TO + ".not-a-real-token", b"lost")
    out.append(attempt(lambda: server.queue_declare(server_queue, passive=True)))
    return out


@feature
def direct_reply_to_errors(env: Env) -> Outcome:
    q = env.q("rpc")
    env.channel().queue_declare(q)
    out = []
    ch = env.channel()
    ch.basic_publish("", q, b"request", pika.BasicProperties(reply_to=REPLY_TO))
    out.append(attempt_text(lambda: ch.queue_declare(q, passive=True)))
    ch = env.channel()
    out.append(attempt_text(lambda: ch.basic_consume(REPLY_TO, lambda *args: None)))
    out.append(ready(env.channel(), q))
    return out


# -- sender-selected distribution ---------------------------------------------------------------


@feature
def cc_and_bcc(env: Env) -> Outcome:
    # [SSD] CC and BCC add routing keys on the same exchange; BCC is removed before delivery.
    ch = env.channel()
    x = env.x("d")
    ch.exchange_declare(x, "direct")
    queues = {}
    for key in ("to", "cc", "bcc", "other"):
        queues[key] = env.q(key)
        ch.queue_declare(queues[key])
        ch.queue_bind(queues[key], x, key)
    ch.basic_publish(x, "to", b"sent", pika.BasicProperties(
        headers={"CC": ["cc", "nobody"], "BCC": ["bcc"], "other": 1}))
    ch.basic_publish(x, "nowhere", b"cc only", pika.BasicProperties(headers={"CC": ["cc"]}))
    out: Outcome = []
    for key, q in queues.items():
        got = []
        while True:
            method, properties, body = ch.basic_get(q, auto_ack=True)
            if method is None:
                break
            got.append([body.decode(), method.routing_key, properties.headers])
        out.append([key, got])
    return out


@feature
def cc_and_bcc_keys_longer_than_a_routing_key(env: Env) -> Outcome:
    # RabbitMQ takes CC/BCC entries of any length (a routing key is at most 255 octets) and
    # routes them like routing keys: here 10,000-word entries. Only bindings with one '#'
    # appear: RabbitMQ's own matcher tries every suffix for every '#' with no memory, so a
    # long key against '#.#.#.#.#.a' keeps its channel busy for ever (minibroker's unit tests
    # cover those bindings, tests/unit/core/test_topic.py).
    ch = env.channel()
    x = env.x("t")
    ch.exchange_declare(x, "topic")
    queues = {}
    for tag, binding in (("any", "#"), ("ends-a", "*.#.a"), ("x", "x.#")):
        queues[tag] = env.q(tag)
        ch.queue_declare(queues[tag])
        ch.queue_bind(queues[tag], x, binding)
    long_key = ".".join(["w"] * 10_000)
    ch.confirm_delivery()
    ch.basic_publish(x, "nothing", b"cc", pika.BasicProperties(headers={"CC": [long_key]}))
    ch.basic_publish(x, "nothing", b"bcc", pika.BasicProperties(
        headers={"BCC": [long_key + ".a"]}))
    ch.basic_publish(x, "nothing", b"x", pika.BasicProperties(headers={"CC": ["x." + long_key]}))
    return [[tag, [body.decode() for body in get_bodies(ch, q)]] for tag, q in queues.items()]


def get_bodies(ch: BlockingChannel, queue: str) -> list[bytes]:
    bodies = []
    while True:
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)


@feature
def cc_with_dead_lettering(env: Env) -> Outcome:
    # [DLX] the dead-lettered copy lists the CC keys in x-death routing-keys and is routed by
    # them unless x-dead-letter-routing-key replaces them; BCC never reappears.
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    x, keep, replace = env.x("d"), env.q("keep"), env.q("replace")
    ch.exchange_declare(x, "direct")
    ch.queue_declare(keep, arguments={"x-dead-letter-exchange": dlx})
    ch.queue_declare(replace, arguments={"x-dead-letter-exchange": dlx,
                                         "x-dead-letter-routing-key": "dl-key"})
    ch.queue_bind(keep, x, "keep")
    ch.queue_bind(replace, x, "replace")
    ch.basic_publish(x, "keep", b"kept keys", pika.BasicProperties(
        headers={"CC": ["copy"], "BCC": ["secret"]}))
    ch.basic_publish(x, "replace", b"replaced keys", pika.BasicProperties(
        headers={"CC": ["copy"], "BCC": ["secret"]}))
    for q in (keep, replace):
        ch.basic_reject(ch.basic_get(q)[0].delivery_tag, requeue=False)
    return [sorted(receive(env.channel(), dlq, 2)), ready(ch, dlq)]
