"""Broker core: publish and deliver — consumers, round-robin, delivery tags, get, cancel, qos."""

from __future__ import annotations

import pytest

from minibroker.core.effects import GET_EMPTY, CancelOk, ConsumeOk, Deliver, GetOk
from minibroker.errors import AccessRefused, NotAllowed, NotFound
from minibroker.message import Message, Properties

from .helpers import Chan, Harness, bodies, delivered


@pytest.fixture
def ch() -> Chan:
    harness = Harness()
    chan = harness.open()
    chan.declare_queue("q")
    return chan


def unacked(ch: Chan, queue: str = "q") -> int:
    return ch.harness.broker.queue_statistics(queue).unacked


# -- delivering -------------------------------------------------------------------------------


def test_a_delivery_carries_tags_flag_and_the_message_unchanged(ch: Chan) -> None:
    ch.bind("q", "amq.direct", "rk")
    assert ch.consume("q", "ctag").reply == ConsumeOk("ctag")
    properties = Properties(content_type="text/plain", headers={"h": 1}, message_id="id-1")
    outcome = ch.publish("amq.direct", "rk", b"body", properties=properties)
    assert outcome.effects == [
        Deliver(1, 1, "ctag", 1, False, Message("amq.direct", "rk", b"body", properties)),
    ]


def test_messages_waiting_are_delivered_in_the_consume_outcome(ch: Chan) -> None:
    ch.publish("", "q", b"1")
    ch.publish("", "q", b"2")
    outcome = ch.consume("q", "c")
    assert outcome.reply == ConsumeOk("c")
    assert bodies(outcome) == [b"1", b"2"]


def test_a_message_routed_to_several_queues_is_enqueued_once_in_each(ch: Chan) -> None:
    ch.declare_queue("r")
    for queue in ("q", "r"):
        ch.bind(queue, "amq.topic", "a.*")
        ch.bind(queue, "amq.topic", "*.b")
    ch.consume("q", "cq")
    ch.consume("r", "cr")
    outcome = ch.publish("amq.topic", "a.b", b"m")
    assert sorted((d.consumer_tag, d.message.body) for d in delivered(outcome)) == [
        ("cq", b"m"), ("cr", b"m"),
    ]


def test_consumers_of_a_queue_get_messages_round_robin(ch: Chan) -> None:
    for tag in ("a", "b", "c"):
        ch.consume("q", tag)
    tags = [delivered(ch.publish("", "q", bytes([i])))[0].consumer_tag for i in range(7)]
    assert tags == ["a", "b", "c", "a", "b", "c", "a"]


def test_round_robin_skips_a_consumer_without_credit(ch: Chan) -> None:
    ch.qos(1)
    ch.consume("q", "a")
    ch.qos(0)
    ch.consume("q", "b")
    tags = [delivered(ch.publish("", "q", bytes([i])))[0].consumer_tag for i in range(4)]
    assert tags == ["a", "b", "b", "b"]


def test_delivery_tags_increase_per_channel_shared_with_get_ok() -> None:
    harness = Harness()
    one = harness.open(1, 1)
    two = harness.open(1, 2)
    one.declare_queue("q")
    one.declare_queue("g")
    one.consume("q", "c")
    two.consume("q", "c")  # the same tag on another channel is fine
    tags: list[tuple[int, int]] = []
    for i in range(4):
        tags += [(d.channel, d.delivery_tag) for d in delivered(one.publish("", "q", bytes([i])))]
        one.publish("", "g", b"g")
        tags.append((1, one.get_ok("g").delivery_tag))
    assert [t for ch, t in tags if ch == 1] == [1, 2, 3, 4, 5, 6]
    assert [t for ch, t in tags if ch == 2] == [1, 2]


# -- consume options --------------------------------------------------------------------------


def test_an_empty_consumer_tag_is_generated_unique(ch: Chan) -> None:
    first = ch.consume("q").reply
    second = ch.consume("q").reply
    assert isinstance(first, ConsumeOk) and isinstance(second, ConsumeOk)
    assert first.consumer_tag.startswith("amq.ctag-")
    assert first.consumer_tag != second.consumer_tag
    assert delivered(ch.publish("", "q", b"m"))[0].consumer_tag == first.consumer_tag


def test_a_client_tag_with_the_amq_prefix_is_allowed(ch: Chan) -> None:
    assert ch.consume("q", "amq.ctag-PCmzXGkhCw_v0Zq7jXyvkg").reply == ConsumeOk(
        "amq.ctag-PCmzXGkhCw_v0Zq7jXyvkg"
    )


def test_reusing_a_consumer_tag_on_a_channel_is_a_connection_error(ch: Chan) -> None:
    ch.consume("q", "t1")
    with pytest.raises(NotAllowed) as info:
        ch.consume("q", "t1")
    assert info.value.reply_code == 530
    assert not info.value.is_channel_error
    assert info.value.text == "attempt to reuse consumer tag 't1'"


def test_an_exclusive_consumer_locks_out_other_consumers() -> None:
    harness = Harness()
    one = harness.open(1)
    one.declare_queue("q")
    one.consume("q", "only", exclusive=True)
    for chan, tag in ((one, "second"), (harness.open(2), "third")):
        with pytest.raises(AccessRefused) as info:
            chan.consume("q", tag)
        assert info.value.text == "queue 'q' in vhost '/' in exclusive use"
    one.cancel("only")
    one.consume("q", "after")


def test_an_exclusive_consumer_is_refused_on_a_queue_with_consumers(ch: Chan) -> None:
    ch.consume("q", "plain")
    with pytest.raises(AccessRefused) as info:
        ch.consume("q", "excl", exclusive=True)
    assert info.value.reply_code == 403


def test_consume_from_a_missing_queue_is_not_found(ch: Chan) -> None:
    with pytest.raises(NotFound) as info:
        ch.consume("nope")
    assert info.value.text == "no queue 'nope' in vhost '/'"


def test_consumer_arguments_are_kept(ch: Chan) -> None:
    ch.consume("q", "c", arguments={"x-priority": 5})
    (consumer,) = ch.harness.broker.snapshot().consumers
    assert (consumer.consumer_tag, consumer.arguments) == ("c", {"x-priority": 5})


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_stops_delivery_and_keeps_unacked_messages(ch: Chan) -> None:
    ch.consume("q", "c")
    tag = delivered(ch.publish("", "q", b"1"))[0].delivery_tag
    assert ch.cancel("c").reply == CancelOk("c")
    assert ch.publish("", "q", b"2").effects == []
    assert (ch.harness.broker.queue_statistics("q").ready, unacked(ch)) == (1, 1)
    ch.ack(tag)
    assert unacked(ch) == 0


def test_cancel_of_an_unknown_tag_is_ok(ch: Chan) -> None:
    assert ch.cancel("never") == ch.cancel("never")
    assert ch.cancel("never").reply == CancelOk("never")


# -- get --------------------------------------------------------------------------------------


def test_get_returns_the_head_with_the_count_still_ready(ch: Chan) -> None:
    ch.bind("q", "amq.direct", "k")
    for body in (b"1", b"2", b"3"):
        ch.publish("amq.direct", "k", body)
    reply = ch.get("q").reply
    assert reply == GetOk(1, False, "amq.direct", "k", 2, Message("amq.direct", "k", b"1"))
    assert unacked(ch) == 1


def test_get_on_an_empty_queue_is_get_empty(ch: Chan) -> None:
    assert ch.get("q").reply is GET_EMPTY
    ch.publish("", "q", b"m")
    ch.get_ok("q", no_ack=True)
    assert ch.get("q").reply == GET_EMPTY
    assert unacked(ch) == 0


def test_get_does_not_bypass_a_consumer_with_credit(ch: Chan) -> None:
    ch.consume("q", "c")
    ch.publish("", "q", b"m")
    assert ch.get("q").reply == GET_EMPTY


# -- prefetch ---------------------------------------------------------------------------------


def test_per_consumer_prefetch_applies_to_consumers_created_afterwards(ch: Chan) -> None:
    ch.consume("q", "unlimited")
    ch.qos(2)
    ch.consume("q", "limited")
    counts = {"unlimited": 0, "limited": 0}
    for i in range(10):
        for d in delivered(ch.publish("", "q", bytes([i]))):
            counts[d.consumer_tag] += 1
    assert counts == {"unlimited": 8, "limited": 2}


def test_per_consumer_prefetch_limits_each_consumer(ch: Chan) -> None:
    ch.qos(3)
    ch.consume("q", "a")
    ch.consume("q", "b")
    for i in range(10):
        ch.publish("", "q", bytes([i]))
    assert unacked(ch) == 6  # RabbitMQ: qos(3, global=false) + 2 consumers -> 6 in flight
    assert ch.harness.broker.queue_statistics("q").ready == 4


def test_global_prefetch_limits_the_channel(ch: Chan) -> None:
    ch.qos(3, global_=True)
    ch.consume("q", "a")
    ch.consume("q", "b")
    for i in range(10):
        ch.publish("", "q", bytes([i]))
    assert unacked(ch) == 3


def test_both_limits_are_active_at_once(ch: Chan) -> None:
    ch.qos(2)
    ch.qos(3, global_=True)
    ch.consume("q", "a")
    ch.consume("q", "b")
    ch.consume("q", "c")
    for i in range(10):
        ch.publish("", "q", bytes([i]))
    per_consumer = {c.consumer_tag: c.unacked for c in ch.harness.broker.snapshot().consumers}
    assert sum(per_consumer.values()) == 3
    assert max(per_consumer.values()) <= 2


def test_an_ack_that_frees_credit_delivers_in_its_own_outcome(ch: Chan) -> None:
    ch.qos(1)
    ch.consume("q", "c")
    first = delivered(ch.publish("", "q", b"1"))[0]
    assert ch.publish("", "q", b"2").effects == []
    outcome = ch.ack(first.delivery_tag)
    assert [(d.message.body, d.delivery_tag) for d in delivered(outcome)] == [(b"2", 2)]


def test_an_ack_that_frees_global_credit_delivers_in_its_own_outcome(ch: Chan) -> None:
    ch.declare_queue("r")
    ch.qos(1, global_=True)
    ch.consume("q", "cq")
    ch.consume("r", "cr")
    first = delivered(ch.publish("", "q", b"1"))[0]
    assert ch.publish("", "r", b"2").effects == []
    assert [(d.consumer_tag, d.message.body) for d in delivered(ch.ack(first.delivery_tag))] == [
        ("cr", b"2")
    ]


def test_raising_the_global_limit_delivers_at_once(ch: Chan) -> None:
    ch.qos(1, global_=True)
    ch.consume("q", "c")
    for body in (b"1", b"2", b"3"):
        ch.publish("", "q", body)
    assert bodies(ch.qos(3, global_=True)) == [b"2", b"3"]


def test_no_ack_consumers_ignore_prefetch(ch: Chan) -> None:
    ch.qos(1)
    ch.qos(1, global_=True)
    ch.consume("q", "c", no_ack=True)
    delivered_count = sum(len(delivered(ch.publish("", "q", bytes([i])))) for i in range(5))
    assert delivered_count == 5
    assert unacked(ch) == 0
    assert ch.harness.broker.queue_statistics("q").ready == 0


def test_get_deliveries_do_not_count_against_prefetch(ch: Chan) -> None:
    ch.declare_queue("g")
    ch.publish("", "g", b"g")
    ch.get_ok("g")
    ch.qos(1, global_=True)
    ch.consume("q", "c")
    assert len(delivered(ch.publish("", "q", b"m"))) == 1
