"""Property tests of the AMQP 0-9-1 codec: round trips, fuzzing, arbitrary stream splits."""

from __future__ import annotations

import datetime
import decimal
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from minibroker.errors import ProtocolError
from minibroker.message import FieldValue, Properties, Timestamp
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.content import encode_content
from minibroker.protocols.amqp091.fields import decode_table, encode_table
from minibroker.protocols.amqp091.frames import (
    ContentMethod,
    Frame,
    Heartbeat,
    MethodFrame,
    encode_heartbeat,
    encode_method,
)
from minibroker.protocols.amqp091.methods import METHOD_CLASSES, BasicPublish, Method
from minibroker.protocols.amqp091.spec import METHODS, PROTOCOL_HEADER, MethodSpec

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
FRAME_MAX = 4096

# -- strategies --------------------------------------------------------------------------------

shortstr = st.text(max_size=30)
# RabbitMQ takes any octets in a field name: those that are not UTF-8 stay surrogate-escaped.
field_names = st.text(max_size=12) | st.binary(max_size=12).map(
    lambda raw: raw.decode("utf-8", "surrogateescape"))
leaves: st.SearchStrategy[FieldValue] = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.builds(lambda unscaled, scale: decimal.Decimal(unscaled).scaleb(-scale),
              st.integers(-(2**31), 2**31 - 1), st.integers(0, 30)),
    st.integers(0, 253402300799).map(lambda s: EPOCH + datetime.timedelta(seconds=s)),
    st.integers(253402300800, 2**64 - 1).map(Timestamp),  # after 9999: kept as seconds
    st.none(),
)
field_values: st.SearchStrategy[FieldValue] = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(field_names, children, max_size=4),
    max_leaves=12,
)
field_tables = st.dictionaries(field_names, field_values, max_size=5)

_ARGUMENT: dict[str, st.SearchStrategy[Any]] = {
    "bit": st.booleans(),
    "octet": st.integers(0, 2**8 - 1),
    "short": st.integers(0, 2**16 - 1),
    "long": st.integers(0, 2**32 - 1),
    "longlong": st.integers(0, 2**64 - 1),
    "timestamp": st.integers(0, 2**64 - 1),
    "shortstr": shortstr,
    "longstr": st.text(max_size=50),
    "table": field_tables,
}


def method_strategy(spec: MethodSpec) -> st.SearchStrategy[Method]:
    args = {
        a.name: st.binary(max_size=50) if a.binary else _ARGUMENT[a.type] for a in spec.arguments
    }
    return st.fixed_dictionaries(args).map(lambda kw: METHOD_CLASSES[spec.key](**kw))


methods = st.sampled_from(METHODS).flatmap(method_strategy)
properties = st.builds(
    Properties,
    **{
        name: st.none() | strategy
        for name, strategy in {
            "content_type": shortstr, "content_encoding": shortstr, "headers": field_tables,
            "delivery_mode": st.integers(0, 255), "priority": st.integers(0, 255),
            "correlation_id": shortstr, "reply_to": shortstr, "expiration": shortstr,
            "message_id": shortstr, "timestamp": st.integers(0, 2**64 - 1), "type": shortstr,
            "user_id": shortstr, "app_id": shortstr, "cluster_id": shortstr,
        }.items()
    },
)
channels = st.integers(1, 2**16 - 1)


@st.composite
def events(draw: st.DrawFn) -> Frame:
    method = draw(methods)
    if method.SPEC.content:
        body = draw(st.binary(max_size=3 * FRAME_MAX) | st.just(b""))
        return ContentMethod(draw(channels), method, draw(properties), body)
    if draw(st.integers(0, 9)) == 0:
        return Heartbeat()
    return MethodFrame(draw(channels | st.just(0)), method)


def encode(event: Frame) -> bytes:
    if isinstance(event, ContentMethod):
        return encode_content(event.channel, event.method, event.properties, event.body,
                              FRAME_MAX)
    if isinstance(event, MethodFrame):
        return encode_method(event.channel, event.method)
    return encode_heartbeat()


def server() -> AMQPCodec:
    codec = AMQPCodec("server")
    codec.receive_data(PROTOCOL_HEADER)
    codec.frames()
    codec.frame_max = FRAME_MAX
    return codec


# -- round trips -------------------------------------------------------------------------------


@given(field_tables)
def test_field_table_round_trip(table: dict[str, FieldValue]) -> None:
    data = encode_table(table)
    assert decode_table(data, 0) == (table, len(data))


@given(methods, channels)
def test_every_method_round_trips(method: Method, channel: int) -> None:
    codec = server()
    if method.SPEC.content:
        codec.receive_data(encode_content(channel, method, Properties(), b"", FRAME_MAX))
        assert codec.frames() == [ContentMethod(channel, method, Properties(), b"")]
    else:
        codec.receive_data(encode_method(channel, method))
        assert codec.frames() == [MethodFrame(channel, method)]


@given(properties, st.binary(max_size=3 * FRAME_MAX))
def test_content_round_trips_and_re_encodes_identically(props: Properties, body: bytes) -> None:
    event = ContentMethod(1, METHOD_CLASSES[0x3C0028](), props, body)
    data = encode(event)
    codec = server()
    codec.receive_data(data)
    (decoded,) = codec.frames()
    assert decoded == event
    assert encode(decoded) == data  # absent properties stay absent, nothing is added


@given(st.lists(events(), max_size=8), st.data())
def test_stream_split_anywhere_decodes_the_same(sequence: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(encode(event) for event in sequence)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    codec = server()
    decoded: list[Frame] = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        if start == stop:
            continue  # b"" would mean end of stream
        codec.receive_data(stream[start:stop])
        if data.draw(st.booleans()):
            decoded += codec.frames()
        else:
            while (event := codec.next_frame()) is not None:
                decoded.append(event)
    codec.receive_data(b"")
    decoded += codec.frames()
    assert decoded == sequence


# -- fuzzing: a peer's octets can only ever cause a ProtocolError ------------------------------


def only_protocol_errors(codec: AMQPCodec, chunks: list[bytes]) -> None:
    try:
        for chunk in filter(None, chunks):  # b"" would mean end of stream
            codec.receive_data(chunk)
            codec.frames()
        codec.receive_data(b"")
        codec.frames()
    except ProtocolError:
        return


@given(st.binary(max_size=600), st.sampled_from(["server", "client"]))
def test_arbitrary_octets_raise_only_protocol_errors(garbage: bytes, role: str) -> None:
    only_protocol_errors(AMQPCodec(role), [garbage])  # type: ignore[arg-type]


@given(st.binary(max_size=600))
def test_arbitrary_octets_after_a_valid_header_raise_only_protocol_errors(garbage: bytes) -> None:
    only_protocol_errors(AMQPCodec("server"), [PROTOCOL_HEADER, garbage])


@given(st.lists(events(), min_size=1, max_size=4), st.data())
def test_mutated_valid_streams_raise_only_protocol_errors(
    sequence: list[Frame], data: st.DataObject
) -> None:
    stream = bytearray(b"".join(encode(event) for event in sequence))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(stream) - 1))
        stream[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(stream)))
    only_protocol_errors(server(), [bytes(stream[:cut]), bytes(stream[cut:])])


# -- hostile field values: every tag with any payload --------------------------------------------

_TAGS = b"tbBsuIilfdDSATFVx"
raw_value = st.builds(
    lambda tag, payload: bytes([tag]) + payload,
    st.sampled_from([*_TAGS, ord("Z"), 0]),
    st.binary(max_size=12)
    | st.integers(0, 2**64 - 1).map(lambda n: n.to_bytes(8, "big"))  # 'T', 'l', 'd' extremes
    | st.builds(lambda scale, n: bytes([scale]) + n.to_bytes(4, "big", signed=True),
                st.integers(0, 255), st.integers(-(2**31), 2**31 - 1))  # any 'D'
    | st.binary(max_size=8).map(lambda b: len(b).to_bytes(4, "big") + b),  # 'S', 'x', 'A', 'F'
)
raw_tables = st.lists(st.tuples(st.binary(max_size=6), raw_value), max_size=6).map(
    lambda entries: b"".join(bytes([len(name)]) + name + value for name, value in entries)
).map(lambda body: len(body).to_bytes(4, "big") + body)


@given(raw_tables)
def test_any_table_decodes_to_a_protocol_error_or_to_values_that_encode_again(raw: bytes) -> None:
    # A header a client sends is either refused (ProtocolError) or can be delivered again.
    try:
        table, _ = decode_table(raw, 0)
    except ProtocolError:
        return
    again, _ = decode_table(encode_table(table), 0)
    assert list(again) == list(table)


@given(raw_tables, st.integers(0, 2**64 - 1))
def test_hostile_headers_in_a_publish_raise_only_protocol_errors(table: bytes, size: int) -> None:
    header = (b"\x00\x3c\x00\x00" + size.to_bytes(8, "big") + b"\x20\x00" + table)
    publish = encode_method(1, BasicPublish(routing_key="q"))
    frame = struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce"
    only_protocol_errors(server(), [publish + frame])
