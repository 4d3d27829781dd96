"""docs/testing.md, "An aio-pika RPC service": the service and its test, as written there."""

import asyncio
import contextlib

import aio_pika

async def serve_fibonacci(url):
    """The app: answer each request on 'rpc' with fib(n), on its reply_to queue."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("rpc")
        async with queue.iterator() as requests:
            async for request in requests:
                async with request.process():
                    a, b = 0, 1
                    for _ in range(int(request.body)):
                        a, b = b, a + b
                    await channel.default_exchange.publish(
                        aio_pika.Message(str(a).encode(),
                                         correlation_id=request.correlation_id),
                        routing_key=request.reply_to)

async def test_the_service_answers_on_the_reply_queue(minibroker):
    service = asyncio.create_task(serve_fibonacci(minibroker.amqp_url))
    await minibroker.wait_for_consumer_async("rpc")
    minibroker.declare_queue("replies")
    minibroker.publish("", "rpc", b"10", reply_to="replies", correlation_id="req-1")
    await minibroker.wait_for_queue_async("replies", ready=1)
    reply = minibroker.get("replies")
    assert (reply.body, reply.properties.correlation_id) == (b"55", "req-1")
    service.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await service
