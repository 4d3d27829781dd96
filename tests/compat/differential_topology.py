"""Differential scenarios, part 1: exchanges, routing and queues. Each returns what a client
can observe (successes, reply codes, bodies, flags, counts). ``test_differential.py`` compares
minibroker with the recorded RabbitMQ outcomes and, when a RabbitMQ is reachable, with RabbitMQ
itself."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pika
from pika.adapters.blocking_connection import BlockingChannel

from tests.compat.differential import (
    NEWEST_OUTCOMES,
    Env,
    Outcome,
    attempt,
    attempt_text,
    consume_n,
    get_all,
    ready,
    scenario,
)

# -- exchanges ----------------------------------------------------------------------------------


@scenario
def exchange_declare_redeclare_and_inequivalent(env: Env) -> Outcome:
    ch = env.channel()
    x = env.x("a")
    out = [attempt(lambda: ch.exchange_declare(x, "direct"))]
    out.append(attempt(lambda: ch.exchange_declare(x, "direct")))
    out.append(attempt_text(lambda: ch.exchange_declare(x, "fanout")))
    return out


@scenario
def exchange_durable_mismatch(env: Env) -> Outcome:
    ch = env.channel()
    x = env.x("a")
    ch.exchange_declare(x, "topic", durable=False)
    return [attempt_text(lambda: ch.exchange_declare(x, "topic", durable=True))]


@scenario
def exchange_unknown_type(env: Env) -> Outcome:
    ch = env.channel()
    return [attempt_text(lambda: ch.exchange_declare(env.x("a"), "no-such-type"))]


# RabbitMQ 3.10 closes the connection with 503 COMMAND_INVALID; since 3.13.3
# (rabbit_exchange:check_type/1, commit b6aacb7, PR #11214) it is a 406 channel error.
NEWEST_OUTCOMES["exchange_unknown_type"] = [
    ["channel", 406, "PRECONDITION_FAILED - unknown exchange type 'no-such-type'"],
]


@scenario
def exchange_passive(env: Env) -> Outcome:
    ch = env.channel()
    x = env.x("a")
    ch.exchange_declare(x, "fanout")
    out = [attempt(lambda: ch.exchange_declare(x, "direct", passive=True))]
    out.append(attempt_text(lambda: ch.exchange_declare(env.x("missing"), passive=True)))
    return out


@scenario
def exchange_reserved_names(env: Env) -> Outcome:
    out = []
    ch = env.channel()
    out.append(attempt(lambda: ch.exchange_declare("amq.direct", "direct", durable=True)))
    out.append(attempt(lambda: ch.exchange_declare("amq.topic", passive=True)))
    out.append(attempt_text(lambda: ch.exchange_declare("amq.mbdiff-new", "direct")))
    ch = env.channel()
    out.append(attempt(lambda: ch.exchange_declare("amq.default", passive=True)))
    ch = env.channel()
    out.append(attempt(lambda: ch.exchange_delete("amq.fanout")))
    return out


@scenario
def exchange_delete_missing_and_if_unused(env: Env) -> Outcome:
    ch = env.channel()
    x, q = env.x("a"), env.q("a")
    out = [attempt(lambda: ch.exchange_delete(env.x("missing")))]
    ch.exchange_declare(x, "direct")
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    out.append(attempt(lambda: ch.exchange_delete(x, if_unused=True)))
    ch = env.channel()
    out.append(attempt(lambda: ch.exchange_delete(x)))
    out.append(attempt(lambda: ch.exchange_declare(x, passive=True)))
    return out


@scenario
def default_exchange_operations_refused(env: Env) -> Outcome:
    out = []
    q = env.q("a")
    ch = env.channel()
    ch.queue_declare(q)
    out.append(attempt(lambda: ch.queue_bind(q, "", q)))
    ch = env.channel()
    out.append(attempt(lambda: ch.exchange_delete("")))
    return out


@scenario
def internal_exchange_publish_refused(env: Env) -> Outcome:
    ch = env.channel()
    x = env.x("internal")
    ch.exchange_declare(x, "fanout", internal=True)
    ch.basic_publish(x, "", b"x")
    return [attempt_text(lambda: ch.queue_declare(env.q("after")))]


@scenario
def publish_to_missing_exchange(env: Env) -> Outcome:
    ch = env.channel()
    missing = env.x("missing")
    ch.basic_publish(missing, "k", b"x")
    return [attempt(lambda: ch.queue_declare(env.q("after")))]


@scenario
def auto_delete_exchange(env: Env) -> Outcome:
    ch = env.channel()
    x, q = env.x("ad"), env.q("a")
    never_bound = env.x("never")
    ch.exchange_declare(x, "direct", auto_delete=True)
    ch.exchange_declare(never_bound, "direct", auto_delete=True)
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    ch.queue_unbind(q, x, "k")
    out = [attempt(lambda: ch.exchange_declare(never_bound, passive=True))]
    out.append(attempt(lambda: ch.exchange_declare(x, passive=True)))
    return out


@scenario
def exchange_to_exchange_bindings(env: Env) -> Outcome:
    ch = env.channel()
    source, middle, q = env.x("src"), env.x("mid"), env.q("a")
    ch.exchange_declare(source, "topic")
    ch.exchange_declare(middle, "fanout")
    ch.exchange_bind(middle, source, "a.*")
    ch.exchange_bind(source, middle, "")  # a cycle must terminate
    ch.queue_declare(q)
    ch.queue_bind(q, middle)
    ch.queue_bind(q, source, "#")  # two paths: still one copy
    for key in ("a.b", "c.d"):
        ch.basic_publish(source, key, key.encode())
    out: Outcome = [get_all(ch, q)]
    ch.exchange_unbind(middle, source, "a.*")
    ch.queue_unbind(q, source, "#")
    ch.basic_publish(source, "a.b", b"after unbind")
    out.append(get_all(ch, q))
    ch2 = env.channel()
    out.append(attempt(lambda: ch2.exchange_bind(middle, env.x("missing"))))
    return out


# -- routing ------------------------------------------------------------------------------------


@scenario
def direct_routing(env: Env) -> Outcome:
    ch = env.channel()
    x, q1, q2 = env.x("d"), env.q("1"), env.q("2")
    ch.exchange_declare(x, "direct")
    for q in (q1, q2):
        ch.queue_declare(q)
    ch.queue_bind(q1, x, "red")
    ch.queue_bind(q2, x, "red")
    ch.queue_bind(q2, x, "blue")
    ch.queue_bind(q2, x, "blue")  # rebinding is a no-op
    for key in ("red", "blue", "green", "Red"):
        ch.basic_publish(x, key, key.encode())
    return [get_all(ch, q1), get_all(ch, q2)]


@scenario
def fanout_routing(env: Env) -> Outcome:
    ch = env.channel()
    x = env.x("f")
    queues = [env.q(str(i)) for i in range(3)]
    ch.exchange_declare(x, "fanout")
    for i, q in enumerate(queues):
        ch.queue_declare(q)
        ch.queue_bind(q, x, f"ignored-{i}")
    ch.basic_publish(x, "whatever", b"all")
    return [get_all(ch, q) for q in queues]


TOPIC_KEYS = ("", "a", "a.b", "a.b.b", "a..b", "b", "a.x.y.b", ".", "a.")
TOPIC_PATTERNS = ("#", "#.#", "*", "a.*", "*.*", "a.#", "#.b", "a.#.b", "a.*.#", "a..b", "",
                  "a.b")


@scenario
def topic_routing_table(env: Env) -> Outcome:
    ch = env.channel()
    x = env.x("t")
    ch.exchange_declare(x, "topic")
    queues = []
    for i, pattern in enumerate(TOPIC_PATTERNS):
        q = env.q(f"p{i}")
        ch.queue_declare(q)
        ch.queue_bind(q, x, pattern)
        queues.append(q)
    for key in TOPIC_KEYS:
        ch.basic_publish(x, key, f"<{key}>".encode())
    return [[pattern, get_all(ch, q)] for pattern, q in zip(TOPIC_PATTERNS, queues, strict=True)]


@scenario
def topic_one_copy_per_queue(env: Env) -> Outcome:
    ch = env.channel()
    x, q = env.x("t"), env.q("a")
    ch.exchange_declare(x, "topic")
    ch.queue_declare(q)
    for pattern in ("a.*", "*.b", "#", "a.b"):
        ch.queue_bind(q, x, pattern)
    ch.basic_publish(x, "a.b", b"once")
    return [get_all(ch, q)]


@scenario
def headers_routing_modes(env: Env) -> Outcome:
    ch = env.channel()
    x = env.x("h")
    ch.exchange_declare(x, "headers")
    bindings = {
        "all": {"x-match": "all", "a": 1, "b": 2},
        "any": {"x-match": "any", "a": 1, "b": 2},
        "allx": {"x-match": "all-with-x", "a": 1, "x-k": "v"},
        "anyx": {"x-match": "any-with-x", "a": 1, "x-k": "v"},
        "default": {"a": 1},
        "empty_all": {},
        "empty_any": {"x-match": "any"},
        "void": {"a": None},
    }
    queues = {}
    for tag, args in bindings.items():
        q = env.q(tag)
        ch.queue_declare(q)
        ch.queue_bind(q, x, "", arguments=args)
        queues[tag] = q
    messages = {
        "full": {"a": 1, "b": 2, "x-k": "v"},
        "a-only": {"a": 1},
        "x-only": {"x-k": "v"},
        "a-str": {"a": "1"},
        "a-bool": {"a": True},
        "none": None,
    }
    for body, headers in messages.items():
        ch.basic_publish(x, "", body.encode(), pika.BasicProperties(headers=headers))
    return [[tag, get_all(ch, q)] for tag, q in queues.items()]


@scenario
def headers_invalid_x_match(env: Env) -> Outcome:
    ch = env.channel()
    x, q = env.x("h"), env.q("a")
    ch.exchange_declare(x, "headers")
    ch.queue_declare(q)
    return [attempt_text(lambda: ch.queue_bind(q, x, "", arguments={"x-match": "some"}))]


# -- queues -------------------------------------------------------------------------------------


@scenario
def queue_declare_counts(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ok = ch.queue_declare(q).method
    out: Outcome = [[ok.queue == q, ok.message_count, ok.consumer_count]]
    for i in range(3):
        ch.basic_publish("", q, str(i).encode())
    consumer = env.channel()
    consumer.basic_qos(prefetch_count=2)
    consume_n(consumer, q, 2)
    out.append(ready(ch, q))  # ready only: unacked are not counted
    return out


@scenario
def queue_inequivalent_redeclare(env: Env) -> Outcome:
    out = []
    q = env.q("a")
    ch = env.channel()
    ch.queue_declare(q, arguments={"x-max-length": 10, "x-unknown-arg": "kept"})
    out.append(attempt(lambda: ch.queue_declare(q, arguments={"x-max-length": 10})))
    out.append(attempt_text(lambda: ch.queue_declare(q, durable=True,
                                                     arguments={"x-max-length": 10})))
    ch = env.channel()
    out.append(attempt_text(lambda: ch.queue_declare(q, arguments={"x-max-length": 11})))
    ch = env.channel()
    out.append(attempt(lambda: ch.queue_declare(q, passive=True, durable=True)))
    return out


@scenario
def queue_passive_and_reserved(env: Env) -> Outcome:
    out = []
    ch = env.channel()
    out.append(attempt_text(lambda: ch.queue_declare(env.q("missing"), passive=True)))
    ch = env.channel()
    out.append(attempt_text(lambda: ch.queue_declare("amq.mbdiff-reserved")))
    ch = env.channel()
    out.append(attempt_text(lambda: ch.queue_declare("", passive=True)))
    return out


@scenario
def server_named_queue_and_last_queue(env: Env) -> Outcome:
    ch = env.channel()
    x = env.x("a")
    ch.exchange_declare(x, "fanout")
    name = ch.queue_declare("", exclusive=True).method.queue
    env.queues.add(name)
    ch.queue_bind("", x)  # "" = the last queue declared on this channel
    ch.basic_publish(x, "", b"to the generated queue")
    out: Outcome = [name.startswith("amq.gen-"), len(name), get_all(ch, "")]
    other = env.channel()
    out.append(attempt_text(lambda: other.queue_bind("", x)))
    return out


@scenario
def queue_delete_rules(env: Env) -> Outcome:
    out = []
    ch = env.channel()
    out.append(ch.queue_delete(env.q("missing")).method.message_count)
    q = env.q("a")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"1")
    ch.basic_publish("", q, b"2")
    out.append(attempt_text(lambda: ch.queue_delete(q, if_empty=True)))
    ch = env.channel()
    ch.basic_consume(q, lambda *args: None)
    out.append(attempt(lambda: ch.queue_delete(q, if_unused=True)))
    ch = env.channel()
    out.append(ch.queue_delete(q).method.message_count)
    return out


@scenario
def purge_leaves_unacked(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    for i in range(3):
        ch.basic_publish("", q, str(i).encode())
    method, _, _ = ch.basic_get(q)
    out: Outcome = [ch.queue_purge(q).method.message_count]
    ch.basic_nack(method.delivery_tag, requeue=True)
    out.append(get_all(ch, q))
    other = env.channel()
    out.append(attempt(lambda: other.queue_purge(env.q("missing"))))
    return out


@scenario
def bind_errors_and_idempotent_unbind(env: Env) -> Outcome:
    out = []
    q, x = env.q("a"), env.x("a")
    ch = env.channel()
    ch.queue_declare(q)
    ch.exchange_declare(x, "direct")
    out.append(attempt_text(lambda: ch.queue_bind(q, env.x("missing"), "k")))
    ch = env.channel()
    out.append(attempt(lambda: ch.queue_bind(env.q("missing"), x, "k")))
    ch = env.channel()
    out.append(attempt(lambda: ch.queue_unbind(q, x, "never-bound")))
    out.append(attempt(lambda: ch.queue_unbind(env.q("missing"), env.x("missing"), "k")))
    return out


@scenario
def exclusive_queue_other_connection(env: Env) -> Outcome:
    q = env.q("excl")
    owner = env.connect()
    owner.channel().queue_declare(q, exclusive=True)
    out = []
    actions: dict[str, Callable[[BlockingChannel], object]] = {
        "declare": lambda ch: ch.queue_declare(q, exclusive=True),
        "passive": lambda ch: ch.queue_declare(q, passive=True),
        "get": lambda ch: ch.basic_get(q),
        "purge": lambda ch: ch.queue_purge(q),
        "delete": lambda ch: ch.queue_delete(q),
        "consume": lambda ch: ch.basic_consume(q, lambda *args: None),
    }
    for op, action in actions.items():
        other = env.channel()
        out.append([op, attempt(partial(action, other))])
    owner.close()
    check = env.channel()
    out.append(attempt(lambda: check.queue_declare(q, passive=True)))
    return out


@scenario
def auto_delete_queue(env: Env) -> Outcome:
    ch = env.channel()
    q, never = env.q("ad"), env.q("never")
    ch.queue_declare(q, auto_delete=True)
    ch.queue_declare(never, auto_delete=True)
    ch.basic_publish("", never, b"x")
    ch.basic_get(never, auto_ack=True)  # basic.get does not count as a consumer
    tag1 = ch.basic_consume(q, lambda *args: None)
    tag2 = ch.basic_consume(q, lambda *args: None)
    ch.basic_cancel(tag1)
    out: Outcome = [ready(ch, q)]
    ch.basic_cancel(tag2)
    check = env.channel()
    out.append(attempt(lambda: check.queue_declare(q, passive=True)))
    check = env.channel()
    out.append(attempt(lambda: check.queue_declare(never, passive=True)))
    return out
