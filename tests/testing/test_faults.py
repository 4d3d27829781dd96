"""Fault injection, seen from real clients: pika (AMQP 0-9-1) and the native client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

import minibroker
from minibroker.client import ChannelClosed, PublishNacked
from minibroker.errors import ConnectionClosed, ConnectionForced, PreconditionFailed
from minibroker.testing import ThreadBroker, broker_in_thread, running_broker


@pytest.fixture
def broker() -> Iterator[ThreadBroker]:
    with broker_in_thread() as running:
        yield running


def _pika(broker: ThreadBroker) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(broker.amqp_url))


def test_injected_channel_close_is_pikas_channel_closed_by_broker(broker: ThreadBroker) -> None:
    connection = _pika(broker)
    channel = connection.channel()
    channel.queue_declare("jobs")
    assert broker.close_channel(channel.channel_number, reply_code=406,
                                reply_text="PRECONDITION_FAILED - injected") == 1
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        channel.queue_declare("again")
    assert info.value.reply_code == 406
    assert info.value.reply_text == "PRECONDITION_FAILED - injected"
    assert connection.channel().queue_declare("jobs").method.queue == "jobs"  # connection lives
    connection.close()


def test_injected_channel_close_reaches_the_native_client() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_queue("jobs")
            await channel.publish("", "jobs", b"x")
            delivery = await channel.get("jobs")
            assert delivery is not None
            broker.close_channel(1, reply_code=406, reply_text="PRECONDITION_FAILED - injected")
            with pytest.raises(PreconditionFailed) as info:  # the broker's error, rebuilt
                await channel.declare_queue("again")
            assert info.value.reply_code == 406 and info.value.text == "injected"
            with pytest.raises(ChannelClosed):
                await channel.declare_queue("and again")
            assert broker.queue("jobs").ready == 1  # its unacked message was requeued

    asyncio.run(main())


def test_injected_connection_close_with_a_chosen_code() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            (info,) = broker.connections()
            assert broker.close_connection(info.connection, reply_code=320,
                                           reply_text="CONNECTION_FORCED - injected") == 1
            with pytest.raises(ConnectionClosed) as closed:
                await channel.declare_queue("q")
            assert isinstance(closed.value.error, ConnectionForced)
            assert closed.value.error.reply_code == 320
            await broker.wait_for_connections(0)

    asyncio.run(main())


def test_nacked_publishes_are_not_enqueued_pika(broker: ThreadBroker) -> None:
    connection = _pika(broker)
    channel = connection.channel()
    channel.queue_declare("jobs")
    channel.confirm_delivery()
    broker.nack_publishes(2, queue="jobs")
    for body in (b"1", b"2"):
        with pytest.raises(pika.exceptions.NackError):
            channel.basic_publish("", "jobs", body)
    channel.basic_publish("", "jobs", b"3")  # the fault is used up
    assert [m.body for m in broker.messages("jobs")] == [b"3"]
    assert broker.refused_publishes == 2
    assert [r.fate() for r in broker.history()] == ["refused", "refused", "routed"]
    connection.close()


def test_nacked_publishes_by_exchange_native_and_without_confirms() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_exchange("ex", "fanout")
            await channel.declare_queue("q")
            await channel.bind_queue("q", "ex")
            broker.nack_publishes(1, exchange="ex")
            await channel.publish("ex", "", b"dropped")  # no confirms: silently gone
            await channel.confirm_select()
            broker.nack_publishes(1, exchange="ex")
            with pytest.raises(PublishNacked):
                await channel.publish("ex", "", b"nacked")
            await channel.publish("ex", "", b"kept")
            assert [m.body for m in broker.messages("q")] == [b"kept"]

    asyncio.run(main())


def test_nacked_publishes_are_counted_even_when_several_arrive_in_one_read() -> None:
    """The native session hands a read's run of publishes to the core as one command; with a
    nack fault armed, each publish must still be seen (and counted) on its own."""

    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_queue("q")
            await channel.confirm_select()
            broker.nack_publishes(2, queue="q")
            results = await asyncio.gather(
                *(channel.publish("", "q", body) for body in (b"1", b"2", b"3", b"4")),
                return_exceptions=True,
            )
            assert [isinstance(result, PublishNacked) for result in results] == [
                True, True, False, False,
            ]
            assert [m.body for m in broker.messages("q")] == [b"3", b"4"]

    asyncio.run(main())


def test_a_dropped_reply_is_never_sent() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            broker.drop_reply("queue.declare")
            declare = asyncio.create_task(channel.declare_queue("lost-reply"))
            await broker.wait_for_queue("lost-reply", ready=0)
            other = await conn.channel()
            assert (await other.declare_queue("answered")).name == "answered"
            assert not declare.done()
            declare.cancel()
            with pytest.raises(ValueError, match="known methods"):
                broker.drop_reply("basic.publish")

    asyncio.run(main())


def test_broker_side_consumer_cancel_pika(broker: ThreadBroker) -> None:
    connection = _pika(broker)
    channel = connection.channel()
    channel.queue_declare("jobs")
    cancelled: list[str] = []
    channel.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    channel.basic_consume("jobs", lambda *args: None, consumer_tag="worker")
    broker.wait_for_consumer("jobs")
    assert broker.cancel_consumer("worker") == 1
    while not cancelled:
        connection.process_data_events(time_limit=1)
    assert cancelled == ["worker"]
    assert broker.queue("jobs").consumers == 0
    connection.close()


def test_broker_side_consumer_cancel_ends_native_consumption() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_queue("jobs")
            async with channel.consume("jobs", consumer_tag="worker") as consumer:
                await broker.wait_for_consumer("jobs")
                broker.cancel_consumer("worker", queue="jobs")
                assert [d async for d in consumer] == []  # iteration ends

    asyncio.run(main())


def test_blocked_and_unblocked_publishers_pika(broker: ThreadBroker) -> None:
    connection = _pika(broker)
    events: list[str] = []
    connection.add_on_connection_blocked_callback(lambda _c, frame: events.append("blocked"))
    connection.add_on_connection_unblocked_callback(lambda _c, frame: events.append("unblocked"))
    channel = connection.channel()
    channel.queue_declare("jobs")
    assert broker.block_publishers("low on memory") == 1
    while events != ["blocked"]:
        connection.process_data_events(time_limit=1)
    channel.basic_publish("", "jobs", b"while blocked")
    broker.wait_for_queue("jobs", ready=1)
    assert broker.unblock_publishers() == 1
    while events != ["blocked", "unblocked"]:
        connection.process_data_events(time_limit=1)
    channel.basic_publish("", "jobs", b"after")
    broker.wait_for_queue("jobs", ready=2)
    connection.close()


def test_a_publisher_is_not_read_while_blocked_native() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_queue("jobs")
            assert broker.block_publishers() == 0  # the native protocol has no notification
            await channel.publish("", "jobs", b"first")  # read: it is what blocks the reader
            await broker.wait_for_queue("jobs", ready=1)
            (session,) = broker.server.sessions.values()
            assert not session.transport.is_reading()  # what follows waits in the socket
            await channel.publish("", "jobs", b"second")
            declare = asyncio.create_task(channel.declare_queue("jobs"))
            broker.unblock_publishers()
            assert session.transport.is_reading()
            assert (await declare).message_count == 2

    asyncio.run(main())


def test_stop_and_restart_on_the_same_port_then_reconnect() -> None:
    async def main() -> None:
        async with running_broker() as broker:
            port = broker.port
            conn = await minibroker.connect(broker.url)
            channel = await conn.channel()
            await channel.declare_queue("kept")
            await channel.publish("", "kept", b"survives")
            await broker.wait_for_queue("kept", ready=1)
            await broker.stop()
            with pytest.raises(ConnectionClosed, match="cannot connect"):
                await minibroker.connect(broker.url)
            await broker.start()
            assert broker.port == port
            with pytest.raises((ConnectionClosed, OSError, ChannelClosed)):
                await channel.declare_queue("x")  # the old connection was reset
            async with minibroker.connect(broker.url) as again:
                channel = await (again).channel()
                got = await channel.get("kept")
                assert got is not None and got.body == b"survives"

    asyncio.run(main())


def test_thread_broker_restart_and_pika_reconnects(broker: ThreadBroker) -> None:
    connection = _pika(broker)
    connection.channel().queue_declare("jobs")
    broker.restart()
    with pytest.raises(pika.exceptions.AMQPError):
        connection.channel()
    again = _pika(broker)
    assert again.channel().queue_declare("jobs", passive=True).method.queue == "jobs"
    again.close()


def test_close_connection_by_the_name_the_client_gave_it(broker: ThreadBroker) -> None:
    parameters = pika.URLParameters(broker.amqp_url)
    parameters.client_properties = {"connection_name": "orders-worker"}
    worker = pika.BlockingConnection(parameters)
    bystander = _pika(broker)
    assert broker.close_connection(name="nobody") == 0
    assert broker.close_connection(name="orders-worker", reply_text="CONNECTION_FORCED - bye") == 1
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        worker.channel()
    assert (info.value.reply_code, info.value.reply_text) == (320, "CONNECTION_FORCED - bye")
    broker.wait_for_connections(0, name="orders-worker")
    assert bystander.is_open and len(broker.connections()) == 1
    with pytest.raises(ValueError, match="connection= or name="):
        broker.close_connection(1, name="orders-worker")
    bystander.close()


def test_close_channel_by_connection_name() -> None:
    async def main() -> None:
        async with running_broker() as broker, \
                minibroker.connect(broker.url, client_name="billing") as billing, \
                minibroker.connect(broker.url, client_name="shipping") as shipping:
            on_billing, on_shipping = await billing.channel(), await shipping.channel()
            assert broker.close_channel(on_billing.number, name="billing") == 1
            with pytest.raises(PreconditionFailed):
                await on_billing.declare_queue("q")
            await on_shipping.declare_queue("q")  # the other connection's channel 1 lives

    asyncio.run(main())
