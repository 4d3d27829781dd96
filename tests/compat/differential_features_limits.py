"""Differential scenarios for RabbitMQ's queue features, part 2: length limits and overflow,
argument validation, priority queues and quorum queue declarations. Registered with
``differential_features.feature``; the rules of part 1 (``differential_features.py``) hold here
too.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pika

from tests.compat.differential import (
    NEWEST_OUTCOMES,
    Env,
    Outcome,
    attempt,
    attempt_text,
    get_all,
    ready,
)
from tests.compat.differential_features import (
    dead_letter_target,
    feature,
    publish_confirmed,
    receive,
    wait_for_ready,
)

# -- length limits -------------------------------------------------------------------------------


@feature
def max_length_drop_head(env: Env) -> Outcome:
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    q = env.q("a")
    ch.queue_declare(q, arguments={"x-max-length": 2, "x-dead-letter-exchange": dlx})
    for i in range(5):
        ch.basic_publish("", q, str(i).encode())
    # RabbitMQ's declare-ok count lags publishes a little: wait for the limit to show
    return [wait_for_ready(ch, q, 2), get_all(ch, q), receive(env.channel(), dlq, 3)]


@feature
def max_length_reject_publish(env: Env) -> Outcome:
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    q = env.q("a")
    ch.queue_declare(q, arguments={"x-max-length": 2, "x-overflow": "reject-publish",
                                   "x-dead-letter-exchange": dlx})
    ch.confirm_delivery()
    confirms = [publish_confirmed(ch, "", q, str(i)) for i in range(4)]
    ch.basic_get(q, auto_ack=True)  # room for one more
    confirms.append(publish_confirmed(ch, "", q, "after room"))
    return [confirms, get_all(ch, q), ready(ch, dlq)]


@feature
def max_length_reject_publish_dlx(env: Env) -> Outcome:
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    q = env.q("a")
    ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                                   "x-dead-letter-exchange": dlx})
    ch.confirm_delivery()
    confirms = [publish_confirmed(ch, "", q, str(i)) for i in range(3)]
    return [confirms, get_all(ch, q), receive(env.channel(), dlq, 2)]


@feature
def max_length_bytes(env: Env) -> Outcome:
    # [MAXLEN] only message bodies count; an empty body costs nothing.
    ch = env.channel()
    dropping, refusing = env.q("drop"), env.q("refuse")
    ch.queue_declare(dropping, arguments={"x-max-length-bytes": 10})
    ch.queue_declare(refusing, arguments={"x-max-length-bytes": 10,
                                          "x-overflow": "reject-publish"})
    for body in ("aaaa", "bbbb", "cccc", ""):
        ch.basic_publish("", dropping, body.encode())
    ch.confirm_delivery()
    confirms = [publish_confirmed(ch, "", refusing, body)
                for body in ("aaaa", "bbbbbb", "c", "")]
    return [get_all(ch, dropping), confirms, get_all(ch, refusing)]


@feature
def max_length_zero_and_requeue(env: Env) -> Outcome:
    ch = env.channel()
    zero, full = env.q("zero"), env.q("full")
    ch.queue_declare(zero, arguments={"x-max-length": 0})
    ch.basic_publish("", zero, b"never stored")
    ch.queue_declare(full, arguments={"x-max-length": 1})
    ch.basic_publish("", full, b"old")
    method, _, _ = ch.basic_get(full)
    ch.basic_publish("", full, b"new")
    ch.basic_nack(method.delivery_tag, requeue=True)  # a requeue may exceed the limit again
    return [ready(ch, zero), get_all(ch, full)]


# -- argument validation ---------------------------------------------------------------------------

INVALID_ARGUMENTS: list[dict[str, Any]] = [
    {"x-message-ttl": -5},
    {"x-message-ttl": "abc"},
    {"x-expires": 0},
    {"x-expires": -1},
    {"x-max-length": -1},
    {"x-max-length-bytes": -1},
    {"x-overflow": "drop-tail"},
    {"x-max-priority": 300},
    {"x-max-priority": -1},
    {"x-dead-letter-routing-key": "k"},
    {"x-single-active-consumer": "yes"},
]


@feature
def queue_argument_validation(env: Env) -> Outcome:
    out = []
    for i, arguments in enumerate(INVALID_ARGUMENTS):
        ch = env.channel()
        out.append(attempt_text(partial(ch.queue_declare, env.q(f"v{i}"), arguments=arguments)))
    return out


@feature
def queue_argument_redeclare_equivalence(env: Env) -> Outcome:
    out = []
    for name, first, second in (
        ("ttl", {"x-message-ttl": 100}, {"x-message-ttl": 200}),
        ("dlx", {"x-dead-letter-exchange": "a"}, {"x-dead-letter-exchange": "b"}),
        ("prio", {"x-max-priority": 5}, {}),
        ("overflow", {"x-overflow": "drop-head"}, {"x-overflow": "reject-publish"}),
        ("sac", {"x-single-active-consumer": True}, {"x-single-active-consumer": False}),
    ):
        ch = env.channel()
        q = env.q(name)
        ch.queue_declare(q, arguments=first)
        out.append([name, attempt(partial(ch.queue_declare, q, arguments=first)),
                    attempt(partial(ch.queue_declare, q, arguments=second))])
    return out


# -- priority queues ----------------------------------------------------------------------------


@feature
def priority_queue_order(env: Env) -> Outcome:
    # [PRIO] higher priority first, FIFO within a priority, no priority = 0, above the maximum
    # = the maximum.
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q, arguments={"x-max-priority": 5})
    for body, priority in (("p1", 1), ("p9", 9), ("p3", 3), ("p0", 0), ("none", None),
                           ("p5", 5), ("p3-second", 3)):
        ch.basic_publish("", q, body.encode(), pika.BasicProperties(priority=priority))
    return [wait_for_ready(ch, q, 7), get_all(ch, q)]


@feature
def priority_queue_requeue_order(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q, arguments={"x-max-priority": 10})
    for body, priority in (("low-1", 1), ("low-2", 1), ("high-1", 8), ("high-2", 8)):
        ch.basic_publish("", q, body.encode(), pika.BasicProperties(priority=priority))
    taken = []
    for _ in range(3):  # high-1, high-2, low-1
        method, _, body = ch.basic_get(q)
        taken.append([body.decode(), method.delivery_tag])
    ch.basic_nack(0, multiple=True, requeue=True)
    out: Outcome = [taken]
    while True:
        method, properties, body = ch.basic_get(q, auto_ack=True)
        if method is None:
            break
        out.append([body.decode(), method.redelivered, properties.priority])
    return out


@feature
def priority_ignored_without_max_priority(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    for body, priority in (("p1", 1), ("p9", 9)):
        ch.basic_publish("", q, body.encode(), pika.BasicProperties(priority=priority))
    return [get_all(ch, q)]


# -- quorum queues -----------------------------------------------------------------------------


@feature
def quorum_queue_declare_preconditions(env: Env) -> Outcome:
    quorum = {"x-queue-type": "quorum"}
    out = []
    for name, flags in (("transient", {}), ("exclusive", {"durable": True, "exclusive": True}),
                        ("autodelete", {"durable": True, "auto_delete": True})):
        ch = env.channel()
        out.append(attempt_text(partial(ch.queue_declare, env.q(name), arguments=quorum,
                                        **flags)))
    ch = env.channel()
    q = env.q("ok")
    ok = ch.queue_declare(q, durable=True, arguments=quorum).method
    out.append([ok.message_count, ok.consumer_count])
    out.append(attempt(lambda: ch.queue_declare(q, durable=True, arguments=quorum)))
    out.append(attempt(lambda: ch.queue_declare(q, durable=True)))
    ch = env.channel()
    out.append(attempt(lambda: ch.queue_declare(q, passive=True)))
    return out


@feature
def unknown_queue_type(env: Env) -> Outcome:
    # RabbitMQ 3.10.8 already answers 406 here (not 541 as first noted in the checklist), with
    # the same text as current releases (rabbit_amqqueue's check_queue_type).
    out = []
    for i, queue_type in enumerate(("bogus", 5)):
        ch = env.channel()
        out.append(attempt_text(partial(ch.queue_declare, env.q(f"t{i}"), durable=True,
                                        arguments={"x-queue-type": queue_type})))
    return out


@feature
def quorum_delivery_limit(env: Env) -> Outcome:
    # [QQ] a message returned more often than x-delivery-limit is dead-lettered (reason
    # delivery_limit); each redelivery carries x-delivery-count.
    ch = env.channel()
    dlx, dlq = dead_letter_target(env, ch)
    q = env.q("qq")
    ch.queue_declare(q, durable=True, arguments={"x-queue-type": "quorum",
                                                 "x-delivery-limit": 1,
                                                 "x-dead-letter-exchange": dlx})
    ch.basic_publish("", q, b"poison")
    deliveries = []
    for _ in range(2):
        wait_for_ready(ch, q, 1)  # quorum queues enqueue and requeue asynchronously
        method, properties, body = ch.basic_get(q)
        deliveries.append([body.decode(), method.redelivered,
                           (properties.headers or {}).get("x-delivery-count")])
        ch.basic_nack(method.delivery_tag, requeue=True)
    return [deliveries, receive(env.channel(), dlq, 1), ready(ch, q)]


# RabbitMQ 4.0 (rabbit_fifo_client:add_delivery_count_header/2): a first basic.get carries no
# x-delivery-count; the rest is as on 3.10 (the dead-letter view leaves out 4.x's
# x-last-death-* headers).
NEWEST_OUTCOMES["quorum_delivery_limit"] = [
    [["poison", False, None], ["poison", True, 1]],
    [["poison", "<prefix>-q-qq", {
        "x-death": [{"count": 1, "exchange": "", "queue": "<prefix>-q-qq",
                     "reason": "delivery_limit", "routing-keys": ["<prefix>-q-qq"]}],
        "x-first-death-exchange": "", "x-first-death-queue": "<prefix>-q-qq",
        "x-first-death-reason": "delivery_limit", "expiration": None}]],
    [0, 0],
]
