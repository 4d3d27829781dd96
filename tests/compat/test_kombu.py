"""kombu over py-amqp against minibroker (py-amqp picks AMQPLAIN when the server offers it)."""

from __future__ import annotations

import uuid

import amqp
import kombu
import pytest

from tests.compat.conftest import TIMEOUT, ServerThread


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def connect(broker: ServerThread, **kwargs: object) -> kombu.Connection:
    return kombu.Connection(
        f"pyamqp://guest:guest@127.0.0.1:{broker.port}//", connect_timeout=TIMEOUT, **kwargs
    )


def test_py_amqp_logs_in_with_amqplain_and_no_heartbeat(broker: ServerThread) -> None:
    connection = amqp.Connection(
        f"127.0.0.1:{broker.port}", connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
        write_timeout=TIMEOUT,
    )
    connection.connect()
    try:
        assert connection.server_properties["product"] == "minibroker"
        assert connection.heartbeat == 0  # py-amqp's default: disabled despite our proposal
        assert connection.channel_max == 2047 and connection.frame_max == 131072
    finally:
        connection.close()


def test_py_amqp_immediate_is_540_with_rabbitmq_text(broker: ServerThread) -> None:
    connection = amqp.Connection(f"127.0.0.1:{broker.port}", connect_timeout=TIMEOUT,
                                 read_timeout=TIMEOUT)
    connection.connect()
    try:
        channel = connection.channel()
        with pytest.raises(amqp.exceptions.AMQPNotImplementedError) as info:
            channel.basic_publish(amqp.Message(b"x"), routing_key="q", immediate=True)
            connection.drain_events(timeout=TIMEOUT)
        assert info.value.reply_code == 540
        assert info.value.reply_text == "NOT_IMPLEMENTED - immediate=true"
        assert info.value.method_name == "Basic.publish"
    finally:
        connection.collect()


def test_producer_consumer_round_trip(broker: ServerThread) -> None:
    exchange = kombu.Exchange(name("x"), type="direct")
    queue = kombu.Queue(name("q"), exchange, routing_key="work")
    received: list[tuple[object, str | None]] = []
    with connect(broker) as connection:
        producer = kombu.Producer(connection)
        producer.publish({"job": 1, "args": [1, 2]}, exchange=exchange, routing_key="work",
                         declare=[queue], serializer="json", headers={"h": "v"})

        def on_message(body: object, message: kombu.Message) -> None:
            received.append((body, message.headers.get("h")))
            message.ack()

        with kombu.Consumer(connection, [queue], callbacks=[on_message]):
            connection.drain_events(timeout=TIMEOUT)
    assert received == [({"job": 1, "args": [1, 2]}, "v")]


def test_simple_queue_put_get_and_requeue(broker: ServerThread) -> None:
    with connect(broker) as connection:
        simple = connection.SimpleQueue(name("sq"))
        simple.put({"hello": "world"})
        simple.put("second")
        message = simple.get(timeout=TIMEOUT)
        assert message.payload == {"hello": "world"}
        message.requeue()
        # The consumer may already hold "second" (no prefetch limit), as with RabbitMQ.
        got = [simple.get(timeout=TIMEOUT) for _ in range(2)]
        for each in got:
            each.ack()
        by_payload = {str(each.payload): each.delivery_info["redelivered"] for each in got}
        assert by_payload == {"{'hello': 'world'}": True, "second": False}
        with pytest.raises(simple.Empty):
            simple.get(block=False)
        simple.clear()
        simple.close()


def test_confirm_publish_transport_option(broker: ServerThread) -> None:
    queue = kombu.Queue(name("q"))
    with connect(broker, transport_options={"confirm_publish": True}) as connection:
        producer = kombu.Producer(connection)
        producer.publish("confirmed", routing_key=queue.name, declare=[queue])
        simple = connection.SimpleQueue(queue)
        assert simple.get(timeout=TIMEOUT).payload == "confirmed"
        simple.close()


def test_ensure_reconnects_after_channel_error(broker: ServerThread) -> None:
    with connect(broker) as connection:
        channel = connection.channel()
        with pytest.raises(amqp.exceptions.NotFound):
            channel.queue_declare(name("missing"), passive=True)
        # kombu opens a fresh channel and carries on (checklist: old channel state is gone).
        fresh = connection.channel()
        declared = fresh.queue_declare(name("q"), auto_delete=True)
        assert declared.message_count == 0



def test_py_amqp_reused_consumer_tag_is_530(broker: ServerThread) -> None:
    connection = amqp.Connection(f"127.0.0.1:{broker.port}", connect_timeout=TIMEOUT,
                                 read_timeout=TIMEOUT)
    connection.connect()
    try:
        channel = connection.channel()
        queue, _, _ = channel.queue_declare(name("q"), auto_delete=True)
        channel.basic_consume(queue, consumer_tag="t1", callback=lambda message: None)
        with pytest.raises(amqp.exceptions.NotAllowed) as info:
            channel.basic_consume(queue, consumer_tag="t1", callback=lambda message: None)
        assert info.value.reply_code == 530
        assert info.value.reply_text == "NOT_ALLOWED - attempt to reuse consumer tag 't1'"
    finally:
        connection.collect()
