"""aio-pika (on aiormq) against minibroker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import aio_pika
import aiormq
import pytest

from tests.compat.conftest import TIMEOUT, ServerThread


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro_fn(), TIMEOUT * 2)

    asyncio.run(bounded())


def test_robust_connection_default_channel_publish_consume(broker: ServerThread) -> None:
    async def scenario() -> None:
        connection = await aio_pika.connect_robust(broker.url, timeout=TIMEOUT)
        async with connection:
            channel = await connection.channel()  # publisher confirms on by default
            exchange = await channel.declare_exchange(name("x"), aio_pika.ExchangeType.TOPIC)
            queue = await channel.declare_queue(name("q"), auto_delete=True)
            await queue.bind(exchange, "orders.*")
            await channel.set_qos(prefetch_count=10)
            for i in range(3):
                # Confirmed: publish() returns once the broker acked it.
                confirmation = await exchange.publish(
                    aio_pika.Message(f"m{i}".encode(), headers={"n": i},
                                     content_type="text/plain"),
                    routing_key="orders.new",
                )
                assert isinstance(confirmation, aiormq.abc.ConfirmationFrameType)
            got = []
            async with queue.iterator(timeout=TIMEOUT) as messages:
                async for message in messages:
                    async with message.process():
                        got.append((message.body, message.headers["n"], message.content_type))
                    if len(got) == 3:
                        break
            assert got == [(b"m0", 0, "text/plain"), (b"m1", 1, "text/plain"),
                           (b"m2", 2, "text/plain")]
            declared = await channel.declare_queue(queue.name, passive=True)
            assert declared.declaration_result.message_count == 0

    run(scenario)


def test_process_requeue_on_exception_redelivers(broker: ServerThread) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url, timeout=TIMEOUT) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(name("q"))
            await channel.default_exchange.publish(aio_pika.Message(b"boom"), queue.name)
            message = await queue.get(timeout=TIMEOUT)
            assert message is not None and not message.redelivered
            with pytest.raises(RuntimeError):
                async with message.process(requeue=True):
                    raise RuntimeError("handler failed")
            again = await queue.get(timeout=TIMEOUT)
            assert again is not None and again.redelivered and again.body == b"boom"
            await again.ack()

    run(scenario)


def test_passive_declare_missing_queue_raises_not_found(broker: ServerThread) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url, timeout=TIMEOUT) as connection:
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
                await channel.declare_queue(name("missing"), passive=True)
            # The connection survives; a new channel works.
            other = await connection.channel()
            await other.declare_queue(name("q"), auto_delete=True)

    run(scenario)


def test_inequivalent_redeclare_is_precondition_failed(broker: ServerThread) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url, timeout=TIMEOUT) as connection:
            channel = await connection.channel()
            exchange = name("x")
            await channel.declare_exchange(exchange, aio_pika.ExchangeType.DIRECT)
            with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
                await channel.declare_exchange(exchange, aio_pika.ExchangeType.FANOUT)

    run(scenario)


def test_mandatory_unroutable_publish_is_returned(broker: ServerThread) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url, timeout=TIMEOUT) as connection:
            channel = await connection.channel(on_return_raises=True)
            exchange = await channel.declare_exchange(name("x"), auto_delete=True)
            with pytest.raises(aio_pika.exceptions.DeliveryError) as info:
                await exchange.publish(aio_pika.Message(b"lost"), "nowhere", mandatory=True)
            assert info.value.message.body == b"lost"

    run(scenario)


def test_exchange_bind_unbind_and_transactions(broker: ServerThread) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url, timeout=TIMEOUT) as connection:
            channel = await connection.channel(publisher_confirms=False)
            source = await channel.declare_exchange(name("xs"), aio_pika.ExchangeType.FANOUT)
            target = await channel.declare_exchange(name("xd"), aio_pika.ExchangeType.FANOUT)
            await target.bind(source)
            queue = await channel.declare_queue(name("q"), exclusive=True)
            await queue.bind(target)
            async with channel.transaction():
                await source.publish(aio_pika.Message(b"tx"), "")
            message = await queue.get(timeout=TIMEOUT)
            assert message is not None and message.body == b"tx"
            await message.ack()
            await target.unbind(source)
            await source.publish(aio_pika.Message(b"gone"), "")
            assert await queue.get(fail=False, timeout=TIMEOUT) is None

    run(scenario)


def test_queue_delete_cancels_consumer(broker: ServerThread) -> None:
    async def scenario() -> None:
        async with await aio_pika.connect(broker.url, timeout=TIMEOUT) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(name("q"))
            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                await message.ack()

            await queue.consume(on_message)
            other = await connection.channel()
            await other.queue_delete(queue.name)
            # The consumer's channel stays usable after the broker cancelled its consumer.
            again = await channel.declare_queue(queue.name, auto_delete=True)
            assert again.declaration_result.consumer_count == 0

    run(scenario)
