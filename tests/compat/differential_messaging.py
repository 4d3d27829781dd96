"""Differential scenarios, part 2: publishing, properties, confirms, transactions, consuming and
acknowledgements. Each returns what a client can observe (successes, reply codes,
bodies, flags, counts). ``test_differential.py`` compares minibroker with the recorded RabbitMQ
outcomes and, when a RabbitMQ is reachable, with RabbitMQ itself."""

from __future__ import annotations

import pika

from tests.compat.differential import (
    Env,
    Outcome,
    attempt,
    attempt_text,
    consume_n,
    get_all,
    ready,
    scenario,
)

# -- publishing and properties --------------------------------------------------------------


@scenario
def properties_round_trip(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    sent = pika.BasicProperties(
        content_type="application/json", content_encoding="gzip",
        headers={"int": 5, "neg": -7, "long": 2**40, "str": "s", "bool": False,
                 "list": [1, "two", [3]], "table": {"k": "v"}, "void": None},
        delivery_mode=2, priority=4, correlation_id="c-1", reply_to="r", expiration="100000",
        message_id="m-1", timestamp=1700000000, type="t", user_id="guest", app_id="a",
        cluster_id="cl",
    )
    ch.basic_publish("", q, b"payload", sent)
    method, props, body = ch.basic_get(q, auto_ack=True)
    return [body.decode(), method.exchange, method.routing_key == q, method.redelivered,
            {name: getattr(props, name) for name in (
                "content_type", "content_encoding", "headers", "delivery_mode", "priority",
                "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
                "user_id", "app_id", "cluster_id")}]


@scenario
def empty_and_large_bodies(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    large = bytes(range(256)) * 2048  # 512 KiB: several body frames
    ch.basic_publish("", q, b"")
    ch.basic_publish("", q, large)
    first = ch.basic_get(q, auto_ack=True)
    second = ch.basic_get(q, auto_ack=True)
    return [first[2] == b"", first[0].message_count, second[2] == large]


@scenario
def user_id_must_match(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"ok", pika.BasicProperties(user_id="guest"))
    ch.basic_publish("", q, b"bad", pika.BasicProperties(user_id="mallory"))
    out = [attempt_text(lambda: ch.queue_declare(q, passive=True))]
    out.append(get_all(env.channel(), q))
    return out


@scenario
def publish_to_default_exchange_unknown_queue(env: Env) -> Outcome:
    ch = env.channel()
    ch.confirm_delivery()
    out = [attempt(lambda: ch.basic_publish("", env.q("nobody"), b"dropped"))]
    out.append(attempt(lambda: ch.queue_declare(env.q("after"))))
    return out


@scenario
def confirms_and_mandatory_return(env: Env) -> Outcome:
    ch = env.channel()
    x, q = env.x("a"), env.q("a")
    ch.exchange_declare(x, "direct")
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    ch.confirm_delivery()
    out: Outcome = [attempt(lambda: ch.basic_publish(x, "k", b"routed", mandatory=True))]
    try:
        ch.basic_publish(x, "other", b"unroutable", mandatory=True)
        out.append("no return")
    except pika.exceptions.UnroutableError as err:
        returned = err.messages[0]
        out.append([returned.method.reply_code, returned.method.reply_text,
                    returned.method.routing_key, returned.body.decode()])
    out.append(attempt(lambda: ch.basic_publish(x, "other", b"not mandatory")))
    out.append(get_all(ch, q))
    return out


@scenario
def confirm_and_tx_do_not_mix(env: Env) -> Outcome:
    ch = env.channel()
    ch.tx_select()
    out = [attempt_text(lambda: ch.confirm_delivery())]
    ch = env.channel()
    ch.confirm_delivery()
    out.append(attempt_text(lambda: ch.tx_select()))
    ch = env.channel()
    out.append(attempt_text(lambda: ch.tx_commit()))
    ch = env.channel()
    out.append(attempt(lambda: ch.tx_rollback()))
    return out


@scenario
def transactions(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    ch.tx_select()
    ch.basic_publish("", q, b"1")
    out: Outcome = [ready(ch, q)]
    ch.tx_commit()
    out.append(ready(ch, q))
    ch.basic_publish("", q, b"2")
    ch.tx_rollback()
    out.append(ready(ch, q))
    method, _, _ = ch.basic_get(q)
    ch.tx_commit()
    ch.basic_ack(method.delivery_tag)
    ch.tx_rollback()  # the ack is undone: still unacked on the channel
    ch.basic_ack(method.delivery_tag)
    ch.tx_commit()
    out.append(ready(ch, q))
    ch.close()
    out.append(ready(env.channel(), q))
    return out


# -- consuming, acks ----------------------------------------------------------------------------


@scenario
def basic_get_counts_and_tags(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    for i in range(3):
        ch.basic_publish("", q, str(i).encode())
    out = []
    for _ in range(4):
        method, _, body = ch.basic_get(q)
        out.append(None if method is None else [body.decode(), method.delivery_tag,
                                                method.message_count, method.redelivered])
    ch.basic_ack(0, multiple=True)
    out.append(ready(ch, q))
    return out


@scenario
def ack_errors(env: Env) -> Outcome:
    q = env.q("a")
    setup = env.channel()
    setup.queue_declare(q)
    for i in range(3):
        setup.basic_publish("", q, str(i).encode())
    out = []
    ch = env.channel()
    ch.basic_ack(99)
    out.append(attempt_text(lambda: ch.queue_declare(q, passive=True)))
    ch = env.channel()
    method, _, _ = ch.basic_get(q)
    ch.basic_ack(method.delivery_tag)
    ch.basic_ack(method.delivery_tag)
    out.append(attempt_text(lambda: ch.queue_declare(q, passive=True)))
    ch = env.channel()
    ch.basic_ack(0)
    out.append(attempt(lambda: ch.queue_declare(q, passive=True)))
    ch = env.channel()
    ch.basic_reject(7)
    out.append(attempt(lambda: ch.queue_declare(q, passive=True)))
    out.append(ready(env.channel(), q))
    return out


@scenario
def nack_and_reject(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    for i in range(4):
        ch.basic_publish("", q, str(i).encode())
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(4)]
    ch.basic_nack(tags[1], multiple=True, requeue=True)  # 0 and 1 back
    ch.basic_reject(tags[2], requeue=False)  # dropped
    ch.basic_nack(tags[3], requeue=True)
    out = []
    while True:
        method, _, body = ch.basic_get(q, auto_ack=True)
        if method is None:
            break
        out.append([body.decode(), method.redelivered])
    return out


@scenario
def recover_requeues(env: Env) -> Outcome:
    ch = env.channel()
    q = env.q("a")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"r")
    ch.basic_get(q)
    ch.basic_recover(requeue=True)
    method, _, _ = ch.basic_get(q, auto_ack=True)
    out: Outcome = [method.redelivered]
    out.append(attempt_text(lambda: ch.basic_recover(requeue=False)))
    return out


@scenario
def qos_prefetch_size_refused(env: Env) -> Outcome:
    ch = env.channel()
    return [attempt_text(lambda: ch.basic_qos(prefetch_size=10, prefetch_count=1))]


@scenario
def channel_flow(env: Env) -> Outcome:
    ch = env.channel()
    out = [ch.flow(True)]
    out.append(attempt_text(lambda: ch.flow(False)))
    return out


@scenario
def per_consumer_and_global_prefetch(env: Env) -> Outcome:
    out = []
    for global_qos in (False, True):
        q = env.q(f"g{global_qos}")
        setup = env.channel()
        setup.queue_declare(q)
        for i in range(20):
            setup.basic_publish("", q, str(i).encode())
        ch = env.channel()
        ch.basic_qos(prefetch_count=3, global_qos=global_qos)
        ch.basic_consume(q, lambda *args: None)
        ch.basic_consume(q, lambda *args: None)
        out.append([global_qos, ready(setup, q)])  # in flight = 20 - ready
    return out


@scenario
def redelivery_after_channel_close(env: Env) -> Outcome:
    q = env.q("a")
    setup = env.channel()
    setup.queue_declare(q)
    for i in range(3):
        setup.basic_publish("", q, str(i).encode())
    ch = env.channel()
    ch.basic_qos(prefetch_count=2)
    first = consume_n(ch, q, 2)
    ch.close()
    second = env.channel()
    return [first, get_all(second, q)]


@scenario
def consume_missing_queue_and_cancel_unknown(env: Env) -> Outcome:
    ch = env.channel()
    out = [attempt(lambda: ch.basic_cancel("never-seen-tag"))]
    out.append(attempt(lambda: ch.basic_consume(env.q("missing"), lambda *args: None)))
    return out


@scenario
def exclusive_consumer(env: Env) -> Outcome:
    q = env.q("a")
    ch = env.channel()
    ch.queue_declare(q)
    ch.basic_consume(q, lambda *args: None, exclusive=True)
    out = []
    other = env.channel()
    out.append(attempt_text(lambda: other.basic_consume(q, lambda *args: None)))
    q2 = env.q("b")
    ch.queue_declare(q2)
    ch.basic_consume(q2, lambda *args: None)
    other = env.channel()
    out.append(attempt(lambda: other.basic_consume(q2, lambda *args: None, exclusive=True)))
    return out


@scenario
def round_robin_between_consumers(env: Env) -> Outcome:
    q = env.q("a")
    setup = env.channel()
    setup.queue_declare(q)
    ch = env.channel()
    seen: dict[str, list[str]] = {"a": [], "b": []}
    ch.basic_consume(q, lambda c, m, p, b: seen["a"].append(b.decode()), auto_ack=True,
                     consumer_tag="a")
    ch.basic_consume(q, lambda c, m, p, b: seen["b"].append(b.decode()), auto_ack=True,
                     consumer_tag="b")
    for i in range(6):
        setup.basic_publish("", q, str(i).encode())
    connection = ch.connection
    for _ in range(200):
        if len(seen["a"]) + len(seen["b"]) == 6:
            break
        connection.process_data_events(time_limit=0.05)
    return [sorted(seen["a"] + seen["b"]), len(seen["a"]), len(seen["b"])]


@scenario
def broker_cancel_on_queue_delete(env: Env) -> Outcome:
    q = env.q("a")
    ch = env.channel()
    ch.queue_declare(q)
    cancelled: list[str] = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    ch.basic_consume(q, lambda *args: None, consumer_tag="watched")
    env.channel().queue_delete(q)
    for _ in range(200):
        if cancelled:
            break
        ch.connection.process_data_events(time_limit=0.05)
    out: Outcome = [cancelled]
    out.append(attempt(lambda: ch.basic_cancel("watched")))
    out.append(ch.is_open)
    return out


@scenario
def channel_reuse_after_error(env: Env) -> Outcome:
    connection = env.connect()
    ch = connection.channel()
    number = ch.channel_number
    out = [attempt(lambda: ch.queue_declare(env.q("missing"), passive=True))]
    again = connection.channel(channel_number=number)
    q = env.q("a")
    out.append(attempt(lambda: again.queue_declare(q)))
    out.append(connection.is_open)
    return out


@scenario
def bad_credentials_and_vhost(env: Env) -> Outcome:
    out = []
    base = pika.URLParameters(env.url)
    for credentials, vhost in ((pika.PlainCredentials("guest", "wrong"), "/"),
                               (base.credentials, "mbdiff-no-such-vhost")):
        params = pika.ConnectionParameters(
            host=base.host, port=base.port, credentials=credentials, virtual_host=vhost,
            socket_timeout=10, connection_attempts=1,
        )
        try:
            pika.BlockingConnection(params).close()
            out.append("connected")
        except pika.exceptions.AMQPConnectionError as err:
            out.append(type(err).__name__)
    return out
