"""Event log: a stream keeps every event after it was read; replaying it rebuilds the state.

Usage: python examples/event_log.py [URL]   (default minibroker://127.0.0.1:5680)

A bank records what happens to accounts as events in a stream (``x-queue-type: stream``):
``opened``, ``deposited``, ``withdrew``. Reading a stream does not remove anything, so:

1. a projection replays the whole log from ``x-stream-offset: first`` and computes every
   account's balance;
2. a second projection, started later, replays the same log and reaches the same state — as a
   restarted service would;
3. a projection that remembers the offset of the last event it applied (the ``x-stream-offset``
   header of every delivery) resumes after it, applying only the events appended since.

A stream consumer needs a prefetch window (``qos``) and acknowledges what it read: an ack
returns credit, it does not delete the event.
"""

from __future__ import annotations

import json

import minibroker
from minibroker.client.channel import Channel

STREAM = "bank-events"
EVENTS = [
    {"type": "opened", "account": "alice"},
    {"type": "opened", "account": "bob"},
    {"type": "deposited", "account": "alice", "amount": 100},
    {"type": "deposited", "account": "bob", "amount": 30},
    {"type": "withdrew", "account": "alice", "amount": 40},
    {"type": "deposited", "account": "bob", "amount": 5},
]
LATER = [
    {"type": "withdrew", "account": "bob", "amount": 20},
    {"type": "opened", "account": "carol"},
    {"type": "deposited", "account": "carol", "amount": 7},
]


def apply(balances: dict[str, int], event: dict[str, object]) -> None:
    account = str(event["account"])
    amount = event.get("amount", 0)
    assert isinstance(amount, int)
    if event["type"] == "opened":
        balances[account] = 0
    elif event["type"] == "deposited":
        balances[account] += amount
    elif event["type"] == "withdrew":
        balances[account] -= amount


async def append(ch: Channel, events: list[dict[str, object]]) -> None:
    for event in events:
        await ch.publish("", STREAM, json.dumps(event).encode(), content_type="application/json")
        print(f"[bank] appended {event}")


async def project(
    url: str, name: str, start: str | int, count: int, state: dict[str, int] | None = None,
) -> tuple[dict[str, int], int]:
    """Apply ``count`` events from ``start`` to ``state`` (default: no accounts); the balances
    and the offset of the last event applied."""
    balances = dict(state or {})
    applied = 0
    last = -1
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await ch.qos(prefetch_count=50)  # a stream consumer needs a window
        async with ch.consume(STREAM, arguments={"x-stream-offset": start}) as consumer:
            async for delivery in consumer:
                offset = delivery.headers["x-stream-offset"]
                assert isinstance(offset, int)
                apply(balances, json.loads(delivery.body))
                await delivery.ack()  # credit back; the event stays in the log
                last = offset
                applied += 1
                if applied == count:
                    break
    print(f"[{name}] replayed {count} events up to offset {last}: {balances}")
    return balances, last


async def main(url: str) -> None:
    async with minibroker.connect(url) as conn:
        ch = await conn.channel()
        await ch.delete_queue(STREAM)  # start clean if an earlier run was interrupted
        await ch.declare_queue(STREAM, durable=True, arguments={"x-queue-type": "stream"})
        await append(ch, EVENTS)

        first, last = await project(url, "projection 1", "first", len(EVENTS))
        again, _ = await project(url, "projection 2", "first", len(EVENTS))
        assert first == again == {"alice": 60, "bob": 35}, (first, again)

        await append(ch, LATER)
        resumed, _ = await project(url, "projection 1, resumed", last + 1, len(LATER), first)
        full, _ = await project(url, "projection 3", "first", len(EVENTS) + len(LATER))
        await ch.delete_queue(STREAM)
    expected = {"alice": 60, "bob": 15, "carol": 7}
    assert resumed == full == expected, (resumed, full)
    print(f"Replaying the log from the start and resuming from an offset agree: {expected}.")


if __name__ == "__main__":
    from _run import run_example  # the URL from the command line; one line if no broker

    run_example(main)
