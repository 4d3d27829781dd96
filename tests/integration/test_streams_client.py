"""Streams through the native client over a real socket: consuming from an offset with
``.offset`` on deliveries, the pull model, stored consumer offsets and batched publishing."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest

from minibroker.client import Channel, connect
from minibroker.errors import ChannelClosed, ClientError, NotFound, PreconditionFailed
from minibroker.message import Properties
from minibroker.server import BrokerServer
from tests.integration.test_client import run, running_server

STREAM = {"x-queue-type": "stream"}


@pytest.fixture
def url() -> Iterator[str]:
    server: BrokerServer
    with running_server() as server:
        yield server.url


async def events(ch: Channel, count: int, name: str = "events") -> None:
    await ch.declare_queue(name, durable=True, arguments=STREAM)
    await ch.confirm_select()
    await ch.publish_batch("", name, [f"e{n}" for n in range(count)])


def test_consume_from_an_offset_and_read_each_delivery_s_offset(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await events(ch, 5)
            await ch.qos(10)
            got = []
            async with ch.consume("events", offset=3) as consumer:
                async for delivery in consumer:
                    got.append((delivery.offset, delivery.body))
                    await delivery.ack()
                    if len(got) == 2:
                        break
            assert got == [(3, b"e3"), (4, b"e4")]
            since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
            for start in (since, datetime.timedelta(hours=1), "first"):
                other = await conn.channel()
                await other.qos(1)
                async with other.consume("events", offset=start) as consumer:
                    first = await consumer.__anext__()
                    assert first.offset == 0
                    await first.ack()
            queue = await ch.declare_queue("", exclusive=True)
            await ch.publish("", queue.name, b"plain")
            plain = await ch.get(queue.name, no_ack=True)
            assert plain is not None and plain.offset is None

    run(scenario())


def test_read_pulls_batches_and_says_where_to_go_on(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await events(ch, 25)
            offset, seen = 0, []
            while True:
                batch = await ch.read("events", offset, max_messages=10)
                if not batch:
                    break
                seen += [(m.offset, m.body) for m in batch.messages]
                offset = batch.next_offset
            assert seen == [(n, f"e{n}".encode()) for n in range(25)] and offset == 25
            assert (await ch.read("events", "last")).messages[0].offset == 0  # one batch
            assert len(await ch.read("events", "first", max_bytes=5)) == 3
            assert len(await ch.read("events", "next")) == 0
            q = await ch.declare_queue("", exclusive=True)
            with pytest.raises(PreconditionFailed, match="is not a stream"):
                await ch.read(q.name, "first")

    run(scenario())


def test_filtered_read_and_filter_values_in_a_batch(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.declare_queue("regions", durable=True, arguments=STREAM)
            await ch.publish_batch("", "regions", [
                (b"paris", Properties(headers={"x-stream-filter-value": "eu"})),
                (b"ohio", Properties(headers={"x-stream-filter-value": "us"})),
                b"nowhere",
            ])
            eu = await ch.read("regions", "first", filter="eu")
            assert [m.body for m in eu.messages] == [b"paris"] and eu.next_offset == 3
            both = await ch.read("regions", "first", filter=["eu", "us"], match_unfiltered=True)
            assert [m.body for m in both.messages] == [b"paris", b"ohio", b"nowhere"]

    run(scenario())


def test_a_restarted_consumer_resumes_from_its_committed_offset(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await events(ch, 10)
            assert await ch.committed_offset("events", "billing") is None
            batch = await ch.read("events", "first", max_messages=4)
            await ch.commit_offset("events", "billing", batch.next_offset)
        async with connect(url) as conn:  # "restarted"
            ch = await conn.channel()
            resume = await ch.committed_offset("events", "billing")
            assert resume == 4
            rest = await ch.read("events", resume)
            assert [m.offset for m in rest.messages] == list(range(4, 10))

    run(scenario())


def test_publish_batch_is_one_frame_and_one_confirm(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.declare_queue("events", durable=True, arguments=STREAM)
            await ch.confirm_select()
            await ch.publish_batch("", "events", [b"x"] * 500)
            await ch.publish_batch("", "events", [b"y"] * 3, content_type="text/plain")
            assert ch._confirms is not None and len(ch._confirms) == 0
            tail = await ch.read("events", 499, max_messages=2)
            assert [(m.body, m.content_type) for m in tail.messages] == [
                (b"x", None), (b"y", "text/plain")]
            with pytest.raises(ClientError, match="cannot publish"):
                await ch.publish_batch("", "events", [b"z" * (conn.max_frame_size + 1)])
            await ch.publish_batch("", "events", [])  # nothing to send

    run(scenario())


def test_a_batch_to_a_missing_exchange_closes_the_channel(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.confirm_select()
            with pytest.raises(NotFound):
                await ch.publish_batch("missing", "k", [b"a", b"b"])
            assert ch.is_closed
            with pytest.raises(ChannelClosed):
                await ch.publish_batch("", "k", [b"a"])

    run(scenario())


def test_a_read_larger_than_a_frame_is_cut_to_what_fits(url: str) -> None:
    async def scenario() -> None:
        async with connect(url, max_frame_size=4096) as conn:
            ch = await conn.channel()
            await ch.declare_queue("big", durable=True, arguments=STREAM)
            for n in range(10):
                await ch.publish_batch("", "big", [bytes([n]) * 100] * 10)
            batch = await ch.read("big", "first", max_messages=1000, max_bytes=1 << 30)
            assert 0 < len(batch) < 100
            assert batch.next_offset == batch.messages[-1].offset + 1
            offset, seen = batch.next_offset, len(batch)
            while seen < 100:
                batch = await ch.read("big", offset, max_messages=1000)
                assert batch.messages[0].offset == offset
                seen += len(batch)
                offset = batch.next_offset
            assert (seen, offset) == (100, 100)

    run(scenario())


def test_the_blocking_client_reads_and_batches_too(url: str) -> None:
    from minibroker.blocking import connect as blocking_connect

    with blocking_connect(url) as conn:
        ch = conn.channel()
        ch.declare_queue("log", durable=True, arguments=STREAM)
        ch.confirm_select()
        ch.publish_batch("", "log", (f"m{n}" for n in range(5)))
        assert [m.body for m in ch.read("log", 3).messages] == [b"m3", b"m4"]
        ch.commit_offset("log", "me", 5)
        assert ch.committed_offset("log", "me") == 5
        ch.qos(2)
        with ch.consume("log", offset="last") as consumer:
            delivery = consumer.receive(timeout=5)
            assert (delivery.offset, delivery.body) == (0, b"m0")  # one batch: one chunk
            delivery.ack()
