"""Broker core: ack, nack, reject, recover, and what closing a channel or connection gives back."""

from __future__ import annotations

import pytest

from minibroker.core.effects import Deliver
from minibroker.errors import NotImplementedFeature, PreconditionFailed

from .helpers import Chan, Harness, bodies, delivered


@pytest.fixture
def ch() -> Chan:
    chan = Harness().open()
    chan.declare_queue("q")
    return chan


def fill(ch: Chan, *messages: bytes, queue: str = "q") -> None:
    for body in messages:
        ch.publish("", queue, body)


def drain(ch: Chan, queue: str = "q") -> list[tuple[bytes, bool]]:
    """Take every ready message with no-ack gets: (body, redelivered) in queue order."""
    taken = []
    while ch.harness.broker.queue_statistics(queue).ready:
        reply = ch.get_ok(queue, no_ack=True)
        taken.append((reply.message.body, reply.redelivered))
    return taken


def stats(ch: Chan, queue: str = "q") -> tuple[int, int]:
    s = ch.harness.broker.queue_statistics(queue)
    return s.ready, s.unacked


# -- ack --------------------------------------------------------------------------------------


def test_ack_settles_for_good(ch: Chan) -> None:
    fill(ch, b"1")
    tag = ch.get_ok("q").delivery_tag
    ch.ack(tag)
    assert stats(ch) == (0, 0)
    assert ch.harness.broker.statistics().acked == 1


@pytest.mark.parametrize("tag", [0, 2, 99])
def test_ack_of_an_unknown_tag_is_a_precondition_failure(ch: Chan, tag: int) -> None:
    fill(ch, b"1")
    ch.get_ok("q")
    with pytest.raises(PreconditionFailed) as info:
        ch.ack(tag)
    assert info.value.reply_code == 406
    assert info.value.text == f"unknown delivery tag {tag}"


def test_acking_twice_is_unknown_the_second_time(ch: Chan) -> None:
    fill(ch, b"1")
    tag = ch.get_ok("q").delivery_tag
    ch.ack(tag)
    with pytest.raises(PreconditionFailed) as info:
        ch.ack(tag)
    assert info.value.text == f"unknown delivery tag {tag}"


def test_ack_on_another_channel_is_unknown() -> None:
    harness = Harness()
    one = harness.open(1, 1)
    two = harness.open(1, 2)
    one.declare_queue("q")
    fill(one, b"1")
    tag = one.get_ok("q").delivery_tag
    with pytest.raises(PreconditionFailed):
        two.ack(tag)


def test_ack_multiple_settles_everything_up_to_the_tag(ch: Chan) -> None:
    fill(ch, b"1", b"2", b"3", b"4")
    tags = [ch.get_ok("q").delivery_tag for _ in range(4)]
    ch.ack(tags[2], multiple=True)
    assert stats(ch) == (0, 1)
    ch.ack(tags[3])


def test_ack_multiple_with_tag_zero_settles_all_outstanding(ch: Chan) -> None:
    fill(ch, b"1", b"2", b"3")
    for _ in range(3):
        ch.get_ok("q")
    ch.ack(0, multiple=True)
    assert stats(ch) == (0, 0)


def test_ack_multiple_with_a_tag_not_outstanding_is_refused(ch: Chan) -> None:
    fill(ch, b"1", b"2")
    first = ch.get_ok("q").delivery_tag
    second = ch.get_ok("q").delivery_tag
    ch.ack(first)
    with pytest.raises(PreconditionFailed) as info:
        ch.ack(first, multiple=True)
    assert info.value.text == f"unknown delivery tag {first}"
    with pytest.raises(PreconditionFailed):
        ch.ack(second + 5, multiple=True)
    assert stats(ch) == (0, 1)


def test_acking_a_no_ack_delivery_is_unknown(ch: Chan) -> None:
    ch.consume("q", "c", no_ack=True)
    tag = delivered(ch.publish("", "q", b"1"))[0].delivery_tag
    with pytest.raises(PreconditionFailed):
        ch.ack(tag)


# -- nack and reject --------------------------------------------------------------------------


def test_requeued_message_goes_back_to_its_original_position(ch: Chan) -> None:
    fill(ch, b"1", b"2", b"3", b"4")
    first = ch.get_ok("q").delivery_tag
    third_tag = [ch.get_ok("q").delivery_tag for _ in range(2)][1]
    ch.reject(third_tag)
    ch.nack(first)
    assert drain(ch) == [(b"1", True), (b"3", True), (b"4", False)]


def test_nack_multiple_requeues_everything_up_to_the_tag_in_order(ch: Chan) -> None:
    fill(ch, b"1", b"2", b"3")
    tags = [ch.get_ok("q").delivery_tag for _ in range(3)]
    ch.nack(tags[1], multiple=True)
    assert stats(ch) == (2, 1)
    assert drain(ch) == [(b"1", True), (b"2", True)]


def test_reject_and_nack_without_requeue_drop_the_message(ch: Chan) -> None:
    fill(ch, b"1", b"2", b"3")
    tags = [ch.get_ok("q").delivery_tag for _ in range(3)]
    ch.reject(tags[0], requeue=False)
    ch.nack(0, multiple=True, requeue=False)
    assert stats(ch) == (0, 0)


@pytest.mark.parametrize("verb", ["nack", "reject"])
def test_nack_and_reject_of_an_unknown_tag_are_refused(ch: Chan, verb: str) -> None:
    with pytest.raises(PreconditionFailed) as info:
        if verb == "nack":
            ch.nack(7)
        else:
            ch.reject(7)
    assert info.value.text == "unknown delivery tag 7"


def test_a_requeued_delivery_goes_to_the_next_consumer_redelivered(ch: Chan) -> None:
    ch.consume("q", "a")
    ch.consume("q", "b")
    first = delivered(ch.publish("", "q", b"1"))[0]
    assert first.consumer_tag == "a"
    (again,) = delivered(ch.nack(first.delivery_tag))
    assert (again.consumer_tag, again.redelivered, again.message.body) == ("b", True, b"1")


@pytest.mark.parametrize("verb", ["nack", "reject"])
def test_requeue_keeps_the_consumer_within_its_prefetch(ch: Chan, verb: str) -> None:
    # Regression: a requeue released the consumer's credit twice, so a qos(1) consumer ended up
    # with two deliveries outstanding.
    ch.qos(1)
    ch.consume("q", "c")
    first = delivered(ch.publish("", "q", b"1"))[0]
    fill(ch, b"2", b"3")
    tag = first.delivery_tag
    outcome = ch.nack(tag) if verb == "nack" else ch.reject(tag)
    assert [(d.message.body, d.redelivered) for d in delivered(outcome)] == [(b"1", True)]
    assert stats(ch) == (2, 1)
    (consumer,) = ch.harness.broker.snapshot().consumers
    assert consumer.unacked == 1


def test_requeue_keeps_the_channel_within_its_global_prefetch(ch: Chan) -> None:
    ch.qos(2, global_=True)
    ch.consume("q", "a")
    ch.consume("q", "b")
    fill(ch, b"1", b"2", b"3", b"4", b"5")
    assert stats(ch) == (3, 2)
    ch.nack(0, multiple=True)
    assert stats(ch) == (3, 2)


# -- closing gives everything back ------------------------------------------------------------


def test_closing_a_channel_requeues_its_unacked_in_order_redelivered() -> None:
    harness = Harness()
    admin = harness.open(1, 1)
    admin.declare_queue("q")
    worker = harness.open(2, 1)
    worker.consume("q", "w")
    fill(admin, b"1", b"2", b"3")
    worker.ack(2)
    fill(admin, b"4")
    outcome = worker.close()
    assert outcome.effects == []
    assert harness.broker.statistics().consumers == 0
    assert drain(admin) == [(b"1", True), (b"3", True), (b"4", True)]


def test_closing_a_channel_hands_its_messages_to_another_consumer() -> None:
    harness = Harness()
    one = harness.open(1, 1)
    one.declare_queue("q")
    one.consume("q", "first")
    fill(one, b"1", b"2")
    two = harness.open(2, 1)
    two.consume("q", "second")
    outcome = one.close()
    assert [(d.connection, d.consumer_tag, d.message.body, d.redelivered)
            for d in delivered(outcome)] == [(2, "second", b"1", True), (2, "second", b"2", True)]


def test_closing_a_connection_requeues_every_channel_and_delivers_nothing_to_itself() -> None:
    harness = Harness()
    admin = harness.open(1, 1)
    admin.declare_queue("q")
    a = harness.open(2, 1)
    b = harness.open(2, 2)
    a.consume("q", "a")
    b.consume("q", "b")
    fill(admin, b"1", b"2", b"3", b"4")
    outcome = harness.close_connection(2)
    # Regression: closing the first channel used to redeliver its messages to the second
    # channel of the very connection being closed.
    assert [e for e in outcome.effects if getattr(e, "connection", None) == 2] == []
    stats_ = harness.broker.statistics()
    assert (stats_.connections, stats_.channels, stats_.consumers) == (1, 1, 0)
    assert drain(admin) == [(b"1", True), (b"2", True), (b"3", True), (b"4", True)]


def test_cancelled_consumers_unacked_are_requeued_when_the_channel_closes(ch: Chan) -> None:
    ch.consume("q", "c")
    fill(ch, b"1")
    ch.cancel("c")
    other = ch.harness.open(1, 2)
    ch.close()
    assert drain(other) == [(b"1", True)]


# -- recover ----------------------------------------------------------------------------------


def test_recover_requeues_every_unacked_delivery_of_the_channel(ch: Chan) -> None:
    ch.consume("q", "c")
    fill(ch, b"1", b"2")
    outcome = ch.recover()
    assert [(d.delivery_tag, d.redelivered, d.message.body) for d in delivered(outcome)] == [
        (3, True, b"1"), (4, True, b"2"),
    ]
    ch.ack(4, multiple=True)
    assert stats(ch) == (0, 0)


def test_recover_that_frees_global_credit_delivers_from_other_queues(ch: Chan) -> None:
    # Regression: recover only looked at the queues it requeued to, so a consumer of another
    # queue stayed blocked although the channel's global credit was free again.
    ch.declare_queue("r")
    ch.qos(1, global_=True)
    ch.consume("q", "cq")
    fill(ch, b"1")
    ch.cancel("cq")
    ch.consume("r", "cr")
    fill(ch, b"2", queue="r")
    assert [(d.consumer_tag, d.message.body) for d in delivered(ch.recover())] == [("cr", b"2")]


def test_recover_requeues_get_deliveries_too(ch: Chan) -> None:
    fill(ch, b"1")
    ch.get_ok("q")
    assert ch.recover().effects == []
    assert drain(ch) == [(b"1", True)]


def test_recover_without_requeue_is_not_implemented(ch: Chan) -> None:
    with pytest.raises(NotImplementedFeature) as info:
        ch.recover(requeue=False)
    assert info.value.reply_code == 540
    assert info.value.text == "requeue=false"


def test_acks_after_the_queue_is_deleted_are_accepted(ch: Chan) -> None:
    ch.consume("q", "c")
    tag = delivered(ch.publish("", "q", b"1"))[0].delivery_tag
    other = ch.harness.open(1, 2)
    other.delete_queue("q")
    assert ch.ack(tag).effects == []
    assert ch.harness.broker.statistics().messages_unacked == 0


def test_a_deleted_queue_does_not_come_back_through_requeue(ch: Chan) -> None:
    fill(ch, b"1")
    ch.get_ok("q")
    ch.harness.open(1, 2).delete_queue("q")
    assert ch.nack(0, multiple=True).effects == []
    ch.declare_queue("q")
    assert stats(ch) == (0, 0)


def test_deliver_is_a_value(ch: Chan) -> None:
    ch.consume("q", "c")
    (d,) = delivered(ch.publish("", "q", b"1"))
    assert isinstance(d, Deliver) and bodies([d]) == [b"1"]
