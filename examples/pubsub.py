"""Publish/subscribe: every subscriber gets every message, through a fanout exchange.

Usage: python examples/pubsub.py [URL]   (default minibroker://127.0.0.1:5680)

Each subscriber declares its own exclusive, server-named queue and binds it to the ``logs``
fanout exchange (RabbitMQ tutorial 3). A fanout exchange ignores the routing key and copies each
message to every bound queue. Messages published before a queue is bound are not kept for it,
so the publisher waits until every subscriber is ready.
"""

from __future__ import annotations

import asyncio

import minibroker

EXCHANGE = "logs"
MESSAGES = ["info: service started", "warning: disk 91% full", "error: payment timeout"]
SUBSCRIBERS = 2


async def subscriber(url: str, number: int, ready: asyncio.Event, got: list[str]) -> None:
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await ch.declare_exchange(EXCHANGE, "fanout")
        queue = await ch.declare_queue("", exclusive=True)  # the broker names it
        await ch.bind_queue(queue.name, EXCHANGE)
        async with ch.consume(queue.name, no_ack=True) as consumer:
            ready.set()
            async for delivery in consumer:
                got.append(delivery.body.decode())
                print(f"[subscriber {number}] {delivery.body.decode()}")
                if len(got) == len(MESSAGES):
                    return


async def publisher(url: str, readiness: list[asyncio.Event]) -> None:
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await ch.declare_exchange(EXCHANGE, "fanout")
        for event in readiness:
            await event.wait()
        for text in MESSAGES:
            await ch.publish(EXCHANGE, "", text.encode())  # the routing key is ignored
            print(f"[publisher] {text}")


async def main(url: str) -> None:
    readiness = [asyncio.Event() for _ in range(SUBSCRIBERS)]
    received: list[list[str]] = [[] for _ in range(SUBSCRIBERS)]
    # A task group: if any task fails, the others are cancelled and the error is raised.
    async with asyncio.TaskGroup() as group:
        for n in range(SUBSCRIBERS):
            group.create_task(subscriber(url, n + 1, readiness[n], received[n]))
        group.create_task(publisher(url, readiness))
    assert all(got == MESSAGES for got in received), received
    print(f"Each of {SUBSCRIBERS} subscribers received all {len(MESSAGES)} messages.")


if __name__ == "__main__":
    from _run import run_example  # the URL from the command line; one line if no broker

    run_example(main)
