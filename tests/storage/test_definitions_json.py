"""RabbitMQ's definitions JSON: real exports import, round trips are exact, errors name fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibroker.storage import (
    BindingDefinition,
    Definitions,
    DefinitionsError,
    ExchangeDefinition,
    PermissionDefinition,
    QueueDefinition,
    UserDefinition,
    VHostDefinition,
)
from minibroker.storage.definitions_json import from_json, parse, render, to_json

FIXTURE = Path(__file__).parent / "fixtures" / "rabbitmq-3.10-export.json"


def test_a_file_exported_by_rabbitmq_3_10_imports() -> None:
    # Made with `rabbitmqctl export_definitions` on RabbitMQ 3.10.8 (only the objects of the
    # test vhost kept). 3.10 leaves internal exchanges and the "internal" field out.
    d = parse(FIXTURE.read_text())
    assert d.rabbit_version == "3.10.8"
    v = "storage-fixture"
    assert VHostDefinition(v, "fixture for minibroker storage tests", ("test", "storage"), []
                           ) in d.vhosts
    assert UserDefinition("storage-fixture-user",
                          "4V9k0BCAcJXL7bBPcmU19KATFJHMveg6OkKpAS1WNL7kFPMV",
                          "rabbit_password_hashing_sha256", ("monitoring", "policymaker"), {}
                          ) in d.users
    assert PermissionDefinition("storage-fixture-user", v, "^fx\\.", ".*", ".*") in d.permissions
    assert ExchangeDefinition("fx.topic", v, "topic", True, False, False,
                              {"alternate-exchange": "fx.fallback"}) in d.exchanges
    orders = next(q for q in d.queues if q.name == "fx.orders")
    assert orders.arguments["x-message-ttl"] == 60000 and orders.type == "classic"
    assert next(q for q in d.queues if q.name == "fx.quorum").type == "quorum"
    assert BindingDefinition("fx.headers", "fx.quorum", "queue", "", v,
                             {"x-match": "all", "region": "eu", "priority": 2}) in d.bindings
    assert BindingDefinition("fx.topic", "fx.headers", "exchange", "#.audit", v) in d.bindings
    assert d.policies[0]["name"] == "fx-limit"


def test_a_round_trip_keeps_everything() -> None:
    d = parse(FIXTURE.read_text())
    text = render(d)
    assert parse(text) == d
    exported = json.loads(text)
    original = json.loads(FIXTURE.read_text())
    for section in ("users", "vhosts", "permissions", "queues", "bindings", "policies"):
        assert sorted(map(json.dumps, exported[section])) == sorted(
            json.dumps(entry, sort_keys=False) for entry in _reorder(exported, original, section))
    # The version fields are the file's own, not this broker's.
    assert (exported["rabbit_version"], "product_name" in exported) == ("3.10.8", False)


def _reorder(exported: dict[str, Any], original: dict[str, Any], section: str
             ) -> list[dict[str, Any]]:
    """The original entries with their keys in the exporter's order (JSON objects are
    unordered; the comparison is about content)."""
    entries = []
    for entry in original[section]:
        model = next(e for e in exported[section] if set(e) >= set(entry))
        entries.append({k: entry[k] for k in model if k in entry})
    return entries


def test_an_export_of_this_broker_says_what_it_is() -> None:
    exported = to_json(Definitions(queues=(QueueDefinition("q"),)))
    assert list(exported)[:4] == ["rabbit_version", "rabbitmq_version", "product_name",
                                  "product_version"]
    assert exported["product_name"] == "minibroker"
    assert exported["queues"] == [{"name": "q", "vhost": "/", "durable": True,
                                   "auto_delete": False, "arguments": {}, "type": "classic"}]


def test_older_forms_are_accepted() -> None:
    d = from_json({
        "rabbit_version": "3.6.1",
        "users": [{"name": "u", "password_hash": "", "tags": "administrator, management"}],
        "vhosts": [{"name": "/"}],
        "queues": [{"name": "q", "durable": True, "auto_delete": False, "arguments": {}}],
        "future_section": [1, 2, 3],
    })
    assert d.users == (UserDefinition("u", "", "rabbit_password_hashing_sha256",
                                      ("administrator", "management")),)
    assert d.vhosts == (VHostDefinition("/"),)
    assert d.queues == (QueueDefinition("q"),)


@pytest.mark.parametrize(("document", "message"), [
    ([], "the document must be a JSON object, not a list"),
    ({"queues": {}}, "queues: expected a list, got an object"),
    ({"queues": [7]}, "queues[0]: expected an object, got a number"),
    ({"queues": [{"name": "q", "durable": "yes", "auto_delete": False}]},
     'queues[0].durable: expected a boolean, got a string "yes"'),
    ({"queues": [{"name": "", "durable": True, "auto_delete": False}]},
     "queues[0].name: must not be empty"),
    ({"queues": [{"name": "q" * 256, "durable": True, "auto_delete": False}]},
     "queues[0].name: longer than 255 bytes"),
    ({"queues": [{"name": "q", "durable": True, "auto_delete": False, "type": "fast"}]},
     "queues[0].type: 'fast' is not one of classic, quorum, stream"),
    ({"queues": [{"name": "q", "durable": True, "auto_delete": False,
                  "arguments": {"x-max-length": 2**70}}]}, "queues[0].arguments"),
    ({"exchanges": [{"name": "x", "durable": True, "auto_delete": False}]},
     "exchanges[0].type: missing"),
    ({"bindings": [{"source": "x", "destination": "q", "destination_type": "topic",
                    "routing_key": ""}]},
     "bindings[0].destination_type: 'topic' is not one of queue, exchange"),
    ({"users": [{"name": "u", "password_hash": "not base64!"}]},
     "users[0].password_hash: not base64"),
    ({"users": [{"name": "u", "password_hash": "", "hashing_algorithm": "rot13"}]},
     "users[0].hashing_algorithm: 'rot13' is not one of"),
    ({"users": [{"name": "u", "password_hash": "", "tags": [1]}]},
     "users[0].tags: expected a list of strings"),
    ({"permissions": [{"user": "u", "vhost": "/", "configure": ".*", "write": ".*"}]},
     "permissions[0].read: missing"),
    ({"vhosts": [{"name": "v", "limits": 5}]}, "vhosts[0].limits: expected an object or a list"),
    ({"policies": ["p"]}, "policies[0]: expected an object, got a string"),
    ({"rabbit_version": 3}, "definitions.rabbit_version: expected a string, got a number"),
])
def test_bad_documents_are_refused_naming_the_field(document: object, message: str) -> None:
    with pytest.raises(DefinitionsError) as info:
        from_json(document)
    assert message in str(info.value)


def test_bad_json_text_is_a_definitions_error() -> None:
    with pytest.raises(DefinitionsError, match="not JSON"):
        parse("{")


def test_arguments_json_cannot_carry_are_refused_on_export() -> None:
    with pytest.raises(DefinitionsError, match=r"queues\[0\].arguments.blob: a bytes cannot"):
        to_json(Definitions(queues=(QueueDefinition("q", arguments={"blob": b"\x00"}),)))


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)
tables = st.dictionaries(st.text(max_size=10), json_values, max_size=3)


@settings(max_examples=100)
@given(st.builds(
    Definitions,
    users=st.lists(st.builds(UserDefinition, names, st.just("aGFzaA=="),
                             st.sampled_from(["rabbit_password_hashing_sha256",
                                              "rabbit_password_hashing_sha512"]),
                             st.lists(names, max_size=2).map(tuple)), max_size=2).map(tuple),
    vhosts=st.lists(st.builds(VHostDefinition, names, st.text(max_size=10),
                              st.lists(names, max_size=2).map(tuple)), max_size=2).map(tuple),
    permissions=st.lists(st.builds(PermissionDefinition, names, names), max_size=2).map(tuple),
    exchanges=st.lists(st.builds(ExchangeDefinition, names, names,
                                 st.sampled_from(["direct", "topic", "x-custom"]),
                                 st.booleans(), st.booleans(), st.booleans(), tables),
                       max_size=2).map(tuple),
    queues=st.lists(st.builds(QueueDefinition, names, names, st.booleans(), st.booleans(),
                              tables, st.sampled_from(["classic", "quorum", "stream"])),
                    max_size=2).map(tuple),
    bindings=st.lists(st.builds(BindingDefinition, names, names,
                                st.sampled_from(["queue", "exchange"]), st.text(max_size=10),
                                names, tables), max_size=2).map(tuple),
))
def test_round_trip_property(definitions: Definitions) -> None:
    assert from_json(json.loads(render(definitions))).all() == definitions.all()
