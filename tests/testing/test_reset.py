"""reset(): a fresh broker on the same port, fast."""

from __future__ import annotations

import asyncio
import time

import pika
import pika.exceptions
import pytest

import minibroker
from minibroker.errors import ConnectionClosed, ConnectionForced
from minibroker.testing import broker_in_thread, running_broker


def test_reset_forgets_everything_and_tells_clients_320() -> None:
    async def main() -> None:
        async with running_broker() as broker:
            conn = await minibroker.connect(broker.url)
            channel = await conn.channel()
            await channel.declare_queue("q")
            await channel.publish("", "q", b"x")
            await broker.wait_for_queue("q", ready=1)
            broker.nack_publishes(5, queue="q")
            broker.reset()
            assert broker.queues() == () and broker.connections() == ()
            assert len(broker.history()) == 0
            with pytest.raises(ConnectionClosed) as info:
                await channel.declare_queue("again")
            assert isinstance(info.value.error, ConnectionForced)
            async with minibroker.connect(broker.url) as fresh:  # same port, no faults left
                channel = await fresh.channel()
                await channel.declare_queue("q")
                await channel.confirm_select()
                await channel.publish("", "q", b"accepted")

    asyncio.run(main())


def test_reset_of_a_small_state_takes_well_under_a_millisecond() -> None:
    async def main() -> None:
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            for n in range(10):
                await channel.declare_queue(f"q{n}")
                await channel.publish("", f"q{n}", b"x")
            await broker.wait_for_queue("q9", ready=1)
            best = float("inf")
            for _ in range(5):  # best of 5 excludes a stray GC pause
                started = time.perf_counter()
                broker.reset()
                best = min(best, time.perf_counter() - started)
            assert best < 0.001

    asyncio.run(main())


def test_thread_broker_reset_closes_pika_with_320() -> None:
    with broker_in_thread() as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        connection.channel().queue_declare("q")
        broker.reset()
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
            while True:
                connection.process_data_events(time_limit=1)
        assert info.value.reply_code == 320
