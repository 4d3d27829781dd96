"""AMQP 0-9-1 codec: the method table, golden frames, error codes/texts, content assembly."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import pamqp.body as pamqp_body
import pamqp.commands as pamqp_commands
import pamqp.frame as pamqp_frame
import pamqp.header as pamqp_header
import pytest

from minibroker.errors import FrameError, FrameSyntaxError, ProtocolError, UnexpectedFrame
from minibroker.message import EMPTY_PROPERTIES, Properties
from minibroker.protocols.amqp091 import spec
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.content import encode_content, encode_deliver
from minibroker.protocols.amqp091.frames import (
    BadProtocolHeader,
    ContentMethod,
    Frame,
    Heartbeat,
    MethodFrame,
    OversizedContent,
    ProtocolHeader,
    UnknownMethod,
    encode_basic_ack,
    encode_basic_nack,
    encode_heartbeat,
    encode_method,
)
from minibroker.protocols.amqp091.methods import (
    METHOD_CLASSES,
    BasicAck,
    BasicDeliver,
    BasicGetOk,
    BasicNack,
    BasicPublish,
    BasicQos,
    BasicReject,
    ChannelCloseOk,
    ChannelOpen,
    ConnectionStart,
    QueueDeclare,
    class_name,
)

HEADER = spec.PROTOCOL_HEADER


def server(frame_max: int | None = None) -> AMQPCodec:
    codec = AMQPCodec("server")
    codec.receive_data(HEADER)
    assert codec.frames() == [ProtocolHeader()]
    if frame_max is not None:
        codec.frame_max = frame_max
    return codec


def feed(codec: AMQPCodec, data: bytes) -> list[Frame]:
    codec.receive_data(data)
    return codec.frames()


def frame(ftype: int, channel: int, payload: bytes, end: bytes = b"\xce") -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + end


def header_payload(body_size: int, props: bytes = b"\x00\x00", class_id: int = 60,
                   weight: int = 0) -> bytes:
    return struct.pack(">HHQ", class_id, weight, body_size) + props


PUBLISH = encode_method(1, BasicPublish(exchange="", routing_key="q"))


# -- the method table --------------------------------------------------------------------------


def test_table_covers_amqp_091_with_rabbitmq_extensions() -> None:
    names = {m.name for m in spec.METHODS}
    assert len(spec.METHODS) == 64
    for name in ("connection.blocked", "connection.unblocked", "connection.update-secret",
                 "connection.update-secret-ok", "exchange.bind", "exchange.unbind-ok",
                 "basic.nack", "confirm.select", "confirm.select-ok", "tx.rollback-ok"):
        assert name in names
    assert spec.METHODS_BY_NAME["exchange.unbind-ok"].method_id == 51
    assert {m.name for m in spec.METHODS if m.content} == {
        "basic.publish", "basic.return", "basic.deliver", "basic.get-ok"}
    assert spec.METHODS_BY_NAME["basic.get"].responses == ("basic.get-ok", "basic.get-empty")
    assert not spec.METHODS_BY_NAME["basic.publish"].synchronous


def test_every_response_names_a_method_and_ids_are_unique() -> None:
    assert len(spec.METHODS_BY_ID) == len(spec.METHODS)
    for method in spec.METHODS:
        assert method.synchronous == bool(method.responses)
        for response in method.responses:
            assert spec.METHODS_BY_NAME[response].class_id == method.class_id


def test_every_method_class_matches_its_table_entry() -> None:
    assert len(METHOD_CLASSES) == len(spec.METHODS)
    for method in spec.METHODS:
        cls = METHOD_CLASSES[method.key]
        assert cls.__name__ == class_name(method.name)
        expected = (method.name, method.class_id, method.method_id)
        assert expected == (cls.NAME, cls.CLASS_ID, cls.METHOD_ID)
        assert [f.name for f in dataclasses.fields(cls)] == [a.name for a in method.arguments]


def test_constants() -> None:
    assert (spec.FRAME_METHOD, spec.FRAME_HEADER, spec.FRAME_BODY, spec.FRAME_HEARTBEAT) == (
        1, 2, 3, 8)
    assert spec.FRAME_END == 0xCE and spec.FRAME_MIN_SIZE == 4096
    assert HEADER == b"AMQP\x00\x00\x09\x01"
    assert spec.NOT_IMPLEMENTED == 540 and spec.UNEXPECTED_FRAME == 505


# -- golden bytes (hand-checked against AMQP §4.2.3, §4.2.5, §4.2.6) ---------------------------

START_GOLDEN = (
    b"\x01" b"\x00\x00" b"\x00\x00\x00\x63"  # method frame, channel 0, 99 octets
    b"\x00\x0a\x00\x0a"  # connection.start
    b"\x00\x09"  # version 0-9
    b"\x00\x00\x00\x3e"  # server-properties: 62 octets
    b"\x0ccapabilities" b"F\x00\x00\x00\x15" b"\x12publisher_confirms" b"t\x01"
    b"\x07product" b"S\x00\x00\x00\x0aminibroker"
    b"\x00\x00\x00\x0eAMQPLAIN PLAIN"
    b"\x00\x00\x00\x05en_US"
    b"\xce"
)
START = ConnectionStart(
    0, 9, {"capabilities": {"publisher_confirms": True}, "product": "minibroker"},
    "AMQPLAIN PLAIN", "en_US",
)
PUBLISH_GOLDEN = (
    b"\x01\x00\x01\x00\x00\x00\x0a" b"\x00\x3c\x00\x28" b"\x00\x00" b"\x00" b"\x01q" b"\x00"
    b"\xce"
    # content header: class 60, weight 0, body size 5, flags 0x9000 (content-type, delivery-mode)
    b"\x02\x00\x01\x00\x00\x00\x1a" b"\x00\x3c\x00\x00" b"\x00\x00\x00\x00\x00\x00\x00\x05"
    b"\x90\x00" b"\x0atext/plain" b"\x02" b"\xce"
    b"\x03\x00\x01\x00\x00\x00\x05hello\xce"
)
PUBLISH_PROPERTIES = Properties(content_type="text/plain", delivery_mode=2)
DELIVER_GOLDEN = (
    b"\x01\x00\x01\x00\x00\x00\x15" b"\x00\x3c\x00\x3c" b"\x04ctag"
    b"\x00\x00\x00\x00\x00\x00\x00\x01" b"\x00" b"\x00" b"\x01q" b"\xce"
)
ACK_GOLDEN = b"\x01\x00\x01\x00\x00\x00\x0d\x00\x3c\x00\x50\x00\x00\x00\x00\x00\x00\x00\x05\x01\xce"
HEARTBEAT_GOLDEN = b"\x08\x00\x00\x00\x00\x00\x00\xce"


def test_golden_protocol_header_and_heartbeat() -> None:
    codec = AMQPCodec("server")
    assert feed(codec, HEADER + HEARTBEAT_GOLDEN) == [ProtocolHeader(), Heartbeat()]
    assert encode_heartbeat() == HEARTBEAT_GOLDEN
    assert codec.send(ProtocolHeader()) == HEADER


def test_golden_connection_start() -> None:
    assert encode_method(0, START) == START_GOLDEN
    assert feed(AMQPCodec("client"), START_GOLDEN) == [MethodFrame(0, START)]


def test_golden_publish_with_header_and_body() -> None:
    method = BasicPublish(exchange="", routing_key="q")
    assert feed(server(), PUBLISH_GOLDEN) == [
        ContentMethod(1, method, PUBLISH_PROPERTIES, b"hello")]
    assert encode_content(1, method, PUBLISH_PROPERTIES, b"hello", 4096) == PUBLISH_GOLDEN


def test_golden_deliver() -> None:
    golden = DELIVER_GOLDEN + PUBLISH_GOLDEN[PUBLISH_GOLDEN.index(b"\x02\x00\x01"):]
    method = BasicDeliver("ctag", 1, False, "", "q")
    assert encode_content(1, method, PUBLISH_PROPERTIES, b"hello", 131072) == golden
    assert encode_deliver(1, "ctag", 1, False, "", "q", PUBLISH_PROPERTIES, b"hello",
                          131072) == golden
    assert feed(AMQPCodec("client"), golden) == [
        ContentMethod(1, method, PUBLISH_PROPERTIES, b"hello")]


def test_golden_ack() -> None:
    assert encode_basic_ack(1, 5, True) == ACK_GOLDEN
    assert encode_method(1, BasicAck(5, True)) == ACK_GOLDEN
    assert feed(server(), ACK_GOLDEN) == [MethodFrame(1, BasicAck(5, True))]


def test_fast_encoders_equal_generic_encoders() -> None:
    for multiple in (False, True):
        for requeue in (False, True):
            assert encode_basic_nack(7, 2**64 - 1, multiple, requeue) == encode_method(
                7, BasicNack(2**64 - 1, multiple, requeue))
    assert encode_basic_nack(1, 3) == encode_method(1, BasicNack(3, False, True))


@pytest.mark.parametrize("method", [
    BasicAck(1, False), BasicAck(2**64 - 1, True), BasicNack(9, True, False),
    BasicNack(9, False, True), BasicReject(3, True), BasicReject(3, False),
    BasicQos(0, 10, True),
])
def test_hot_methods_decode(method: BasicAck) -> None:
    assert feed(server(), encode_method(3, method)) == [MethodFrame(3, method)]


def test_publish_flags_decode() -> None:
    method = BasicPublish(0, "amq.topic", "a.b.c", True, True)
    codec = server()
    data = encode_content(2, method, EMPTY_PROPERTIES, b"", 4096)
    assert feed(codec, data) == [ContentMethod(2, method, EMPTY_PROPERTIES, b"")]


# -- protocol header ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"AMQP\x01\x01\x00\x0a",  # AMQP 1.0
    b"AMQP\x00\x00\x09\x00",  # 0-9
    b"GET / HTTP/1.1\r\n",
    b"\x01\x00\x00",  # a frame without the header
])
def test_bad_protocol_header(data: bytes) -> None:
    codec = AMQPCodec("server")
    with pytest.raises(BadProtocolHeader) as info:
        feed(codec, data)
    assert isinstance(info.value, ProtocolError)
    assert info.value.received == data[:8]


def test_bad_protocol_header_detected_before_eight_octets() -> None:
    with pytest.raises(BadProtocolHeader):
        feed(AMQPCodec("server"), b"GET")


def test_amqp_0_9_header_is_accepted_like_rabbitmq() -> None:
    # RabbitMQ answers AMQP 1 1 0 9 (what 0-9 clients send) with connection.start, in 0-9-1.
    assert feed(AMQPCodec("server"), spec.PROTOCOL_HEADER_0_9) == [ProtocolHeader()]


def test_protocol_header_in_pieces() -> None:
    codec = AMQPCodec("server")
    for octet in HEADER[:-1]:
        assert feed(codec, bytes([octet])) == []
    assert feed(codec, HEADER[-1:]) == [ProtocolHeader()]


def test_client_sees_server_refusing_our_version() -> None:
    codec = AMQPCodec("client")
    assert feed(codec, b"AMQP\x00\x00") == []
    with pytest.raises(BadProtocolHeader) as info:
        feed(codec, b"\x09\x01")
    assert info.value.received == HEADER


# -- frame errors (checklist A) ----------------------------------------------------------------


def test_bad_frame_end_is_501() -> None:
    with pytest.raises(FrameError) as info:
        feed(server(), ACK_GOLDEN[:-1] + b"\x00")
    assert info.value.reply_code == 501
    # RabbitMQ's exact text, line break included (Erlang's pretty printer wraps at column 80).
    assert info.value.reply_text == (
        "FRAME_ERROR - type 1, all octets = <<0,60,0,80,0,0,0,0,0,0,0,5,1>>: "
        "{invalid_frame_end_marker,\n" + " " * 55 + "0}"
    )


@pytest.mark.parametrize("ftype", [0, 4, 9, 255])
def test_unknown_frame_type_is_501(ftype: int) -> None:
    with pytest.raises(FrameError) as info:
        feed(server(), frame(ftype, 1, b""))
    assert "unknown_frame" in info.value.text


def test_oversized_frames_are_refused_from_the_frame_header() -> None:
    codec = server(8192)
    body_header = struct.pack(">BHI", 3, 1, 9000)  # the payload never needs to arrive
    feed(codec, PUBLISH + frame(2, 1, header_payload(9000)))
    with pytest.raises(FrameError) as info:
        feed(codec, body_header)
    assert "{frame_too_large,9000,8184}" in info.value.text


def test_before_tune_ok_frames_are_limited_to_frame_min_size() -> None:
    big = QueueDeclare(queue="q", arguments={"x": "y" * 4100})
    with pytest.raises(FrameError) as info:
        feed(server(), encode_method(1, big))
    assert "frame_too_large" in info.value.text
    ok = QueueDeclare(queue="q", arguments={"x": "y" * (4088 - 40)})
    assert len(encode_method(1, ok)) <= 4096
    assert feed(server(), encode_method(1, ok)) == [MethodFrame(1, ok)]


@pytest.mark.parametrize("ftype", [1, 2, 3, 8, 9])
def test_after_negotiation_every_frame_type_is_held_to_frame_max(ftype: int) -> None:
    # RabbitMQ enforces the negotiated frame_max on every frame, from the frame header alone.
    codec = server(4096)
    if ftype in (2, 3):
        feed(codec, PUBLISH)
    with pytest.raises(FrameError) as info:
        feed(codec, struct.pack(">BHI", ftype, 1, 10_000))
    assert info.value.reply_text == (
        f"FRAME_ERROR - type {ftype}, all octets = <<>>: {{frame_too_large,10000,4088}}"
    )


def test_method_frame_over_frame_max_is_refused_before_its_payload_arrives() -> None:
    codec = server(4096)
    big = encode_method(1, QueueDeclare(queue="q", arguments={"x": "y" * 10_000}))
    with pytest.raises(FrameError) as info:
        feed(codec, big[:7])  # the frame header says 10,020 octets: no need to read them
    assert "{frame_too_large,10020,4088}" in info.value.text


def test_payload_up_to_frame_max_itself_is_accepted_like_rabbitmq() -> None:
    # RabbitMQ allows 8 octets of slack (clients that forget the frame overhead) and names
    # frame_max - 8 in the error: a 4096-octet body passes frame_max 4096, 4097 does not.
    codec = server(4096)
    events = feed(codec, PUBLISH + frame(2, 1, header_payload(4096)) + frame(3, 1, b"x" * 4096))
    assert [len(e.body) for e in events] == [4096]  # type: ignore[union-attr]
    with pytest.raises(FrameError) as info:
        feed(codec, PUBLISH + frame(2, 1, header_payload(4097)) + frame(3, 1, b"x" * 4097))
    assert "{frame_too_large,4097,4088}" in info.value.text


def test_body_frame_exactly_frame_max_is_accepted() -> None:
    codec = server(4096)
    body = b"x" * 4088
    data = PUBLISH + frame(2, 1, header_payload(len(body))) + frame(3, 1, body)
    assert feed(codec, data)[0].body == body  # type: ignore[union-attr]


def test_frame_max_zero_means_no_body_limit() -> None:
    codec = server(0)
    body = b"x" * 100_000
    events = feed(codec, encode_content(1, BasicPublish(), EMPTY_PROPERTIES, body, 0))
    assert events == [ContentMethod(1, BasicPublish(), EMPTY_PROPERTIES, body)]


def test_frame_max_below_minimum_is_refused() -> None:
    codec = AMQPCodec()
    with pytest.raises(ValueError, match=r"^frame_max 4095 is below frame-min-size 4096$"):
        codec.frame_max = 4095
    assert codec.frame_max == 4096  # unchanged


def test_truncated_method_arguments_are_501_cannot_decode() -> None:
    # RabbitMQ quotes every argument octet (not the class and method ids), ~w style.
    payload = encode_method(1, QueueDeclare(queue="my-queue"))[7:-1]
    with pytest.raises(FrameError) as info:
        feed(server(), frame(1, 1, payload[:10]))
    assert info.value.reply_text == "FRAME_ERROR - cannot decode <<0,0,8,109,121,45>>"
    assert (info.value.class_id, info.value.method_id) == (50, 10)


def test_trailing_octets_after_method_arguments_are_quoted_whole() -> None:
    payload = encode_method(1, QueueDeclare(queue="abc"))[7:-1]
    with pytest.raises(FrameError) as info:
        feed(server(), frame(1, 1, payload + b"\x01\x02"))
    assert info.value.text == "cannot decode <<0,0,3,97,98,99,0,0,0,0,0,1,2>>"


def test_a_field_table_running_past_the_arguments_is_cannot_decode() -> None:
    payload = encode_method(1, QueueDeclare(queue="q", arguments={"k": "v"}))[7:-1]
    with pytest.raises(FrameError) as info:
        feed(server(), frame(1, 1, payload[:-3]))
    assert info.value.text == f"cannot decode {'<<' + ','.join(map(str, payload[4:-3])) + '>>'}"


@pytest.mark.parametrize("payload", [
    b"\x00\x3c",  # shorter than class + method ids
    b"\x00\x3c\x00\x50\x00",  # basic.ack cut short (fast path)
    b"\x00\x3c\x00\x50" + b"\x00" * 10,  # basic.ack with an extra octet
    b"\x00\x3c\x00\x28\x00\x00\x05ab",  # basic.publish with a shortstr past the end
    b"\x00\x3c\x00\x28\x00\x00\x00\x00",  # basic.publish without its bits
    b"\x00\x0a\x00\x33\x00",  # connection.close-ok with a stray octet
])
def test_malformed_arguments_are_501(payload: bytes) -> None:
    with pytest.raises(FrameError):
        feed(server(), frame(1, 1, payload) + ACK_GOLDEN)


@pytest.mark.parametrize(("class_id", "method_id"), [(30, 10), (60, 41), (70, 10), (999, 1)])
def test_unknown_method_is_540(class_id: int, method_id: int) -> None:
    with pytest.raises(UnknownMethod) as info:
        feed(server(), frame(1, 1, struct.pack(">HH", class_id, method_id)))
    assert isinstance(info.value, ProtocolError)
    assert info.value.reply_code == 540
    assert (info.value.class_id, info.value.method_id) == (class_id, method_id)


def test_unknown_table_tag_in_arguments_is_502() -> None:
    good = encode_method(1, QueueDeclare(queue="q", arguments={"x-max-length": 1}))
    bad = good.replace(b"x-max-lengthI", b"x-max-lengthZ")
    with pytest.raises(FrameSyntaxError) as info:
        feed(server(), bad)
    assert info.value.reply_code == 502


def test_non_utf8_shortstr_is_rabbitmqs_501_malformed_utf8() -> None:
    with pytest.raises(FrameError) as info:
        feed(server(), frame(1, 1, b"\x00\x14\x00\x0a\x01\xff"))  # channel.open(out_of_band)
    assert info.value.reply_text == "FRAME_ERROR - Malformed UTF-8 in shortstr"
    assert (info.value.class_id, info.value.method_id) == (0, 0)  # as RabbitMQ sends it


def test_publish_exchange_and_routing_key_may_hold_any_octets() -> None:
    # RabbitMQ accepts them, routes on the octets and delivers them unchanged.
    payload = b"\x00\x3c\x00\x28\x00\x00" + b"\x02x\xff" + b"\x04a.\xfe." + b"\x00"
    body = frame(2, 1, header_payload(0))
    [event] = feed(server(), frame(1, 1, payload) + body)
    method = event.method  # type: ignore[union-attr]
    assert isinstance(method, BasicPublish)
    assert method.exchange.encode("utf-8", "surrogateescape") == b"x\xff"
    assert method.routing_key.encode("utf-8", "surrogateescape") == b"a.\xfe."
    out = encode_deliver(1, "ctag", 1, False, method.exchange, method.routing_key,
                         EMPTY_PROPERTIES, b"", 4096)
    assert b"\x02x\xff" in out and b"\x04a.\xfe." in out


def test_binary_longstr_arguments_stay_bytes() -> None:
    from minibroker.protocols.amqp091.methods import ConnectionStartOk
    method = ConnectionStartOk({}, "PLAIN", b"\x00guest\x00\xff\xfe", "en_US")
    assert feed(server(), encode_method(0, method)) == [MethodFrame(0, method)]


def test_shortstr_over_255_octets_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match=r"^shortstr longer than 255 octets: 'qqqq"):
        encode_method(1, QueueDeclare(queue="q" * 256))
    with pytest.raises(ValueError, match=r"^consumer_tag, exchange and routing_key must be at "
                       r"most 255 octets$"):
        encode_deliver(1, "t" * 256, 1, False, "", "", EMPTY_PROPERTIES, b"", 0)
    with pytest.raises(ValueError, match=r"^property app_id longer than 255 octets$"):
        encode_content(1, BasicPublish(), Properties(app_id="a" * 256), b"", 0)
    with pytest.raises(ValueError, match=r"^cannot encode basic.qos: 'H' format requires "
                       r"0 <= number <= 65535$"):
        encode_method(1, BasicQos(prefetch_count=70_000))


# -- content assembly (checklist A.7-A.9) ------------------------------------------------------


def expect_505(data: bytes, text: str, codec: AMQPCodec | None = None) -> UnexpectedFrame:
    with pytest.raises(UnexpectedFrame) as info:
        feed(codec or server(), data)
    assert info.value.reply_code == 505
    assert info.value.reply_text == "UNEXPECTED_FRAME - " + text
    return info.value


def test_header_without_content_method_is_505() -> None:
    expect_505(frame(2, 1, header_payload(0)),
               "expected method frame, got non method frame instead")


def test_body_without_content_method_is_505() -> None:
    expect_505(frame(3, 1, b"x"), "expected method frame, got non method frame instead")


def test_method_between_publish_and_header_is_505() -> None:
    error = expect_505(PUBLISH + ACK_GOLDEN,
                       "expected content header for class 60, got non content header frame"
                       " instead")
    assert (error.class_id, error.method_id) == (60, 40)


def test_body_before_header_is_505() -> None:
    expect_505(PUBLISH + frame(3, 1, b"x"),
               "expected content header for class 60, got non content header frame instead")


def test_method_before_body_complete_is_505() -> None:
    expect_505(PUBLISH + frame(2, 1, header_payload(5)) + frame(3, 1, b"he") + ACK_GOLDEN,
               "expected content body, got non content body frame instead")


def test_second_header_is_505() -> None:
    expect_505(PUBLISH + frame(2, 1, header_payload(5)) + frame(2, 1, header_payload(5)),
               "expected content body, got non content body frame instead")


def test_header_for_another_class_is_505() -> None:
    expect_505(PUBLISH + frame(2, 1, header_payload(0, class_id=50)),
               "expected content header for class 60, got one for class 50 instead")


def test_header_with_non_zero_weight_is_505() -> None:
    expect_505(PUBLISH + frame(2, 1, header_payload(0, weight=1)),
               "expected content header for class 60, got non content header frame instead")


def test_body_longer_than_declared_is_505() -> None:
    with pytest.raises(UnexpectedFrame):
        feed(server(), PUBLISH + frame(2, 1, header_payload(3)) + frame(3, 1, b"four"))


def test_heartbeat_on_non_zero_channel_is_505() -> None:
    with pytest.raises(UnexpectedFrame) as info:
        feed(server(), frame(8, 1, b""))
    assert info.value.reply_text == "UNEXPECTED_FRAME - type 8, all octets = <<>>"


@pytest.mark.parametrize("channel", [0, 1])
def test_heartbeat_with_payload_is_501_unknown_frame(channel: int) -> None:
    with pytest.raises(FrameError) as info:
        feed(server(), frame(8, channel, b"abc"))
    assert info.value.reply_text == 'FRAME_ERROR - type 8, all octets = <<"abc">>: unknown_frame'


@pytest.mark.parametrize(("ftype", "payload", "text"), [
    (2, header_payload(5), "type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,5,0,0>>"),
    (3, b"hello", 'type 3, all octets = <<"hello">>'),
])
def test_content_frames_on_channel_0_are_505(ftype: int, payload: bytes, text: str) -> None:
    with pytest.raises(UnexpectedFrame) as info:
        feed(server(), frame(ftype, 0, payload))
    assert info.value.text == text


def test_publish_on_channel_0_reaches_the_connection_at_once() -> None:
    # Not assembled: the connection answers it with 504 before any content frame.
    assert feed(server(), encode_method(0, BasicPublish())) == [MethodFrame(0, BasicPublish())]


@pytest.mark.parametrize(("ftype", "payload", "text"), [
    (1, b"\x00\x32", "type 1, all octets = <<0,50>>: unknown_frame"),  # no method id
    (2, b"\x00\x3c\x00\x00", "type 2, all octets = <<0,60,0,0>>: unknown_frame"),
    (9, b"hello world, this is long", 'type 9, first 16 octets = <<"hello world, thi">>: '
                                      "unknown_frame"),
])
def test_frames_without_their_minimal_shape_are_unknown_frame(
    ftype: int, payload: bytes, text: str
) -> None:
    codec = server()
    if ftype == 2:
        feed(codec, PUBLISH)
    with pytest.raises(FrameError) as info:
        feed(codec, frame(ftype, 1, payload))
    assert info.value.text == text


def test_size_is_checked_before_the_frame_end_and_the_end_before_the_type() -> None:
    # RabbitMQ's order: an oversized frame of an unknown type is frame_too_large, a bad end of
    # an unknown type is invalid_frame_end_marker.
    with pytest.raises(FrameError) as info:
        feed(server(4096), struct.pack(">BHI", 9, 1, 5000))
    assert info.value.text == "type 9, all octets = <<>>: {frame_too_large,5000,4088}"
    with pytest.raises(FrameError) as info:
        feed(server(), frame(9, 1, b"xy", end=b"\x00"))
    assert info.value.text == 'type 9, all octets = <<"xy">>: {invalid_frame_end_marker,0}'


def test_truncated_content_header_is_501() -> None:
    with pytest.raises(FrameError):
        feed(server(), PUBLISH + frame(2, 1, b"\x00\x3c\x00\x00\x00"))


@pytest.mark.parametrize("props", [
    b"\x00\x01",  # continuation flag: class basic has no 15th property
    b"\x00\x02",  # reserved bit
    b"\x80\x00\x05ab",  # content-type runs past the frame
    b"\x80\x00\x01ab",  # octets left over
    b"\x10\x00",  # delivery-mode flagged but missing
])
def test_malformed_properties_are_501(props: bytes) -> None:
    with pytest.raises(FrameError):
        feed(server(), PUBLISH + frame(2, 1, header_payload(0, props)))


def test_zero_body_size_means_no_body_frame() -> None:
    events = feed(server(), PUBLISH + frame(2, 1, header_payload(0)) + ACK_GOLDEN)
    assert events == [ContentMethod(1, BasicPublish(routing_key="q"), EMPTY_PROPERTIES, b""),
                      MethodFrame(1, BasicAck(5, True))]


def test_body_split_across_frames_is_reassembled() -> None:
    body = bytes(range(256)) * 100
    codec = server(4096)
    data = encode_content(1, BasicPublish(), EMPTY_PROPERTIES, body, 4096)
    assert data.count(b"\xce\x03\x00\x01") == 7  # 25600 octets: 7 body frames of <= 4088
    assert feed(codec, data) == [ContentMethod(1, BasicPublish(), EMPTY_PROPERTIES, body)]


def test_large_body_in_small_reads() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB, as in pika's large-publish test
    data = encode_content(1, BasicPublish(), EMPTY_PROPERTIES, body, 131072)
    codec = server(131072)
    events: list[Frame] = []
    for offset in range(0, len(data), 1000):
        codec.receive_data(data[offset : offset + 1000])
        events += codec.frames()
    assert events == [ContentMethod(1, BasicPublish(), EMPTY_PROPERTIES, body)]


def test_content_of_different_channels_interleaves() -> None:
    props = Properties(message_id="m")
    frames_1 = [PUBLISH, frame(2, 1, header_payload(4)), frame(3, 1, b"ab"), frame(3, 1, b"cd")]
    frames_2 = [encode_method(2, BasicPublish(routing_key="r")),
                frame(2, 2, header_payload(2, b"\x00\x80\x01m")), frame(3, 2, b"xy")]
    data = b"".join(a + b for a, b in zip(frames_1, [*frames_2, ACK_GOLDEN], strict=True))
    assert feed(server(), data) == [
        ContentMethod(2, BasicPublish(routing_key="r"), props, b"xy"),
        ContentMethod(1, BasicPublish(routing_key="q"), EMPTY_PROPERTIES, b"abcd"),
        MethodFrame(1, BasicAck(5, True)),
    ]


def test_heartbeat_may_interleave_with_content() -> None:
    data = PUBLISH + HEARTBEAT_GOLDEN + frame(2, 1, header_payload(1)) + HEARTBEAT_GOLDEN
    assert feed(server(), data + frame(3, 1, b"z")) == [
        Heartbeat(), Heartbeat(), ContentMethod(1, BasicPublish(routing_key="q"),
                                                EMPTY_PROPERTIES, b"z")]


def test_get_ok_and_return_carry_content_on_the_client_side() -> None:
    method = BasicGetOk(7, True, "ex", "rk", 3)
    data = encode_content(1, method, EMPTY_PROPERTIES, b"body", 4096)
    assert feed(AMQPCodec("client"), data) == [ContentMethod(1, method, EMPTY_PROPERTIES, b"body")]


ALL_PROPERTIES = Properties(
    content_type="application/json", content_encoding="utf-8",
    headers={"x-death": [{"count": 1, "reason": "expired"}], "n": None}, delivery_mode=2,
    priority=9, correlation_id="corr", reply_to="amq.rabbitmq.reply-to", expiration="60000",
    message_id="mid", timestamp=1_700_000_000, type="task", user_id="guest", app_id="celery",
    cluster_id="rabbit@node",
)


@pytest.mark.parametrize("props", [
    EMPTY_PROPERTIES, ALL_PROPERTIES, Properties(priority=0), Properties(headers={}),
    Properties(cluster_id="c"), Properties(timestamp=0, expiration="0"),
])
def test_properties_round_trip_exactly(props: Properties) -> None:
    data = encode_content(1, BasicPublish(), props, b"", 4096)
    (event,) = feed(server(), data)
    assert isinstance(event, ContentMethod)
    assert event.properties == props
    # re-emitting reproduces the publisher's header octets: absent stays absent
    assert encode_content(1, BasicPublish(), event.properties, b"", 4096) == data


def test_content_method_required_for_encode_content() -> None:
    with pytest.raises(ValueError, match=r"^basic.ack does not carry content$"):
        encode_content(1, BasicAck(), EMPTY_PROPERTIES, b"", 4096)


# -- the event API -----------------------------------------------------------------------------


def test_next_frame_returns_events_one_at_a_time() -> None:
    codec = server()
    codec.receive_data(ACK_GOLDEN + HEARTBEAT_GOLDEN + ACK_GOLDEN[:5])
    assert codec.next_frame() == MethodFrame(1, BasicAck(5, True))
    assert codec.next_frame() == Heartbeat()
    assert codec.next_frame() is None
    codec.receive_data(ACK_GOLDEN[5:])
    assert codec.next_frame() == MethodFrame(1, BasicAck(5, True))
    assert codec.next_frame() is None


def test_frames_before_an_error_are_returned_then_the_error_is_raised() -> None:
    codec = server()
    codec.receive_data(ACK_GOLDEN + encode_method(1, ChannelOpen()) + frame(7, 1, b""))
    assert codec.frames() == [MethodFrame(1, BasicAck(5, True)), MethodFrame(1, ChannelOpen())]
    with pytest.raises(FrameError):
        codec.frames()
    codec.receive_data(ACK_GOLDEN)
    with pytest.raises(FrameError):  # a codec that failed stays failed
        codec.next_frame()


def test_end_of_stream() -> None:
    codec = server()
    codec.receive_data(ACK_GOLDEN)
    codec.receive_data(b"")
    assert codec.frames() == [MethodFrame(1, BasicAck(5, True))]
    assert codec.frames() == []
    with pytest.raises(RuntimeError):
        codec.receive_data(ACK_GOLDEN)


def test_end_of_stream_inside_a_frame_is_501() -> None:
    codec = server()
    codec.receive_data(ACK_GOLDEN[:9])
    assert codec.frames() == []
    codec.receive_data(b"")
    with pytest.raises(FrameError):
        codec.frames()


def test_send_encodes_every_event_type() -> None:
    codec = server(8192)
    events: list[Frame] = [
        MethodFrame(1, BasicAck(5, True)), Heartbeat(),
        ContentMethod(1, BasicPublish(routing_key="q"), PUBLISH_PROPERTIES, b"x" * 20_000),
    ]
    data = b"".join(codec.send(event) for event in events)
    assert feed(server(8192), data) == events
    assert codec.encode_content(1, BasicPublish(), EMPTY_PROPERTIES, b"x" * 8185).count(
        b"\xce\x03\x00\x01") == 2  # 8184 + 1 octets: two body frames at frame_max 8192


def test_role_must_be_server_or_client() -> None:
    with pytest.raises(ValueError, match=r"^role must be 'server' or 'client', not 'broker'$"):
        AMQPCodec("broker")  # type: ignore[arg-type]


# -- pamqp as an independent oracle ------------------------------------------------------------

#: Reserved arguments pamqp insists on (AMQP 0-9-1 fixes their values).
RESERVED = {"ticket": 0, "capabilities": "", "known_hosts": "", "out_of_band": "0",
            "channel_id": "0", "cluster_id": "", "insist": False}


def representative_args(method: spec.MethodSpec) -> dict[str, object]:
    """Distinct, valid values per argument; bits alternate so bit positions are checked."""
    values: dict[str, object] = {}
    for i, arg in enumerate(method.arguments):
        if arg.name in RESERVED:
            values[arg.name] = RESERVED[arg.name]
        elif arg.type == "bit":
            values[arg.name] = i % 2 == 0
        elif arg.type == "octet":
            values[arg.name] = 9
        elif arg.type == "short":
            values[arg.name] = 300 + i
        elif arg.type == "long":
            values[arg.name] = 70_000 + i
        elif arg.type == "longlong":
            values[arg.name] = 2**40 + i
        elif arg.type == "shortstr":
            values[arg.name] = f"{arg.name}.v-{i}"
        elif arg.type == "longstr":
            values[arg.name] = f"\x00long {arg.name}"
        else:
            values[arg.name] = {"x-max-length": 10, "nested": {"a": [1, "b"]}, "flag": True}
    return values


def pamqp_class(method: spec.MethodSpec) -> type:
    """``basic.recover-async`` -> ``pamqp.commands.Basic.RecoverAsync``."""
    amqp_class = method.name.split(".")[0].title()
    cls: type = getattr(getattr(pamqp_commands, amqp_class),
                        class_name(method.name)[len(amqp_class):])
    return cls


@pytest.mark.filterwarnings("ignore:This command is deprecated:DeprecationWarning")
@pytest.mark.parametrize("method", spec.METHODS, ids=lambda m: m.name)
def test_methods_pamqp_encodes_decode_to_the_same_values(method: spec.MethodSpec) -> None:
    args = representative_args(method)
    theirs = pamqp_class(method)(**args)
    data = pamqp_frame.marshal(theirs, 3)
    events = feed(server(), data)
    if method.content:  # content methods wait for their header
        assert events == []
        return
    (event,) = events
    assert isinstance(event, MethodFrame) and event.channel == 3
    expected = {k: (v.encode() if isinstance(v, str) and a.binary else v)
                for (k, v), a in zip(args.items(), method.arguments, strict=True)}
    assert dataclasses.asdict(event.method) == expected


@pytest.mark.filterwarnings("ignore:This command is deprecated:DeprecationWarning")
@pytest.mark.parametrize("method", spec.METHODS, ids=lambda m: m.name)
def test_methods_we_encode_pamqp_decodes_to_the_same_values(method: spec.MethodSpec) -> None:
    args = representative_args(method)
    ours = METHOD_CLASSES[method.key](**{
        k: (v.encode() if isinstance(v, str) and a.binary else v)
        for (k, v), a in zip(args.items(), method.arguments, strict=True)})
    data = encode_method(3, ours)
    consumed, channel, theirs = pamqp_frame.unmarshal(data)
    assert (consumed, channel) == (len(data), 3)
    assert theirs.name == pamqp_class(method).name  # type: ignore[attr-defined]
    for name, value in args.items():
        assert getattr(theirs, name) == value, name


#: pamqp refuses a cluster-id property (deprecated in 0-9-1), so the oracle tests leave it out.
ORACLE_PROPERTIES = dataclasses.replace(ALL_PROPERTIES, cluster_id=None)


def test_we_know_every_method_pamqp_knows() -> None:
    for amqp_class in ("Connection", "Channel", "Exchange", "Queue", "Basic", "Tx", "Confirm"):
        for name, value in vars(getattr(pamqp_commands, amqp_class)).items():
            if isinstance(value, type) and hasattr(value, "index") and name != "Properties":
                assert value.index in spec.METHODS_BY_ID, name


def pamqp_properties(props: Properties) -> Any:
    import datetime
    values = dataclasses.asdict(props)
    values["cluster_id"] = values["cluster_id"] or ""
    values["message_type"] = values.pop("type")
    values["timestamp"] = datetime.datetime.fromtimestamp(values["timestamp"], datetime.UTC)
    return pamqp_commands.Basic.Properties(**values)


def test_content_pamqp_encodes_decodes_to_the_same_values() -> None:
    body = b"0123456789" * 1000
    data = pamqp_frame.marshal(pamqp_commands.Basic.Publish(exchange="ex", routing_key="rk"), 5)
    data += pamqp_frame.marshal(
        pamqp_header.ContentHeader(0, len(body), pamqp_properties(ORACLE_PROPERTIES)), 5)
    data += pamqp_frame.marshal(pamqp_body.ContentBody(body[:4000]), 5)
    data += pamqp_frame.marshal(pamqp_body.ContentBody(body[4000:]), 5)
    assert feed(server(0), data) == [
        ContentMethod(5, BasicPublish(0, "ex", "rk"), ORACLE_PROPERTIES, body)]


def test_content_we_encode_pamqp_decodes_to_the_same_values() -> None:
    body = b"b" * 10_000
    data = encode_deliver(2, "ctag", 42, True, "ex", "rk", ORACLE_PROPERTIES, body, 4096)
    decoded: list[Any] = []
    while data:
        consumed, channel, value = pamqp_frame.unmarshal(data)
        assert channel == 2
        decoded.append(value)
        data = data[consumed:]
    deliver, header, *bodies = decoded
    assert (deliver.consumer_tag, deliver.delivery_tag, deliver.redelivered, deliver.exchange,
            deliver.routing_key) == ("ctag", 42, True, "ex", "rk")
    assert header.body_size == len(body)
    expected = pamqp_properties(ORACLE_PROPERTIES)
    for name in expected.attributes():
        assert getattr(header.properties, name) == getattr(expected, name), name
    assert b"".join(b.value for b in bodies) == body
    assert len(bodies) == 3


# -- max_message_size (RabbitMQ's 406, refused before any body octet is kept) ---------------------


def oversized_codec(limit: int = 100) -> AMQPCodec:
    codec = AMQPCodec("server", max_message_size=limit)
    codec.receive_data(HEADER)
    codec.frames()
    codec.frame_max = 4096
    return codec


def test_content_header_over_max_message_size_is_an_event_and_its_body_is_skipped() -> None:
    codec = oversized_codec(100)
    events = feed(codec, PUBLISH + frame(2, 1, header_payload(101)))
    assert events == [OversizedContent(1, BasicPublish(exchange="", routing_key="q"), 101, 100)]
    assert feed(codec, frame(3, 1, b"x" * 60)) == []
    assert codec.partial_bytes == 0  # counted, never kept
    assert feed(codec, frame(3, 1, b"x" * 41)) == []
    # The skipped content is over: the channel carries on normally.
    assert feed(codec, ACK_GOLDEN) == [MethodFrame(1, BasicAck(5, True))]


def test_body_of_exactly_max_message_size_is_accepted() -> None:
    codec = oversized_codec(100)
    [event] = feed(codec, PUBLISH + frame(2, 1, header_payload(100)) + frame(3, 1, b"x" * 100))
    assert isinstance(event, ContentMethod) and len(event.body) == 100


def test_next_frame_of_the_channel_ends_the_skipped_body() -> None:
    # The client answers our channel.close (406) with close-ok before its body is all sent.
    codec = oversized_codec(100)
    feed(codec, PUBLISH + frame(2, 1, header_payload(10_000)) + frame(3, 1, b"x" * 50))
    close_ok = MethodFrame(1, ChannelCloseOk())
    assert feed(codec, encode_method(1, ChannelCloseOk())) == [close_ok]
    # A header after the skipped content is a header without a content method.
    with pytest.raises(UnexpectedFrame):
        feed(codec, frame(2, 1, header_payload(1)))


def test_declared_size_of_2_to_the_64_is_refused_without_waiting() -> None:
    codec = oversized_codec()
    [event] = feed(codec, PUBLISH + frame(2, 1, header_payload(2**64 - 1)))
    assert isinstance(event, OversizedContent) and event.body_size == 2**64 - 1


def test_server_codec_defaults_to_rabbitmqs_128_mib_and_client_to_no_limit() -> None:
    assert AMQPCodec("server").max_message_size == 128 * 1024 * 1024
    assert AMQPCodec("client").max_message_size is None


def test_partial_bytes_counts_unfinished_frames_and_bodies() -> None:
    codec = server(4096)
    feed(codec, PUBLISH + frame(2, 1, header_payload(5000)))
    assert codec.partial_bytes == 0
    feed(codec, frame(3, 1, b"x" * 3000))
    assert codec.partial_bytes == 3000
    feed(codec, frame(3, 1, b"y" * 1000)[:500])  # half a frame: held in the input buffer
    assert codec.partial_bytes == 3500
    [event] = feed(codec, frame(3, 1, b"y" * 1000)[500:] + frame(3, 1, b"z" * 1000))
    assert len(event.body) == 5000  # type: ignore[union-attr]
    assert codec.partial_bytes == 0
