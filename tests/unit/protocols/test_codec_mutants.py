"""Codec behaviour that mutation testing found unasserted (docs/testing-the-broker.md,
"Mutation testing"): boundaries a peer can reach and texts a peer reads."""

from __future__ import annotations

import datetime
import decimal

import pytest

from minibroker.errors import FrameSyntaxError
from minibroker.message import Properties, Timestamp
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.fields import encode_value
from minibroker.protocols.amqp091.methods import ConnectionTune
from minibroker.protocols.native.codec import NativeCodec
from minibroker.protocols.native.frames import Publish
from minibroker.protocols.native.values import (
    MAX_DEPTH,
    check_field_table,
    decode_properties,
    encode_properties,
)


def _nested(levels: int) -> dict[str, object]:
    table: dict[str, object] = {"leaf": 1}
    for _ in range(levels - 1):
        table = {"t": table}
    return table


def _nested_arrays(levels: int) -> dict[str, object]:
    inner: object = 1
    for _ in range(levels - 1):
        inner = [inner]
    return {"a": inner}


def test_field_tables_nest_exactly_max_depth_levels() -> None:
    for nested in (_nested, _nested_arrays):
        check_field_table(nested(MAX_DEPTH), "headers")
        with pytest.raises(FrameSyntaxError, match=f"nest deeper than {MAX_DEPTH} levels"):
            check_field_table(nested(MAX_DEPTH + 1), "headers")


def test_priority_zero_is_a_priority() -> None:
    wire = list(encode_properties(Properties(priority=0)))
    assert decode_properties(wire, "publish").priority == 0


def test_a_client_header_decimal_must_fit_a_signed_32_bit_value() -> None:
    check_field_table({"d": decimal.Decimal(2**31 - 1)}, "headers")
    check_field_table({"d": decimal.Decimal(-(2**31))}, "headers")
    with pytest.raises(FrameSyntaxError, match="cannot be carried by AMQP"):
        check_field_table({"d": decimal.Decimal(2**31)}, "headers")


def test_an_amqp_timestamp_fits_64_unsigned_bits() -> None:
    assert encode_value(Timestamp(2**64 - 1)) == b"T" + b"\xff" * 8
    with pytest.raises(ValueError, match="does not fit 64 unsigned bits"):
        encode_value(Timestamp(2**64))


def test_an_amqp_frame_waits_for_its_frame_end_octet() -> None:
    # AMQP 0-9-1 §4.2.3: a frame is complete only with its frame-end octet (0xCE).
    frame = AMQPCodec("server").encode_method(0, ConnectionTune(2047, 131072, 60))
    client = AMQPCodec("client")
    client.receive_data(frame[:-1])
    assert client.frames() == []
    client.receive_data(frame[-1:])
    assert [type(event).__name__ for event in client.frames()] == ["MethodFrame"]


def test_a_client_checks_header_decimals_and_timestamps_as_the_server_reads_them() -> None:
    # NativeCodec.check runs the receiver's checks: the extension types must decode as such.
    codec = NativeCodec(role="client")
    headers = {"d": decimal.Decimal("1.5"),
               "t": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)}
    codec.check(Publish(1, "x", "k", False, Properties(headers=headers), b"body"))
    with pytest.raises(FrameSyntaxError, match="cannot be carried by AMQP"):
        codec.check(Publish(1, "x", "k", False,
                            Properties(headers={"d": decimal.Decimal(2**31)}), b""))
