"""Broker core: publisher confirms, mandatory returns and transactions."""

from __future__ import annotations

import pytest

from minibroker.core import commands as c
from minibroker.core.effects import Confirm, Return
from minibroker.errors import PreconditionFailed
from minibroker.message import Message, Properties

from .helpers import Chan, Harness, bodies, delivered


@pytest.fixture
def ch() -> Chan:
    chan = Harness().open()
    chan.declare_queue("q")
    return chan


def ready_unacked(ch: Chan, queue: str = "q") -> tuple[int, int]:
    s = ch.harness.broker.queue_statistics(queue)
    return s.ready, s.unacked


# -- mandatory returns ------------------------------------------------------------------------


def test_mandatory_unroutable_message_is_returned_with_no_route(ch: Chan) -> None:
    outcome = ch.publish("amq.direct", "nowhere", b"m", mandatory=True)
    assert outcome.effects == [
        Return(1, 1, 312, "NO_ROUTE", Message("amq.direct", "nowhere", b"m")),
    ]
    assert ch.harness.broker.statistics().returned == 1


def test_unroutable_without_mandatory_is_dropped_silently(ch: Chan) -> None:
    assert ch.publish("amq.direct", "nowhere", b"m").effects == []


def test_routable_mandatory_message_is_not_returned(ch: Chan) -> None:
    assert ch.publish("", "q", b"m", mandatory=True).effects == []
    assert ready_unacked(ch) == (1, 0)


# -- confirms ---------------------------------------------------------------------------------


def test_confirms_number_publishes_from_one_per_channel() -> None:
    harness = Harness()
    one = harness.open(1, 1)
    two = harness.open(1, 2)
    one.declare_queue("q")
    one.publish("", "q", b"before select")
    one.confirm_select()
    one.confirm_select()  # idempotent: numbering does not restart
    two.confirm_select()
    confirms = [one.publish("", "q", b"a").effects, one.publish("", "q", b"b").effects,
                two.publish("", "q", b"c").effects]
    assert confirms == [[Confirm(1, 1, 1)], [Confirm(1, 1, 2)], [Confirm(1, 2, 1)]]


def test_unroutable_messages_are_confirmed_at_once(ch: Chan) -> None:
    ch.confirm_select()
    assert ch.publish("amq.direct", "nowhere", b"m").effects == [Confirm(1, 1, 1)]
    assert ch.publish("", "no-queue", b"m").effects == [Confirm(1, 1, 2)]


def test_mandatory_return_comes_before_its_confirm(ch: Chan) -> None:
    ch.confirm_select()
    outcome = ch.publish("amq.direct", "nowhere", b"m", mandatory=True)
    assert [type(e) for e in outcome.effects] == [Return, Confirm]
    assert outcome.effects[1] == Confirm(1, 1, 1)


def test_confirm_follows_the_deliveries_of_its_message(ch: Chan) -> None:
    ch.consume("q", "c")
    ch.confirm_select()
    outcome = ch.publish("", "q", b"m")
    assert bodies(outcome) == [b"m"]
    assert outcome.effects[-1] == Confirm(1, 1, 1)


def test_confirm_select_on_a_tx_channel_is_refused(ch: Chan) -> None:
    ch.tx_select()
    with pytest.raises(PreconditionFailed) as info:
        ch.confirm_select()
    assert info.value.text == "cannot switch from tx to confirm mode"


def test_tx_select_on_a_confirm_channel_is_refused(ch: Chan) -> None:
    ch.confirm_select()
    with pytest.raises(PreconditionFailed) as info:
        ch.tx_select()
    assert info.value.text == "cannot switch from confirm to tx mode"


# -- transactions -----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["commit", "rollback"])
def test_commit_or_rollback_without_select_is_refused(ch: Chan, verb: str) -> None:
    with pytest.raises(PreconditionFailed) as info:
        ch.tx_commit() if verb == "commit" else ch.tx_rollback()
    assert info.value.reply_code == 406
    assert info.value.text == "channel is not transactional"


def test_publishes_are_buffered_until_commit(ch: Chan) -> None:
    ch.consume("q", "c")
    ch.tx_select()
    assert ch.publish("", "q", b"1").effects == []
    assert ch.publish("", "q", b"2").effects == []
    assert ready_unacked(ch) == (0, 0)
    assert bodies(ch.tx_commit()) == [b"1", b"2"]
    assert ready_unacked(ch) == (0, 2)
    assert ch.tx_commit().effects == []  # the buffer is empty after a commit


def test_rollback_discards_publishes(ch: Chan) -> None:
    ch.tx_select()
    ch.publish("", "q", b"1")
    assert ch.tx_rollback().effects == []
    assert ch.tx_commit().effects == []
    assert ready_unacked(ch) == (0, 0)


def test_acks_are_buffered_until_commit(ch: Chan) -> None:
    ch.publish("", "q", b"1")
    tag = ch.get_ok("q").delivery_tag
    ch.tx_select()
    ch.ack(tag)
    assert ready_unacked(ch) == (0, 1)
    ch.tx_commit()
    assert ready_unacked(ch) == (0, 0)


def test_rollback_restores_acks_as_unacked(ch: Chan) -> None:
    for body in (b"1", b"2"):
        ch.publish("", "q", body)
    tags = [ch.get_ok("q").delivery_tag for _ in range(2)]
    ch.tx_select()
    ch.ack(0, multiple=True)
    ch.tx_rollback()
    assert ready_unacked(ch) == (0, 2)
    ch.ack(tags[1])  # the restored deliveries are acknowledgeable again
    ch.tx_commit()
    assert ready_unacked(ch) == (0, 1)
    ch.nack(tags[0])
    ch.tx_commit()
    assert ready_unacked(ch) == (1, 0)


def test_tx_nack_requeue_at_commit_respects_prefetch(ch: Chan) -> None:
    ch.qos(1)
    ch.consume("q", "c")
    ch.tx_select()
    ch.publish("", "q", b"1")
    ch.publish("", "q", b"2")
    first = delivered(ch.tx_commit())
    assert bodies(first) == [b"1"]
    ch.nack(first[0].delivery_tag)
    assert ready_unacked(ch) == (1, 1)  # credit stays taken until commit
    again = delivered(ch.tx_commit())
    assert [(d.message.body, d.redelivered) for d in again] == [(b"1", True)]
    assert ready_unacked(ch) == (1, 1)


def test_commit_returns_mandatory_unroutable_publishes(ch: Chan) -> None:
    ch.tx_select()
    ch.publish("amq.direct", "nowhere", b"m", mandatory=True)
    assert [type(e) for e in ch.tx_commit().effects] == [Return]


def test_closing_a_tx_channel_drops_publishes_and_requeues_pending_acks(ch: Chan) -> None:
    ch.publish("", "q", b"1")
    tag = ch.get_ok("q").delivery_tag
    ch.tx_select()
    ch.ack(tag)
    ch.publish("", "q", b"2")
    ch.close()
    reply = ch.harness.open(1, 2).get_ok("q", no_ack=True)
    assert (reply.message.body, reply.redelivered, reply.message_count) == (b"1", True, 0)


# -- transactional publishes are routed when published (RabbitMQ's rabbit_channel) -----------


def test_tx_publish_misses_a_binding_made_before_commit(ch: Chan) -> None:
    ch.declare_exchange("x", "direct")
    ch.tx_select()
    ch.publish("x", "k", b"early")
    ch.bind("q", "x", "k")
    ch.publish("x", "k", b"late")
    ch.tx_commit()
    assert [m.message.body for m in [ch.get_ok("q", no_ack=True)]] == [b"late"]
    assert ready_unacked(ch) == (0, 0)


def test_tx_publish_to_the_default_exchange_reaches_a_queue_declared_before_commit(
    ch: Chan,
) -> None:
    ch.tx_select()
    ch.publish("", "later", b"m")
    ch.declare_queue("later")
    ch.tx_commit()
    assert ch.get_ok("later").message.body == b"m"


def test_tx_publish_is_returned_at_commit_when_its_queue_is_gone(ch: Chan) -> None:
    ch.declare_exchange("x", "fanout")
    ch.bind("q", "x")
    ch.tx_select()
    ch.publish("x", "", b"m", mandatory=True)
    ch.harness.open(1, 2).delete_queue("q")
    outcome = ch.tx_commit()
    assert [(type(e), e.message.body) for e in outcome.effects] == [(Return, b"m")]


def test_tx_publish_survives_its_exchange_being_deleted_before_commit(ch: Chan) -> None:
    ch.declare_exchange("x", "fanout")
    ch.bind("q", "x")
    ch.tx_select()
    ch.publish("x", "", b"m")
    ch.harness.open(1, 2).delete_exchange("x")
    ch.tx_commit()
    assert ready_unacked(ch) == (1, 0)


def test_tx_publish_reaches_a_queue_redeclared_under_its_name(ch: Chan) -> None:
    ch.tx_select()
    ch.publish("", "q", b"m")
    other = ch.harness.open(1, 2)
    other.delete_queue("q")
    other.declare_queue("q")
    ch.tx_commit()
    assert ready_unacked(ch) == (1, 0)


def test_tx_batch_and_cc_are_routed_when_published(ch: Chan) -> None:
    ch.declare_queue("cc")
    ch.declare_queue("bcc")
    ch.tx_select()
    props = Properties(headers={"CC": ["cc"], "BCC": ["bcc"]})
    ch.harness.handle(c.PublishMany(1, 1, [(Message("", "q", b"m", props), False)]))
    ch.harness.open(1, 2).delete_queue("cc")
    ch.tx_commit()
    assert ready_unacked(ch, "q") == (1, 0)
    headers = ch.get_ok("bcc").message.properties.headers
    assert headers == {"CC": ["cc"]}  # BCC removed, as outside a transaction


def test_commit_enqueues_publishes_then_settles_in_the_order_settled(ch: Chan) -> None:
    # Observed on RabbitMQ 3.10.8: publishes first, then each run of settlements of one kind
    # in the order they were made (the dead-letter queue gets p1, p2, then m1, m3, m4).
    ch.declare_queue("dlq")
    ch.declare_queue("src", arguments={"x-dead-letter-exchange": "",
                                       "x-dead-letter-routing-key": "dlq"})
    for body in (b"m1", b"m2", b"m3", b"m4"):
        ch.publish("", "src", body)
    ch.tx_select()
    tags = [ch.get_ok("src").delivery_tag for _ in range(4)]
    ch.reject(tags[0], requeue=False)
    ch.publish("", "dlq", b"p1")
    ch.ack(tags[1])
    ch.reject(tags[3], requeue=False)
    ch.reject(tags[2], requeue=False)
    ch.publish("", "dlq", b"p2")
    ch.tx_commit()
    got = [ch.get_ok("dlq", no_ack=True).message.body for _ in range(5)]
    assert got == [b"p1", b"p2", b"m1", b"m3", b"m4"]


def test_tx_direct_reply_goes_out_when_published(ch: Chan) -> None:
    # rabbit_exchange:route delivers a direct reply while routing, i.e. at publish time.
    ch.consume("amq.rabbitmq.reply-to", "replies", no_ack=True)
    ch.publish("", "q", b"request", properties=Properties(reply_to="amq.rabbitmq.reply-to"))
    address = ch.get_ok("q", no_ack=True).message.properties.reply_to
    assert address is not None
    server = ch.harness.open(2)
    server.tx_select()
    out = server.publish("", address, b"reply", mandatory=True)
    assert bodies(out) == [b"reply"]
    assert server.tx_commit().effects == []  # nothing left to enqueue, nothing returned
