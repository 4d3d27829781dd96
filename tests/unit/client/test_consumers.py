"""Consumers under concurrency: several tasks iterating one consumer, and a consumer whose
starting task is cancelled at each point of its start (``consumer.py`` rules 6 and 7)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from minibroker.client import Channel, Consumer, Delivery
from minibroker.errors import ClientError
from tests.unit.client.conftest import Run
from tests.unit.client.link import MemoryLink, linked

# -- several tasks, one consumer --------------------------------------------------------------


def test_two_tasks_iterating_one_consumer_both_make_progress_and_both_end(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name = (await ch.declare_queue("", exclusive=True)).name
            got: dict[str, list[bytes]] = {"a": [], "b": []}
            consumer = await ch.consume(name)

            async def worker(who: str) -> None:
                async for delivery in consumer:
                    got[who].append(delivery.body)
                    await delivery.ack()
                    await asyncio.sleep(0)  # let the other task run

            tasks = [asyncio.create_task(worker(who)) for who in got]
            await link.settle()  # both are waiting now
            for i in range(20):
                await ch.publish("", name, b"%d" % i)
                await link.settle()
            assert sorted(got["a"] + got["b"], key=int) == [b"%d" % i for i in range(20)]
            assert got["a"] and got["b"]
            await consumer.cancel()
            await asyncio.wait_for(asyncio.gather(*tasks), 5)  # both see the end

    run(scenario)


def test_a_woken_task_that_is_cancelled_passes_its_delivery_to_the_next(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name = (await ch.declare_queue("", exclusive=True)).name
            consumer = await ch.consume(name)
            first = asyncio.create_task(consumer.receive())
            second = asyncio.create_task(consumer.receive())
            await link.settle()  # both wait, first in line
            link.hold()
            await ch.publish("", name, b"only")
            await link.settle()
            link.release()  # the delivery is decoded and wakes ``first`` ...
            first.cancel()  # ... which is cancelled before it runs
            delivery = await asyncio.wait_for(second, 5)
            assert delivery.body == b"only"
            with pytest.raises(asyncio.CancelledError):
                await first
            await delivery.ack()
            await consumer.aclose()

    run(scenario)


def test_every_waiting_task_sees_the_channel_close(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name = (await ch.declare_queue("", exclusive=True)).name
            consumer = await ch.consume(name)
            waiting = [asyncio.create_task(consumer.receive()) for _ in range(3)]
            await link.settle()
            await ch.aclose()
            for task in waiting:
                with pytest.raises(ClientError, match="has ended"):
                    await asyncio.wait_for(task, 5)

    run(scenario)


# -- cancelling the start -----------------------------------------------------------------------


async def _queue(ch: Channel, count: int) -> str:
    name = (await ch.declare_queue("", exclusive=True)).name
    for i in range(count):
        await ch.publish("", name, b"%d" % i)
    return name


async def _nothing_left(link: MemoryLink, ch: Channel, name: str, ready: int) -> None:
    """The broker keeps no consumer and no unacknowledged message of ``name``."""
    await link.settle()
    await ch.qos(0)  # a round trip: every frame the channel sent before is handled
    stats = link.server.broker.queue_statistics(name)
    assert (stats.consumers, stats.unacked, stats.ready) == (0, 0, ready)
    assert ch.unacked_count == 0 and not ch._consumers


async def _start(how: str, consumer: Consumer) -> None:
    if how == "await":
        await consumer
    else:
        async with consumer:
            raise AssertionError("the start was cancelled: the body never runs")


@pytest.mark.parametrize("how", ["await", "async with"])
def test_cancelled_before_the_consume_is_sent(run: Run, how: str) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name = await _queue(ch, 2)
            consumer = ch.consume(name)
            task = asyncio.create_task(_start(how, consumer))
            task.cancel()  # before its first step
            with pytest.raises(asyncio.CancelledError):
                await task
            await _nothing_left(link, ch, name, ready=2)

    run(scenario)


@pytest.mark.parametrize("how", ["await", "async with"])
def test_cancelled_while_waiting_for_consume_ok(run: Run, how: str) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name = await _queue(ch, 3)
            link.hold()
            consumer = ch.consume(name)
            task = asyncio.create_task(_start(how, consumer))
            await link.settle()
            # The broker has the consumer and has sent it the messages; we have read nothing.
            assert link.server.broker.queue_statistics(name).consumers == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            link.release()  # consume-ok and three deliveries arrive for an abandoned consumer
            await _nothing_left(link, ch, name, ready=3)
            with pytest.raises(ClientError, match="abandoned"):
                await consumer.start()

    run(scenario)


@pytest.mark.parametrize("how", ["await", "async with"])
def test_cancelled_after_consume_ok_was_read_but_before_the_task_resumed(
    run: Run, how: str,
) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name = await _queue(ch, 3)
            link.hold()
            task = asyncio.create_task(_start(how, ch.consume(name)))
            await link.settle()
            link.release()  # consume-ok and the deliveries are decoded: the consumer is live
            assert len(ch._consumers) == 1 and ch.unacked_count == 3
            task.cancel()  # its start has its reply, but the task never sees it
            with pytest.raises(asyncio.CancelledError):
                await task
            await _nothing_left(link, ch, name, ready=3)

    run(scenario)


def test_a_cancelled_get_leaves_nothing_unacknowledged(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name = await _queue(ch, 1)
            # Cancelled while waiting for get-ok ...
            link.hold()
            task = asyncio.create_task(ch.get(name))
            await link.settle()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            link.release()
            await _nothing_left(link, ch, name, ready=1)
            # ... and after get-ok was read, before the task resumed.
            link.hold()
            task = asyncio.create_task(ch.get(name))
            await link.settle()
            link.release()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await _nothing_left(link, ch, name, ready=1)
            again = await ch.get(name)
            assert again is not None and again.redelivered
            await again.ack()

    run(scenario)


def test_a_cancelled_aclose_still_requeues_every_buffered_delivery(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name = await _queue(ch, 3)
            consumer = await ch.consume(name)
            first: Delivery = await consumer.receive()
            await link.settle()  # two more buffered
            link.hold()  # the cancel-ok will not come while we look
            closing = asyncio.create_task(consumer.aclose())
            await link.settle()
            closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            link.release()
            await first.ack()
            await _nothing_left(link, ch, name, ready=2)

    run(scenario)
