"""Codec behaviour that mutation testing found unasserted (docs/testing-the-broker.md,
"Mutation testing"): boundaries a peer can reach and texts a peer reads."""

from __future__ import annotations

import datetime
import decimal

import msgpack
import pytest

from minibroker.errors import FrameError, FrameSyntaxError
from minibroker.message import EMPTY_PROPERTIES, Properties, Timestamp
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.fields import encode_value
from minibroker.protocols.amqp091.methods import ConnectionTune
from minibroker.protocols.native.codec import MIN_FRAME_SIZE, PREAMBLE, NativeCodec
from minibroker.protocols.native.frames import Deliver, Frame, Publish
from minibroker.protocols.native.schema import SCHEMAS
from minibroker.protocols.native.streamframes import PublishBatch, StreamReadOk
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


# --- native PublishBatch / StreamReadOk: each malformed message or record is refused ---------


def _raw(*values: object) -> bytes:
    payload: bytes = msgpack.packb(list(values), use_bin_type=True)
    return len(payload).to_bytes(4, "big") + payload


def _server_reads(frame: bytes) -> list[Frame]:
    codec = NativeCodec(role="server")
    codec.receive_data(PREAMBLE)
    assert codec.frames() == []
    codec.receive_data(frame)
    return codec.frames()


def _client_reads(frame: bytes) -> list[Frame]:
    codec = NativeCodec(role="client")
    codec.receive_data(frame)
    return codec.frames()


_HEADERS_WIRE = [None, None, {"n": 7}]


def test_a_publish_batch_decodes_each_message() -> None:
    [batch] = _server_reads(_raw(0x57, 1, "", "s", False,
                                 [[[], b"a"], [_HEADERS_WIRE, b""], [[None, "text/plain"], b"c"]]))
    assert isinstance(batch, PublishBatch)
    assert batch.messages == [(EMPTY_PROPERTIES, b"a"),
                              (Properties(headers={"n": 7}), b""),
                              (Properties(content_encoding="text/plain"), b"c")]


@pytest.mark.parametrize("message", [
    "not a list", [[]], [[], b"a", b"b"], [{}, b"a"], [[], "text"], [None, b"a"],
], ids=["scalar", "one-element", "three-elements", "map-properties", "str-body", "nil-props"])
def test_a_malformed_publish_batch_message_is_a_syntax_error(message: object) -> None:
    # The good message first: a check that stops after one element must still see the second.
    with pytest.raises(FrameSyntaxError,
                       match=r"PublishBatch\.messages: each message must be \[properties, bin\]"):
        _server_reads(_raw(0x57, 1, "", "s", False, [[[], b"ok"], message]))


def test_a_publish_batch_checks_header_values_as_a_client_sends_them() -> None:
    with pytest.raises(FrameSyntaxError, match=r"PublishBatch\.messages\.headers: field 'n'"):
        _server_reads(_raw(0x57, 1, "", "s", False, [[[None, None, {"n": 2**63}], b"b"]]))


def test_stream_read_ok_decodes_each_record() -> None:
    [reply] = _client_reads(_raw(0x71, 1, 9, [
        [0, "", "s", [], b"a"],
        [8, "ex", "rk", _HEADERS_WIRE, b""],
        # a server passes on what AMQP carried: a header integer above 2**63 - 1 is fine
        [2**64 - 1, "x", "k", [None, None, {"big": 2**64 - 1}], b"c"],
    ]))
    assert isinstance(reply, StreamReadOk)
    assert reply.next_offset == 9
    assert reply.messages == [(0, "", "s", EMPTY_PROPERTIES, b"a"),
                              (8, "ex", "rk", Properties(headers={"n": 7}), b""),
                              (2**64 - 1, "x", "k", Properties(headers={"big": 2**64 - 1}), b"c")]


@pytest.mark.parametrize("record", [
    "not a list",
    [0, "x", "k", []],
    [0, "x", "k", [], b"a", b"b"],
    ["0", "x", "k", [], b"a"],
    [-1, "x", "k", [], b"a"],
    [0, b"x", "k", [], b"a"],
    [0, "x", None, [], b"a"],
    [0, "x", "k", {}, b"a"],
    [0, "x", "k", [], "a"],
    [True, "x", "k", [], b"a"],
], ids=["scalar", "four-elements", "six-elements", "str-offset", "negative-offset", "bin-exchange",
        "nil-routing-key", "map-properties", "str-body", "bool-offset"])
def test_a_malformed_stream_record_is_a_syntax_error(record: object) -> None:
    with pytest.raises(FrameSyntaxError, match=(
            r"StreamReadOk\.messages: each record must be "
            r"\[offset, exchange, routing_key, properties, bin\]")):
        _client_reads(_raw(0x71, 1, 9, [[1, "x", "k", [], b"ok"], record]))


def test_stream_record_properties_are_checked_and_named() -> None:
    with pytest.raises(FrameSyntaxError,
                       match=r"StreamReadOk\.messages\.headers: field table key b.k. is not"):
        _client_reads(_raw(0x71, 1, 9, [[1, "x", "k", [None, None, {b"k": 2}], b"ok"]]))


# --- the slow check names the first bad element, even when a later one is bad too ----------


def test_a_bad_table_before_another_bad_element_is_the_one_named() -> None:
    # StreamRead: [opcode, channel, queue, arguments, max_messages, max_bytes]
    with pytest.raises(FrameSyntaxError,
                       match=r"^502 SYNTAX_ERROR - StreamRead\.arguments: field table key b'k'"):
        _server_reads(_raw(0x70, 1, "s", {b"k": 1}, -1, 0))


def test_bad_properties_before_a_bad_body_are_the_ones_named() -> None:
    # Publish: [opcode, channel, exchange, routing_key, mandatory, properties, body]
    with pytest.raises(FrameSyntaxError,
                       match=r"^502 SYNTAX_ERROR - Publish\.headers: field table key b'k'"):
        _server_reads(_raw(0x50, 1, "", "q", False, [None, None, {b"k": 1}], "not bin"))


# --- native Deliver: the hot path's bytes, at the frame-size boundary and for non-UTF-8 text ---


def _deliver(body: bytes, routing_key: str = "rk") -> Deliver:
    return Deliver(1, "ctag", 7, False, "ex", routing_key, Properties(delivery_mode=2), body)


def test_send_deliver_sends_what_send_does_around_the_frame_size_limit() -> None:
    codec = NativeCodec(role="server")
    codec.max_frame_size = MIN_FRAME_SIZE
    one_frame_at_the_limit = False
    for size in range(MIN_FRAME_SIZE - 64, MIN_FRAME_SIZE + 8):
        frame = _deliver(b"x" * size)
        wire = codec.send_deliver(1, "ctag", 7, False, "ex", "rk", Properties(delivery_mode=2),
                                  b"x" * size)
        assert wire == codec.send(frame)
        # a payload of exactly max_frame_size bytes travels as one frame
        one_frame_at_the_limit |= int.from_bytes(wire[:4], "big") == MIN_FRAME_SIZE
        assert _client_reads(wire) == [frame]
    assert one_frame_at_the_limit


def test_a_split_deliver_carries_a_routing_key_that_is_not_utf8() -> None:
    # Text that came from AMQP and is not UTF-8 travels as raw bytes (codec.py rule 7), also in
    # the head frame of a message too large for one frame.
    codec = NativeCodec(role="server")
    codec.max_frame_size = MIN_FRAME_SIZE
    frame = _deliver(b"y" * (3 * MIN_FRAME_SIZE), routing_key="k\udcff")
    assert _client_reads(codec.send(frame)) == [frame]


def test_an_oversized_message_whose_first_part_overflows_names_its_channel() -> None:
    # The first Body frame of a message larger than max_message_size is still checked.
    codec = NativeCodec(role="server", max_message_size=10)
    codec.receive_data(PREAMBLE)
    assert codec.frames() == []
    codec.receive_data(_raw(0x56, 3, 20, b"x" * 30))  # Body: [opcode, channel, size, chunk]
    with pytest.raises(FrameError,
                       match=r"^501 FRAME_ERROR - Body frames on channel 3 carry more than the 20"):
        codec.frames()


def test_an_amqp_longstr_running_past_the_arguments_is_cannot_decode() -> None:
    # connection.start-ok: client-properties (empty table), mechanism, response (a longstr
    # announcing 1000 octets, 5 present), locale
    arguments = b"\x00\x00\x00\x00" + b"\x05PLAIN" + (1000).to_bytes(4, "big") + b"\x00gues"
    payload = b"\x00\x0a\x00\x0b" + arguments
    codec = AMQPCodec("server")
    codec.receive_data(b"AMQP\x00\x00\x09\x01")
    assert [type(event).__name__ for event in codec.frames()] == ["ProtocolHeader"]
    codec.receive_data(b"\x01\x00\x00" + len(payload).to_bytes(4, "big") + payload + b"\xce")
    with pytest.raises(FrameError) as info:
        codec.frames()
    assert info.value.text == f"cannot decode <<{','.join(map(str, arguments))}>>"
    assert (info.value.class_id, info.value.method_id) == (10, 11)


def test_a_wrong_type_for_an_optional_text_says_nil_is_allowed() -> None:
    # Hello: [opcode, channel, client_name, username, password, client_properties, vhost]
    with pytest.raises(FrameSyntaxError, match=(
            r"^502 SYNTAX_ERROR - Hello\.username: expected str or nil, got int$")):
        _server_reads(_raw(0x01, 0, "app", 5, None, {}, "/"))
    with pytest.raises(FrameSyntaxError, match=(
            r"^502 SYNTAX_ERROR - Hello\.client_name: expected str, got nil$")):
        _server_reads(_raw(0x01, 0, None, None, None, {}, "/"))


def test_a_connection_frame_names_its_channel_element() -> None:
    with pytest.raises(FrameSyntaxError, match=(
            r"^502 SYNTAX_ERROR - Hello\.channel: expected int, got str$")):
        _server_reads(_raw(0x01, "0", "app", None, None, {}, "/"))
    with pytest.raises(FrameSyntaxError, match=r"\[opcode, channel, client_name, username, "):
        _server_reads(_raw(0x01, 0, "app"))


def test_a_frame_with_the_wrong_number_of_elements_lists_the_expected_ones() -> None:
    with pytest.raises(FrameSyntaxError, match=(
            r"^502 SYNTAX_ERROR - Ack: expected 4 array elements "
            r"\[opcode, channel, delivery_tag, multiple\], got 3$")):
        _server_reads(_raw(0x58, 1, 5))


def test_a_server_codec_stops_awaiting_the_preamble_once_it_has_it() -> None:
    codec = NativeCodec(role="server")
    assert codec.awaiting_preamble is True
    codec.receive_data(PREAMBLE)
    assert codec.frames() == []
    assert codec.awaiting_preamble is False


# --- schema.py rule 1: the checked path builds what the fast path builds, for every kind -----
# (The property test compares them on random frames; under its fixed seeds it may draw no
# PublishBatch or StreamReadOk.)


@pytest.mark.parametrize("frame", [
    PublishBatch(1, "", "s", False, [(EMPTY_PROPERTIES, b"a"), (Properties(priority=1), b"")]),
    StreamReadOk(1, 9, [(8, "ex", "rk", Properties(headers={"n": 2**64 - 1}), b"b")]),
], ids=["PublishBatch", "StreamReadOk"])
def test_the_checked_path_builds_batches_and_records_as_the_fast_path(frame: Frame) -> None:
    sender = NativeCodec(role="client" if isinstance(frame, PublishBatch) else "server")
    values = msgpack.unpackb(sender.send(frame)[4:])
    schema = SCHEMAS[frame.opcode]
    assert schema.check(list(values)) == schema.decode(list(values)) == frame


def test_the_checked_path_names_a_bad_batch_or_record() -> None:
    with pytest.raises(FrameSyntaxError, match=r"^502 SYNTAX_ERROR - PublishBatch\.messages: "):
        SCHEMAS[PublishBatch.opcode].check([0x57, 1, "", "s", False, [["bad"]]])
    with pytest.raises(FrameSyntaxError, match=r"^502 SYNTAX_ERROR - StreamReadOk\.messages: "):
        SCHEMAS[StreamReadOk.opcode].check([0x71, 1, 9, [["bad"]]])
