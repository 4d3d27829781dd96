"""The native codec: golden bytes, framing limits, preamble, validation errors, EOF."""

from __future__ import annotations

import datetime
import decimal

import msgpack
import pytest

from minibroker.errors import FrameError, FrameSyntaxError, ProtocolError, UnexpectedFrame
from minibroker.message import EMPTY_PROPERTIES, FieldTable, Properties, Timestamp
from minibroker.protocols import NATIVE_HEADER
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import (
    FRAME_HEADROOM,
    MIN_FRAME_SIZE,
    PREAMBLE,
    NativeCodec,
    OversizedPublish,
    UnknownOpcode,
    is_native_preamble,
)


def server() -> NativeCodec:
    """A server-side codec that has already read the client's preamble."""
    codec = NativeCodec(role="server")
    codec.receive_data(PREAMBLE)
    assert codec.frames() == []
    return codec


def raw(*values: object) -> bytes:
    """A frame holding any msgpack array, valid or not."""
    payload: bytes = msgpack.packb(list(values), use_bin_type=True)
    return len(payload).to_bytes(4, "big") + payload


# Hand-assembled from the msgpack spec; each line is one element of the frame's array.
GOLDEN: list[tuple[f.Frame, str]] = [
    (f.Heartbeat(), "00000003 92 07 00"),
    (f.Ack(1, 5), "00000005 94 58 01 05 c2"),
    (f.Nack(2, 300, True, False), "00000008 95 59 02 cd012c c3 c2"),
    (
        f.Publish(1, "", "q", False, EMPTY_PROPERTIES, b"hi"),
        "0000000c 97 50 01 a0 a171 c2 90 c4026869",
    ),
    (
        f.Deliver(1, "c", 1, True, "ex", "rk", Properties(delivery_mode=2), b"x"),
        "00000015 99 51 01 a163 01 c3 a26578 a2726b 94c0c0c002 c40178",
    ),
    (f.Hello("app"), "0000000c 97 01 00 a3617070 c0 c0 80 a12f"),
    (f.QueueDeclareOk(3, "q", 7, 0), "00000007 95 31 03 a171 07 00"),
    (f.ConnectionClose(320, "bye"), "0000000a 94 05 00 cd0140 a3627965"),
]


@pytest.mark.parametrize(("frame", "wire"), GOLDEN, ids=[type(x).__name__ for x, _ in GOLDEN])
def test_golden_bytes_both_ways(frame: f.Frame, wire: str) -> None:
    expected = bytes.fromhex(wire.replace(" ", ""))
    sender = NativeCodec(role="client" if frame.sender != "server" else "server")
    assert sender.send(frame) == expected
    receiver = server() if frame.sender != "server" else NativeCodec(role="client")
    receiver.receive_data(expected)
    assert receiver.frames() == [frame]


def test_decimal_header_golden_bytes() -> None:
    frame = f.Publish(1, "", "", False, Properties(headers={"d": decimal.Decimal("1.5")}), b"")
    wire = NativeCodec(role="client").send(frame)
    # properties array [nil, nil, {"d": ext8(type 1, "1.5")}]: 3 bytes have no fixext form
    assert bytes.fromhex("93c0c081a164c70301312e35") in wire


def test_preamble_is_eight_bytes_and_recognised() -> None:
    assert len(PREAMBLE) == 8 == len(b"AMQP\x00\x00\x09\x01")
    assert PREAMBLE == NATIVE_HEADER
    assert is_native_preamble(PREAMBLE)
    assert is_native_preamble(b"MBRK\x00\x02\x00\x00")  # any version: the codec judges it
    assert not is_native_preamble(b"AMQP\x00\x00\x09\x01")
    assert NativeCodec(role="client").send_preamble() == PREAMBLE


def test_preamble_may_arrive_byte_by_byte() -> None:
    codec = NativeCodec(role="server")
    for byte in PREAMBLE + NativeCodec(role="client").send(f.Heartbeat()):
        codec.receive_data(bytes([byte]))
        found = codec.frames()
    assert found == [f.Heartbeat()]


def test_wrong_preamble_is_refused_on_its_first_bad_byte() -> None:
    codec = NativeCodec(role="server")
    codec.receive_data(b"G")
    with pytest.raises(FrameError, match="preamble"):
        codec.next_frame()


def test_other_major_version_is_refused_naming_the_version() -> None:
    codec = NativeCodec(role="server")
    codec.receive_data(b"MBRK\x00\x02\x00\x00")
    with pytest.raises(FrameError, match="version"):
        codec.frames()


def test_newer_minor_version_is_accepted() -> None:
    codec = NativeCodec(role="server")
    codec.receive_data(b"MBRK\x00\x01\x07\x00")
    assert codec.frames() == []


@pytest.mark.parametrize("answer", [PREAMBLE, b"AMQP\x00\x00\x09\x01"])
def test_client_explains_a_server_that_answers_with_a_preamble(answer: bytes) -> None:
    codec = NativeCodec(role="client")
    codec.receive_data(answer)
    with pytest.raises(FrameError, match="refused our protocol version"):
        codec.next_frame()


def test_oversized_frame_is_refused_from_its_length_prefix_alone() -> None:
    codec = NativeCodec(role="server", max_frame_size=MIN_FRAME_SIZE)
    codec.receive_data(PREAMBLE + (MIN_FRAME_SIZE + 1).to_bytes(4, "big"))
    with pytest.raises(FrameError) as caught:
        codec.next_frame()
    assert caught.value.reply_code == 501
    assert str(MIN_FRAME_SIZE + 1) in caught.value.text
    assert str(MIN_FRAME_SIZE) in caught.value.text


def test_lowered_max_frame_size_applies_to_the_next_frame() -> None:
    codec = server()
    publish = f.Publish(1, "", "q", False, EMPTY_PROPERTIES, b"x" * 5000)
    big = NativeCodec(role="client").send(publish)
    codec.max_frame_size = MIN_FRAME_SIZE
    codec.receive_data(big)
    with pytest.raises(FrameError):
        codec.frames()


def test_max_frame_size_below_the_minimum_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match=r"^max_frame_size must be in 4096\.\.4294967295$"):
        NativeCodec(role="client", max_frame_size=MIN_FRAME_SIZE - 1)


def test_publish_must_leave_headroom_but_deliver_may_use_it() -> None:
    limit = MIN_FRAME_SIZE * 2
    body = b"x" * (limit - FRAME_HEADROOM)  # the frame is a few bytes over the headroom line
    publish = f.Publish(1, "", "q", False, EMPTY_PROPERTIES, body)
    client = NativeCodec(role="client", max_frame_size=limit)
    in_parts = client.send(publish)  # a Body frame, then the Publish with the last part
    assert in_parts[4] == 0x94 and in_parts[5] == f.Body.opcode
    broker = NativeCodec(role="server", max_frame_size=limit)
    broker.receive_data(PREAMBLE + in_parts)
    assert broker.frames() == [publish]
    # One Publish frame over the headroom line, from a peer that does not split: 501.
    broker = NativeCodec(role="server", max_frame_size=limit)
    broker.receive_data(PREAMBLE + NativeCodec(role="client").send(publish))
    with pytest.raises(FrameError, match="headroom"):
        broker.frames()
    deliver = f.Deliver(1, "ctag", 1, False, "", "q", EMPTY_PROPERTIES, body)
    whole = broker.send(deliver)
    assert whole[4] == 0x99  # one frame: opcode and the 8 fields of a Deliver
    client.receive_data(whole)
    assert client.frames() == [deliver]


def test_every_frame_in_a_read_comes_out_in_order() -> None:
    client = NativeCodec(role="client")
    sent = [f.ChannelOpen(1), f.Qos(1, 10, False), f.Ack(1, 1), f.Ack(1, 2, True), f.Heartbeat()]
    codec = server()
    codec.receive_data(client.send_many(sent))
    assert codec.frames() == sent
    assert codec.frames() == []


def test_body_comes_out_as_bytes() -> None:
    codec = server()
    codec.receive_data(NativeCodec(role="client").send(
        f.Publish(1, "", "q", False, EMPTY_PROPERTIES, b"\x00\xff")))
    frame = codec.next_frame()
    assert isinstance(frame, f.Publish)
    assert type(frame.body) is bytes and frame.body == b"\x00\xff"


def test_decoded_frames_are_of_their_class_and_their_properties_frozen() -> None:
    """Frames live for one input and are not frozen (protocols/building.py); the properties,
    which the broker keeps and shares between queues, are."""
    codec = server()
    codec.receive_data(NativeCodec(role="client").send(
        f.Publish(1, "", "q", False, Properties(content_type="a"), b"")))
    frame = codec.next_frame()
    assert type(frame) is f.Publish and type(frame.properties) is Properties
    with pytest.raises(AttributeError):
        frame.properties.content_type = "b"  # type: ignore[misc]


def test_field_values_keep_their_exact_types() -> None:
    headers: FieldTable = {
        "bool": True, "int": 1, "float": 1.5, "str": "s", "bytes": b"b", "none": None,
        "decimal": decimal.Decimal("-12.340"), "naive": datetime.datetime(2024, 5, 6, 7, 8, 9, 10),
        "aware": datetime.datetime(2024, 5, 6, tzinfo=datetime.UTC),
        "nested": [1, [True, {"k": b"v"}]],
    }
    props = Properties(headers=headers, timestamp=1_700_000_000, priority=9, message_id="m")
    codec = server()
    codec.receive_data(NativeCodec(role="client").send(f.Publish(1, "", "q", False, props, b"")))
    frame = codec.next_frame()
    assert isinstance(frame, f.Publish)
    got = frame.properties.headers
    assert got is not None and got == headers
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in headers.items()}
    assert str(got["decimal"]) == "-12.340"
    naive, aware = got["naive"], got["aware"]
    assert isinstance(naive, datetime.datetime) and isinstance(aware, datetime.datetime)
    assert naive.tzinfo is None and aware.tzinfo is not None
    assert frame.properties == props


def test_properties_sent_twice_encode_the_same() -> None:
    props = Properties(content_type="text/plain", delivery_mode=2)
    codec = NativeCodec(role="client")
    first = codec.send(f.Publish(1, "", "q", False, props, b""))
    assert codec.send(f.Publish(1, "", "q", False, props, b"")) == first
    # trailing absent properties are left out: [ "text/plain", nil, nil, 2 ]
    assert bytes.fromhex("94aa746578742f706c61696ec0c002") in first


# --- errors ------------------------------------------------------------------------------

BAD_FRAMES = [
    (raw(0x58, 1, 5), FrameSyntaxError, "Ack: expected 4 array elements"),
    (raw(0x58, 1, "5", False), FrameSyntaxError, "Ack.delivery_tag: expected int, got str"),
    (raw(0x58, 1, 5, 1), FrameSyntaxError, "Ack.multiple: expected bool, got int"),
    (raw(0x58, 1, True, False), FrameSyntaxError, "Ack.delivery_tag: expected int, got bool"),
    (raw(0x58, 1, -1, False), FrameSyntaxError, "Ack.delivery_tag: -1 is not in"),
    (raw(0x58, 70000, 5, False), FrameSyntaxError, "Ack.channel: 70000 is not in 0..65535"),
    (raw(0x07, 3), FrameError, "Heartbeat must travel on channel 0"),
    (raw(0x7F, 1), UnknownOpcode, "unknown opcode 0x7f"),
    (raw(0x51, 1), UnknownOpcode, "Deliver .* is sent only by the server"),
    (raw("x", 1), FrameSyntaxError, "msgpack array"),
    (raw(), FrameSyntaxError, "msgpack array"),
    (b"\x00\x00\x00\x01\xc1", FrameSyntaxError, "not one msgpack value"),  # 0xc1 is never used
    (b"\x00\x00\x00\x00", FrameSyntaxError, "not one msgpack value"),
    (b"\x00\x00\x00\x02\x92\x07", FrameSyntaxError, "not one msgpack value"),  # truncated
    (b"\x00\x00\x00\x04\x92\x07\x00\x00", FrameSyntaxError, "not one msgpack value"),  # extra
    (raw(0x44, 1, "x" * 256), FrameSyntaxError, "Cancel.consumer_tag: longer than 255 bytes"),
    (raw(0x44, 1, "é" * 128), FrameSyntaxError, "longer than 255 bytes"),
    (raw(0x50, 1, "", "q", False, [None, None, None, 256], b""), FrameSyntaxError,
     "Publish.delivery_mode: 256 is not in 0..255"),
    (raw(0x50, 1, "", "q", False, ["a", 1], b""), FrameSyntaxError,
     "Publish.content_encoding: expected str, got int"),
    (raw(0x50, 1, "", "q", False, [None] * 15, b""), FrameSyntaxError, "at most 14"),
    (raw(0x50, 1, "", "q", False, None, b""), FrameSyntaxError, "Publish.properties"),
    (raw(0x50, 1, "", "q", False, [None, None, {b"k": 1}], b""), FrameSyntaxError,
     "not a string"),
    (raw(0x50, 1, "", "q", False, [], "body"), FrameSyntaxError, "Publish.body: expected bin"),
    (raw(0x30, 1, "q", False, False, False, False, {"x-a": [[[]]], "b": {1: 2}}),
     FrameSyntaxError, "not one msgpack value"),  # map keys are strings
]


@pytest.mark.parametrize(("wire", "error", "text"), BAD_FRAMES)
def test_bad_frames_raise_the_documented_error(
    wire: bytes, error: type[ProtocolError], text: str
) -> None:
    codec = server()
    codec.receive_data(wire)
    with pytest.raises(error, match=text):
        codec.frames()


def test_unknown_opcode_is_command_invalid() -> None:
    assert UnknownOpcode("x").reply_code == 503
    assert issubclass(UnknownOpcode, ProtocolError)


def test_field_tables_nest_at_most_64_levels() -> None:
    deep: object = 1
    for _ in range(70):
        deep = [deep]
    codec = server()
    codec.receive_data(raw(0x30, 1, "q", False, False, False, False, {"deep": deep}))
    with pytest.raises(FrameSyntaxError, match="deeper"):
        codec.frames()


@pytest.mark.parametrize("ext", [msgpack.ExtType(9, b""), msgpack.ExtType(1, b"NaN"),
                                 msgpack.ExtType(1, b"1..2"), msgpack.ExtType(2, b"\x01")])
def test_bad_extension_values_are_syntax_errors(ext: msgpack.ExtType) -> None:
    codec = server()
    codec.receive_data(raw(0x42, 1, "q", "", False, False, {"a": ext}))
    with pytest.raises(FrameSyntaxError):
        codec.frames()


def test_good_frames_before_a_bad_one_come_out_first() -> None:
    codec = server()
    codec.receive_data(NativeCodec(role="client").send(f.Ack(1, 1)) + raw(0x7F, 1))
    assert codec.frames() == [f.Ack(1, 1)]
    with pytest.raises(UnknownOpcode):
        codec.frames()


def test_a_client_never_sends_server_frames() -> None:
    with pytest.raises(UnexpectedFrame):
        NativeCodec(role="client").send(f.ConfirmAck(1, 1))


def test_unencodable_header_is_a_syntax_error() -> None:
    props = Properties(headers={"set": {1, 2}})  # type: ignore[dict-item]
    with pytest.raises(FrameSyntaxError, match="cannot encode Publish"):
        NativeCodec(role="client").send(f.Publish(1, "", "q", False, props, b""))


# --- end of stream -----------------------------------------------------------------------


def test_clean_end_of_stream() -> None:
    codec = server()
    codec.receive_data(NativeCodec(role="client").send(f.Heartbeat()))
    codec.receive_data(b"")
    assert not codec.closed  # a frame is still unread
    assert codec.next_frame() == f.Heartbeat()
    assert codec.next_frame() is None
    assert codec.closed


def test_end_of_stream_inside_a_frame_is_a_frame_error() -> None:
    codec = server()
    codec.receive_data(NativeCodec(role="client").send(f.Heartbeat())[:-1])
    assert codec.next_frame() is None
    codec.receive_data(b"")
    with pytest.raises(FrameError, match="ended inside a frame"):
        codec.next_frame()


def test_end_of_stream_inside_the_preamble_is_a_frame_error() -> None:
    codec = NativeCodec(role="server")
    codec.receive_data(PREAMBLE[:3])
    codec.receive_data(b"")
    with pytest.raises(FrameError, match="preamble"):
        codec.frames()


def test_data_after_end_of_stream_is_refused() -> None:
    codec = server()
    codec.receive_data(b"")
    with pytest.raises(FrameError):
        codec.receive_data(b"x")


# --- the frame table ---------------------------------------------------------------------


def test_opcodes_are_unique_single_byte_fixints() -> None:
    opcodes = [cls.opcode for cls in f.FRAME_TYPES]
    assert len(set(opcodes)) == len(opcodes) == 61
    assert all(0 < op < 0x80 for op in opcodes)


def test_every_request_is_answered_by_the_other_side() -> None:
    for request, replies in f.REPLIES.items():
        for reply in replies:
            assert request.sender != "server" and reply.sender != "client", (request, reply)


def test_send_deliver_is_the_same_bytes_as_sending_a_deliver_frame() -> None:
    codec = NativeCodec(role="server")
    for properties in (Properties(), Properties(content_type="text/plain", headers={"k": [1]})):
        direct = codec.send_deliver(3, "ctag", 7, True, "x", "rk", properties, b"body")
        framed = codec.send(f.Deliver(3, "ctag", 7, True, "x", "rk", properties, b"body"))
        assert direct == framed


@pytest.mark.parametrize("value", [2**63, [2**64 - 1], {"inner": 2**64 - 1}])
def test_header_integers_beyond_signed_64_bits_are_refused(value: object) -> None:
    client = NativeCodec(role="client")
    server = NativeCodec(role="server")
    server.receive_data(PREAMBLE)
    frame = f.Publish(1, "", "q", False, Properties(headers={"n": value}), b"")  # type: ignore[dict-item]
    server.receive_data(client.send(frame))
    with pytest.raises(FrameSyntaxError, match=r"signed 64-bit|cannot be carried by AMQP"):
        server.frames()


@pytest.mark.parametrize("properties", [
    Properties(message_id="x" * 256),
    Properties(headers={"when": datetime.datetime(1969, 12, 31, tzinfo=datetime.UTC)}),
    Properties(headers={"d": decimal.Decimal("12345678901")}),
    Properties(headers={"d": decimal.Decimal("1E+20")}),
])
def test_properties_amqp_cannot_carry_are_refused(properties: Properties) -> None:
    client = NativeCodec(role="client")
    server = NativeCodec(role="server")
    server.receive_data(PREAMBLE)
    server.receive_data(client.send(f.Publish(1, "", "q", False, properties, b"")))
    with pytest.raises(FrameSyntaxError):
        server.frames()


def test_properties_amqp_can_carry_pass() -> None:
    properties = Properties(message_id="x" * 255, headers={
        "when": datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC),
        "d": decimal.Decimal("-2147483.648"), "n": -(2**63),
    })
    client = NativeCodec(role="client")
    server = NativeCodec(role="server")
    server.receive_data(PREAMBLE)
    server.receive_data(client.send(f.Publish(1, "", "q", False, properties, b"")))
    [frame] = server.frames()
    assert isinstance(frame, f.Publish) and frame.properties == properties


# -- max_message_size (a channel error, as over AMQP) ---------------------------------------------


def test_publish_over_max_message_size_is_an_event_and_the_next_frames_still_decode() -> None:
    codec = NativeCodec(role="server", max_message_size=10)
    codec.receive_data(PREAMBLE)
    big = f.Publish(1, "", "q", False, EMPTY_PROPERTIES, b"x" * 11)
    fits = f.Publish(2, "", "q", False, EMPTY_PROPERTIES, b"x" * 10)
    client = NativeCodec(role="client")
    codec.receive_data(client.send_many([fits, big, fits]))
    got = codec.frames()
    assert got == [fits, OversizedPublish(1, 11, 10), fits]
    assert got[1].reply_text == (  # type: ignore[attr-defined]
        "PRECONDITION_FAILED - message size 11 is larger than configured max size 10")


def test_server_codec_defaults_to_rabbitmqs_max_message_size() -> None:
    assert NativeCodec(role="server").max_message_size == 128 * 1024 * 1024
    assert NativeCodec(role="client").max_message_size is None


# -- text from AMQP that is not UTF-8 -------------------------------------------------------------

ESCAPED = b"r.\xff\xfe".decode("utf-8", "surrogateescape")


def test_server_sends_amqp_octets_unchanged_and_a_client_decodes_them() -> None:
    # RabbitMQ accepts any octets in an AMQP routing key and delivers them as they came.
    server_codec = NativeCodec(role="server")
    properties = Properties(content_type=ESCAPED, headers={ESCAPED: 1})
    wire = server_codec.send_deliver(1, "ctag", 1, False, "x", ESCAPED, properties, b"body")
    assert b"r.\xff\xfe" in wire
    client = NativeCodec(role="client")
    client.receive_data(wire)
    [deliver] = client.frames()
    assert isinstance(deliver, f.Deliver)
    assert deliver.routing_key == ESCAPED and deliver.properties == properties
    get_ok = f.GetOk(1, 1, False, "x", ESCAPED, 0, properties, b"")
    client.receive_data(server_codec.send(get_ok))
    assert client.frames() == [get_ok]


def test_server_codec_still_refuses_text_that_is_not_utf8() -> None:
    codec = server()
    frame = raw(0x50, 1, "", "q", False, [], b"").replace(b"\xa1q", b"\xa1\xff")
    codec.receive_data(frame)
    with pytest.raises(FrameSyntaxError):
        codec.frames()


def test_header_timestamp_after_9999_reaches_a_native_client_as_its_seconds() -> None:
    seconds = 2**64 - 1
    properties = Properties(headers={"t": Timestamp(seconds)})
    wire = NativeCodec(role="server").send_deliver(1, "c", 1, False, "", "q", properties, b"")
    client = NativeCodec(role="client")
    client.receive_data(wire)
    [deliver] = client.frames()
    assert deliver.properties.headers == {"t": seconds}  # type: ignore[attr-defined]
