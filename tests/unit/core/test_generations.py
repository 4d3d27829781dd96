"""The RabbitMQ version profile (``core/generations.py``) and RabbitMQ's equivalence texts
(``core/equivalence.py``)."""

from __future__ import annotations

import datetime
import decimal
from pathlib import Path

import pytest

from minibroker.core.broker import Broker
from minibroker.core.equivalence import Long, erlang_text, wire_type
from minibroker.core.generations import (
    NEWEST,
    QUORUM_DEFAULT_DELIVERY_LIMIT,
    ROWS,
    UNKNOWN_EXCHANGE_TYPE_CLOSES_CONNECTION,
    Profile,
)
from minibroker.message import FieldValue


@pytest.mark.parametrize(("version", "closes"), [
    ("3.10", True), ("3.10.8", True), ("3.13.2", True), ("3.13.3", False), ("3.13", False),
    ("4.0", False), ("4.2", False), ("4.2.1", False),
])
def test_each_row_changes_at_its_release(version: str, closes: bool) -> None:
    assert Profile(version)[UNKNOWN_EXCHANGE_TYPE_CLOSES_CONNECTION] is closes


def test_a_two_part_version_is_the_newest_patch_of_its_series() -> None:
    assert Profile("3.13")[QUORUM_DEFAULT_DELIVERY_LIMIT] is None
    assert Profile("4.0")[QUORUM_DEFAULT_DELIVERY_LIMIT] == 20


def test_the_default_profile_is_the_newest_and_gives_every_new_answer() -> None:
    profile = Broker().profile
    assert profile == Profile(NEWEST)
    assert all(profile[row] == row.new for row in ROWS)
    assert all(Profile("3.10")[row] == row.old for row in ROWS)


@pytest.mark.parametrize("version", ["3.9", "3.9.29", "4.3", "5.0", "latest", "3", "3.10.x", ""])
def test_versions_outside_the_model_are_refused_with_the_range(version: str) -> None:
    with pytest.raises(ValueError) as info:
        Broker(rabbitmq=version)
    text = str(info.value)
    assert "3.10 to 4.2" in text or "is not a version" in text


def test_every_row_says_what_changed_where_and_when() -> None:
    names = [row.name for row in ROWS]
    assert len(set(names)) == len(names)
    for row in ROWS:
        assert row.old != row.new
        assert row.summary and row.source
        assert (3, 10, 0) < row.since <= (4, 2, 1_000)


@pytest.mark.parametrize(("value", "kind", "text"), [
    (True, "bool", "true"), (11, "signedint", "11"), (-(2**31), "signedint", str(-(2**31))),
    (2**31, "long", str(2**31)), ("a", "longstr", "a"), (b"a", "binary", "a"),
    (1.5, "double", "1.5"), (decimal.Decimal("1.5"), "decimal", "{1,15}"),
    (datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC), "timestamp", "1577836800"),
    (["a", 1], "array", '[{longstr,<<"a">>},{signedint,1}]'),
    ({"k": 'q"'}, "table", '[{<<"k">>,longstr,<<"q\\"">>}]'), (None, "void", "undefined"),
    (Long(2), "long", "2"),  # a JSON number of the management API
])
def test_values_are_named_and_printed_as_rabbitmq_does(
    value: FieldValue, kind: str, text: str,
) -> None:
    assert (wire_type(value), erlang_text(value)) == (kind, text)


def test_the_compatibility_document_lists_every_row() -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "compatibility.md").read_text()
    section = text.split("## RabbitMQ version profile")[1].split("\n## ")[0]
    for row in ROWS:
        line = next((line for line in section.splitlines() if line.startswith(f"| {row.name} |")),
                    None)
        assert line is not None, f"docs/compatibility.md does not list the row {row.name!r}"
        assert f"| {row.since_text} |" in line
