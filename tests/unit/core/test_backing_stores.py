"""Backing stores: which store keeps a queue's messages, that every message passes through the
store's verbs (the seam a durable store plugs into), and that the ready meter stays exact."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import pytest

from minibroker.core.flow import MESSAGE_OVERHEAD
from minibroker.core.queues import Queue
from minibroker.core.stores import FifoStore, QueueEntry
from minibroker.message import FieldTable, Message, Properties
from tests.unit.core.helpers import Chan, Harness, delivered


def store_of(harness: Harness, queue: str) -> str:
    return harness.broker.queue_statistics(queue).backing_store


EXPIRING = Properties(expiration="60000")


# -- the feature path is left when it is no longer needed ------------------------------------

def test_an_expiring_message_takes_the_feature_path_until_it_is_acked(
    harness: Harness, ch: Chan
) -> None:
    ch.declare_queue("q")
    ch.publish("", "q", b"plain")
    assert store_of(harness, "q") == "fifo"
    ch.publish("", "q", b"expiring", properties=EXPIRING)
    assert store_of(harness, "q") == "features"
    assert ch.get_ok("q", no_ack=True).message.body == b"plain"
    got = ch.get_ok("q")  # the expiring one, unacked: it may still come back
    assert store_of(harness, "q") == "features"
    ch.nack(got.delivery_tag, requeue=True)
    assert store_of(harness, "q") == "features"
    got = ch.get_ok("q")
    assert got.redelivered and got.message.body == b"expiring"
    ch.ack(got.delivery_tag)
    assert store_of(harness, "q") == "fifo"
    ch.publish("", "q", b"after")  # and the plain path works on
    assert ch.get_ok("q", no_ack=True).message.body == b"after"


def test_the_feature_path_is_left_when_the_last_expiring_message_expires(
    harness: Harness, ch: Chan
) -> None:
    ch.declare_queue("q")
    ch.publish("", "q", b"short", properties=Properties(expiration="100"))
    ch.publish("", "q", b"long", properties=Properties(expiration="200"))
    harness.broker.handle_timeout(now=0.1)
    assert store_of(harness, "q") == "features"
    harness.broker.handle_timeout(now=0.2)
    assert store_of(harness, "q") == "fifo"
    assert harness.broker.queue_statistics("q").ready == 0
    assert harness.broker.next_deadline() is None


def test_a_consumer_drains_the_feature_path_back_to_plain(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q")
    ch.consume("q", "c")
    out = ch.publish("", "q", b"m", properties=EXPIRING)
    [delivery] = delivered(out)
    assert store_of(harness, "q") == "features"
    ch.ack(delivery.delivery_tag)
    assert store_of(harness, "q") == "fifo"


def test_purging_the_last_expiring_messages_leaves_the_feature_path(
    harness: Harness, ch: Chan
) -> None:
    ch.declare_queue("q")
    ch.publish("", "q", b"m", properties=EXPIRING)
    assert ch.purge("q") == 1
    assert store_of(harness, "q") == "fifo"


def test_consumer_priorities_never_take_the_feature_path(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q")
    ch.consume("q", "low", no_ack=True)
    ch.consume("q", "high", no_ack=True, arguments={"x-priority": 5})
    assert [d.consumer_tag for d in delivered(ch.publish("", "q", b"m"))] == ["high"]
    assert store_of(harness, "q") == "fifo"


@pytest.mark.parametrize("arguments", [
    {"x-expires": 1000}, {"x-single-active-consumer": True}, {"x-queue-type": "classic"},
])
def test_arguments_that_do_not_shape_storage_keep_a_queue_plain(
    harness: Harness, ch: Chan, arguments: FieldTable
) -> None:
    ch.declare_queue("q", arguments=arguments)
    assert store_of(harness, "q") == "fifo"


def test_a_queue_declared_with_features_keeps_them(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-message-ttl": 1000})
    ch.publish("", "q", b"m")
    ch.get_ok("q", no_ack=True)
    assert store_of(harness, "q") == "features"


# -- x-expires: every use renews the lease -----------------------------------------------------

USES: dict[str, Callable[[Chan], object]] = {
    "declare": lambda ch: ch.declare_queue("q", arguments={"x-expires": 1000}),
    "passive declare": lambda ch: ch.declare_queue("q", passive=True),
    "get": lambda ch: ch.get("q"),
    "consume and cancel": lambda ch: (ch.consume("q", "c"), ch.cancel("c")),
    "consume and close": lambda ch: (ch.consume("q", "c"), ch.close()),
}


@pytest.mark.parametrize("use", sorted(USES))
def test_a_used_queue_lives_a_full_lease_from_its_last_use(harness: Harness, use: str) -> None:
    ch = harness.open()
    ch.declare_queue("q", arguments={"x-expires": 1000})
    ch.publish("", "q", b"m")  # publishing is not a use
    harness.now = 0.6
    USES[use](ch)
    assert harness.broker.next_deadline() == pytest.approx(1.6)
    harness.broker.handle_timeout(now=1.0)  # the first lease would have ended here
    assert "q" in harness.broker.topology.queues
    harness.broker.handle_timeout(now=1.59)
    assert "q" in harness.broker.topology.queues
    harness.broker.handle_timeout(now=1.6)
    assert "q" not in harness.broker.topology.queues


# -- the ready meter -----------------------------------------------------------------------------

def meter_is_exact(harness: Harness) -> None:
    queues = harness.broker.topology.queues.values()
    weight = sum(len(entry.message.body) + MESSAGE_OVERHEAD
                 for queue in queues for entry in queue.entries())
    assert harness.broker.meter.weight == weight
    assert harness.broker.meter.total == weight


def test_the_meter_counts_queues_with_features_exactly(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("ttl", arguments={"x-message-ttl": 100})
    ch.declare_queue("short", arguments={"x-max-length": 2})
    ch.declare_queue("prio", arguments={"x-max-priority": 5})
    ch.declare_queue("plain")
    for body in (b"a", b"bb", b"ccc"):
        for queue in ("ttl", "short", "prio", "plain"):
            ch.publish("", queue, body, properties=Properties(priority=len(body)))
        meter_is_exact(harness)
    ch.publish("", "plain", b"dddd", properties=EXPIRING)  # plain -> features
    meter_is_exact(harness)
    got = ch.get_ok("prio")
    ch.nack(got.delivery_tag, requeue=True)
    meter_is_exact(harness)
    harness.broker.handle_timeout(now=1.0)  # "ttl" expires everything
    meter_is_exact(harness)
    ch.purge("plain")
    ch.delete_queue("short")
    meter_is_exact(harness)
    assert harness.broker.meter.weight == 3 * MESSAGE_OVERHEAD + 6  # "prio" is left


# -- the store seam: every transition reaches the store ---------------------------------------

class RecordingStore(FifoStore):
    """What a durable store would journal, as a list (``stores.py`` rule 4)."""

    __slots__ = ("intents",)

    def __init__(self, queue: Queue) -> None:
        old = queue.store
        super().__init__(queue, old.meter, old.ready, old.weight)
        self.intents: list[tuple[str, tuple[int, ...]]] = []

    def append(
        self, msg_id: int, message: Message, now: float, ttl: float | None
    ) -> QueueEntry | None:
        self.intents.append(("appended", (msg_id,)))
        return super().append(msg_id, message, now, ttl)

    def settle(self, entry: QueueEntry) -> None:
        self.intents.append(("settled", (entry.msg_id,)))

    def discard(self, entry: QueueEntry) -> None:
        self.intents.append(("settled", (entry.msg_id,)))

    def requeue(self, batch: list[QueueEntry]) -> None:
        self.intents.append(("requeued", tuple(entry.msg_id for entry in batch)))
        super().requeue(batch)

    def purge(self) -> int:
        self.intents.append(("purged", tuple(entry.msg_id for entry in self.entries())))
        return super().purge()

    def delete(self) -> int:
        self.intents.append(("deleted", tuple(entry.msg_id for entry in self.entries())))
        return super().purge()


def test_every_message_enters_and_leaves_through_the_store(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q")
    queue = harness.broker.topology.queues["q"]
    store = RecordingStore(queue)
    queue.use_store(store)
    assert not queue.plain and queue.features is None
    ch.qos(3)
    out = ch.consume("q", "c")
    tags = [d.delivery_tag for body in (b"1", b"2", b"3", b"4")
            for d in delivered(ch.publish("", "q", body))] + [
        d.delivery_tag for d in delivered(out)]
    assert tags == [1, 2, 3]  # prefetch 3: message 4 waits
    ch.ack(1)  # message 4 is delivered as tag 4
    ch.nack(2, requeue=True)  # message 2 back, and redelivered as tag 5
    ch.reject(3, requeue=False)
    ch.cancel("c")
    ch.publish("", "q", b"5")
    ch.publish("", "q", b"6")
    ch.purge("q")
    ch.publish("", "q", b"7")
    ch.close()  # tags 4 (message 4) and 5 (message 2) come back
    harness.open(1, 2).delete_queue("q")
    assert store.intents == [
        ("appended", (1,)), ("appended", (2,)), ("appended", (3,)), ("appended", (4,)),
        ("settled", (1,)), ("requeued", (2,)), ("settled", (3,)),
        ("appended", (5,)), ("appended", (6,)), ("purged", (5, 6)), ("appended", (7,)),
        ("requeued", (2, 4)), ("deleted", (2, 4, 7)),
    ]
    assert isinstance(store.ready, deque) and not store.ready


def test_requeued_messages_go_back_among_the_requeued_ahead_of_the_never_delivered(
    harness: Harness, ch: Chan
) -> None:
    """A requeue lands between earlier requeues, before every message never delivered (which
    a plain store keeps bare at the tail: ``stores.py`` rule 7)."""
    ch.declare_queue("q")
    for body in (b"1", b"2", b"3", b"4", b"5", b"6"):
        ch.publish("", "q", body)
    tags = [ch.get_ok("q").delivery_tag for _ in range(3)]  # 1, 2, 3 out; 4-6 never delivered
    ch.nack(tags[0], requeue=True)
    ch.nack(tags[2], requeue=True)  # after 1, before 4
    got = [ch.get_ok("q", no_ack=True) for _ in range(5)]
    assert [(g.message.body, g.redelivered) for g in got] == [
        (b"1", True), (b"3", True), (b"4", False), (b"5", False), (b"6", False)]
    assert [g.message_count for g in got] == [4, 3, 2, 1, 0]
    ch.ack(tags[1])
    meter_is_exact(harness)
