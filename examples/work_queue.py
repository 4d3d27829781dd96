"""Work queue: one producer, two workers sharing a queue, with acknowledgements and prefetch.

Usage: python examples/work_queue.py [URL]   (default minibroker://127.0.0.1:5680)

Each task has dots; a worker "works" 20 ms per dot, then acknowledges it. With
``prefetch_count=1`` the broker gives a worker no new task until it acked the previous one, so a
busy worker is skipped ("fair dispatch", RabbitMQ tutorial 2). A message nobody acknowledged
would be redelivered to another worker. Each worker stops when it receives a "stop" message.
"""

from __future__ import annotations

import asyncio

import minibroker

QUEUE = "task_queue"
TASKS = ["first task.", "second task...", "third task.", "fourth task....", "fifth task.",
         "sixth task.."]
WORKERS = 2


async def worker(url: str, number: int, done: list[str]) -> None:
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await ch.declare_queue(QUEUE, durable=True)
        await ch.qos(prefetch_count=1)  # one unacknowledged task at a time
        async with ch.consume(QUEUE) as consumer:
            async for delivery in consumer:
                task = delivery.body.decode()
                if task == "stop":
                    await delivery.ack()
                    print(f"[worker {number}] stopping")
                    return
                print(f"[worker {number}] working on {task!r}")
                await asyncio.sleep(0.02 * task.count("."))  # the "work"
                await delivery.ack()  # only now may the broker forget the task
                done.append(task)
                print(f"[worker {number}] done with {task!r}")


async def main(url: str) -> None:
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await ch.declare_queue(QUEUE, durable=True)
        await ch.purge_queue(QUEUE)  # start clean if an earlier run was interrupted
        done: list[str] = []
        # A task group: if a worker fails, the others are cancelled and the error is raised.
        async with asyncio.TaskGroup() as group:
            for number in range(1, WORKERS + 1):
                group.create_task(worker(url, number, done))
            for task in TASKS:
                await ch.publish("", QUEUE, task.encode(), delivery_mode=2)  # persistent
                print(f"[producer] sent {task!r}")
            for _ in range(WORKERS):  # after the tasks: the queue is first in, first out
                await ch.publish("", QUEUE, b"stop")
        await ch.delete_queue(QUEUE)
    assert sorted(done) == sorted(TASKS), done
    print(f"All {len(TASKS)} tasks done by {WORKERS} workers.")


if __name__ == "__main__":
    from _run import run_example  # the URL from the command line; one line if no broker

    run_example(main)
