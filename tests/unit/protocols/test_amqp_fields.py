"""AMQP field tables: golden bytes per type tag, RabbitMQ's tag meanings, errors, pamqp oracle."""

from __future__ import annotations

import datetime
import decimal
import struct
from typing import Any

import pamqp.decode as pamqp_decode
import pamqp.encode as pamqp_encode
import pytest

from minibroker.errors import FrameError, FrameSyntaxError
from minibroker.message import Timestamp
from minibroker.protocols.amqp091.fields import (
    MAX_DEPTH,
    decode_array,
    decode_table,
    encode_array,
    encode_table,
    encode_value,
)

UTC = datetime.UTC


def table_bytes(*entries: bytes) -> bytes:
    """A table from pre-encoded ``name + tagged value`` entries."""
    body = b"".join(entries)
    return struct.pack(">I", len(body)) + body


def entry(name: str, tagged: bytes) -> bytes:
    return bytes([len(name)]) + name.encode() + tagged


def decode_one(tagged: bytes) -> object:
    table, end = decode_table(table_bytes(entry("k", tagged)), 0)
    assert end == 4 + 2 + len(tagged)
    return table["k"]


# -- decoding every tag RabbitMQ uses ----------------------------------------------------------


@pytest.mark.parametrize(
    ("tagged", "expected"),
    [
        (b"t\x01", True),
        (b"t\x00", False),
        (b"t\x07", True),  # any non-zero octet is true
        (b"b\xff", -1),  # signed 8-bit
        (b"B\xff", 255),  # unsigned 8-bit
        (b"s\xff\xfe", -2),  # RabbitMQ: 's' is a SIGNED 16-bit int (errata #3)
        (b"u\xff\xfe", 65534),
        (b"I\xff\xff\xff\xff", -1),
        (b"i\xff\xff\xff\xff", 2**32 - 1),
        (b"l\xff\xff\xff\xff\xff\xff\xff\xfe", -2),  # RabbitMQ: 'l' is signed 64-bit
        (b"f" + struct.pack(">f", 1.5), 1.5),
        (b"d" + struct.pack(">d", -0.25), -0.25),
        (b"D\x02\x00\x00\x00\x7d", decimal.Decimal("1.25")),
        (b"D\x00\xff\xff\xff\xff", decimal.Decimal(-1)),
        (b"S\x00\x00\x00\x03abc", "abc"),
        (b"S\x00\x00\x00\x02\xc3\xa9", "é"),
        (b"x\x00\x00\x00\x02\x00\xff", b"\x00\xff"),
        (b"T\x00\x00\x00\x00\x5e\x0b\xe1\x00", datetime.datetime(2020, 1, 1, tzinfo=UTC)),
        (b"V", None),
        (b"A\x00\x00\x00\x07b\x01S\x00\x00\x00\x00", [1, ""]),
        (b"F\x00\x00\x00\x03\x01nV", {"n": None}),
    ],
)
def test_decode_each_type_tag(tagged: bytes, expected: object) -> None:
    value = decode_one(tagged)
    assert value == expected
    assert type(value) is type(expected)


def test_decoded_timestamp_is_aware_utc() -> None:
    value = decode_one(b"T\x00\x00\x00\x00\x00\x00\x00\x00")
    assert value == datetime.datetime(1970, 1, 1, tzinfo=UTC)
    assert isinstance(value, datetime.datetime) and value.utcoffset() == datetime.timedelta(0)


def test_non_utf8_longstr_is_kept_as_bytes() -> None:
    # py-amqp sends bytes header values with tag 'S'; they must not kill the connection.
    assert decode_one(b"S\x00\x00\x00\x02\xff\xfe") == b"\xff\xfe"


def test_array_length_is_its_byte_length() -> None:
    # errata #4: 3 values of 2 octets each -> length 6, not 3
    values, end = decode_array(b"\x00\x00\x00\x06b\x01b\x02b\x03", 0)
    assert values == [1, 2, 3]
    assert end == 10


def test_decode_starts_at_offset_and_returns_end() -> None:
    data = b"junk" + table_bytes(entry("a", b"V")) + b"tail"
    table, end = decode_table(data, 4)
    assert table == {"a": None}
    assert data[end:] == b"tail"


# -- decoding errors -------------------------------------------------------------------------


@pytest.mark.parametrize("tag", [b"L", b"U", b"?", b"\x00", b"c"])
def test_unknown_type_tag_is_syntax_error_502(tag: bytes) -> None:
    with pytest.raises(FrameSyntaxError) as info:
        decode_one(tag + b"\x00\x00\x00\x00\x00\x00\x00\x00")
    assert info.value.reply_code == 502


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00",  # length cut short
        b"\x00\x00\x00\x09\x01kI\x00",  # length promises more than there is
        table_bytes(entry("k", b"I\x00\x00")),  # value runs past the table end
        table_bytes(entry("k", b"S\x00\x00\x00\x09ab")),  # string runs past the table
        table_bytes(b"\x05ab"),  # name runs past the table
        table_bytes(entry("k", b"F\x00\x00\x00\x09")),  # nested table runs past its parent
        table_bytes(entry("k", b"D\x02")),
    ],
)
def test_truncated_table_is_frame_error_501(data: bytes) -> None:
    with pytest.raises(FrameError) as info:
        decode_table(data, 0)
    assert info.value.reply_code == 501
    assert "cannot decode" in info.value.text


def test_nesting_deeper_than_limit_is_502_not_recursion_error() -> None:
    tagged = b"V"
    for _ in range(MAX_DEPTH + 1):
        tagged = b"A" + struct.pack(">I", len(tagged)) + tagged
    with pytest.raises(FrameSyntaxError):
        decode_one(tagged)


def test_nesting_up_to_limit_decodes() -> None:
    tagged = b"V"
    for _ in range(MAX_DEPTH):
        tagged = b"A" + struct.pack(">I", len(tagged)) + tagged
    value = decode_one(tagged)
    for _ in range(MAX_DEPTH):
        assert isinstance(value, list)
        value = value[0]
    assert value is None


@pytest.mark.parametrize("seconds", [253_402_300_800, 2**63, 2**64 - 1])
def test_timestamp_after_year_9999_is_kept_and_round_trips(seconds: int) -> None:
    # RabbitMQ accepts any 64-bit timestamp and passes it on unchanged.
    raw = b"T" + seconds.to_bytes(8, "big")
    value = decode_one(raw)
    assert type(value) is Timestamp and value == seconds
    assert encode_value(value) == raw


def test_last_timestamp_datetime_can_hold_is_still_a_datetime() -> None:
    value = decode_one(b"T" + (253_402_300_799).to_bytes(8, "big"))
    assert value == datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def test_non_utf8_field_name_is_kept_and_round_trips() -> None:
    # RabbitMQ accepts any octets in a field name (headers and method arguments alike).
    raw = table_bytes(b"\x02k\xffV")
    table, _ = decode_table(raw, 0)
    assert list(table) == [b"k\xff".decode("utf-8", "surrogateescape")]
    assert encode_table(table) == raw


# -- encoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tagged"),
    [
        (True, b"t\x01"),
        (False, b"t\x00"),
        (0, b"I\x00\x00\x00\x00"),
        (-(2**31), b"I\x80\x00\x00\x00"),
        (2**31 - 1, b"I\x7f\xff\xff\xff"),
        (2**31, b"l\x00\x00\x00\x00\x80\x00\x00\x00"),
        (-(2**63), b"l\x80\x00\x00\x00\x00\x00\x00\x00"),
        (1.5, b"d" + struct.pack(">d", 1.5)),
        ("é", b"S\x00\x00\x00\x02\xc3\xa9"),
        (b"\x00\xff", b"x\x00\x00\x00\x02\x00\xff"),
        (bytearray(b"a"), b"x\x00\x00\x00\x01a"),
        (None, b"V"),
        (decimal.Decimal("1.25"), b"D\x02\x00\x00\x00\x7d"),
        (decimal.Decimal("-3"), b"D\x00\xff\xff\xff\xfd"),
        (decimal.Decimal("1E+2"), b"D\x00\x00\x00\x00\x64"),
        (datetime.datetime(2020, 1, 1, tzinfo=UTC), b"T\x00\x00\x00\x00\x5e\x0b\xe1\x00"),
        (datetime.datetime(2020, 1, 1), b"T\x00\x00\x00\x00\x5e\x0b\xe1\x00"),  # naive = UTC
        (
            datetime.datetime(2020, 1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
            b"T\x00\x00\x00\x00\x5e\x0b\xe1\x00",
        ),
        ([1, "a"], b"A\x00\x00\x00\x0bI\x00\x00\x00\x01S\x00\x00\x00\x01a"),
        ((), b"A\x00\x00\x00\x00"),
        ({"n": None}, b"F\x00\x00\x00\x03\x01nV"),
    ],
)
def test_encode_value_golden(value: object, tagged: bytes) -> None:
    assert encode_value(value) == tagged  # type: ignore[arg-type]


def test_encode_table_and_array_round_trip_all_types() -> None:
    table = {
        "bool": True, "int": -7, "big": 2**40, "float": 0.1, "str": "ü", "bytes": b"\x00",
        "dec": decimal.Decimal("-12.345"), "ts": datetime.datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC),
        "void": None, "list": [1, [2, {"x": "y"}], None], "nested": {"a": {"b": {}}},
    }
    data = encode_table(table)  # type: ignore[arg-type]
    assert decode_table(data, 0) == (table, len(data))
    array = encode_array([1, "two", None])
    assert decode_array(array, 0) == ([1, "two", None], len(array))


@pytest.mark.parametrize(
    ("value", "text"),
    [(2**63, "integer 9223372036854775808 does not fit a signed 64-bit field"),
     (-(2**63) - 1, "integer -9223372036854775809 does not fit a signed 64-bit field"),
     (decimal.Decimal("NaN"), "decimal NaN cannot be encoded"),
     (decimal.Decimal("Infinity"), "decimal Infinity cannot be encoded"),
     (decimal.Decimal("1E+20"), "decimal 1E+20 does not fit AMQP's signed long"),
     (decimal.Decimal("0.1E-300"), "decimal 1E-301 does not fit AMQP's scale octet + signed long"),
     (decimal.Decimal(2**31),
      "decimal 2147483648 does not fit AMQP's scale octet + signed long"),
     (datetime.datetime(1969, 12, 31, tzinfo=UTC),
      "timestamp before 1970 cannot be encoded: 1969-12-31 00:00:00+00:00")],
)
def test_unencodable_values_raise_value_error(value: object, text: str) -> None:
    with pytest.raises(ValueError) as info:
        encode_value(value)  # type: ignore[arg-type]
    assert str(info.value) == text


def test_unsupported_type_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"^cannot encode object in an AMQP field table$"):
        encode_value(object())  # type: ignore[arg-type]


def test_field_name_longer_than_255_octets_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^field name longer than 255 octets: 'nnnn"):
        encode_table({"n" * 256: 1})
    assert decode_table(encode_table({"n" * 255: 1}), 0)[0] == {"n" * 255: 1}


def test_timestamp_encoding_drops_sub_seconds() -> None:
    value = datetime.datetime(2020, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC)
    assert decode_one(encode_value(value)) == datetime.datetime(2020, 1, 1, tzinfo=UTC)


# -- pamqp as an independent oracle ------------------------------------------------------------

ORACLE_TABLE: dict[str, Any] = {
    "small": 1, "short": 300, "long": 70_000, "longlong": 2**40, "neg": -5, "bool": False,
    "str": "ü-text", "void": None, "array": [1, "a", [True]], "dec": decimal.Decimal("1.25"),
    "ts": datetime.datetime(2020, 1, 1, tzinfo=UTC), "table": {"n": {"m": "x"}},
    "float": 0.5,  # pamqp encodes floats as 32-bit 'f': pick one that survives that
}


def test_tables_pamqp_encodes_decode_to_the_same_values() -> None:
    data = pamqp_encode.field_table(ORACLE_TABLE)
    assert decode_table(data, 0) == (ORACLE_TABLE, len(data))
    # pamqp's byte arrays are bytearray; ours decode them to bytes
    data = pamqp_encode.field_table({"x": bytearray(b"\x00\x01")})
    assert decode_table(data, 0)[0] == {"x": b"\x00\x01"}


def test_tables_we_encode_pamqp_decodes_to_the_same_values() -> None:
    table = dict(ORACLE_TABLE, float=0.1, bytes=b"\xff", big=-(2**62))
    data = encode_table(table)
    consumed, decoded = pamqp_decode.field_table(data)
    assert consumed == len(data)
    assert decoded == table
