"""Broker core: exchanges — default exchange, amq.*, declare/delete, auto-delete, e2e routing."""

from __future__ import annotations

import pytest

from minibroker.core.broker import Broker
from minibroker.errors import AccessRefused, CommandInvalid, NotFound, PreconditionFailed
from minibroker.message import FieldTable, FieldValue

from .helpers import Chan, Harness, bodies


@pytest.fixture
def ch() -> Chan:
    return Harness().open()


def ready(ch: Chan, queue: str) -> int:
    return ch.harness.broker.queue_statistics(queue).ready


# -- the default exchange ---------------------------------------------------------------------


def test_default_exchange_routes_to_the_queue_named_by_the_routing_key(ch: Chan) -> None:
    ch.declare_queue("q1")
    ch.declare_queue("q2")
    ch.publish("", "q2", b"m")
    assert (ready(ch, "q1"), ready(ch, "q2")) == (0, 1)


def test_default_exchange_drops_a_message_for_an_unknown_queue_silently(ch: Chan) -> None:
    outcome = ch.publish("", "nobody", b"m")
    assert outcome.effects == []
    assert ch.harness.broker.statistics().messages_ready == 0


@pytest.mark.parametrize("operation", ["bind", "unbind", "delete", "declare", "bind_e2e_src",
                                       "bind_e2e_dst"])
def test_default_exchange_cannot_be_bound_unbound_declared_or_deleted(
    ch: Chan, operation: str
) -> None:
    ch.declare_queue("q")
    ch.declare_exchange("x", "fanout")
    with pytest.raises(AccessRefused) as info:
        if operation == "bind":
            ch.bind("q", "", "q")
        elif operation == "unbind":
            ch.unbind("q", "", "q")
        elif operation == "delete":
            ch.delete_exchange("")
        elif operation == "declare":
            ch.declare_exchange("", "direct")
        elif operation == "bind_e2e_src":
            ch.bind_exchange("x", "")
        else:
            ch.bind_exchange("", "x")
    assert info.value.reply_code == 403
    assert info.value.text == "operation not permitted on the default exchange"


# -- pre-declared and reserved names ----------------------------------------------------------


@pytest.mark.parametrize(("name", "type_name"), [
    ("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
    ("amq.headers", "headers"), ("amq.match", "headers"),
])
def test_amq_exchanges_are_predeclared_durable(ch: Chan, name: str, type_name: str) -> None:
    info = ch.harness.broker.exchange_info(name)
    assert (info.type, info.durable, info.internal) == (type_name, True, False)
    ch.declare_exchange(name, type_name, durable=True)  # identical redeclare succeeds
    ch.declare_exchange(name, passive=True)


def test_amq_fanout_delivers_to_every_bound_queue(ch: Chan) -> None:
    for name in ("a", "b"):
        ch.declare_queue(name)
        ch.bind(name, "amq.fanout", name)
    ch.publish("amq.fanout", "whatever", b"m")
    assert (ready(ch, "a"), ready(ch, "b")) == (1, 1)


def test_declaring_a_new_amq_name_is_refused(ch: Chan) -> None:
    with pytest.raises(AccessRefused) as info:
        ch.declare_exchange("amq.foo", "direct")
    assert info.value.text == "exchange name 'amq.foo' contains reserved prefix 'amq.*'"
    with pytest.raises(NotFound):
        ch.declare_exchange("amq.foo", passive=True)


def test_redeclaring_amq_direct_with_other_properties_is_inequivalent(ch: Chan) -> None:
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_exchange("amq.direct", "direct", durable=False)
    assert "inequivalent arg 'durable'" in info.value.text


def test_amq_exchanges_cannot_be_deleted(ch: Chan) -> None:
    with pytest.raises(AccessRefused):
        ch.delete_exchange("amq.direct")
    assert ch.harness.broker.exchange_info("amq.direct").type == "direct"


# -- declare ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("prop", "received", "current"), [
    ("type", "fanout", "direct"), ("durable", "true", "false"),
    ("auto_delete", "true", "false"), ("internal", "true", "false"),
])
def test_redeclare_with_a_different_property_names_it_and_both_values(
    ch: Chan, prop: str, received: str, current: str
) -> None:
    ch.declare_exchange("x", "direct")
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_exchange(
            "x", "fanout" if prop == "type" else "direct", durable=prop == "durable",
            auto_delete=prop == "auto_delete", internal=prop == "internal",
        )
    assert info.value.reply_code == 406
    assert info.value.text == (
        f"inequivalent arg '{prop}' for exchange 'x' in vhost '/': "
        f"received '{received}' but current is '{current}'"
    )


def test_identical_redeclare_succeeds_and_keeps_bindings(ch: Chan) -> None:
    ch.declare_exchange("x", "topic", durable=True)
    ch.declare_queue("q")
    ch.bind("q", "x", "a.#")
    ch.declare_exchange("x", "topic", durable=True)
    assert ch.harness.broker.exchange_info("x").bindings == 1


def test_passive_declare_of_a_missing_exchange_is_not_found(ch: Chan) -> None:
    with pytest.raises(NotFound) as info:
        ch.declare_exchange("nope", "direct", passive=True)
    assert info.value.text == "no exchange 'nope' in vhost '/'"
    assert info.value.reply_code == 404


def test_passive_declare_ignores_the_other_properties(ch: Chan) -> None:
    ch.declare_exchange("x", "direct")
    ch.declare_exchange("x", "fanout", passive=True, durable=True, internal=True)
    assert ch.harness.broker.exchange_info("x").type == "direct"


def test_unknown_exchange_type_is_a_precondition_failure(ch: Chan) -> None:
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_exchange("x", "x-no-such-type")
    assert info.value.text == "unknown exchange type 'x-no-such-type'"
    with pytest.raises(NotFound):
        ch.harness.broker.exchange_info("x")


@pytest.mark.parametrize("version", ["3.10", "3.13.2"])
def test_unknown_exchange_type_closes_the_connection_before_rabbitmq_3_13_3(
    version: str,
) -> None:
    ch = Harness(Broker(rabbitmq=version)).open()
    with pytest.raises(CommandInvalid) as info:
        ch.declare_exchange("x", "x-no-such-type")
    assert (info.value.reply_code, info.value.text) == (
        503, "unknown exchange type 'x-no-such-type'"
    )


def test_the_exchange_type_is_checked_before_the_name() -> None:
    # rabbit_channel: check_type/1 runs before check_not_default_exchange/1.
    ch = Harness().open()
    with pytest.raises(PreconditionFailed, match="unknown exchange type"):
        ch.declare_exchange("", "x-no-such-type")
    with pytest.raises(AccessRefused):
        ch.declare_exchange("", "direct")


@pytest.mark.parametrize(("value", "kind"), [
    (5, "signedint"), (2**40, "long"), (True, "bool"), (b"ae", "binary"), (["ae"], "array"),
    ({"a": 1}, "table"), (None, "void"), (1.5, "double"),
])
def test_alternate_exchange_must_be_a_string(ch: Chan, value: FieldValue, kind: str) -> None:
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_exchange("x", "direct", arguments={"alternate-exchange": value})
    assert info.value.text == (
        f"invalid type '{kind}' for arg 'alternate-exchange' in exchange 'x' in vhost '/'"
    )
    with pytest.raises(NotFound):
        ch.harness.broker.exchange_info("x")
    ch.declare_exchange("x", "direct", arguments={"alternate-exchange": ""})  # a string: ok


@pytest.mark.parametrize(("redeclared", "text"), [
    ({"alternate-exchange": "b"}, "received 'b' but current is 'a'"),
    ({"alternate-exchange": 5}, "received '5' but current is 'a'"),
    ({}, "received none but current is the value 'a' of type 'longstr'"),
])
def test_alternate_exchange_is_compared_on_redeclare(
    ch: Chan, redeclared: FieldTable, text: str,
) -> None:
    ch.declare_exchange("x", "direct", arguments={"alternate-exchange": "a"})
    with pytest.raises(PreconditionFailed) as info:
        ch.declare_exchange("x", "direct", arguments=redeclared)
    assert info.value.text == (
        f"inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': {text}"
    )


# -- delete -----------------------------------------------------------------------------------


def test_delete_if_unused_refuses_an_exchange_with_bindings(ch: Chan) -> None:
    ch.declare_exchange("x", "direct")
    ch.declare_queue("q")
    ch.bind("q", "x", "k")
    with pytest.raises(PreconditionFailed) as info:
        ch.delete_exchange("x", if_unused=True)
    assert info.value.text == "exchange 'x' in vhost '/' in use"
    ch.unbind("q", "x", "k")
    ch.delete_exchange("x", if_unused=True)
    with pytest.raises(NotFound):
        ch.declare_exchange("x", passive=True)


def test_delete_a_missing_exchange_succeeds(ch: Chan) -> None:
    assert ch.delete_exchange("never-declared").reply is None


def test_deleting_an_exchange_removes_its_bindings_both_ways(ch: Chan) -> None:
    ch.declare_exchange("src", "fanout")
    ch.declare_exchange("mid", "fanout")
    ch.declare_queue("q")
    ch.bind_exchange("mid", "src")
    ch.bind("q", "mid")
    ch.delete_exchange("mid")
    assert ch.harness.broker.snapshot().bindings == ()
    with pytest.raises(NotFound) as info:
        ch.publish("mid", "", b"m")
    assert info.value.text == "no exchange 'mid' in vhost '/'"
    ch.publish("src", "", b"m")
    assert ready(ch, "q") == 0


# -- auto-delete ------------------------------------------------------------------------------


def test_auto_delete_exchange_goes_when_its_last_binding_is_removed(ch: Chan) -> None:
    ch.declare_exchange("x", "direct", auto_delete=True)
    ch.declare_queue("q")
    ch.bind("q", "x", "a")
    ch.bind("q", "x", "b")
    ch.unbind("q", "x", "a")
    ch.declare_exchange("x", passive=True)
    ch.unbind("q", "x", "b")
    with pytest.raises(NotFound):
        ch.declare_exchange("x", passive=True)


def test_auto_delete_exchange_never_bound_stays(ch: Chan) -> None:
    ch.declare_exchange("x", "direct", auto_delete=True)
    ch.unbind("q-missing", "x", "a")  # a no-op unbind does not count as removing a binding
    ch.declare_exchange("x", passive=True)


def test_auto_delete_exchange_goes_when_its_bound_queue_is_deleted(ch: Chan) -> None:
    ch.declare_exchange("x", "fanout", auto_delete=True)
    ch.declare_queue("q")
    ch.bind("q", "x")
    ch.delete_queue("q")
    with pytest.raises(NotFound):
        ch.declare_exchange("x", passive=True)


def test_auto_delete_exchange_goes_when_its_last_e2e_binding_is_removed(ch: Chan) -> None:
    ch.declare_exchange("src", "fanout", auto_delete=True)
    ch.declare_exchange("dst", "fanout")
    ch.bind_exchange("dst", "src")
    ch.unbind_exchange("dst", "src")
    with pytest.raises(NotFound):
        ch.declare_exchange("src", passive=True)
    ch.declare_exchange("dst", passive=True)


# -- exchange-to-exchange routing -------------------------------------------------------------


def test_e2e_binding_routes_through_the_destination_exchange(ch: Chan) -> None:
    ch.declare_exchange("src", "topic")
    ch.declare_exchange("dst", "direct")
    ch.declare_queue("q")
    ch.bind_exchange("dst", "src", "k.*")
    ch.bind("q", "dst", "k.1")
    ch.publish("src", "k.1", b"m")
    ch.publish("src", "k.2", b"m")  # passes src, stopped by dst
    ch.publish("src", "j.1", b"m")  # stopped by src
    assert ready(ch, "q") == 1


def test_e2e_cycle_terminates_and_delivers_each_queue_once(ch: Chan) -> None:
    ch.declare_exchange("a", "fanout")
    ch.declare_exchange("b", "fanout")
    ch.declare_queue("qa")
    ch.declare_queue("qb")
    ch.bind_exchange("b", "a")
    ch.bind_exchange("a", "b")
    ch.bind_exchange("a", "a")
    ch.bind("qa", "a")
    ch.bind("qb", "b")
    ch.publish("a", "", b"m")
    ch.publish("b", "", b"n")
    assert (ready(ch, "qa"), ready(ch, "qb")) == (2, 2)


def test_e2e_diamond_delivers_each_queue_at_most_once(ch: Chan) -> None:
    ch.declare_exchange("top", "fanout")
    for side in ("left", "right"):
        ch.declare_exchange(side, "fanout")
        ch.bind_exchange(side, "top")
    ch.declare_queue("q")
    ch.bind("q", "left")
    ch.bind("q", "right")
    ch.bind("q", "top")
    ch.consume("q", "c")
    assert bodies(ch.publish("top", "", b"once")) == [b"once"]
    assert ready(ch, "q") == 0


def test_e2e_unbind_stops_routing(ch: Chan) -> None:
    ch.declare_exchange("src", "fanout")
    ch.declare_exchange("dst", "fanout")
    ch.declare_queue("q")
    ch.bind_exchange("dst", "src")
    ch.bind("q", "dst")
    ch.unbind_exchange("dst", "src")
    ch.publish("src", "", b"m")
    assert ready(ch, "q") == 0


@pytest.mark.parametrize("missing", ["source", "destination"])
def test_e2e_bind_with_a_missing_end_is_not_found(ch: Chan, missing: str) -> None:
    ch.declare_exchange("there", "fanout")
    with pytest.raises(NotFound):
        if missing == "source":
            ch.bind_exchange("there", "gone")
        else:
            ch.bind_exchange("gone", "there")


def test_several_matching_bindings_deliver_one_copy(ch: Chan) -> None:
    ch.declare_exchange("t", "topic")
    ch.declare_queue("q")
    for key in ("a.*", "#", "a.b", "*.b"):
        ch.bind("q", "t", key)
    ch.publish("t", "a.b", b"m")
    assert ready(ch, "q") == 1


def test_topic_hash_matches_every_key_including_empty(ch: Chan) -> None:
    ch.declare_queue("all")
    ch.bind("all", "amq.topic", "#")
    for key in ("", "a", "a.b.c", "."):
        ch.publish("amq.topic", key, key.encode())
    assert ready(ch, "all") == 4


def test_rebinding_an_identical_binding_is_a_no_op(ch: Chan) -> None:
    ch.declare_queue("q")
    ch.bind("q", "amq.direct", "k")
    ch.bind("q", "amq.direct", "k")
    assert len(ch.harness.broker.snapshot().bindings) == 1


# -- internal exchanges and publishing errors -------------------------------------------------


def test_internal_exchange_refuses_publishes_but_routes_e2e(ch: Chan) -> None:
    ch.declare_exchange("inner", "fanout", internal=True)
    ch.declare_exchange("outer", "fanout")
    ch.declare_queue("q")
    ch.bind_exchange("inner", "outer")
    ch.bind("q", "inner")
    with pytest.raises(AccessRefused) as info:
        ch.publish("inner", "", b"m")
    assert info.value.text == "cannot publish to internal exchange 'inner' in vhost '/'"
    ch.publish("outer", "", b"m")
    assert ready(ch, "q") == 1


def test_publish_to_a_missing_exchange_is_not_found(ch: Chan) -> None:
    with pytest.raises(NotFound) as info:
        ch.publish("nope", "k", b"m")
    assert info.value.text == "no exchange 'nope' in vhost '/'"


def test_bind_queue_to_a_missing_exchange_is_not_found(ch: Chan) -> None:
    ch.declare_queue("q")
    with pytest.raises(NotFound) as info:
        ch.bind("q", "nope", "k")
    assert info.value.text == "no exchange 'nope' in vhost '/'"
