"""Broker core: queues — declare, exclusivity, auto-delete, bind/unbind, purge, delete."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from minibroker.core import commands as c
from minibroker.core.effects import ConsumerCancelled, QueueDeleteOk
from minibroker.errors import AccessRefused, NotFound, PreconditionFailed, ResourceLocked
from minibroker.message import FieldTable

from .helpers import Chan, Harness, fingerprint


@pytest.fixture
def ch() -> Chan:
    return Harness().open()


def queue_names(ch: Chan) -> set[str]:
    return {queue.name for queue in ch.harness.broker.snapshot().queues}


# -- declare ----------------------------------------------------------------------------------


def test_declare_ok_reports_ready_messages_and_consumers(ch: Chan) -> None:
    assert ch.declare_queue("q") == ch.declare_queue("q")
    for body in (b"1", b"2", b"3"):
        ch.publish("", "q", body)
    ch.consume("q", "c")  # takes all three, unacked
    ch.cancel("c")
    ch.publish("", "q", b"4")
    ch.publish("", "q", b"5")
    reply = ch.declare_queue("q")
    # RabbitMQ: message-count is the ready messages only; the three unacked are not counted.
    assert (reply.queue, reply.message_count, reply.consumer_count) == ("q", 2, 0)
    assert ch.harness.broker.queue_statistics("q").unacked == 3
    ch.consume("q", "c2", no_ack=True)
    ch.publish("amq.direct", "none", b"x")
    assert ch.declare_queue("q", passive=True).consumer_count == 1


def test_server_named_queues_are_amq_gen_and_distinct(ch: Chan) -> None:
    first = ch.declare_queue("").queue
    second = ch.declare_queue("").queue
    assert first.startswith("amq.gen-") and second.startswith("amq.gen-")
    assert first != second
    assert queue_names(ch) == {first, second}
    # A server-named queue can be redeclared by name despite the reserved prefix.
    assert ch.declare_queue(first).queue == first


def test_client_named_amq_queue_is_refused(ch: Chan) -> None:
    with pytest.raises(AccessRefused) as info:
        ch.declare_queue("amq.mine")
    assert info.value.text == "queue name 'amq.mine' contains reserved prefix 'amq.*'"


@pytest.mark.parametrize("flag", ["durable", "auto_delete"])
def test_redeclare_with_a_different_flag_is_inequivalent(ch: Chan, flag: str) -> None:
    ch.declare_queue("q")
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_queue("q", durable=flag == "durable", auto_delete=flag == "auto_delete")
    assert info.value.text == (
        f"inequivalent arg '{flag}' for queue 'q' in vhost '/': "
        "received 'true' but current is 'false'"
    )


@pytest.mark.parametrize(("declared", "redeclared", "text"), [
    # Both sides carry it: RabbitMQ prints the bare values, whatever their types.
    ({"x-max-length": 10}, {"x-max-length": 11}, "received '11' but current is '10'"),
    ({"x-max-length": 10}, {"x-max-length": "10"}, "received '10' but current is '10'"),
    ({"x-dead-letter-exchange": "a"}, {"x-dead-letter-exchange": "b"},
     "received 'b' but current is 'a'"),
    ({"x-single-active-consumer": True}, {"x-single-active-consumer": False},
     "received 'false' but current is 'true'"),
    # One side lacks it: the present side with its AMQP type.
    ({}, {"x-max-length": 3}, "received the value '3' of type 'signedint' but current is none"),
    ({"x-max-length": 2**40}, {},
     "received none but current is the value '1099511627776' of type 'long'"),
    ({}, {"x-queue-type": "quorum"},
     "received the value 'quorum' of type 'longstr' but current is none"),
])
def test_inequivalent_argument_texts_follow_rabbitmq(
    ch: Chan, declared: FieldTable, redeclared: FieldTable, text: str,
) -> None:
    # rabbit_misc:assert_args_equivalence, the same in RabbitMQ 3.10.8 and 4.2.
    ch.declare_queue("q", arguments=declared)
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_queue("q", arguments=redeclared)
    key = next(iter(declared or redeclared))
    assert info.value.text == f"inequivalent arg '{key}' for queue 'q' in vhost '/': {text}"


def test_equivalent_arguments_and_ignored_ones(ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-max-length": 10})
    # Unknown x- arguments are not compared; an absent x-queue-type is "classic".
    ch.declare_queue("q", arguments={"x-max-length": 10, "x-whatever": 1,
                                     "x-queue-type": "classic"})


def test_passive_declare_of_a_missing_queue_is_not_found(ch: Chan) -> None:
    with pytest.raises(NotFound) as info:
        ch.declare_queue("nope", passive=True)
    assert info.value.text == "no queue 'nope' in vhost '/'"


def test_passive_declare_ignores_flags_and_reports_counts(ch: Chan) -> None:
    ch.declare_queue("q", durable=True)
    ch.publish("", "q", b"m")
    reply = ch.declare_queue("q", passive=True, durable=False, auto_delete=True)
    assert (reply.message_count, reply.consumer_count) == (1, 0)


# -- exclusive queues -------------------------------------------------------------------------


EXCLUSIVE_TOUCHES: dict[str, Callable[[Chan], object]] = {
    "declare": lambda other: other.declare_queue("ex", exclusive=True),
    "declare-other-flags": lambda other: other.declare_queue("ex"),
    "passive": lambda other: other.declare_queue("ex", passive=True),
    "bind": lambda other: other.bind("ex", "amq.direct", "k"),
    "unbind": lambda other: other.unbind("ex", "amq.direct", "bound"),
    "purge": lambda other: other.purge("ex"),
    "delete": lambda other: other.delete_queue("ex"),
    "consume": lambda other: other.consume("ex"),
    "get": lambda other: other.get("ex"),
}


@pytest.mark.parametrize("touch", sorted(EXCLUSIVE_TOUCHES))
def test_exclusive_queue_is_locked_to_other_connections(touch: str) -> None:
    harness = Harness()
    owner = harness.open(1)
    owner.declare_queue("ex", exclusive=True)
    owner.bind("ex", "amq.direct", "bound")
    owner.publish("", "ex", b"m")
    other = harness.open(2)
    with pytest.raises(ResourceLocked) as info:
        EXCLUSIVE_TOUCHES[touch](other)
    assert info.value.reply_code == 405
    assert info.value.text.startswith(
        "cannot obtain exclusive access to locked queue 'ex' in vhost '/'"
    )
    assert harness.broker.queue_statistics("ex").ready == 1


@pytest.mark.parametrize("touch", sorted(set(EXCLUSIVE_TOUCHES) - {"declare-other-flags"}))
def test_exclusive_queue_is_usable_from_another_channel_of_its_connection(touch: str) -> None:
    harness = Harness()
    owner = harness.open(1, 1)
    owner.declare_queue("ex", exclusive=True)
    owner.bind("ex", "amq.direct", "bound")
    EXCLUSIVE_TOUCHES[touch](harness.open(1, 2))


@pytest.mark.parametrize(("exclusive", "redeclared"), [(True, False), (False, True)])
def test_a_different_exclusive_flag_is_locked_even_for_the_owner(
    exclusive: bool, redeclared: bool,
) -> None:
    # RabbitMQ checks the exclusive owner strictly on an active declare: 405, not the
    # "inequivalent arg 'exclusive'" 406, from another channel of the same connection too.
    harness = Harness()
    harness.open(1, 1).declare_queue("q", exclusive=exclusive)
    other_channel = harness.open(1, 2)
    with pytest.raises(ResourceLocked) as info:
        other_channel.declare_queue("q", exclusive=redeclared, durable=True)
    assert info.value.text == (
        "cannot obtain exclusive access to locked queue 'q' in vhost '/'. It could be "
        "originally declared on another connection or the exclusive property value does not "
        "match that of the original declaration."
    )
    # A passive declare does not look at the flag.
    harness.open(1, 3).declare_queue("q", passive=True, exclusive=redeclared)


def test_the_exclusive_check_comes_before_equivalence() -> None:
    harness = Harness()
    harness.open(1).declare_queue("q", exclusive=True)
    with pytest.raises(ResourceLocked):
        harness.open(2).declare_queue("q", exclusive=True, durable=True)
    owner = harness.open(1, 2)
    with pytest.raises(PreconditionFailed, match="inequivalent arg 'auto_delete'"):
        owner.declare_queue("q", exclusive=True, auto_delete=True)


def test_unbinding_a_missing_binding_of_an_exclusive_queue_succeeds_anywhere() -> None:
    # rabbit_binding:remove asks for exclusive access only when the binding exists.
    harness = Harness()
    owner = harness.open(1)
    owner.declare_queue("ex", exclusive=True)
    owner.bind("ex", "amq.direct", "bound")
    before = fingerprint(harness.broker)
    assert harness.open(2).unbind("ex", "amq.direct", "never-bound").reply is None
    harness.handle(c.CloseConnection(2))
    assert fingerprint(harness.broker) == before  # the binding that exists is still there
    owner.publish("amq.direct", "bound", b"m")
    assert harness.broker.queue_statistics("ex").ready == 1


def test_exclusive_queue_is_deleted_with_its_connection_not_its_channel() -> None:
    harness = Harness()
    owner = harness.open(1, 1)
    owner.declare_queue("ex", exclusive=True)
    owner.close()
    assert harness.broker.queue_statistics("ex").exclusive
    harness.open(1, 2)
    harness.close_connection(1)
    other = harness.open(2)
    with pytest.raises(NotFound):
        other.declare_queue("ex", passive=True)
    other.declare_queue("ex")  # the name is free again, and not exclusive any more
    assert not harness.broker.queue_statistics("ex").exclusive


# -- auto-delete queues -----------------------------------------------------------------------


def test_auto_delete_queue_goes_with_its_last_consumer(ch: Chan) -> None:
    ch.declare_queue("ad", auto_delete=True)
    ch.consume("ad", "c1")
    ch.consume("ad", "c2")
    ch.cancel("c1")
    assert "ad" in queue_names(ch)
    ch.cancel("c2")
    assert "ad" not in queue_names(ch)


def test_auto_delete_queue_without_consumers_stays_even_after_get(ch: Chan) -> None:
    ch.declare_queue("ad", auto_delete=True)
    ch.publish("", "ad", b"m")
    ch.get_ok("ad", no_ack=True)
    ch.cancel("unknown")
    ch.close()
    assert "ad" in queue_names(ch)


@pytest.mark.parametrize("how", ["channel", "connection"])
def test_auto_delete_queue_goes_when_its_consumers_channel_closes(how: str) -> None:
    harness = Harness()
    admin = harness.open(1, 1)
    admin.declare_queue("ad", auto_delete=True)
    consumer = harness.open(2, 1)
    consumer.consume("ad", "c")
    if how == "channel":
        consumer.close()
    else:
        harness.close_connection(2)
    with pytest.raises(NotFound):
        admin.declare_queue("ad", passive=True)


# -- bind / unbind ----------------------------------------------------------------------------


def test_bind_routes_and_unbind_stops(ch: Chan) -> None:
    ch.declare_queue("q")
    ch.bind("q", "amq.direct", "k")
    ch.publish("amq.direct", "k", b"1")
    ch.unbind("q", "amq.direct", "k")
    ch.publish("amq.direct", "k", b"2")
    assert ch.harness.broker.queue_statistics("q").ready == 1


def test_unbinding_a_missing_binding_queue_or_exchange_succeeds(ch: Chan) -> None:
    ch.declare_queue("q")
    ch.bind("q", "amq.direct", "kept")
    before = fingerprint(ch.harness.broker)
    for queue, exchange, key in [("q", "amq.direct", "never"), ("q", "no-such-exchange", "k"),
                                 ("no-such-queue", "amq.direct", "k")]:
        assert ch.unbind(queue, exchange, key).reply is None
        assert fingerprint(ch.harness.broker) == before, (queue, exchange, key)
    assert [(b.source, b.destination.name, b.binding_key)
            for b in ch.harness.broker.snapshot().bindings if b.source == "amq.direct"] == [
        ("amq.direct", "q", "kept")]


def test_bind_a_missing_queue_is_not_found(ch: Chan) -> None:
    with pytest.raises(NotFound) as info:
        ch.bind("nope", "amq.direct", "k")
    assert info.value.text == "no queue 'nope' in vhost '/'"


# -- purge and delete -------------------------------------------------------------------------


def test_purge_removes_ready_messages_only(ch: Chan) -> None:
    ch.declare_queue("q")
    for body in (b"1", b"2", b"3"):
        ch.publish("", "q", body)
    tag = ch.get_ok("q").delivery_tag
    assert ch.purge("q") == 2
    stats = ch.harness.broker.queue_statistics("q")
    assert (stats.ready, stats.unacked) == (0, 1)
    ch.nack(tag)  # the unacked one comes back
    assert ch.harness.broker.queue_statistics("q").ready == 1
    assert ch.purge("q") == 1


def test_purge_missing_queue_is_not_found(ch: Chan) -> None:
    with pytest.raises(NotFound):
        ch.purge("nope")


def test_delete_returns_the_ready_count(ch: Chan) -> None:
    ch.declare_queue("q")
    ch.publish("", "q", b"1")
    ch.publish("", "q", b"2")
    ch.get_ok("q")
    assert ch.delete_queue("q").reply == QueueDeleteOk(1)
    assert "q" not in queue_names(ch)


def test_delete_missing_queue_returns_zero(ch: Chan) -> None:
    assert ch.delete_queue("nope").reply == QueueDeleteOk(0)


def test_delete_if_unused_refuses_a_queue_with_consumers(ch: Chan) -> None:
    ch.declare_queue("q")
    ch.consume("q", "c")
    with pytest.raises(PreconditionFailed) as info:
        ch.delete_queue("q", if_unused=True)
    assert info.value.text == "queue 'q' in vhost '/' in use"
    ch.cancel("c")
    ch.delete_queue("q", if_unused=True)


def test_delete_if_empty_refuses_a_queue_with_ready_messages(ch: Chan) -> None:
    ch.declare_queue("q")
    ch.publish("", "q", b"m")
    with pytest.raises(PreconditionFailed) as info:
        ch.delete_queue("q", if_empty=True)
    assert info.value.text == "queue 'q' in vhost '/' not empty"
    ch.get_ok("q", no_ack=True)
    assert ch.delete_queue("q", if_empty=True).reply == QueueDeleteOk(0)


def test_delete_with_consumers_cancels_each_of_them() -> None:
    harness = Harness()
    a = harness.open(1, 1)
    b = harness.open(2, 3)
    a.declare_queue("q")
    a.consume("q", "ca")
    b.consume("q", "cb")
    outcome = a.delete_queue("q")
    assert sorted(outcome.effects, key=repr) == [
        ConsumerCancelled(1, 1, "ca"), ConsumerCancelled(2, 3, "cb"),
    ]
    assert harness.broker.statistics().consumers == 0
    # The tags are free again on their channels.
    b.declare_queue("q2")
    b.consume("q2", "cb")


def test_delete_removes_the_queues_bindings(ch: Chan) -> None:
    ch.declare_queue("q")
    ch.bind("q", "amq.fanout")
    ch.delete_queue("q")
    ch.declare_queue("q")
    ch.publish("amq.fanout", "", b"m")
    assert ch.harness.broker.queue_statistics("q").ready == 0


# -- the channel's last declared queue --------------------------------------------------------


def test_empty_queue_name_means_the_last_declared_queue(ch: Chan) -> None:
    ch.declare_queue("first")
    name = ch.declare_queue("").queue
    ch.bind("", "amq.direct", "k")
    ch.publish("amq.direct", "k", b"1")
    ch.publish("amq.direct", "k", b"2")
    ch.publish("amq.direct", "k", b"3")
    assert ch.get_ok("").message.body == b"1"
    assert ch.purge("") == 2
    tag = ch.consume("").reply
    assert tag is not None
    assert ch.harness.broker.queue_statistics(name).consumers == 1
    assert ch.delete_queue("").reply == QueueDeleteOk(0)
    assert queue_names(ch) == {"first"}


@pytest.mark.parametrize("operation", ["bind", "consume", "get", "purge", "delete", "unbind"])
def test_empty_queue_name_without_a_declared_queue_is_not_found(
    ch: Chan, operation: str
) -> None:
    with pytest.raises(NotFound) as info:
        if operation == "bind":
            ch.bind("", "amq.direct")
        elif operation == "consume":
            ch.consume("")
        elif operation == "get":
            ch.get("")
        elif operation == "purge":
            ch.purge("")
        elif operation == "unbind":
            ch.unbind("", "amq.direct")
        else:
            ch.delete_queue("")
    assert info.value.text == "no previously declared queue"


def test_last_declared_queue_is_per_channel() -> None:
    harness = Harness()
    one = harness.open(1, 1)
    two = harness.open(1, 2)
    one.declare_queue("q")
    with pytest.raises(NotFound):
        two.get("")
