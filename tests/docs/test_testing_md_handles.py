"""docs/testing.md: the blocks about the handles themselves, each inside a test that checks
what the block promises (the lines after a block are the test's own)."""

import asyncio

import pika
import pytest

from minibroker.blocking import connect as blocking_connect
from minibroker.testing import broker_in_thread, running_broker


def test_the_two_ways_to_run_one() -> None:
    async def main() -> None:
        from minibroker.testing import running_broker, broker_in_thread

        async with running_broker() as broker:        # on the running asyncio loop
            ...

        with broker_in_thread() as broker:            # on a loop in a background thread
            ...

        assert broker.port > 0

    asyncio.run(main())


def test_urls_for_configured_users() -> None:
    with broker_in_thread(users={"ann": "s3cret", "bob": "hunter2"}) as broker:
        assert broker.amqp_url.startswith("amqp://ann:s3cret@127.0.0.1:")
        bobs_url = broker.amqp_url_for("bob")
        connection = pika.BlockingConnection(pika.URLParameters(bobs_url))
        assert [info.user for info in broker.connections()] == ["bob"]
        connection.close()


def test_kombu() -> None:
    from kombu import Connection

    with broker_in_thread() as broker, Connection(broker.amqp_url) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"n": 1})
        broker.wait_for_queue("jobs", ready=1)
        assert broker.messages("jobs")[0].properties.content_type == "application/json"


def test_aio_pika() -> None:
    async def main() -> None:
        import aio_pika

        async with running_broker() as broker:
            connection = await aio_pika.connect_robust(broker.amqp_url)
            async with connection:
                channel = await connection.channel()
                await channel.declare_queue("jobs")
                await channel.default_exchange.publish(aio_pika.Message(b"hi"), "jobs")
                await broker.wait_for_queue("jobs", ready=1)
                assert [m.body for m in broker.messages("jobs")] == [b"hi"]

    asyncio.run(main())


def test_history_kinds() -> None:
    with broker_in_thread() as broker:
        broker.declare_queue("jobs")
        broker.publish("", "jobs", b"kept")
        broker.publish("", "nowhere", b"lost", mandatory=True)
        kept, lost = broker.history()
        assert kept.kinds == ("routed",) and kept.fate("jobs") == "routed"
        assert lost.kinds == ("unroutable", "returned") and lost.fate("jobs") == "unknown"


def test_waiting() -> None:
    with broker_in_thread() as broker, blocking_connect(broker.url) as conn:
        channel = conn.channel()
        channel.declare_queue("jobs")
        channel.publish("", "jobs", b"one")
        broker.wait_for_queue("jobs", ready=1)
        channel.get("jobs").ack()
        broker.wait_for_ack(queue="jobs")
        broker.wait_for_idle()
        assert broker.history()[0].kinds == ("routed", "delivered", "acked")


def test_time_control() -> None:
    from minibroker.testing import ManualClock

    clock = ManualClock()
    with broker_in_thread(clock=clock) as broker:
        broker.declare_queue("q", arguments={"x-message-ttl": 60000})
        broker.publish("", "q", b"short-lived")
        clock.advance(60)        # the message expires now; nothing waited
        assert broker.queue("q").ready == 0
        assert [record.fate() for record in broker.history()] == ["expired"]


def test_close_a_connection_by_name() -> None:
    with broker_in_thread() as broker:
        parameters = pika.URLParameters(broker.amqp_url)
        parameters.client_properties = {"connection_name": "billing"}
        connection = pika.BlockingConnection(parameters)
        assert broker.close_connection(name="billing") == 1
        broker.wait_for_connections(0, name="billing")
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker):
            connection.channel()
