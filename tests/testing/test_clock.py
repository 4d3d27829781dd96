"""Time control: every broker timer follows a ManualClock, and advance() fires what is due."""

from __future__ import annotations

import asyncio

import pika
import pytest

import minibroker
from minibroker.testing import ManualClock, broker_in_thread, running_broker


def test_advance_fires_due_timers_in_order_at_their_own_time() -> None:
    clock = ManualClock()
    fired: list[tuple[str, float]] = []
    clock.call_at(3.0, lambda: fired.append(("late", clock.now())))
    cancel = clock.call_at(1.0, lambda: fired.append(("cancelled", clock.now())))
    clock.call_at(2.0, lambda: fired.append(("early", clock.now())))

    def chained() -> None:
        fired.append(("chain", clock.now()))
        clock.call_at(clock.now() + 0.5, lambda: fired.append(("chained", clock.now())))

    clock.call_at(2.5, chained)
    cancel()
    clock.advance(10)
    # Equal deadlines fire in the order they were armed.
    assert fired == [("early", 2.0), ("chain", 2.5), ("late", 3.0), ("chained", 3.0)]
    assert clock.now() == 10 and clock.pending == 0


def test_a_message_ttl_expires_without_real_waiting() -> None:
    clock = ManualClock()

    async def main() -> None:
        async with running_broker(clock=clock) as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            await channel.declare_queue("short", arguments={"x-message-ttl": 1000})
            await channel.publish("", "short", b"soon gone")
            await broker.wait_for_queue("short", ready=1)
            clock.advance(0.999)
            assert broker.queue("short").ready == 1
            clock.advance(0.001)
            assert broker.queue("short").ready == 0
            assert broker.history()[0].fate("short") == "expired"

    asyncio.run(main())


def test_heartbeats_follow_the_manual_clock() -> None:
    clock = ManualClock()
    with broker_in_thread(clock=clock) as broker:
        params = pika.URLParameters(broker.amqp_url + "?heartbeat=10")
        connection = pika.BlockingConnection(params)
        broker.wait_for_connections(1)
        clock.advance(1)  # the broker's sweep notes the handshake's traffic
        clock.advance(25)  # then more than two intervals of silence on the broker's clock
        assert broker.connections() == ()  # dropped before advance() returned
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            connection.channel()


def test_a_delayed_reply_waits_for_the_manual_clock() -> None:
    clock = ManualClock()

    async def main() -> None:
        async with running_broker(clock=clock) as broker, minibroker.connect(broker.url) as conn:
            channel = await conn.channel()
            broker.delay_reply("queue.declare", 30)
            declare = asyncio.create_task(channel.declare_queue("slow"))
            await broker.wait_for_queue("slow", ready=0)  # carried out at once...
            other = await conn.channel()
            await other.declare_queue("fast")  # a round trip on the same socket
            assert not declare.done()  # ...but not answered
            clock.advance(30)
            assert (await declare).name == "slow"

    asyncio.run(main())
