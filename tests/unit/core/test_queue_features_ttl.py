"""Message TTL, per-message expiration, queue expiry and the core's timers (manual ``now``)."""

from __future__ import annotations

import pytest

from minibroker.core.broker import Broker
from minibroker.core.effects import ConsumerCancelled, GetEmpty
from minibroker.core.fates import Fate
from minibroker.errors import PreconditionFailed
from minibroker.message import Message, Properties
from tests.unit.core.helpers import Chan, Harness, bodies


def ready(ch: Chan, queue: str) -> int:
    return ch.declare_queue(queue, passive=True).message_count


def test_queue_ttl_expires_messages_at_their_deadline(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-message-ttl": 1000})
    ch.publish("", "q", b"old")
    harness.now = 0.5
    ch.publish("", "q", b"new")
    assert harness.broker.next_deadline() == 1.0
    assert harness.broker.handle_timeout(now=1.0) == []
    assert ready(ch, "q") == 1
    assert harness.broker.next_deadline() == 1.5
    harness.now = 1.2
    assert ch.get_ok("q").message.body == b"new"
    assert harness.broker.next_deadline() is None


def test_an_expired_message_is_never_delivered_even_before_the_timer(
    harness: Harness, ch: Chan
) -> None:
    ch.declare_queue("q", arguments={"x-message-ttl": 10_000})
    ch.publish("", "q", b"stale", properties=Properties(expiration="100"))
    ch.publish("", "q", b"x")
    harness.now = 5.0  # "stale" expired at 0.1; the shell has not fired the timer yet
    out = ch.consume("q", no_ack=True)
    assert bodies(out) == [b"x"]  # the expired head is skipped, the live message delivered


def test_lower_of_queue_and_message_ttl_applies(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-message-ttl": 10_000})
    ch.publish("", "q", b"short", properties=Properties(expiration="100"))
    ch.publish("", "q", b"long", properties=Properties(expiration="60000"))
    harness.broker.handle_timeout(now=0.1)
    assert ready(ch, "q") == 1
    harness.broker.handle_timeout(now=10.0)
    assert ready(ch, "q") == 0


def test_per_message_expiration_on_a_plain_queue(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q")
    ch.publish("", "q", b"a", properties=Properties(expiration="200"))
    ch.publish("", "q", b"b")
    assert harness.broker.next_deadline() == 0.2
    harness.broker.handle_timeout(now=0.2)
    assert ch.get_ok("q", no_ack=True).message.body == b"b"


def test_expiration_behind_the_head_waits_for_the_head(harness: Harness, ch: Chan) -> None:
    # RabbitMQ: "only when expired messages reach the head of a queue will they be discarded".
    ch.declare_queue("q")
    ch.publish("", "q", b"forever")
    ch.publish("", "q", b"soon", properties=Properties(expiration="100"))
    assert harness.broker.next_deadline() is None
    harness.now = 1.0
    assert ready(ch, "q") == 2
    assert ch.get_ok("q", no_ack=True).message.body == b"forever"
    assert ready(ch, "q") == 0  # the new head had expired: removed at once
    assert isinstance(ch.get("q").reply, GetEmpty)


def test_ttl_zero_delivers_to_a_waiting_consumer_or_expires(
    harness: Harness, ch: Chan
) -> None:
    ch.declare_queue("idle")
    ch.declare_queue("busy")
    ch.consume("busy", no_ack=True)
    assert bodies(ch.publish("", "busy", b"now", properties=Properties(expiration="0"))) == [
        b"now"]
    assert bodies(ch.publish("", "idle", b"nobody", properties=Properties(expiration="0"))) == []
    assert ready(ch, "idle") == 0


def test_requeued_message_keeps_its_deadline(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-message-ttl": 1000})
    ch.publish("", "q", b"m")
    harness.now = 0.9
    tag = ch.get_ok("q").delivery_tag
    ch.nack(tag, requeue=True)
    assert harness.broker.next_deadline() == 1.0
    harness.broker.handle_timeout(now=1.0)
    assert ready(ch, "q") == 0


@pytest.mark.parametrize(("expiration", "text"), [
    ("abc", "invalid expiration 'abc': no_integer"),
    ("-5", "invalid expiration '-5': {value_negative,-5}"),
    ("1.5", "invalid expiration '1.5': {leftover_string,\".5\"}"),
    ("", "invalid expiration '': no_integer"),
])
def test_invalid_expiration_is_refused_before_routing(
    harness: Harness, ch: Chan, expiration: str, text: str
) -> None:
    ch.declare_queue("q")
    with pytest.raises(PreconditionFailed) as info:
        ch.publish("", "q", b"x", properties=Properties(expiration=expiration))
    assert info.value.text == text
    assert ready(ch, "q") == 0


def test_a_huge_expiration_is_a_406_with_a_short_text(ch: Chan) -> None:
    ch.declare_queue("q")
    with pytest.raises(PreconditionFailed) as info:
        ch.publish("", "q", b"x", properties=Properties(expiration="9" * 5000))
    assert info.value.text.endswith("value_too_large") and len(info.value.text) < 120


def test_a_polled_expiring_queue_keeps_one_timer(harness: Harness, ch: Chan) -> None:
    """Memory: every basic.get restarts x-expires; the timer heap must not grow per poll, even
    while an earlier live deadline (a TTL queue's head) keeps stale entries off the top."""
    ch.declare_queue("ttl", arguments={"x-message-ttl": 60_000})
    ch.publish("", "ttl", b"m")
    ch.declare_queue("polled", arguments={"x-expires": 3_600_000})
    for step in range(1000):
        harness.now = step * 0.01
        ch.get("polled")
        harness.broker.next_deadline()
    assert len(harness.broker.timers) <= 64  # compacted, not one entry per poll
    harness.now = 3600 + 10.0
    harness.broker.handle_timeout(now=harness.now)
    assert "polled" not in harness.broker.topology.queues  # it still expires


def test_expired_fate_is_reported(harness: Harness, ch: Chan) -> None:
    fates: list[Fate] = []
    harness.broker.observer = fates.append
    ch.declare_queue("q", arguments={"x-message-ttl": 10})
    ch.publish("", "q", b"m")
    harness.broker.handle_timeout(now=1.0)
    assert [(f.kind, f.queue) for f in fates if f.kind == "expired"] == [("expired", "q")]


# -- x-expires ---------------------------------------------------------------------------------

def test_unused_queue_is_deleted_after_x_expires(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-expires": 200})
    ch.publish("", "q", b"m")  # publishing does not count as use
    assert harness.broker.next_deadline() == 0.2
    harness.now = 0.1
    ch.declare_queue("q", arguments={"x-expires": 200})  # a redeclare does
    assert harness.broker.next_deadline() == pytest.approx(0.3)
    assert harness.broker.handle_timeout(now=0.2) == []
    assert "q" in harness.broker.topology.queues
    harness.broker.handle_timeout(now=0.31)
    assert "q" not in harness.broker.topology.queues


def test_a_consumer_keeps_the_queue_and_its_cancel_restarts_the_countdown(
    harness: Harness, ch: Chan
) -> None:
    ch.declare_queue("q", arguments={"x-expires": 100})
    ch.consume("q", "c")
    harness.broker.handle_timeout(now=5.0)
    assert "q" in harness.broker.topology.queues
    harness.now = 5.0
    ch.cancel("c")
    assert harness.broker.next_deadline() == pytest.approx(5.1)
    harness.broker.handle_timeout(now=5.11)
    assert "q" not in harness.broker.topology.queues


def test_get_counts_as_use(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-expires": 100})
    harness.now = 0.05
    ch.get("q")
    harness.broker.handle_timeout(now=0.1)
    assert "q" in harness.broker.topology.queues


def test_deleting_a_consumed_queue_notifies_its_consumers(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-message-ttl": 100})
    ch.consume("q", "c")
    out = ch.delete_queue("q")
    assert out.effects == [ConsumerCancelled(1, 1, "c")]
    assert harness.broker.next_deadline() is None


def test_timers_of_a_deleted_queue_are_dropped() -> None:
    harness = Harness(Broker())
    ch = harness.open()
    ch.declare_queue("q", arguments={"x-message-ttl": 100, "x-expires": 500})
    ch.publish("", "q", b"m")
    ch.delete_queue("q")
    assert harness.broker.next_deadline() is None
    assert harness.broker.handle_timeout(now=10.0) == []


def test_only_entries_that_can_expire_carry_a_deadline() -> None:
    """Memory: a plain queue's entries have no deadline slot; a TTL queue's entries do."""
    from minibroker.core.stores import QueueEntry, TimedEntry

    harness = Harness()
    ch = harness.open()
    ch.declare_queue("plain")
    ch.declare_queue("ttl", arguments={"x-message-ttl": 1000})
    ch.publish("", "plain", b"p")
    ch.publish("", "ttl", b"t")
    plain = harness.broker.topology.queues["plain"]
    timed = harness.broker.topology.queues["ttl"].ready[0]
    # A plain queue keeps the message bare until it is delivered (``stores.py`` rule 7).
    assert type(plain.ready[0]) is Message
    assert [type(entry) for entry in plain.entries()] == [QueueEntry]
    assert next(plain.entries()).expires_at is None
    assert type(timed) is TimedEntry and timed.expires_at is not None
