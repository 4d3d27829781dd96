"""The recorder's running tallies: waiting on the history costs O(new events), not O(history)."""

from __future__ import annotations

import asyncio
import gc

import minibroker
from minibroker.core.fates import Fate
from minibroker.message import Message, Properties
from minibroker.testing import running_broker
from minibroker.testing.history import Recorder, _Entry


class CountingEntries(dict[int, _Entry]):
    """The recorder's entry map, counting every walk over it."""

    walks = 0

    def values(self):  # type: ignore[no-untyped-def, override]
        CountingEntries.walks += 1
        return super().values()


def publish(recorder: Recorder, key: str, queue: str = "q") -> Message:
    message = Message("x", key, b"m", Properties())
    recorder(Fate("routed", message, queues=(queue,)))
    return message


def test_a_tally_counts_the_past_once_then_follows_new_events_only() -> None:
    recorder = Recorder()
    entries = CountingEntries()
    recorder._entries = entries
    old = [publish(recorder, "k") for _ in range(1_000)]
    for message in old[:10]:
        recorder(Fate("acked", message, queue="q"))
    tally = recorder.tally("acked", queue="q")
    assert (tally.count, CountingEntries.walks) == (10, 1)
    for message in old[10:20]:
        recorder(Fate("acked", message, queue="q"))
        recorder(Fate("acked", message, queue="q"))  # a message counts once
    recorder(Fate("acked", old[30], queue="other"))
    new = publish(recorder, "k")
    recorder(Fate("acked", new, queue="q"))
    assert tally.count == 21
    assert CountingEntries.walks == 1  # no walk over the 1,001 records after arming


def test_publish_tallies_filter_by_exchange_and_routing_key() -> None:
    recorder = Recorder()
    publish(recorder, "a")
    tally = recorder.tally(None, routing_key="a")
    publish(recorder, "a")
    publish(recorder, "b")
    recorder.refused(Message("x", "a", b"r", Properties()), 1, 1, "injected nack")
    assert tally.count == 3


def test_a_tally_keeps_what_the_bounded_history_drops_and_clear_resets_it() -> None:
    recorder = Recorder(max_messages=2)
    tally = recorder.tally("acked")
    for _ in range(5):
        recorder(Fate("acked", publish(recorder, "k"), queue="q"))
    assert (len(recorder.history()), recorder.truncated, tally.count) == (2, 3, 5)
    assert len(tally._counted) <= 2  # bounded like the history
    recorder.clear()
    assert tally.count == 0
    recorder(Fate("acked", publish(recorder, "k"), queue="q"))
    assert tally.count == 1


def test_the_recorder_holds_tallies_weakly() -> None:
    recorder = Recorder()
    tally = recorder.tally("acked")
    assert len(recorder._tallies) == 1
    del tally
    gc.collect()
    assert len(recorder._tallies) == 0


def test_waiting_for_more_acks_than_the_history_keeps_completes() -> None:
    # Each message is acked while the history still holds it; the history keeps the last 50
    # records, the waiter counts all 120 acks (it used to see only the 50 kept ones).
    async def main() -> None:
        async with running_broker(history_size=50) as broker, \
                minibroker.connect(broker.url) as conn:
            broker.declare_queue("q")
            waiter = asyncio.create_task(broker.wait_for_ack(120, queue="q", timeout=10))
            channel = await conn.channel()
            async with channel.consume("q") as consumer:
                deliveries = aiter(consumer)
                for i in range(120):
                    await channel.publish("", "q", str(i).encode())
                    delivery = await anext(deliveries)
                    await delivery.ack()
            await waiter
            assert len(broker.history()) == 50

    asyncio.run(main())
