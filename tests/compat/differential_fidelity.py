"""Differential scenarios for answers found to differ from RabbitMQ's: exclusive-queue locks,
the ``alternate-exchange`` argument's type, inequivalent-argument texts, and when a
transaction's publishes are routed. Registered with ``differential.scenario``; the rules of
``differential.py`` hold (unique names, cleanup, bounded calls)."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from functools import partial
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from tests.compat.differential import Env, Outcome, attempt_text, get_all, ready, scenario
from tests.compat.differential_features import wait_until


def _noop(*args: Any) -> None:
    pass


# -- exclusive queues -----------------------------------------------------------------------------


@scenario
def exclusive_queue_same_connection(env: Env) -> Outcome:
    # RabbitMQ checks the exclusive owner strictly on an active declare (405 for a different
    # exclusive flag, from the owning connection too) and loosely for every other use.
    owner = env.connect()
    q, shared, x = env.q("excl"), env.q("shared"), env.x("a")
    ch = owner.channel()
    ch.queue_declare(q, exclusive=True)
    ch.queue_declare(shared)
    ch.exchange_declare(x, "direct")
    ch.queue_bind(q, x, "k")
    consumer = owner.channel()
    actions: list[tuple[str, Callable[[BlockingChannel], object]]] = [
        ("redeclare-not-exclusive", lambda c: c.queue_declare(q)),
        ("redeclare-not-exclusive-durable", lambda c: c.queue_declare(q, durable=True)),
        ("redeclare-exclusive", lambda c: c.queue_declare(q, exclusive=True)),
        ("redeclare-exclusive-auto-delete",
         lambda c: c.queue_declare(q, exclusive=True, auto_delete=True)),
        ("redeclare-exclusive-argument",
         lambda c: c.queue_declare(q, exclusive=True, arguments={"x-max-length": 3})),
        ("passive-not-exclusive", lambda c: c.queue_declare(q, passive=True)),
        ("passive-exclusive", lambda c: c.queue_declare(q, passive=True, exclusive=True)),
        ("shared-redeclare-exclusive", lambda c: c.queue_declare(shared, exclusive=True)),
        ("consume-exclusive", lambda c: consumer.basic_consume(q, _noop, exclusive=True)),
        ("consume-beside-exclusive", lambda c: c.basic_consume(q, _noop)),
        ("consume-exclusive-again", lambda c: c.basic_consume(q, _noop, exclusive=True)),
        ("get", lambda c: c.basic_get(q)),
        ("purge", lambda c: c.queue_purge(q)),
        ("unbind", lambda c: c.queue_unbind(q, x, "k")),
        ("delete", lambda c: c.queue_delete(q)),
    ]
    out = []
    for name, action in actions:
        out.append([name, attempt_text(partial(action, owner.channel()))])
    return out


@scenario
def exclusive_queue_bindings_other_connection(env: Env) -> Outcome:
    q, x = env.q("excl"), env.x("a")
    owner = env.channel()
    owner.queue_declare(q, exclusive=True)
    owner.exchange_declare(x, "direct")
    owner.queue_bind(q, x, "k")
    other = env.connect()
    actions: list[tuple[str, Callable[[BlockingChannel], object]]] = [
        ("bind", lambda c: c.queue_bind(q, x, "k2")),
        ("unbind-existing", lambda c: c.queue_unbind(q, x, "k")),
        # A binding that does not exist is removed without asking for exclusive access.
        ("unbind-missing-binding", lambda c: c.queue_unbind(q, x, "never")),
        ("unbind-missing-exchange", lambda c: c.queue_unbind(q, env.x("missing"), "k")),
        ("bind-missing-exchange", lambda c: c.queue_bind(q, env.x("missing"), "k")),
        # Exclusivity comes before equivalence.
        ("redeclare-inequivalent", lambda c: c.queue_declare(q, exclusive=True, durable=True)),
    ]
    return [[name, attempt_text(partial(action, other.channel()))] for name, action in actions]


# -- argument types and equivalence texts -------------------------------------------------------


@scenario
def alternate_exchange_argument_types(env: Env) -> Outcome:
    conn = env.connect()
    values: list[Any] = [5, 2**40, True, b"bytes", ["a"], {"a": 1}, None,
                         decimal.Decimal("1.5"), ""]
    out = []
    for i, value in enumerate(values):
        out.append(attempt_text(partial(
            conn.channel().exchange_declare, env.x(f"t{i}"), "direct",
            arguments={"alternate-exchange": value})))
    x = env.x("redeclare")
    conn.channel().exchange_declare(x, "direct", arguments={"alternate-exchange": "a"})
    for arguments in ({"alternate-exchange": "b"}, {"alternate-exchange": 5}, {}):
        out.append(attempt_text(partial(
            conn.channel().exchange_declare, x, "direct", arguments=arguments)))
    return out


@scenario
def queue_inequivalent_argument_texts(env: Env) -> Outcome:
    conn = env.connect()
    q = env.q("a")
    base: dict[str, Any] = {"x-max-length": 10, "x-dead-letter-exchange": "a",
                            "x-single-active-consumer": True}
    conn.channel().queue_declare(q, arguments=base)
    changes: list[dict[str, Any]] = [
        {"x-max-length": 11}, {"x-max-length": "10"}, {"x-max-length": True},
        {"x-dead-letter-exchange": "b"}, {"x-single-active-consumer": False},
        {"x-message-ttl": 5}, {"x-expires": 2**40}, {"x-queue-type": "classic"},
        {"x-queue-type": "quorum"}, {"x-unknown-argument": "ignored"},
    ]
    out = []
    for change in changes:
        out.append(attempt_text(partial(
            conn.channel().queue_declare, q, arguments={**base, **change})))
    ch = conn.channel()
    out.append(attempt_text(lambda: ch.queue_declare(q, arguments={
        "x-dead-letter-exchange": "a", "x-single-active-consumer": True})))
    return out


# -- transactions ---------------------------------------------------------------------------------


@scenario
def transaction_routes_at_publish(env: Env) -> Outcome:
    # RabbitMQ routes a transactional publish when it is published and enqueues it at commit.
    conn = env.connect()
    admin = conn.channel()
    x, y = env.x("direct"), env.x("fanout")
    bound_late, declared_late, deleted, kept = (env.q(tag) for tag in ("a", "b", "c", "d"))
    admin.exchange_declare(x, "direct")
    admin.exchange_declare(y, "fanout")
    for queue in (bound_late, deleted, kept):
        admin.queue_declare(queue)
    admin.queue_bind(deleted, x, "kc")
    admin.queue_bind(kept, y)
    tx = conn.channel()
    returned: list[str] = []
    tx.add_on_return_callback(lambda ch, method, props, body: returned.append(body.decode()))
    tx.tx_select()
    tx.basic_publish(x, "ka", b"bound-after-publish")
    admin.queue_bind(bound_late, x, "ka")
    tx.basic_publish("", declared_late, b"queue-declared-after-publish")
    admin.queue_declare(declared_late)
    tx.basic_publish(x, "kc", b"queue-deleted-before-commit", mandatory=True)
    admin.queue_delete(deleted)
    tx.basic_publish(x, "nowhere", b"unroutable", mandatory=True)
    tx.basic_publish(y, "", b"exchange-deleted-before-commit")
    admin.exchange_delete(y)
    tx.queue_declare(kept, passive=True)  # a round trip: nothing returned before the commit
    conn.process_data_events(time_limit=0)
    before_commit = list(returned)
    tx.tx_commit()
    tx.queue_declare(kept, passive=True)  # a round trip: every return of the commit is in
    conn.process_data_events(time_limit=0)
    return [before_commit, sorted(returned),
            [get_all(admin, queue) for queue in (bound_late, declared_late, kept)]]


@scenario
def transaction_settlement_order(env: Env) -> Outcome:
    # At commit RabbitMQ enqueues the publishes first, then settles in the order settled.
    conn = env.connect()
    admin = conn.channel()
    dlq, src = env.q("dlq"), env.q("src")
    admin.queue_declare(dlq)
    admin.queue_declare(src, arguments={"x-dead-letter-exchange": "",
                                        "x-dead-letter-routing-key": dlq})
    for body in (b"m1", b"m2", b"m3", b"m4"):
        admin.basic_publish("", src, body)
    tx = conn.channel()
    tx.tx_select()
    tags = [tx.basic_get(src)[0].delivery_tag for _ in range(4)]
    tx.basic_reject(tags[0], requeue=False)
    tx.basic_publish("", dlq, b"p1")
    tx.basic_ack(tags[1])
    tx.basic_reject(tags[3], requeue=False)
    tx.basic_reject(tags[2], requeue=False)
    tx.basic_publish("", dlq, b"p2")
    before_commit = ready(admin, dlq)
    tx.tx_commit()
    # Dead-lettering is asynchronous in RabbitMQ: wait (bounded) for all five.
    wait_until(admin, lambda: ready(admin, dlq)[0] == 5)
    return [before_commit, get_all(admin, dlq)]
