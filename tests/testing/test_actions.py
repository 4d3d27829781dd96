"""The handle acts, not only looks: topology and messages straight into the core, no client."""

from __future__ import annotations

import asyncio

import pika
import pytest

import minibroker
import minibroker.blocking
from minibroker.errors import (
    AccessRefused,
    NotFound,
    PreconditionFailed,
    ProtocolError,
    ResourceLocked,
)
from minibroker.testing import TOOLKIT_CONNECTION, ManualClock, broker_in_thread, running_broker


def test_seed_a_topology_and_messages_in_one_line_each() -> None:
    with broker_in_thread() as broker:
        broker.declare_exchange("orders", "topic", durable=True)
        assert broker.declare_queue("eu-orders", durable=True) == "eu-orders"
        broker.bind("eu-orders", "orders", "eu.#")
        assert broker.publish("orders", "eu.new", b"order 1", headers={"n": 1},
                              delivery_mode=2) == ("eu-orders",)
        assert broker.publish("orders", "eu.new", "order 2") == ("eu-orders",)  # str: UTF-8
        assert broker.publish("orders", "us.new", b"nowhere") == ()
        queue = broker.queue("eu-orders")
        assert (queue.ready, queue.durable) == (2, True)
        first = broker.get("eu-orders")
        assert first is not None
        assert (first.body, first.exchange, first.routing_key) == (b"order 1", "orders", "eu.new")
        assert first.properties.headers == {"n": 1} and first.properties.delivery_mode == 2
        assert (first.redelivered, first.message_count) == (False, 1)
        assert broker.purge("eu-orders") == 1
        assert broker.get("eu-orders") is None
        assert broker.delete_queue("eu-orders") == 0
        broker.delete_exchange("orders")
        assert not broker.has_queue("eu-orders") and not broker.has_exchange("orders")


def test_a_client_sees_what_the_handle_seeded() -> None:
    with broker_in_thread() as broker:
        broker.declare_queue("jobs")
        broker.publish("", "jobs", b"seeded", correlation_id="c-1")
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = connection.channel()
        method, properties, body = channel.basic_get("jobs", auto_ack=True)
        assert method is not None and body == b"seeded"
        assert properties.correlation_id == "c-1"
        connection.close()


def test_a_seeded_publish_is_delivered_to_a_waiting_consumer() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_queue("jobs")
            async with channel.consume("jobs") as consumer:
                await broker.wait_for_consumer("jobs")
                broker.publish("", "jobs", b"for you")
                delivery = await asyncio.wait_for(anext(aiter(consumer)), 5)
                assert delivery.body == b"for you"
                await delivery.ack()
            await broker.wait_for_ack(queue="jobs")

    asyncio.run(main())


def test_actions_fail_as_a_client_would() -> None:
    with broker_in_thread() as broker:
        broker.declare_queue("q", arguments={"x-max-length": 5})
        with pytest.raises(PreconditionFailed, match="inequivalent arg 'x-max-length'") as info:
            broker.declare_queue("q", arguments={"x-max-length": 6})
        assert info.value.reply_code == 406
        with pytest.raises(NotFound, match="no exchange 'missing'") as missing:
            broker.publish("missing", "k", b"x")
        assert missing.value.reply_code == 404
        with pytest.raises(NotFound):
            broker.bind("q", "missing")
        with pytest.raises(AccessRefused):
            broker.declare_exchange("amq.mine", "direct")
        with pytest.raises(PreconditionFailed, match="user_id"):
            broker.publish("", "q", b"x", user_id="someone-else")
        # The queue is exactly as it was, and the handle's connection left nothing behind.
        assert broker.queue("q").ready == 0
        assert broker.connections() == () and broker.statistics().connections == 0
        assert broker.statistics().channels == 0


def test_a_queue_exclusive_to_a_client_is_locked_for_the_handle_too() -> None:
    with broker_in_thread() as broker, minibroker.blocking.connect(broker.url) as conn:
        conn.channel().declare_queue("mine", exclusive=True)
        with pytest.raises(ResourceLocked) as info:
            broker.declare_queue("mine")
        assert info.value.reply_code == 405


def test_a_message_no_client_could_send_is_refused() -> None:
    with broker_in_thread() as broker:
        broker.declare_queue("q")
        with pytest.raises(ProtocolError, match="correlation_id: longer than 255 bytes"):
            broker.publish("", "q", b"x", correlation_id="c" * 300)
        with pytest.raises(ProtocolError, match="cannot be carried by AMQP"):
            broker.publish("", "q", b"x", headers={"big": 2**63})
        # The body is not the native frame's business: AMQP clients send bigger ones.
        big = b"x" * 300_000
        assert broker.publish("", "q", big) == ("q",)
        assert broker.get("q").body == big  # type: ignore[union-attr]
        with pytest.raises(TypeError, match="body must be bytes or str, not dict"):
            broker.publish("", "q", {"not": "bytes"})  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            broker.publish("", "q", b"x", no_such_property=1)
        assert broker.queue("q").ready == 0


def test_the_history_records_the_handles_publishes_and_gets() -> None:
    with broker_in_thread() as broker:
        broker.declare_queue("q")
        broker.publish("", "q", b"x")
        broker.get("q")
        (record,) = broker.history()
        assert record.kinds == ("routed", "delivered")
        assert {event.connection for event in record.events} == {TOOLKIT_CONNECTION}


def test_deleting_a_queue_cancels_a_clients_consumer() -> None:
    """RabbitMQ tells a consumer whose queue was deleted with basic.cancel: the handle's
    delete is how a test shows an app that notice."""
    with broker_in_thread() as broker:
        parameters = pika.URLParameters(broker.amqp_url)
        connection = pika.BlockingConnection(parameters)
        channel = connection.channel()
        channel.queue_declare("work")
        cancelled: list[object] = []
        channel.add_on_cancel_callback(cancelled.append)
        channel.basic_consume("work", lambda *args: None)
        broker.wait_for_consumer("work")
        broker.publish("", "work", b"a")
        broker.delete_queue("work")
        for _ in range(50):  # bounded: 50 rounds of at most 0.1 s
            if cancelled:
                break
            connection.process_data_events(time_limit=0.1)
        assert len(cancelled) == 1
        assert not broker.has_queue("work")
        connection.close()


def test_a_seeded_message_ttl_runs_on_the_brokers_clock() -> None:
    clock = ManualClock()
    with broker_in_thread(clock=clock) as broker:
        broker.declare_queue("short", arguments={"x-message-ttl": 60_000})
        broker.declare_queue("plain")
        broker.publish("", "short", b"queue ttl")
        broker.publish("", "plain", b"own ttl", expiration="1000")
        clock.advance(1)
        assert broker.queue("plain").ready == 0 and broker.queue("short").ready == 1
        clock.advance(59)
        assert broker.queue("short").ready == 0
        assert [record.fate() for record in broker.history()] == ["expired", "expired"]


def test_a_wait_is_woken_by_a_handle_action() -> None:
    async def main() -> None:
        async with running_broker() as broker:
            broker.declare_queue("q")
            waiting = asyncio.create_task(broker.wait_for_queue("q", ready=1))
            await asyncio.sleep(0)  # let the task arm its waiter (one loop turn, no delay)
            assert broker.server.input_hooks  # armed, not yet satisfied
            broker.publish("", "q", b"x")
            await asyncio.wait_for(waiting, 5)

    asyncio.run(main())
