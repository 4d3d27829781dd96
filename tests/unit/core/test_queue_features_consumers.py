"""Consumer features, routing extras and argument validation: single active consumer, consumer
priorities, quorum delivery limits, direct reply-to, CC/BCC, alternate exchange, x-arguments."""

from __future__ import annotations

import pytest

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import GetOk, Return
from minibroker.errors import NotAllowed, PreconditionFailed
from minibroker.message import FieldTable, FieldValue, Message, Properties
from tests.unit.core.helpers import Chan, Harness, bodies, delivered


def take_all(ch: Chan, queue: str) -> list[bytes]:
    out: list[bytes] = []
    while True:
        reply = ch.get(queue, no_ack=True).reply
        if not isinstance(reply, GetOk):
            return out
        out.append(reply.message.body)


# -- single active consumer and consumer priorities --------------------------------------------

def test_single_active_consumer_and_hand_over(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-single-active-consumer": True})
    ch.consume("q", "first", no_ack=True)
    ch.consume("q", "second", no_ack=True)
    tags = [d.consumer_tag for i in range(6)
            for d in delivered(ch.publish("", "q", str(i).encode()))]
    assert tags == ["first"] * 6
    ch.qos(1)
    ch.cancel("first")
    assert [d.consumer_tag for d in delivered(ch.publish("", "q", b"x"))] == ["second"]


def test_single_active_consumer_successor_takes_over_a_backlog_when_the_channel_closes(
    harness: Harness,
) -> None:
    """The usual way an active consumer goes away is its connection dying: the successor must
    get the waiting messages at once, not at the next publish."""
    first = harness.open(1, 1)
    first.declare_queue("q", arguments={"x-single-active-consumer": True})
    first.consume("q", "first", no_ack=True)
    second = harness.open(2, 1)
    second.consume("q", "second", no_ack=True)
    harness.handle(c.SetWritable(1, False))  # first's socket is full: messages wait
    for body in (b"1", b"2", b"3"):
        assert delivered(first.publish("", "q", body)) == []
    outcome = first.close()  # nothing of first's goes back: the queue is not otherwise touched
    assert [(d.consumer_tag, d.message.body) for d in delivered(outcome)] == [
        ("second", b"1"), ("second", b"2"), ("second", b"3"),
    ]


def test_highest_priority_consumer_with_credit_wins(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q")
    ch.qos(2)
    ch.consume("q", "low", arguments={"x-priority": 1})
    ch.consume("q", "high", arguments={"x-priority": 10})
    tags = [d.consumer_tag for i in range(3) for d in delivered(ch.publish("", "q", b"m"))]
    assert tags == ["high", "high", "low"]  # high has prefetch 2, then low gets the third


def test_round_robin_among_equal_priorities(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q")
    for tag in ("a", "b"):
        ch.consume("q", tag, no_ack=True, arguments={"x-priority": 5})
    ch.consume("q", "c", no_ack=True)
    tags = [d.consumer_tag for i in range(4) for d in delivered(ch.publish("", "q", b"m"))]
    assert tags == ["a", "b", "a", "b"]


# -- quorum queues ---------------------------------------------------------------------------------

def _quorum(ch: Chan, arguments: FieldTable | None = None) -> None:
    ch.declare_queue("dl")
    ch.declare_queue("qq", durable=True, arguments={
        "x-queue-type": "quorum", "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "dl", **(arguments or {})})
    ch.publish("", "qq", b"q")


def _count(message: Message) -> FieldValue:
    return (message.properties.headers or {}).get("x-delivery-count", "absent")


@pytest.mark.parametrize(("version", "first"), [("3.10", 0), ("4.2", "absent")])
def test_quorum_delivery_count_header_and_delivery_limit(version: str, first: object) -> None:
    ch = Harness(Broker(rabbitmq=version)).open()
    _quorum(ch, {"x-delivery-limit": 2})
    counts: list[FieldValue] = []
    for _ in range(3):
        got = ch.get_ok("qq")
        counts.append(_count(got.message))
        ch.nack(got.delivery_tag, requeue=True)
    # RabbitMQ 3.10 observed: 0, 1, 2 (basic.get); 4.x adds the header from the first return.
    assert counts == [first, 1, 2]
    headers = ch.get_ok("dl", no_ack=True).message.properties.headers
    assert headers is not None and headers["x-first-death-reason"] == "delivery_limit"


@pytest.mark.parametrize("version", ["3.10", "4.2"])
def test_quorum_consumers_see_no_delivery_count_on_a_first_delivery(version: str) -> None:
    ch = Harness(Broker(rabbitmq=version)).open()
    _quorum(ch)
    first = delivered(ch.consume("qq", "c"))[0]
    again = delivered(ch.nack(first.delivery_tag, requeue=True))[0]
    assert (_count(first.message), first.redelivered) == ("absent", False)
    assert (_count(again.message), again.redelivered) == (1, True)


@pytest.mark.parametrize(("version", "returns"), [("3.10", 25), ("4.2", 20)])
def test_quorum_default_delivery_limit(version: str, returns: int) -> None:
    # RabbitMQ 4.0 gave quorum queues a delivery limit of 20 by default; 3.10 had none.
    ch = Harness(Broker(rabbitmq=version)).open()
    _quorum(ch)
    for _ in range(25):
        got = ch.get("qq").reply
        if not isinstance(got, GetOk):
            break
        ch.nack(got.delivery_tag, requeue=True)
    stats = ch.harness.broker.queue_statistics
    assert (stats("qq").delivered, stats("dl").ready) == (
        (25, 0) if returns == 25 else (21, 1)
    )


@pytest.mark.parametrize(("version", "dead_after"), [("3.10", 1), ("4.2", None)])
def test_quorum_negative_delivery_limit(version: str, dead_after: int | None) -> None:
    # 3.10: the first return's count (1) exceeds -1; 4.0: a negative limit is no limit.
    ch = Harness(Broker(rabbitmq=version)).open()
    _quorum(ch, {"x-delivery-limit": -1})
    for _ in range(3):
        got = ch.get("qq").reply
        if not isinstance(got, GetOk):
            break
        ch.nack(got.delivery_tag, requeue=True)
    stats = ch.harness.broker.queue_statistics
    assert stats("dl").ready == (0 if dead_after is None else 1)
    assert stats("qq").delivered == (3 if dead_after is None else 1)


@pytest.mark.parametrize(("flags", "prop"), [
    ({"durable": False}, "non-durable"),
    ({"durable": True, "exclusive": True}, "exclusive-owner"),
    ({"durable": True, "auto_delete": True}, "auto-delete"),
])
def test_quorum_preconditions(ch: Chan, flags: dict[str, bool], prop: str) -> None:
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_queue("qq", arguments={"x-queue-type": "quorum"}, **flags)
    assert info.value.text == f"invalid property '{prop}' for queue 'qq' in vhost '/'"


def test_a_binary_stream_queue_type_is_refused_as_rabbitmq_refuses_it(ch: Chan) -> None:
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_queue("s", durable=True, arguments={"x-queue-type": b"stream"})
    assert info.value.text == (
        "invalid arg 'x-queue-type' for queue 's' in vhost '/': {unacceptable_type,binary}"
    )


# -- argument validation ----------------------------------------------------------------------

@pytest.mark.parametrize(("arguments", "detail"), [
    ({"x-message-ttl": -5}, "{value_negative,-5}"),
    ({"x-message-ttl": "abc"}, '"expected integer, got longstr"'),
    ({"x-message-ttl": True}, '"expected integer, got bool"'),
    ({"x-message-ttl": 2**40}, "{value_too_large,1099511627776}"),
    ({"x-expires": 0}, "{value_zero,0}"),
    ({"x-max-length": -1}, "{value_negative,-1}"),
    ({"x-overflow": "foo"}, "invalid_overflow"),
    ({"x-overflow": 5}, "{unacceptable_type,signedint}"),
    ({"x-max-priority": 300}, "{max_value_exceeded,300}"),
    ({"x-max-priority": -1}, "{value_negative,-1}"),
    ({"x-dead-letter-routing-key": "rk"}, "routing_key_but_no_dlx_defined"),
    ({"x-single-active-consumer": 1}, "{unacceptable_type,signedint}"),
])
def test_invalid_arguments_are_refused_with_rabbitmq_texts(
    harness: Harness, ch: Chan, arguments: FieldTable, detail: str
) -> None:
    key = next(iter(arguments))
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_queue("q", arguments=arguments)
    assert info.value.text == f"invalid arg '{key}' for queue 'q' in vhost '/': {detail}"
    assert "q" not in harness.broker.topology.queues


def test_delivery_limit_is_refused_on_classic_queues(ch: Chan) -> None:
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_queue("q", arguments={"x-delivery-limit": 3})
    assert info.value.text == (
        "invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type "
        "rabbit_classic_queue")


def test_unknown_arguments_keep_a_queue_plain(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-whatever": 1, "x-queue-type": "classic"})
    assert harness.broker.topology.queues["q"].features is None


# -- direct reply-to -----------------------------------------------------------------------------

def test_direct_reply_to_round_trip(harness: Harness, ch: Chan) -> None:
    server = harness.open(2)
    server.declare_queue("rpc")
    ch.consume("amq.rabbitmq.reply-to", "replies", no_ack=True)
    ch.publish("", "rpc", b"request", properties=Properties(reply_to="amq.rabbitmq.reply-to"))
    request = server.get_ok("rpc", no_ack=True).message
    address = request.properties.reply_to
    assert address is not None and address.startswith("amq.rabbitmq.reply-to.")
    out = server.publish("", address, b"reply")
    assert [(d.connection, d.consumer_tag, d.message.body) for d in delivered(out)] == [
        (1, "replies", b"reply")]
    ch.cancel("replies")
    returned = server.publish("", address, b"late", mandatory=True).effects
    assert [type(effect) for effect in returned] == [Return]


def test_direct_reply_to_errors(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("rpc")
    with pytest.raises(PreconditionFailed, match="fast reply consumer does not exist"):
        ch.publish("", "rpc", b"x", properties=Properties(reply_to="amq.rabbitmq.reply-to"))
    with pytest.raises(PreconditionFailed, match="reply consumer cannot acknowledge"):
        ch.consume("amq.rabbitmq.reply-to")
    ch.consume("amq.rabbitmq.reply-to", "r", no_ack=True)
    with pytest.raises(NotAllowed):
        ch.consume("rpc", "r")


# -- CC/BCC and alternate exchange --------------------------------------------------------------

def test_cc_and_bcc_add_routing_keys_and_bcc_is_hidden(harness: Harness, ch: Chan) -> None:
    ch.declare_exchange("x", "direct")
    for key in ("to", "cc", "bcc"):
        ch.declare_queue(key)
        ch.bind(key, "x", key)
    ch.publish("x", "to", b"m", properties=Properties(
        headers={"CC": ["cc", "nobody"], "BCC": ["bcc"], "other": 1}))
    for key in ("to", "cc", "bcc"):
        message = ch.get_ok(key, no_ack=True).message
        assert message.properties.headers == {"CC": ["cc", "nobody"], "other": 1}
        assert message.routing_key == "to"


def test_alternate_exchange_takes_unroutable_messages(harness: Harness, ch: Chan) -> None:
    ch.declare_exchange("ae", "fanout")
    ch.declare_queue("unrouted")
    ch.bind("unrouted", "ae")
    ch.declare_exchange("main", "direct", arguments={"alternate-exchange": "ae"})
    ch.declare_queue("routed")
    ch.bind("routed", "main", "known")
    out = ch.publish("main", "unknown", b"lost?", mandatory=True)
    assert out.effects == []  # not returned: the alternate exchange routed it
    ch.publish("main", "known", b"kept")
    assert take_all(ch, "unrouted") == [b"lost?"]
    assert take_all(ch, "routed") == [b"kept"]


def test_unroutable_by_the_alternate_exchange_too_is_returned(ch: Chan) -> None:
    ch.declare_exchange("ae", "direct")
    ch.declare_exchange("main", "direct", arguments={"alternate-exchange": "ae"})
    out = ch.publish("main", "k", b"m", mandatory=True)
    assert [type(effect) for effect in out.effects] == [Return]


def test_consumer_of_plain_queue_unaffected(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q")
    ch.consume("q", "c", no_ack=True)
    assert bodies(ch.publish("", "q", b"m")) == [b"m"]
    [second] = delivered(ch.publish("", "q", b"n"))
    assert (second.consumer_tag, second.message.body) == ("c", b"n")
    assert harness.broker.topology.queues["q"].features is None
