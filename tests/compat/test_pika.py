"""pika (BlockingConnection and the asyncio adapter) against minibroker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pika
import pytest
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import (
    ChannelClosedByBroker,
    ConnectionClosedByBroker,
    ProbableAccessDeniedError,
    ProbableAuthenticationError,
    UnroutableError,
)

from tests.compat.conftest import TIMEOUT, ServerThread


def params(broker: ServerThread, **kwargs: object) -> pika.ConnectionParameters:
    options: dict[str, object] = {
        "host": "127.0.0.1", "port": broker.port, "socket_timeout": TIMEOUT,
        "blocked_connection_timeout": TIMEOUT, "connection_attempts": 1,
        "stack_timeout": TIMEOUT,
    }
    options.update(kwargs)
    return pika.ConnectionParameters(**options)


@pytest.fixture
def connection(broker: ServerThread) -> Iterator[pika.BlockingConnection]:
    conn = pika.BlockingConnection(params(broker))
    try:
        yield conn
    finally:
        if conn.is_open:
            conn.close()


@pytest.fixture
def channel(connection: pika.BlockingConnection) -> BlockingChannel:
    return connection.channel()


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def drain(
    channel: BlockingChannel, queue: str, count: int, *, ack: bool = False, **kwargs: object
) -> list:
    """Consume ``count`` messages (or fail after TIMEOUT) and return (method, props, body)."""
    got = []
    for method, properties, body in channel.consume(queue, inactivity_timeout=TIMEOUT, **kwargs):
        assert method is not None, f"timed out after {len(got)} of {count} messages"
        got.append((method, properties, body))
        if ack:
            channel.basic_ack(method.delivery_tag)
        if len(got) == count:
            break
    return got


def test_server_properties_advertise_what_pika_needs(connection: pika.BlockingConnection) -> None:
    props = connection._impl.server_properties
    assert props["product"] == "minibroker"
    caps = props["capabilities"]
    for cap in ("basic.nack", "consumer_cancel_notify", "exchange_exchange_bindings",
                "publisher_confirms", "authentication_failure_close", "per_consumer_qos"):
        assert caps[cap] is True
    assert caps["direct_reply_to"] is True and caps["consumer_priorities"] is True


def test_declare_bind_publish_consume_with_acks_and_prefetch(channel: BlockingChannel) -> None:
    queue, exchange = name("q"), name("x")
    channel.exchange_declare(exchange, "direct")
    channel.queue_declare(queue)
    channel.queue_bind(queue, exchange, "rk")
    for i in range(5):
        channel.basic_publish(exchange, "rk", f"m{i}".encode())
    channel.basic_qos(prefetch_count=2)
    got = []
    for method, _props, body in channel.consume(queue, inactivity_timeout=TIMEOUT):
        assert method is not None
        got.append(body)
        channel.basic_ack(method.delivery_tag)
        if len(got) == 5:
            break
    channel.cancel()
    assert got == [f"m{i}".encode() for i in range(5)]
    assert channel.queue_declare(queue, passive=True).method.message_count == 0


def test_prefetch_limits_unacked_deliveries(
    broker: ServerThread, channel: BlockingChannel
) -> None:
    queue = name("q")
    channel.queue_declare(queue)
    for i in range(5):
        channel.basic_publish("", queue, str(i).encode())
    channel.basic_qos(prefetch_count=2)
    first = drain(channel, queue, 2)
    # Two are in flight and unacked: the rest stay ready in the queue.
    channel.connection.process_data_events(time_limit=0)
    ok = channel.queue_declare(queue, passive=True).method
    assert (ok.message_count, ok.consumer_count) == (3, 1)
    channel.basic_ack(first[-1][0].delivery_tag, multiple=True)
    rest = drain(channel, queue, 3, ack=True)
    assert [body for _, _, body in first + rest] == [b"0", b"1", b"2", b"3", b"4"]
    channel.cancel()


def test_nack_requeue_sets_redelivered(channel: BlockingChannel) -> None:
    queue = name("q")
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"again")
    method, _, body = drain(channel, queue, 1)[0]
    assert (body, method.redelivered) == (b"again", False)
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = drain(channel, queue, 1)[0]
    assert (body, method.redelivered) == (b"again", True)
    channel.basic_reject(method.delivery_tag, requeue=False)
    channel.cancel()
    assert channel.basic_get(queue) == (None, None, None)


def test_confirm_delivery_and_mandatory_unroutable(channel: BlockingChannel) -> None:
    exchange = name("x")
    channel.exchange_declare(exchange, "topic")
    channel.confirm_delivery()
    channel.basic_publish(exchange, "nobody.listens", b"lost")  # not mandatory: confirmed
    with pytest.raises(UnroutableError) as info:
        channel.basic_publish(exchange, "nobody.listens", b"back", mandatory=True)
    assert info.value.messages[0].body == b"back"
    assert info.value.messages[0].method.reply_code == 312


def test_missing_queue_is_channel_closed_404(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    with pytest.raises(ChannelClosedByBroker) as info:
        channel.queue_declare(name("missing"), passive=True)
    assert info.value.reply_code == 404
    assert "NOT_FOUND - no queue" in info.value.reply_text
    assert connection.is_open
    assert connection.channel().is_open  # the connection survives a channel error


def test_publish_to_missing_exchange_closes_channel(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    channel.basic_publish(name("nox"), "rk", b"x")
    with pytest.raises(ChannelClosedByBroker) as info:
        channel.queue_declare(name("q"))
    assert info.value.reply_code == 404
    assert info.value.reply_text.startswith("NOT_FOUND - no exchange")


def test_all_basic_properties_round_trip(channel: BlockingChannel) -> None:
    queue = name("q")
    channel.queue_declare(queue)
    sent = pika.BasicProperties(
        content_type="application/json", content_encoding="utf-8",
        headers={"int": 7, "str": "s", "neg": -3, "big": 2**40, "bool": True, "list": [1, "a"],
                 "nested": {"k": "v"}, "none": None},
        delivery_mode=2, priority=3, correlation_id="corr", reply_to="replies",
        expiration="60000", message_id="mid", timestamp=1700000000, type="kind",
        user_id="guest", app_id="app", cluster_id="cluster",
    )
    channel.basic_publish("", queue, b"{}", sent)
    _, received, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"{}"
    for attr in ("content_type", "content_encoding", "headers", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
                 "user_id", "app_id", "cluster_id"):
        assert getattr(received, attr) == getattr(sent, attr), attr


def test_large_body_crosses_frame_max(channel: BlockingChannel) -> None:
    queue = name("q")
    channel.queue_declare(queue)
    body = bytes(range(256)) * 4096  # 1 MiB: many body frames each way
    channel.basic_publish("", queue, body)
    method, _, got = channel.basic_get(queue, auto_ack=True)
    assert got == body and method.message_count == 0


def test_basic_get_counts_and_empty(channel: BlockingChannel) -> None:
    queue = name("q")
    channel.queue_declare(queue)
    for body in (b"a", b"b", b"c"):
        channel.basic_publish("", queue, body)
    method, _, body = channel.basic_get(queue)
    assert (body, method.message_count, method.delivery_tag) == (b"a", 2, 1)
    channel.basic_ack(method.delivery_tag)
    assert channel.queue_purge(queue).method.message_count == 2
    assert channel.basic_get(queue) == (None, None, None)


def test_transactions_commit_and_rollback(channel: BlockingChannel) -> None:
    queue = name("q")
    channel.queue_declare(queue)
    channel.tx_select()
    channel.basic_publish("", queue, b"tx")
    assert channel.queue_declare(queue, passive=True).method.message_count == 0
    channel.tx_rollback()
    assert channel.queue_declare(queue, passive=True).method.message_count == 0
    channel.basic_publish("", queue, b"tx")
    channel.tx_commit()
    assert channel.queue_declare(queue, passive=True).method.message_count == 1


def test_broker_cancels_consumer_when_queue_is_deleted(
    connection: pika.BlockingConnection,
) -> None:
    consumer_channel = connection.channel()
    queue = name("q")
    consumer_channel.queue_declare(queue)
    cancelled: list[object] = []
    consumer_channel.add_on_cancel_callback(cancelled.append)
    tag = consumer_channel.basic_consume(queue, lambda *args: None)
    connection.channel().queue_delete(queue)
    # The broker wrote basic.cancel right after delete-ok; one more round trip on the
    # consumer's channel guarantees pika has read it.
    consumer_channel.basic_qos(prefetch_count=0)
    connection.process_data_events(time_limit=0)
    assert cancelled and cancelled[0].method.consumer_tag == tag
    assert consumer_channel.is_open


def test_exchange_to_exchange_binding(channel: BlockingChannel) -> None:
    source, destination, queue = name("xs"), name("xd"), name("q")
    channel.exchange_declare(source, "fanout")
    channel.exchange_declare(destination, "fanout")
    channel.exchange_bind(destination, source)
    channel.queue_declare(queue)
    channel.queue_bind(queue, destination)
    channel.basic_publish(source, "any", b"hop")
    assert channel.basic_get(queue, auto_ack=True)[2] == b"hop"


def test_unknown_exchange_type_is_406(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    with pytest.raises(ChannelClosedByBroker) as info:
        channel.exchange_declare(name("x"), "no-such-type")
    assert info.value.reply_code == 406


def test_bad_password_is_authentication_error(broker: ServerThread) -> None:
    credentials = pika.PlainCredentials("guest", "wrong")
    with pytest.raises(ProbableAuthenticationError) as info:
        pika.BlockingConnection(params(broker, credentials=credentials))
    assert "ACCESS_REFUSED" in str(info.value)


def test_unknown_vhost_is_access_denied(broker: ServerThread) -> None:
    with pytest.raises(ProbableAccessDeniedError):
        pika.BlockingConnection(params(broker, virtual_host="no-such-vhost"))


def test_prefetch_size_is_connection_error_540(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    with pytest.raises(ConnectionClosedByBroker) as info:
        channel.basic_qos(prefetch_size=10)
    assert info.value.reply_code == 540
    assert info.value.reply_text == "NOT_IMPLEMENTED - prefetch_size!=0 (10)"


def test_channel_flow_and_recover(channel: BlockingChannel) -> None:
    queue = name("q")
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"r")
    method, _, _ = channel.basic_get(queue)
    assert method.redelivered is False
    channel.basic_recover(requeue=True)
    method, _, _ = channel.basic_get(queue)
    assert method.redelivered is True
    channel.basic_ack(method.delivery_tag)


def test_connection_close_requeues_unacked(broker: ServerThread) -> None:
    queue = name("q")
    first = pika.BlockingConnection(params(broker))
    channel = first.channel()
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"keep")
    assert channel.basic_get(queue)[2] == b"keep"  # delivered, never acked
    first.close()
    assert first.is_closed
    second = pika.BlockingConnection(params(broker))
    try:
        method, _, body = second.channel().basic_get(queue, auto_ack=True)
        assert (body, method.redelivered) == (b"keep", True)
    finally:
        second.close()


def test_asyncio_adapter_publish_and_consume(broker: ServerThread) -> None:
    queue = name("q")
    result: dict[str, object] = {}

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()

        def on_message(channel, method, properties, body):  # type: ignore[no-untyped-def]
            channel.basic_ack(method.delivery_tag)
            if not done.done():
                done.set_result(body)

        def on_declared(frame, channel):  # type: ignore[no-untyped-def]
            channel.basic_consume(queue, on_message)
            channel.basic_publish("", queue, b"via asyncio")

        def on_channel(channel):  # type: ignore[no-untyped-def]
            channel.queue_declare(queue, callback=lambda frame: on_declared(frame, channel))

        def on_open(connection):  # type: ignore[no-untyped-def]
            connection.channel(on_open_callback=on_channel)

        def on_error(connection, error):  # type: ignore[no-untyped-def]
            if not done.done():
                done.set_exception(error)

        connection = AsyncioConnection(
            params(broker), on_open_callback=on_open, on_open_error_callback=on_error,
            custom_ioloop=loop,
        )
        try:
            result["body"] = await asyncio.wait_for(done, TIMEOUT)
        finally:
            closed: asyncio.Future[None] = loop.create_future()
            connection.add_on_close_callback(lambda *args: closed.set_result(None))
            if connection.is_open:
                connection.close()
                await asyncio.wait_for(closed, TIMEOUT)

    asyncio.run(scenario())
    assert result["body"] == b"via asyncio"


def test_messages_cross_protocols_with_every_property(
    broker: ServerThread, channel: BlockingChannel
) -> None:
    """What pika publishes the native client receives intact, and the other way round."""
    import datetime
    import decimal

    import minibroker.client as native
    from minibroker.message import Properties

    queue = name("q")
    channel.queue_declare(queue)
    headers = {"int": 7, "neg": -2, "long": 2**40, "str": "s", "bool": True, "list": [1, "a"],
               "table": {"k": {"deep": 1}}, "none": None, "dec": decimal.Decimal("1.25"),
               "when": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)}
    values = {
        "content_type": "application/json", "content_encoding": "utf-8", "delivery_mode": 2,
        "priority": 5, "correlation_id": "c", "reply_to": "r", "expiration": "60000",
        "message_id": "m", "timestamp": 1700000000, "type": "t", "user_id": "guest",
        "app_id": "a", "cluster_id": "cl",
    }
    channel.basic_publish("", queue, b"from pika", pika.BasicProperties(headers=headers, **values))

    async def native_side() -> Properties:
        async with await native.connect(broker.server.url) as connection:
            ch = await connection.channel()
            delivery = await ch.get(queue, no_ack=True)
            assert delivery is not None and delivery.body == b"from pika"
            await ch.publish("", queue, b"from native", properties=delivery.properties)
            return delivery.properties

    received = asyncio.run(asyncio.wait_for(native_side(), TIMEOUT))
    assert received == Properties(headers=headers, **values)
    _, back, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"from native"
    assert back.headers == headers
    for key, value in values.items():
        assert getattr(back, key) == value, key


def test_broker_shutdown_closes_with_320(
    broker: ServerThread, connection: pika.BlockingConnection
) -> None:
    channel = connection.channel()
    broker.stop()
    with pytest.raises(ConnectionClosedByBroker) as info:
        channel.queue_declare(name("q"))
    assert info.value.reply_code == 320
    assert info.value.reply_text == "CONNECTION_FORCED - broker shutdown"
