"""Retry with delay: a failed task waits in a delay queue, then comes back to its work queue.

Usage: python examples/retry_with_delay.py [URL]   (default minibroker://127.0.0.1:5680)

Two queues and no timer in the client:

* ``retry_work`` is the work queue. Its ``x-dead-letter-exchange`` is the ``retry`` exchange, so
  a task the worker rejects (``requeue=False``) is dead-lettered there with routing key
  ``delay`` (``x-dead-letter-routing-key``), which routes it to ...
* ``retry_delay``, which nobody consumes. Its ``x-message-ttl`` is 200 ms; an expired message is
  dead-lettered to the default exchange with routing key ``retry_work``: back to work.

Each time a message is dead-lettered the broker adds to its ``x-death`` header (one entry per
queue and reason, with a ``count``), so the worker knows which attempt this is without keeping
any state. This worker fails a task twice and succeeds on the third attempt.
"""

from __future__ import annotations

import asyncio
import time

import minibroker
from minibroker.client import Channel, Delivery

WORK, DELAY, EXCHANGE = "retry_work", "retry_delay", "retry"
DELAY_MS = 200
SUCCEEDS_ON = 3
TASK = "resize image 42"


def death_counts(delivery: Delivery) -> dict[tuple[str, str], int]:
    """``x-death`` as {(queue, reason): count}: how often the broker dead-lettered this
    message from which queue, and why ("rejected", "expired", "maxlen", ...)."""
    entries = delivery.headers.get("x-death")
    counts: dict[tuple[str, str], int] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            queue, reason, count = entry.get("queue"), entry.get("reason"), entry.get("count")
            if isinstance(queue, str) and isinstance(reason, str) and isinstance(count, int):
                counts[queue, reason] = count
    return counts


def attempt_number(delivery: Delivery) -> int:
    """1 + how often the work queue has rejected this message."""
    return 1 + death_counts(delivery).get((WORK, "rejected"), 0)


async def declare(ch: Channel) -> None:
    await ch.declare_exchange(EXCHANGE, "direct")
    await ch.declare_queue(WORK, arguments={
        "x-dead-letter-exchange": EXCHANGE, "x-dead-letter-routing-key": "delay"})
    await ch.declare_queue(DELAY, arguments={
        "x-message-ttl": DELAY_MS,  # how long a failed task waits
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": WORK})
    await ch.bind_queue(DELAY, EXCHANGE, "delay")


async def clean_up(ch: Channel) -> None:
    for queue in (WORK, DELAY):
        await ch.delete_queue(queue)
    await ch.delete_exchange(EXCHANGE)


async def worker(ch: Channel) -> int:
    """Consume until the task succeeds; returns the attempt it succeeded on."""
    last_try = time.monotonic()
    async with ch.consume(WORK) as consumer:
        async for delivery in consumer:
            attempt = attempt_number(delivery)
            now = time.monotonic()
            if attempt > 1:
                waited = now - last_try
                # the broker held it in the delay queue for at least the TTL
                assert waited >= DELAY_MS / 1000 * 0.9, waited
                print(f"[worker] {delivery.body.decode()!r} is back after the delay")
            last_try = now
            if attempt < SUCCEEDS_ON:
                print(f"[worker] attempt {attempt} of {delivery.body.decode()!r} failed: "
                      f"retrying in {DELAY_MS} ms")
                await delivery.reject(requeue=False)  # dead-letter it to the delay queue
                continue
            deaths = death_counts(delivery)
            print(f"[worker] attempt {attempt} of {delivery.body.decode()!r} succeeded "
                  f"(x-death: rejected {deaths[(WORK, 'rejected')]}x from {WORK}, "
                  f"expired {deaths[(DELAY, 'expired')]}x in {DELAY})")
            await delivery.ack()
            return attempt
    raise RuntimeError("the consumer ended before the task succeeded")


async def main(url: str) -> None:
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await clean_up(ch)  # in case an earlier run was interrupted (deleting is idempotent)
        await declare(ch)
        await ch.publish("", WORK, TASK.encode(), delivery_mode=2)
        print(f"[producer] sent {TASK!r}")
        # bounded: three attempts and two 200 ms delays take well under a second
        attempt = await asyncio.wait_for(worker(ch), timeout=10)
        await clean_up(ch)
    print(f"Task done on attempt {attempt} after {attempt - 1} delayed retries.")


if __name__ == "__main__":
    from _run import run_example  # the URL from the command line; one line if no broker

    run_example(main)
