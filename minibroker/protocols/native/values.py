"""Field values and message properties on the native wire (msgpack), both directions.

Rules:

1. A :data:`FieldValue` maps onto msgpack natively (nil, bool, int, float, str, bin, array, map)
   except two types, which travel as msgpack extension types so they round-trip exactly:
   ``decimal.Decimal`` as ext :data:`EXT_DECIMAL` (1) holding ``str(value)`` in ASCII, and
   ``datetime.datetime`` as the standard msgpack timestamp (ext -1) when it is timezone-aware
   (decoded as UTC) or as ext :data:`EXT_NAIVE_DATETIME` (2) with the same payload when it is
   naive (its wall-clock time read as UTC).
2. Strings are msgpack ``str`` and byte strings msgpack ``bin``, so ``str``, ``bytes`` and
   ``bool`` never turn into one another.
3. Properties travel as a msgpack array in AMQP order (:data:`PROPERTY_NAMES`); trailing absent
   ones are left out and an absent one in the middle is nil. No properties at all is ``[]``, one
   byte, so the common case costs nothing to encode or decode.
4. Decoding validates everything a peer sent, raising :class:`FrameSyntaxError` (502) that names
   the frame and the field; nothing else escapes. Header integers must fit a signed 64-bit
   field, so every message can cross to an AMQP consumer. Field tables nest at most
   :data:`MAX_DEPTH` levels (msgpack's packer cannot re-encode deeper data, so deeper input
   is refused on entry).
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any

import msgpack

from minibroker.errors import FrameSyntaxError
from minibroker.message import EMPTY_PROPERTIES, Properties
from minibroker.protocols.building import build_properties

__all__ = [
    "EXT_DECIMAL", "EXT_NAIVE_DATETIME", "MAX_DEPTH", "PROPERTY_NAMES", "check_field_table",
    "decode_properties", "encode_properties", "ext_hook", "pack_default",
]

EXT_DECIMAL = 1
EXT_NAIVE_DATETIME = 2
#: Deepest nesting of arrays/maps inside one field table.
MAX_DEPTH = 64

_UTC = datetime.UTC
#: Header integers must fit AMQP's largest integer field type ('l'), so that what a native
#: client publishes can be delivered to an AMQP consumer.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

#: Property names in AMQP 0-9-1 order (basic class, §4.2.6.1): the index is the wire position.
#: (:class:`Properties` declares them in that order; the names are written there only.)
PROPERTY_NAMES: tuple[str, ...] = tuple(field.name for field in fields(Properties))
_get_properties = attrgetter(*PROPERTY_NAMES)
# Wire position -> the one accepted type; delivery_mode and priority are AMQP octets.
_PROPERTY_TYPES: tuple[type, ...] = (
    str, str, dict, int, int, str, str, str, str, int, str, str, str, str,
)
_OCTETS = (3, 4)


def pack_default(obj: object) -> msgpack.ExtType:
    """msgpack ``default`` hook: the field values msgpack cannot pack by itself."""
    if isinstance(obj, decimal.Decimal):
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode("ascii"))
    if isinstance(obj, datetime.datetime) and obj.tzinfo is None:
        stamp = msgpack.Timestamp.from_datetime(obj.replace(tzinfo=_UTC))
        return msgpack.ExtType(EXT_NAIVE_DATETIME, stamp.to_bytes())
    raise TypeError(f"cannot encode a {type(obj).__name__} as a field value")


def ext_hook(code: int, data: bytes) -> object:
    """msgpack ``ext_hook``: decode our extension types, refuse any other."""
    if code == EXT_DECIMAL:
        try:
            value = decimal.Decimal(data.decode("ascii"))
        except (UnicodeDecodeError, decimal.InvalidOperation):
            raise FrameSyntaxError(f"malformed decimal {data[:40]!r}") from None
        if not value.is_finite():  # AMQP's decimal has no NaN or infinity
            raise FrameSyntaxError(f"decimal {value} is not finite")
        return value
    if code == EXT_NAIVE_DATETIME:
        try:
            aware = msgpack.Timestamp.from_bytes(data).to_datetime()
        except (ValueError, OverflowError) as exc:
            raise FrameSyntaxError(f"malformed timestamp: {exc}") from None
        return aware.replace(tzinfo=None)
    raise FrameSyntaxError(f"unknown msgpack extension type {code}")


def _amqp_ready(value: Any) -> bool:
    """Can AMQP 0-9-1 carry this scalar field value (values.py rule 4)?"""
    kind = type(value)
    if kind is int:
        return bool(_INT64_MIN <= value <= _INT64_MAX)
    if kind is datetime.datetime:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=_UTC)
        return bool(aware >= _EPOCH)
    if kind is decimal.Decimal:
        # AMQP 'D': value = unscaled / 10**scale, scale an octet, unscaled a signed 32-bit int.
        sign, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):  # not finite (refused when decoded anyway)
            return False
        unscaled = int("".join(map(str, digits)) or "0")
        if exponent > 0:
            if unscaled and exponent > 10:
                return False
            unscaled *= 10**exponent
        return -exponent <= 255 and unscaled <= (2**31 if sign else 2**31 - 1)
    return True


def check_field_table(table: dict[Any, Any], where: str) -> None:
    """Check that a decoded map is a :data:`FieldTable`: str keys at every level, bounded depth.

    msgpack already produced only field-value types; what it allows beyond them is ``bytes``
    map keys and unbounded nesting. The walk uses an explicit stack, so hostile nesting cannot
    exhaust Python's recursion limit."""
    stack: list[tuple[Any, int]] = [(table, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FrameSyntaxError(f"{where}: field values nest deeper than {MAX_DEPTH} levels")
        if type(value) is dict:
            for key, item in value.items():
                if type(key) is not str:
                    raise FrameSyntaxError(f"{where}: field table key {key!r} is not a string")
                if type(item) is dict or type(item) is list:
                    stack.append((item, depth + 1))
                elif not _amqp_ready(item):
                    raise FrameSyntaxError(
                        f"{where}: field {key!r}: {item!r} cannot be carried by AMQP (integers "
                        "fit a signed 64-bit field, timestamps start at 1970, decimals fit a "
                        "scale octet and a signed 32-bit value)"
                    )
        else:  # a list: only containers are pushed
            for item in value:
                if type(item) is dict or type(item) is list:
                    stack.append((item, depth + 1))
                elif not _amqp_ready(item):
                    raise FrameSyntaxError(
                        f"{where}: array item {item!r} cannot be carried by AMQP"
                    )


# Identity memo: Properties object -> its wire form. A message's properties are decoded once
# (Publish) and encoded once per delivery; the memo turns those encodes into a lookup (measured:
# 0.1 µs instead of 0.5 µs). Each entry holds its object, so an id cannot be reused while the
# entry lives; the memo is emptied when full, so it never holds more than _MEMO_SIZE objects.
_MEMO_SIZE = 1024
_memo: dict[int, tuple[Properties, Sequence[Any]]] = {}


def _remember(properties: Properties, wire: Sequence[Any]) -> None:
    if len(_memo) >= _MEMO_SIZE:
        _memo.clear()
    _memo[id(properties)] = (properties, wire)


def encode_properties(properties: Properties) -> Sequence[Any]:
    """Properties -> the msgpack array of rule 3 (msgpack packs a tuple or list as an array)."""
    if properties is EMPTY_PROPERTIES:
        return ()
    entry = _memo.get(id(properties))
    if entry is not None and entry[0] is properties:
        return entry[1]
    values: tuple[Any, ...] = _get_properties(properties)
    end = len(values)
    while end and values[end - 1] is None:
        end -= 1
    wire = values[:end]
    _remember(properties, wire)
    return wire


def decode_properties(values: list[Any], where: str) -> Properties:
    """The msgpack array of rule 3 -> Properties, validating each present property.

    ``values`` is the list msgpack just made; it is kept (not copied) as the wire form."""
    if not values:
        return EMPTY_PROPERTIES
    if len(values) > len(PROPERTY_NAMES):
        raise FrameSyntaxError(f"{where}: {len(values)} properties, at most 14")
    for position, value in enumerate(values):
        if value is None:
            continue
        kind = type(value)
        if kind is not _PROPERTY_TYPES[position]:
            raise FrameSyntaxError(
                f"{where}.{PROPERTY_NAMES[position]}: expected "
                f"{_PROPERTY_TYPES[position].__name__}, got {kind.__name__}"
            )
        if kind is str and len(value) > 63 and len(value.encode()) > 255:
            # Every string property is an AMQP shortstr: a longer one could never be
            # delivered to an AMQP consumer.
            raise FrameSyntaxError(
                f"{where}.{PROPERTY_NAMES[position]}: longer than 255 bytes (AMQP shortstr)"
            )
    count = len(values)
    for position in _OCTETS:
        if count > position and values[position] is not None and not 0 <= values[position] <= 255:
            raise FrameSyntaxError(f"{where}.{PROPERTY_NAMES[position]}: "
                                       f"{values[position]} is not in 0..255")
    if count > 9 and values[9] is not None and values[9] < 0:
        raise FrameSyntaxError(f"{where}.timestamp: {values[9]} is negative")
    if count > 2 and values[2]:
        check_field_table(values[2], f"{where}.headers")
    properties = build_properties(*values)
    _remember(properties, values)
    return properties
