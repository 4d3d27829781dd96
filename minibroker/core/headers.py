"""Field-table identity and headers-exchange matching (the pure part of the headers exchange).

Rules:

1. :func:`table_key` turns a field table into a hashable key that is equal exactly when the
   tables are equal by value *and type*: ``True`` and ``1``, ``1`` and ``1.0``, ``"a"`` and
   ``b"a"`` give different keys; key order does not matter (RabbitMQ sorts binding arguments).
   Binding identity uses it.
2. ``x-match`` (RabbitMQ ``rabbit_exchange_type_headers``) is one of ``all`` (the default when
   absent), ``any``, ``all-with-x``, ``any-with-x``; any other value is refused with 406
   PRECONDITION_FAILED and RabbitMQ's exact wording.
3. ``all``: every considered binding key is present in the message headers with a matching value;
   ``any``: at least one is. Keys beginning with ``x-`` are not considered by ``all``/``any``; the
   ``-with-x`` variants consider them, except ``x-match`` itself, which is never a match key. So an
   empty ``all`` matches every message (even one without headers) and an empty ``any`` none.
4. Values match the way RabbitMQ's Erlang ``==`` compares decoded AMQP values: a binding value
   ``None`` (AMQP void) matches any present value ("a 'no value' in a pattern field is supposed to
   mean simple presence"); booleans equal only booleans (``True`` never matches ``1``); numbers
   compare numerically (``1`` matches ``1.0``); strings and byte arrays compare by their UTF-8
   bytes (both are Erlang binaries); decimals by (sign, digits, exponent); anything else (arrays,
   tables, timestamps) by :func:`field_key` equality, which keeps nested types apart like
   RabbitMQ's typed array/table elements do. Timestamps equal only timestamps (RabbitMQ would
   also equal them with integers; minibroker keeps ``datetime`` apart).
"""

from __future__ import annotations

import datetime
import decimal
import enum
from collections.abc import Hashable

from minibroker.errors import PreconditionFailed
from minibroker.message import FieldTable, FieldValue, field_type_name

__all__ = [
    "HeadersMatcher",
    "XMatch",
    "field_key",
    "headers_match",
    "parse_x_match",
    "table_key",
]


class XMatch(enum.Enum):
    ALL = "all"
    ANY = "any"
    ALL_WITH_X = "all-with-x"
    ANY_WITH_X = "any-with-x"


_X_MATCH = "x-match"


def field_key(value: FieldValue) -> Hashable:
    """A hashable key equal for equal values of the same AMQP type (rule 1)."""
    # bool before int: isinstance(True, int) holds in Python, never in AMQP.
    if isinstance(value, bool):
        return ("t", value)
    if isinstance(value, int):
        return ("l", value)
    if isinstance(value, float):
        return ("d", value.hex())  # hex: NaN equals NaN, and 0.0 differs from -0.0
    if isinstance(value, str):
        return ("S", value)
    if isinstance(value, bytes):
        return ("x", value)
    if isinstance(value, decimal.Decimal):
        return ("D", value.as_tuple())
    if isinstance(value, datetime.datetime):
        return ("T", value)
    if value is None:
        return ("V",)
    if isinstance(value, list):
        return ("A", tuple(field_key(item) for item in value))
    return ("F", table_key(value))


def table_key(table: FieldTable) -> Hashable:
    """A hashable key for a whole table; key order is irrelevant (rule 1)."""
    return tuple(sorted((key, field_key(value)) for key, value in table.items()))


def _erlang_term(value: FieldValue) -> str:
    """``value`` printed the way Erlang's ``~tp`` prints the decoded AMQP value (for messages)."""
    if isinstance(value, str | bytes):
        raw = value.encode() if isinstance(value, str) else value
        text = raw.decode("utf-8", errors="replace")
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'<<"{escaped}"/utf8>>' if not text.isascii() else f'<<"{escaped}">>'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "undefined"
    return repr(value)


def parse_x_match(arguments: FieldTable) -> XMatch:
    """The binding's match mode; raises PreconditionFailed (406) like RabbitMQ (rule 2)."""
    if _X_MATCH not in arguments:
        # RabbitMQ: "spec is vague on whether it can be omitted but in practice it's useful to
        # allow people to do this" -> all.
        return XMatch.ALL
    raw = arguments[_X_MATCH]
    if isinstance(raw, str):
        for mode in XMatch:
            if mode.value == raw:
                return mode
        raise PreconditionFailed(
            f"Invalid x-match field value {_erlang_term(raw)}; "
            "expected all, any, all-with-x, or any-with-x"
        )
    raise PreconditionFailed(
        f"Invalid x-match field type {field_type_name(raw)} (value {_erlang_term(raw)}); "
        "expected longstr"
    )


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _value_matches(pattern: FieldValue, data: FieldValue) -> bool:
    """Does a present header value satisfy a binding value? (rule 4)"""
    if pattern is None:
        return True
    if isinstance(pattern, bool) or isinstance(data, bool):
        return type(pattern) is bool and type(data) is bool and pattern == data
    if isinstance(pattern, int | float):
        return isinstance(data, int | float) and pattern == data
    if isinstance(pattern, str | bytes):
        return isinstance(data, str | bytes) and _as_bytes(pattern) == _as_bytes(data)
    if isinstance(pattern, decimal.Decimal):
        return isinstance(data, decimal.Decimal) and pattern.as_tuple() == data.as_tuple()
    return field_key(pattern) == field_key(data)


#: Types whose Python ``==`` within the same type is exactly the AMQP comparison (rule 4).
_PLAIN_TYPES = frozenset({str, int, bytes, bool})


class HeadersMatcher:
    """One headers binding compiled: its mode and the (key, value) pairs it checks."""

    __slots__ = ("match_all", "mode", "pairs")

    def __init__(self, arguments: FieldTable) -> None:
        self.mode = parse_x_match(arguments)
        self.match_all = self.mode in (XMatch.ALL, XMatch.ALL_WITH_X)
        with_x = self.mode in (XMatch.ALL_WITH_X, XMatch.ANY_WITH_X)
        # (key, value, value's type if a same-type == is exact, else None): the common case
        # (string or int equal to a header of the same type) skips _value_matches.
        self.pairs: tuple[tuple[str, FieldValue, type | None], ...] = tuple(
            (key, value, type(value) if type(value) in _PLAIN_TYPES else None)
            for key, value in arguments.items()
            if key != _X_MATCH and (with_x or not key.startswith("x-"))
        )

    def matches(self, headers: FieldTable | None) -> bool:
        present: FieldTable = headers or {}
        # 'all' fails on the first pair that does not match; 'any' succeeds on the first that does.
        match_all = self.match_all
        for key, pattern, plain_type in self.pairs:
            if key not in present:
                hit = False
            else:
                data = present[key]
                if plain_type is not None and type(data) is plain_type:
                    hit = pattern == data
                else:
                    hit = _value_matches(pattern, data)
            if hit is not match_all:
                return hit
        return match_all


def headers_match(arguments: FieldTable, headers: FieldTable | None) -> bool:
    """Convenience: does a binding with ``arguments`` match a message with ``headers``?"""
    return HeadersMatcher(arguments).matches(headers)
