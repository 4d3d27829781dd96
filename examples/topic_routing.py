"""Topic routing: subscribers choose messages by pattern on a dotted routing key.

Usage: python examples/topic_routing.py [URL]   (default minibroker://127.0.0.1:5680)

Routing keys look like ``<facility>.<severity>``. In a binding key ``*`` matches exactly one
word and ``#`` matches zero or more words (RabbitMQ tutorial 5). Each subscriber binds its own
queue with its patterns; a message reaches a queue once even when several bindings match.
"""

from __future__ import annotations

import asyncio

import minibroker

EXCHANGE = "topic_logs"
MESSAGES = [("kern.critical", "kernel panic"), ("kern.info", "kernel booted"),
            ("app.critical", "app crashed"), ("app.info", "app started")]
SUBSCRIBERS = {
    "critical": ["*.critical"],
    "kernel": ["kern.#"],
    "everything": ["#", "kern.*"],  # overlapping bindings: still one copy per message
}
EXPECTED = {
    "critical": ["kern.critical", "app.critical"],
    "kernel": ["kern.critical", "kern.info"],
    "everything": ["kern.critical", "kern.info", "app.critical", "app.info"],
}


async def subscriber(url: str, name: str, ready: asyncio.Event) -> list[str]:
    got: list[str] = []
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await ch.declare_exchange(EXCHANGE, "topic")
        queue = await ch.declare_queue("", exclusive=True)
        for binding_key in SUBSCRIBERS[name]:
            await ch.bind_queue(queue.name, EXCHANGE, binding_key)
        async with ch.consume(queue.name) as consumer:
            ready.set()
            async for delivery in consumer:
                await delivery.ack()
                got.append(delivery.routing_key)
                print(f"[{name:>10}] {delivery.routing_key:<14} {delivery.body.decode()}")
                if len(got) == len(EXPECTED[name]):
                    break
    return got


async def publisher(url: str, readiness: list[asyncio.Event]) -> None:
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await ch.declare_exchange(EXCHANGE, "topic")
        for event in readiness:  # a queue gets only what is published after its binding
            await event.wait()
        for routing_key, text in MESSAGES:
            await ch.publish(EXCHANGE, routing_key, text.encode())


async def main(url: str) -> None:
    readiness = {name: asyncio.Event() for name in SUBSCRIBERS}
    # A task group: if any task fails, the others are cancelled and the error is raised.
    async with asyncio.TaskGroup() as group:
        tasks = {name: group.create_task(subscriber(url, name, readiness[name]))
                 for name in SUBSCRIBERS}
        group.create_task(publisher(url, list(readiness.values())))
    for name, task in tasks.items():
        got = task.result()
        assert got == EXPECTED[name], (name, got)
        print(f"{name} ({' '.join(SUBSCRIBERS[name])}) got {len(got)} messages")
    async with minibroker.connect(url) as conn:
        await (await conn.channel()).delete_exchange(EXCHANGE)
    print("Every subscriber got exactly the messages its binding keys match.")


if __name__ == "__main__":
    from _run import run_example  # the URL from the command line; one line if no broker

    run_example(main)
