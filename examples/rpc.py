"""Remote procedure call over queues: requests carry ``reply_to`` and ``correlation_id``.

Usage: python examples/rpc.py [URL]   (default minibroker://127.0.0.1:5680)

The server consumes ``rpc_queue`` and answers each request on the queue named by its
``reply_to`` property, copying its ``correlation_id``. The client owns an exclusive reply queue
and matches each answer to its request by correlation id, so several calls can be in flight at
once (RabbitMQ tutorial 6).
"""

from __future__ import annotations

import asyncio
import uuid

import minibroker
from minibroker.client import Channel, Consumer

QUEUE = "rpc_queue"


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


async def rpc_server(url: str, ready: asyncio.Event) -> None:
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await ch.declare_queue(QUEUE)
        await ch.qos(prefetch_count=1)
        async with ch.consume(QUEUE) as consumer:
            ready.set()
            async for request in consumer:
                n = int(request.body)
                print(f"[server] fib({n})")
                if request.reply_to:
                    await ch.publish("", request.reply_to, str(fib(n)).encode(),
                                     correlation_id=request.correlation_id)
                await request.ack()


class FibonacciClient:
    def __init__(self, channel: Channel, reply_queue: str) -> None:
        self.channel = channel
        self.reply_queue = reply_queue
        self.pending: dict[str, asyncio.Future[int]] = {}

    async def receive_replies(self, consumer: Consumer) -> None:
        async for reply in consumer:
            future = self.pending.pop(reply.correlation_id or "", None)
            if future is not None:  # an unknown id: a reply to a call we gave up on
                future.set_result(int(reply.body))

    async def call(self, n: int) -> int:
        correlation_id = str(uuid.uuid4())
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.pending[correlation_id] = future
        await self.channel.publish("", QUEUE, str(n).encode(), reply_to=self.reply_queue,
                                   correlation_id=correlation_id)
        return await future


async def rpc_client(url: str, ready: asyncio.Event) -> None:
    await ready.wait()
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        reply_queue = await ch.declare_queue("", exclusive=True)
        client = FibonacciClient(ch, reply_queue.name)
        numbers = [10, 20, 30]
        async with asyncio.TaskGroup() as group, \
                ch.consume(reply_queue.name, no_ack=True) as consumer:
            # Ends when leaving `async with` cancels the consumer.
            group.create_task(client.receive_replies(consumer))
            results = await asyncio.gather(*(client.call(n) for n in numbers))
        for n, result in zip(numbers, results, strict=True):
            assert result == fib(n)
            print(f"[client] fib({n}) = {result}")
        # Deleting the queue cancels the server's consumer (the broker tells it so), which
        # ends the server's loop.
        await ch.delete_queue(QUEUE)


async def main(url: str) -> None:
    ready = asyncio.Event()
    # A task group: if either side fails, the other is cancelled and the error is raised.
    async with asyncio.TaskGroup() as group:
        group.create_task(rpc_server(url, ready))
        group.create_task(rpc_client(url, ready))
    print("All RPC calls answered.")


if __name__ == "__main__":
    from _run import run_example  # the URL from the command line; one line if no broker

    run_example(main)
