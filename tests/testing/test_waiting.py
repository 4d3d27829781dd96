"""Waiting without sleeping: conditions re-checked after every input, timeouts that explain."""

from __future__ import annotations

import asyncio
import time

import pytest

import minibroker
import minibroker.blocking
from minibroker.testing import WaitTimeout, broker_in_thread, running_broker


def test_waits_for_queue_consumer_ack_and_idle() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_queue("jobs")

            async def work() -> None:
                async with (await conn.channel()).consume("jobs") as consumer:
                    async for delivery in consumer:
                        await delivery.ack()
                        if delivery.body == b"last":
                            return

            worker = asyncio.create_task(work())
            await broker.wait_for_consumer("jobs")
            for body in (b"a", b"b", b"last"):
                await channel.publish("", "jobs", body)
            await broker.wait_for_ack(3, queue="jobs")
            await broker.wait_for_idle()
            await worker
            assert broker.queue("jobs").acked == 3

    asyncio.run(main())


def test_timeout_says_what_it_waited_for_and_what_it_saw() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_queue("jobs")
            await channel.publish("", "jobs", b"only one")
            with pytest.raises(WaitTimeout) as info:
                await broker.wait_for_queue("jobs", ready=3, timeout=0.05)
            assert str(info.value) == ("timed out after 0.05 s waiting for queue 'jobs' to "
                                       "have ready=3; saw queue 'jobs' with ready=1")
            with pytest.raises(WaitTimeout, match="saw no queue 'other'"):
                await broker.wait_for_queue("other", timeout=0.01)
            with pytest.raises(WaitTimeout, match=r"waiting for 1 message.s. acked; saw 0 acked"):
                await broker.wait_for_ack(timeout=0.01)

    asyncio.run(main())


def test_a_satisfied_condition_returns_at_once_and_hooks_are_removed() -> None:
    async def main() -> None:
        async with running_broker() as broker:
            started = time.perf_counter()
            await broker.wait_for_connections(0)
            await broker.wait_for_idle()
            assert time.perf_counter() - started < 0.05
            assert broker.server.input_hooks == []

    asyncio.run(main())


def test_thread_broker_blocking_waits_from_the_test_thread() -> None:
    with broker_in_thread() as broker, minibroker.blocking.connect(broker.url) as conn:
        channel = conn.channel()
        channel.declare_queue("jobs")
        broker.wait_for_connections(1)
        channel.publish("", "jobs", b"x")
        broker.wait_for_queue("jobs", ready=1)
        delivery = channel.get("jobs")
        assert delivery is not None
        broker.wait_for_queue("jobs", ready=0, unacked=1)
        delivery.ack()
        broker.wait_for_ack()
        with pytest.raises(WaitTimeout, match=r"1 consumer.s. on queue .jobs.; saw 0"):
            broker.wait_for_consumer("jobs", timeout=0.01)


def test_thread_broker_async_wait_does_not_block_the_test_loop() -> None:
    with broker_in_thread() as broker:
        async def main() -> None:
            async with minibroker.connect(broker.url) as conn:
                channel = await conn.channel()
                await channel.declare_queue("jobs")
                waiting = asyncio.create_task(
                    broker.wait_for_async(broker.queue_condition("jobs", ready=1)))
                await channel.publish("", "jobs", b"x")  # runs while the wait is pending
                await waiting

        asyncio.run(main())


def test_every_wait_has_an_awaitable_twin_with_the_same_arguments() -> None:
    """A thread handle's ``wait_for_X_async`` takes what ``wait_for_X`` takes; so does a
    ``running_broker()`` handle's, whose waits are awaitable anyway."""
    import inspect

    from minibroker.testing import RunningBroker, ThreadBroker

    for handle in (ThreadBroker, RunningBroker):
        waits = [name for name in dir(handle)
                 if name.startswith("wait_for") and not name.endswith("_async")]
        assert len(waits) == 8
        for name in waits:
            twin = getattr(handle, f"{name}_async")
            assert inspect.iscoroutinefunction(twin), f"{handle.__name__}.{name}_async"
            assert (inspect.signature(twin).parameters
                    == inspect.signature(getattr(handle, name)).parameters)


def test_async_twins_wait_on_the_thread_broker_while_the_test_loop_runs() -> None:
    with broker_in_thread() as broker:
        async def main() -> None:
            async with minibroker.connect(broker.url, client_name="app") as conn:
                await broker.wait_for_connections_async(1, name="app")
                channel = await conn.channel()
                await channel.declare_queue("jobs")
                waits = asyncio.gather(
                    broker.wait_for_queue_async("jobs", ready=1),
                    broker.wait_for_publish_async(exchange="", routing_key="jobs"),
                    broker.wait_for_fate_async("routed", queue="jobs"),
                )
                await channel.publish("", "jobs", b"x")  # runs while the waits are pending
                await waits
                delivery = await channel.get("jobs")
                assert delivery is not None
                await delivery.ack()
                await broker.wait_for_ack_async(queue="jobs")
                await broker.wait_for_idle_async()
                async with channel.consume("jobs"):
                    await broker.wait_for_consumer_async("jobs")
            with pytest.raises(WaitTimeout, match=r"2 message.s. published; saw 1 published"):
                await broker.wait_for_publish_async(2, timeout=0.01)

        asyncio.run(main())


def test_a_blocking_wait_inside_a_running_loop_names_its_async_twin() -> None:
    """Blocking the loop an async test runs on would stall the app under test until a bare
    timeout: refused at once, with the form to use instead."""
    with broker_in_thread() as broker:
        async def main() -> None:
            with pytest.raises(RuntimeError, match=r"await broker.wait_for_queue_async\(...\)"):
                broker.wait_for_queue("jobs", ready=1)
            with pytest.raises(RuntimeError, match=r"wait_for_idle\(\) blocks its thread"):
                broker.wait_for_idle()
            await broker.wait_for_idle_async()  # the async twin is fine

        asyncio.run(main())


def test_wait_for_publish_counts_unroutable_and_refused_publishes_too() -> None:
    with broker_in_thread() as broker:
        broker.publish("amq.topic", "nobody.listens", b"x")
        broker.nack_publishes(1, exchange="amq.fanout")
        broker.publish("amq.fanout", "", b"refused")
        broker.wait_for_publish(2)
        broker.wait_for_publish(exchange="amq.topic", routing_key="nobody.listens")
        assert [record.fate() for record in broker.history()] == ["unroutable", "refused"]
