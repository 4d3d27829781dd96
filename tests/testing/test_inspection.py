"""Inspection: topology, counts, messages read without consuming, and the bounded history."""

from __future__ import annotations

import asyncio

import pika
import pytest

import minibroker
import minibroker.blocking
from minibroker.testing import broker_in_thread, running_broker


def test_topology_counts_and_peeked_messages() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_exchange("logs", "topic")
            await channel.declare_queue("eu")
            await channel.bind_queue("eu", "logs", "eu.#")
            for body in (b"one", b"two", b"three"):
                await channel.publish("logs", "eu.orders", body, headers={"n": 1})
            await channel.qos(1)
            consumer_channel = await conn.channel()
            await consumer_channel.qos(1)
            async with consumer_channel.consume("eu", consumer_tag="worker") as consumer:
                await broker.wait_for_queue("eu", ready=2, unacked=1)
                assert [m.body for m in broker.messages("eu")] == [b"two", b"three"]
                assert broker.messages("eu")[0].properties.headers == {"n": 1}
                # Reading did not consume: the counts are unchanged.
                stats = broker.queue("eu")
                assert (stats.ready, stats.unacked, stats.consumers) == (2, 1, 1)
                (info,) = broker.consumers("eu")
                assert (info.consumer_tag, info.prefetch_count, info.unacked) == ("worker", 1, 1)
                del consumer
            assert "logs" in {e.name for e in broker.exchanges()}
            assert {(b.source, b.destination.name, b.binding_key) for b in broker.bindings()} >= {
                ("logs", "eu", "eu.#")}
            (connection,) = broker.connections()
            assert connection.user == "guest" and len(connection.channels) == 2
            assert broker.statistics().published == 3

    asyncio.run(main())


def test_history_follows_each_message_and_filters() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_exchange("fan", "fanout")
            for name in ("a", "b"):
                await channel.declare_queue(name)
                await channel.bind_queue(name, "fan")
            await channel.publish("fan", "k1", b"to-both")
            await channel.publish("", "a", b"to-a")
            await channel.publish("", "nowhere", b"lost", mandatory=True)
            got = await channel.get("a")
            assert got is not None and got.body == b"to-both"
            await got.nack(requeue=False)
            got = await channel.get("a")
            assert got is not None and got.body == b"to-a"
            await got.ack()
            await broker.wait_for_ack(queue="a")

            history = broker.history()
            assert history.bodies == [b"to-both", b"to-a", b"lost"] and not history.truncated
            both, to_a, lost = history
            assert both.routed_to == ("a", "b") or set(both.routed_to) == {"a", "b"}
            assert both.kinds == ("routed", "delivered", "nacked")
            assert both.fate("a") == "nacked" and both.fate("b") == "routed"
            assert both.has("routed", queue="b") and not both.has("acked", queue="a")
            assert to_a.kinds == ("routed", "delivered", "acked")
            assert to_a.fate("b") == "unknown"  # it never reached b
            # Routed to no queue: its own kind, then returned because it was mandatory.
            assert lost.routed_to == () and lost.kinds == ("unroutable", "returned")
            assert broker.history(kind="unroutable").bodies == [b"lost"]
            assert broker.history(exchange="fan").bodies == [b"to-both"]
            assert broker.history(routing_key="a").bodies == [b"to-a"]
            assert broker.history(queue="b").bodies == [b"to-both"]
            assert broker.history(kind="acked").bodies == [b"to-a"]

    asyncio.run(main())


def test_history_is_bounded_and_says_so() -> None:
    async def main() -> None:
        async with running_broker(history_size=3) as broker, \
                minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_queue("q")
            for n in range(5):
                await channel.publish("", "q", b"%d" % n)
            await broker.wait_for_queue("q", ready=5)
            history = broker.history()
            assert history.bodies == [b"2", b"3", b"4"]
            assert history.truncated == 2
            assert [record.index for record in history] == [3, 4, 5]
            assert "the 2 oldest messages were dropped (history_size=3)" in history.note
            assert "truncated" in repr(history)

    asyncio.run(main())


def test_an_unroutable_publish_without_mandatory_is_unroutable_and_nothing_else() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.publish("amq.topic", "nobody.listens", b"lost")
            await broker.wait_for_fate("unroutable")
            (record,) = broker.history()
            assert (record.kinds, record.fate(), record.routed_to) == (("unroutable",),
                                                                      "unroutable", ())

    asyncio.run(main())


def test_connections_carry_the_name_the_client_gave_them() -> None:
    with broker_in_thread() as broker:
        parameters = pika.URLParameters(broker.amqp_url)
        parameters.client_properties = {"connection_name": "orders-worker"}
        connection = pika.BlockingConnection(parameters)
        with minibroker.blocking.connect(broker.url, client_name="billing") as native:
            native.channel()
            by_name = {info.connection_name: info for info in broker.connections()}
            assert set(by_name) == {"orders-worker", "billing"}
            pika_properties = by_name["orders-worker"].client_properties
            assert pika_properties["product"] == "Pika Python Client Library"
            assert by_name["billing"].client_properties["product"] == "minibroker"
            (worker,) = broker.connections(name="orders-worker")
            assert worker.connection == by_name["orders-worker"].connection
            assert broker.connections(name="nobody") == ()
        connection.close()


def test_one_exchange_by_name() -> None:
    with broker_in_thread() as broker:
        broker.declare_exchange("events", "topic", durable=True)
        info = broker.exchange("events")
        assert (info.name, info.type, info.durable) == ("events", "topic", True)
        assert broker.has_exchange("events") and broker.has_exchange("amq.direct")
        assert not broker.has_exchange("nope")
        with pytest.raises(KeyError, match="no exchange 'nope'"):
            broker.exchange("nope")
