"""AMQP 0-9-1 field tables and field arrays, with RabbitMQ's type tags.

Tables carry ``x-arguments``, message headers, client/server properties and capabilities.

Rules:

1. Decoding accepts exactly the tags RabbitMQ uses (AMQP errata #3, RabbitMQ's
   ``rabbit_binary_parser``): ``t b B s u I i l f d D S A T F V x`` where ``s`` is a *signed*
   16-bit int, ``I`` signed 32-bit, ``i`` unsigned 32-bit, ``l`` signed 64-bit and ``x`` a
   byte array. Any other tag is a :class:`FrameSyntaxError` (502 SYNTAX_ERROR); a length that
   runs past its container is a :class:`FrameError` (501, "cannot decode").
2. Decoded values are the :data:`minibroker.message.FieldValue` types: every integer tag
   → ``int``, ``f``/``d`` → ``float``, ``D`` → ``decimal.Decimal``, ``T`` → an aware
   ``datetime`` in UTC, ``V`` → ``None``, ``x`` → ``bytes``, ``S`` → ``str`` (or ``bytes`` when
   the octets are not UTF-8: py-amqp sends ``bytes`` values as ``S``, so refusing them would
   close a client's connection over a header value), ``A`` → ``list``, ``F`` → ``dict``.
3. Encoding picks one tag per Python type: ``bool`` → ``t``; ``int`` → ``I`` when it fits a
   signed 32-bit int, else ``l`` (signed 64-bit) — what RabbitMQ's own generator and pika emit,
   and every client decodes both as an int, so ints round-trip as ints; larger ints are a
   ``ValueError``. ``float`` → ``d``, ``str`` → ``S``, ``bytes`` → ``x``, ``Decimal`` → ``D``,
   ``datetime`` → ``T`` (whole seconds; a naive datetime is taken as UTC), ``None`` → ``V``,
   ``list``/``tuple`` → ``A``, ``dict`` → ``F``. Anything else is a ``TypeError``.
4. An array's length prefix is its *byte* length, like a table's (errata #4).
5. Nesting is limited to :data:`MAX_DEPTH` levels so a hostile frame cannot exhaust the
   Python stack: deeper input is a 502.
6. Field names may hold any octets, as in RabbitMQ: names that are not UTF-8 are kept with
   Python's ``surrogateescape`` (:func:`text`) and written back as the same octets
   (:func:`encode_text`), so a header crosses the broker unchanged.
7. A timestamp ``T`` is an unsigned 64-bit count of seconds. One that ``datetime`` cannot
   hold (after the year 9999) decodes to a :class:`~minibroker.message.Timestamp` (an ``int``)
   and encodes back as ``T``: RabbitMQ accepts and passes on any 64-bit value.
"""

from __future__ import annotations

import datetime
import decimal
import struct

from minibroker.errors import FrameError, FrameSyntaxError
from minibroker.message import FieldTable, FieldValue, Timestamp

__all__ = [
    "MAX_DEPTH",
    "decode_array",
    "decode_table",
    "encode_array",
    "encode_table",
    "encode_text",
    "encode_value",
    "text",
]

MAX_DEPTH = 64

_UTC = datetime.UTC
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_LONG = struct.Struct(">I")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Seconds from the epoch to the first instant ``datetime`` cannot hold (year 10000).
_DATETIME_LIMIT = 253_402_300_800

# Fixed-size tags: tag -> Struct. Booleans ('t') are handled apart (bool, not int).
_FIXED: dict[int, struct.Struct] = {
    ord(tag): struct.Struct(">" + fmt)
    for tag, fmt in (
        ("b", "b"), ("B", "B"), ("s", "h"), ("u", "H"), ("I", "i"), ("i", "I"),
        ("l", "q"), ("f", "f"), ("d", "d"), ("T", "Q"),
    )
}
_DECIMAL = struct.Struct(">Bi")
_T = ord("t")


def text(raw: bytes) -> str:
    """Octets that may hold anything (rule 6): UTF-8, else surrogate-escaped."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape")


def encode_text(value: str) -> bytes:
    """The octets of ``value``, surrogate-escaped octets included (rule 6)."""
    try:
        return value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def _truncated(what: str) -> FrameError:
    return FrameError(f"cannot decode {what}: truncated")


# -- decoding ----------------------------------------------------------------------------------


def decode_table(buf: bytes, offset: int) -> tuple[FieldTable, int]:
    """Decode a table (long byte-length + name/value pairs) at ``offset``; return it and the
    offset just after it."""
    return _table(buf, offset, len(buf), 0)


def decode_array(buf: bytes, offset: int) -> tuple[list[FieldValue], int]:
    """Decode an array (long byte-length + tagged values) at ``offset``."""
    return _array(buf, offset, len(buf), 0)


def _container_end(buf: bytes, offset: int, limit: int, what: str) -> int:
    if offset + 4 > limit:
        raise _truncated(what)
    end: int = offset + 4 + _LONG.unpack_from(buf, offset)[0]
    if end > limit:
        raise _truncated(what)
    return end


def _table(buf: bytes, offset: int, limit: int, depth: int) -> tuple[FieldTable, int]:
    end = _container_end(buf, offset, limit, "field table")
    offset += 4
    table: FieldTable = {}
    while offset < end:
        kend = offset + 1 + buf[offset]
        if kend >= end:  # the name and at least the value's tag must fit
            raise _truncated("field table entry")
        name = text(buf[offset + 1 : kend])
        table[name], offset = _value(buf, kend, end, depth)
    return table, offset


def _array(buf: bytes, offset: int, limit: int, depth: int) -> tuple[list[FieldValue], int]:
    end = _container_end(buf, offset, limit, "field array")
    offset += 4
    values: list[FieldValue] = []
    while offset < end:
        value, offset = _value(buf, offset, end, depth)
        values.append(value)
    return values, offset


def _value(buf: bytes, offset: int, end: int, depth: int) -> tuple[FieldValue, int]:
    """Decode one tagged value that must lie entirely before ``end``."""
    tag = buf[offset]
    offset += 1
    fixed = _FIXED.get(tag)
    if fixed is not None:
        nxt = offset + fixed.size
        if nxt > end:
            raise _truncated("field value")
        number: int | float = fixed.unpack_from(buf, offset)[0]
        if tag == 0x54:  # 'T'
            return _timestamp(int(number)), nxt
        return number, nxt
    if tag == _T:
        if offset >= end:
            raise _truncated("field value")
        return buf[offset] != 0, offset + 1
    if tag == 0x53 or tag == 0x78:  # 'S' long string, 'x' byte array
        nxt = _container_end(buf, offset, end, "field value")
        raw = buf[offset + 4 : nxt]
        if tag == 0x53:
            try:
                return raw.decode(), nxt
            except UnicodeDecodeError:
                return raw, nxt  # rule 2: non-UTF-8 'S' stays bytes
        return raw, nxt
    if tag == 0x46 or tag == 0x41:  # 'F' table, 'A' array
        if depth >= MAX_DEPTH:
            raise FrameSyntaxError(f"field table nested deeper than {MAX_DEPTH} levels")
        if tag == 0x46:
            return _table(buf, offset, end, depth + 1)
        return _array(buf, offset, end, depth + 1)
    if tag == 0x44:  # 'D' decimal: scale octet + signed long
        nxt = offset + 5
        if nxt > end:
            raise _truncated("field value")
        scale, unscaled = _DECIMAL.unpack_from(buf, offset)
        return decimal.Decimal(unscaled).scaleb(-scale), nxt
    if tag == 0x56:  # 'V' void
        return None, offset
    raise FrameSyntaxError(f"unknown field table type tag {bytes([tag])!r}")


def _timestamp(seconds: int) -> datetime.datetime | Timestamp:
    if seconds < _DATETIME_LIMIT:
        return _EPOCH + datetime.timedelta(seconds=seconds)
    return Timestamp(seconds)  # rule 7: after 9999-12-31T23:59:59


# -- encoding ----------------------------------------------------------------------------------


def encode_table(table: FieldTable) -> bytes:
    """Encode a table with its long byte-length prefix."""
    parts: list[bytes] = []
    for name, value in table.items():
        key = encode_text(name)
        if len(key) > 255:
            raise ValueError(f"field name longer than 255 octets: {name[:32]!r}...")
        parts.append(bytes((len(key),)))
        parts.append(key)
        parts.append(encode_value(value))
    body = b"".join(parts)
    return _LONG.pack(len(body)) + body


def encode_array(values: list[FieldValue] | tuple[FieldValue, ...]) -> bytes:
    """Encode an array with its long byte-length prefix."""
    body = b"".join([encode_value(v) for v in values])
    return _LONG.pack(len(body)) + body


_PACK_I = struct.Struct(">ci").pack
_PACK_L = struct.Struct(">cq").pack
_PACK_D = struct.Struct(">cd").pack
_PACK_T = struct.Struct(">cQ").pack
_PACK_DEC = struct.Struct(">cBi").pack
_PACK_LEN = struct.Struct(">cI").pack


def encode_value(value: FieldValue) -> bytes:
    """Encode one value with its type tag (rule 3)."""
    if value is True:
        return b"t\x01"
    if value is False:
        return b"t\x00"
    if type(value) is Timestamp:
        if not 0 <= value < 2**64:
            raise ValueError(f"timestamp {int(value)} does not fit 64 unsigned bits")
        return _PACK_T(b"T", value)
    if isinstance(value, int):
        if _INT32_MIN <= value <= _INT32_MAX:
            return _PACK_I(b"I", value)
        if _INT64_MIN <= value <= _INT64_MAX:
            return _PACK_L(b"l", value)
        raise ValueError(f"integer {value} does not fit a signed 64-bit field")
    if isinstance(value, str):
        raw = encode_text(value)
        return _PACK_LEN(b"S", len(raw)) + raw
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return _PACK_LEN(b"x", len(raw)) + raw
    if isinstance(value, float):
        return _PACK_D(b"d", value)
    if value is None:
        return b"V"
    if isinstance(value, dict):
        return b"F" + encode_table(value)
    if isinstance(value, (list, tuple)):
        return b"A" + encode_array(value)
    if isinstance(value, decimal.Decimal):
        return _encode_decimal(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_UTC)
        seconds = (value - _EPOCH) // datetime.timedelta(seconds=1)
        if seconds < 0:
            raise ValueError(f"timestamp before 1970 cannot be encoded: {value}")
        return _PACK_T(b"T", seconds)
    raise TypeError(f"cannot encode {type(value).__name__} in an AMQP field table")


def _encode_decimal(value: decimal.Decimal) -> bytes:
    """'D' = scale octet + signed 32-bit unscaled value: value = unscaled / 10**scale."""
    if not value.is_finite():
        raise ValueError(f"decimal {value} cannot be encoded")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if len(digits) > 10:  # more digits than a signed long holds (and int() may refuse them)
        raise ValueError(f"decimal {value} does not fit AMQP's signed long")
    unscaled = int("".join(map(str, digits)) or "0")
    scale = max(0, -exponent)
    if exponent > 0 and unscaled:  # e.g. 1E+2: multiply out, bounded so 1E+999999 (or
        if exponent > 10:          # 0E+999999999999) cannot eat the CPU
            raise ValueError(f"decimal {value} does not fit AMQP's signed long")
        unscaled *= 10**exponent
    if sign:
        unscaled = -unscaled
    if scale > 255 or not _INT32_MIN <= unscaled <= _INT32_MAX:
        raise ValueError(f"decimal {value} does not fit AMQP's scale octet + signed long")
    return _PACK_DEC(b"D", scale, unscaled)
