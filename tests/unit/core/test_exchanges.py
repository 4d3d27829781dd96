"""Exchange types: routing per AMQP/RabbitMQ, binding identity, validation and the registry."""

from __future__ import annotations

import datetime
import decimal

import pytest

from minibroker.core.exchanges import (
    EXCHANGE_TYPES,
    Binding,
    Destination,
    DestinationKind,
    DirectExchange,
    Exchange,
    FanoutExchange,
    HeadersExchange,
    TopicExchange,
    exchange_class,
)
from minibroker.errors import PreconditionFailed
from minibroker.message import FieldTable, FieldValue


def q(name: str) -> Destination:
    return Destination(DestinationKind.QUEUE, name)


def x(name: str) -> Destination:
    return Destination(DestinationKind.EXCHANGE, name)


def routed(
    exchange: Exchange, routing_key: str = "", headers: FieldTable | None = None
) -> set[str]:
    destinations = list(exchange.route(routing_key, headers))
    assert len(destinations) == len(set(destinations)), "a destination was returned twice"
    return {d.name for d in destinations}


# -- registry and attributes ------------------------------------------------------------------


def test_registry_knows_the_four_amqp_types() -> None:
    assert set(EXCHANGE_TYPES) == {"direct", "fanout", "topic", "headers"}
    for name, cls in EXCHANGE_TYPES.items():
        assert cls.type_name == name
        assert exchange_class(name) is cls
    assert exchange_class("x-consistent-hash") is None


def test_exchange_keeps_its_declared_attributes_and_a_copy_of_arguments() -> None:
    arguments: FieldTable = {"alternate-exchange": "ae"}
    ex = TopicExchange("logs", durable=True, auto_delete=True, internal=True, arguments=arguments)
    arguments["alternate-exchange"] = "changed"
    assert (ex.name, ex.durable, ex.auto_delete, ex.internal) == ("logs", True, True, True)
    assert ex.arguments == {"alternate-exchange": "ae"}
    assert DirectExchange("d").arguments == {}


# -- direct and fanout ------------------------------------------------------------------------


def test_direct_routes_on_exact_case_sensitive_key() -> None:
    ex = DirectExchange("d")
    ex.bind(q("q1"), "info", {})
    ex.bind(q("q2"), "info", {})
    ex.bind(q("q3"), "Info", {})
    ex.bind(q("q4"), "", {})
    assert routed(ex, "info") == {"q1", "q2"}
    assert routed(ex, "Info") == {"q3"}
    assert routed(ex, "") == {"q4"}
    assert routed(ex, "info.x") == set()
    assert routed(ex, "*") == set()


def test_fanout_routes_to_every_destination_ignoring_keys() -> None:
    ex = FanoutExchange("f")
    ex.bind(q("q1"), "", {})
    ex.bind(q("q2"), "whatever", {})
    ex.bind(x("downstream"), "k", {})
    assert routed(ex, "anything") == {"q1", "q2", "downstream"}
    assert set(ex.route("", None)) == {q("q1"), q("q2"), x("downstream")}
    assert routed(FanoutExchange("empty"), "k") == set()


@pytest.mark.parametrize("cls", [DirectExchange, FanoutExchange, TopicExchange])
def test_destination_bound_twice_is_routed_once_until_its_last_binding_goes(
    cls: type[Exchange],
) -> None:
    ex = cls("e")
    assert ex.bind(q("q1"), "a.b", {})
    assert ex.bind(q("q1"), "a.b", {"x-extra": 1})  # different arguments: a second binding
    assert ex.bind(q("q1"), "#" if cls is TopicExchange else "a.b", {"k": "v"})
    assert routed(ex, "a.b") == {"q1"}
    assert ex.unbind(q("q1"), "a.b", {})
    assert routed(ex, "a.b") == {"q1"}
    assert ex.unbind_destination(q("q1")) == 2
    assert routed(ex, "a.b") == set()


def test_queue_and_exchange_destinations_with_the_same_name_are_distinct() -> None:
    ex = DirectExchange("d")
    assert ex.bind(q("same"), "k", {})
    assert ex.bind(x("same"), "k", {})
    assert set(ex.route("k", None)) == {q("same"), x("same")}
    assert ex.unbind_destination(q("same")) == 1
    assert set(ex.route("k", None)) == {x("same")}


# -- topic ------------------------------------------------------------------------------------


def test_topic_exchange_routes_by_pattern_and_dedupes() -> None:
    ex = TopicExchange("t")
    ex.bind(q("all"), "#", {})
    ex.bind(q("eu"), "eu.*.*", {})
    ex.bind(q("eu"), "eu.#", {})
    ex.bind(q("errors"), "*.*.error", {})
    assert routed(ex, "eu.billing.error") == {"all", "eu", "errors"}
    assert routed(ex, "us.billing.error") == {"all", "errors"}
    assert routed(ex, "eu") == {"all", "eu"}
    assert routed(ex, "") == {"all"}


def test_topic_unbind_prunes_the_trie() -> None:
    ex = TopicExchange("t")
    for i in range(200):
        ex.bind(q(f"q{i % 7}"), f"r{i % 5}.*.s{i}.#", {"n": i})
    assert ex.trie_node_count > 1
    for i in range(7):
        ex.unbind_destination(q(f"q{i}"))
    assert ex.binding_count == 0
    assert ex.trie_node_count == 1


# -- binding bookkeeping (all types) ----------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(EXCHANGE_TYPES))
def test_bind_is_idempotent_and_unbind_of_missing_binding_is_not_an_error(type_name: str) -> None:
    ex = EXCHANGE_TYPES[type_name]("e")
    args: FieldTable = {"x-match": "any", "a": 1, "nested": {"l": [1, "s"]}}
    assert ex.bind(q("q1"), "k", args) is True
    assert ex.bind(q("q1"), "k", dict(reversed(list(args.items())))) is False  # same table
    assert ex.binding_count == 1
    assert ex.unbind(q("q1"), "k", {"x-match": "any", "a": 1}) is False  # other arguments
    assert ex.unbind(q("q1"), "other", args) is False
    assert ex.unbind(q("q2"), "k", args) is False
    assert ex.unbind(q("q1"), "k", args) is True
    assert ex.unbind(q("q1"), "k", args) is False
    assert ex.binding_count == 0
    assert not ex.has_destination(q("q1"))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (True, 1),
        (False, 0),
        (1, 1.0),
        ("a", b"a"),
        (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
        ([1], [True]),
        ({"k": 1}, {"k": True}),
        (None, ""),
    ],
)
def test_binding_identity_keeps_amqp_types_apart(first: FieldValue, second: FieldValue) -> None:
    ex = FanoutExchange("f")
    assert ex.bind(q("q1"), "", {"v": first}) is True
    assert ex.bind(q("q1"), "", {"v": second}) is True
    assert ex.binding_count == 2


def test_bindings_listed_in_binding_order_with_copied_arguments() -> None:
    ex = TopicExchange("t")
    args: FieldTable = {"k": [1, 2]}
    ex.bind(q("b"), "x.#", args)
    ex.bind(x("a"), "*.y", {})
    ex.bind(q("c"), "z", {})
    args["k"] = "changed"
    assert ex.bindings() == [
        Binding("t", q("b"), "x.#", {"k": [1, 2]}),
        Binding("t", x("a"), "*.y", {}),
        Binding("t", q("c"), "z", {}),
    ]
    ex.unbind(x("a"), "*.y", {})
    ex.bind(x("a"), "*.y", {})
    assert [b.destination for b in ex.bindings()] == [q("b"), q("c"), x("a")]


def test_unbind_destination_removes_only_that_destination_and_counts() -> None:
    ex = DirectExchange("d")
    for key in ("a", "b", "c"):
        ex.bind(q("gone"), key, {})
        ex.bind(q("stays"), key, {})
    assert ex.has_destination(q("gone"))
    assert ex.unbind_destination(q("gone")) == 3
    assert ex.unbind_destination(q("gone")) == 0
    assert not ex.has_destination(q("gone"))
    assert ex.binding_count == 3
    assert routed(ex, "b") == {"stays"}
    assert [b.destination for b in ex.bindings()] == [q("stays")] * 3


# -- headers ----------------------------------------------------------------------------------

FULL: FieldTable = {"a": 1, "b": 2, "x-k": "v"}
A_ONLY: FieldTable = {"a": 1}
X_ONLY: FieldTable = {"x-k": "v"}
NONE: FieldTable = {}


@pytest.mark.parametrize(
    ("binding", "expected"),
    [
        ({"x-match": "all", "a": 1, "b": 2}, ["full"]),
        ({"a": 1, "b": 2}, ["full"]),  # x-match absent = all
        ({"x-match": "any", "a": 1, "b": 2}, ["full", "a-only"]),
        ({"x-match": "all-with-x", "a": 1, "x-k": "v"}, ["full"]),
        ({"x-match": "any-with-x", "b": 2, "x-k": "v"}, ["full", "x-only"]),
        ({"x-match": "any-with-x", "a": 1, "x-k": "v"}, ["full", "a-only", "x-only"]),
        # Without -with-x the x- keys are ignored: {a:1, x-k:v} under all needs only a=1.
        ({"x-match": "all", "a": 1, "x-k": "other"}, ["full", "a-only"]),
        ({"x-match": "any", "x-k": "v"}, []),
    ],
)
def test_headers_x_match_modes(binding: FieldTable, expected: list[str]) -> None:
    ex = HeadersExchange("h")
    ex.bind(q("q"), "", binding)
    messages = {"full": FULL, "a-only": A_ONLY, "x-only": X_ONLY, "none": NONE}
    assert [name for name, headers in messages.items() if routed(ex, "", headers)] == expected


@pytest.mark.parametrize(
    ("binding_value", "header_value", "expected"),
    [
        (1, 1, True),
        (1, "1", False),
        (1, True, False),  # in Python True == 1; in AMQP a bool is not an int
        (True, 1, False),
        (True, True, True),
        (False, 0, False),
        (1, 1.0, True),  # numbers compare numerically, as Erlang's == does
        (1, 2, False),
        ("v", "v", True),
        ("v", b"v", True),  # longstr and byte array are both binaries to RabbitMQ
        ("v", "V", False),
        (decimal.Decimal("1.5"), decimal.Decimal("1.5"), True),
        (decimal.Decimal("1.5"), 1.5, False),
        ([1, "a"], [1, "a"], True),
        ([1], [True], False),
        ({"k": 1}, {"k": 1}, True),
        (datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
         datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), True),
        (None, "anything", True),  # void in the binding: presence is enough
        (None, None, True),
        ("v", None, False),
    ],
)
def test_headers_value_comparison(
    binding_value: FieldValue, header_value: FieldValue, expected: bool
) -> None:
    ex = HeadersExchange("h")
    ex.bind(q("q"), "", {"k": binding_value})
    assert (routed(ex, "", {"k": header_value}) == {"q"}) is expected


def test_headers_void_binding_value_needs_the_key_present() -> None:
    ex = HeadersExchange("h")
    ex.bind(q("q"), "", {"k": None})
    assert routed(ex, "", {"other": 1}) == set()
    assert routed(ex, "", None) == set()


def test_headers_empty_all_matches_everything_and_empty_any_nothing() -> None:
    ex = HeadersExchange("h")
    ex.bind(q("all"), "", {})
    ex.bind(q("all-x"), "", {"x-match": "all", "x-ignored": 1})
    ex.bind(q("any"), "", {"x-match": "any"})
    ex.bind(q("any-x"), "", {"x-match": "any-with-x"})
    assert routed(ex, "", None) == {"all", "all-x"}
    assert routed(ex, "", {"x-ignored": 1, "k": "v"}) == {"all", "all-x"}


def test_headers_ignore_routing_key_and_dedupe_destinations() -> None:
    ex = HeadersExchange("h")
    ex.bind(q("q"), "key-1", {"a": 1})
    ex.bind(q("q"), "key-2", {"x-match": "any", "b": 2})
    ex.bind(q("other"), "", {"b": 2})
    assert routed(ex, "unrelated", {"a": 1, "b": 2}) == {"q", "other"}
    assert routed(ex, "", {"a": 1}) == {"q"}


def test_headers_x_match_key_is_never_a_match_key_even_with_x() -> None:
    ex = HeadersExchange("h")
    ex.bind(q("q"), "", {"x-match": "all-with-x"})
    assert routed(ex, "", {}) == {"q"}


@pytest.mark.parametrize(
    ("x_match", "text"),
    [
        ("some", 'Invalid x-match field value <<"some">>; '
                 "expected all, any, all-with-x, or any-with-x"),
        ("ALL", 'Invalid x-match field value <<"ALL">>; '
                "expected all, any, all-with-x, or any-with-x"),
        (1, "Invalid x-match field type long (value 1); expected longstr"),
        (b"all", 'Invalid x-match field type binary (value <<"all">>); expected longstr'),
        (True, "Invalid x-match field type bool (value true); expected longstr"),
    ],
)
def test_headers_validate_binding_refuses_bad_x_match(x_match: FieldValue, text: str) -> None:
    ex = HeadersExchange("h")
    with pytest.raises(PreconditionFailed) as caught:
        ex.validate_binding("", {"x-match": x_match, "a": 1})
    assert caught.value.reply_code == 406
    assert caught.value.text == text
    assert caught.value.reply_text == "PRECONDITION_FAILED - " + text
    with pytest.raises(PreconditionFailed):
        ex.bind(q("q"), "", {"x-match": x_match})
    assert ex.binding_count == 0  # a refused binding leaves no trace


@pytest.mark.parametrize("x_match", ["all", "any", "all-with-x", "any-with-x"])
def test_headers_validate_binding_accepts_the_four_modes(x_match: str) -> None:
    HeadersExchange("h").validate_binding("", {"x-match": x_match})


@pytest.mark.parametrize("type_name", ["direct", "fanout", "topic"])
def test_other_types_accept_any_binding_arguments(type_name: str) -> None:
    EXCHANGE_TYPES[type_name]("e").validate_binding("#.*", {"x-match": "nonsense", "k": [1]})
