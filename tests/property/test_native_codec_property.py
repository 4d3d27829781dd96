"""Native codec properties: round trips, split reads, fuzzing (only ProtocolError escapes)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from minibroker.errors import FrameError, FrameSyntaxError, ProtocolError
from minibroker.message import FieldValue, Properties
from minibroker.protocols.amqp091.content import encode_properties as encode_amqp_properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import _SCHEMAS, MIN_FRAME_SIZE, PREAMBLE, NativeCodec
from minibroker.protocols.native.values import ext_hook

# --- strategies ---------------------------------------------------------------------------

scalars: st.SearchStrategy[FieldValue] = st.one_of(
    st.none(),
    st.booleans(),
    # Field integers are AMQP's: at most a signed 64-bit value (values.py rule 4).
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    # Decimals and timestamps within what AMQP can carry (values.py rule 4): scale up to 255,
    # unscaled value a signed 32-bit int; timestamps from 1970 on.
    st.builds(lambda unscaled, scale: decimal.Decimal(unscaled).scaleb(-scale),
              st.integers(-(2**31), 2**31 - 1), st.integers(0, 255)),
    # naive and aware; ``fold`` only disambiguates local times and does not travel
    st.datetimes(min_value=datetime.datetime(1970, 1, 1)).map(lambda d: d.replace(fold=0)),
    st.datetimes(min_value=datetime.datetime(1970, 1, 1),
                 timezones=st.just(datetime.UTC)).map(lambda d: d.replace(fold=0)),
)
field_values: st.SearchStrategy[FieldValue] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
field_tables = st.dictionaries(st.text(max_size=10), field_values, max_size=5)
short_strs = st.text(max_size=30) | st.text(alphabet="abc.#*", min_size=200, max_size=255)
opt_str = st.none() | st.text(max_size=20)
properties = st.builds(
    Properties,
    content_type=opt_str, content_encoding=opt_str, headers=st.none() | field_tables,
    delivery_mode=st.none() | st.integers(0, 255), priority=st.none() | st.integers(0, 255),
    correlation_id=opt_str, reply_to=opt_str, expiration=opt_str, message_id=opt_str,
    timestamp=st.none() | st.integers(0, 2**64 - 1), type=opt_str, user_id=opt_str,
    app_id=opt_str, cluster_id=opt_str,
)
KINDS: dict[str, st.SearchStrategy[Any]] = {
    "UInt16": st.integers(0, 0xFFFF),
    "UInt32": st.integers(0, 0xFFFF_FFFF),
    "UInt64": st.integers(0, 2**64 - 1),
    "ShortStr": short_strs,
    "str | None": opt_str,
    "bool": st.booleans(),
    "bytes": st.binary(max_size=100),
    "FieldTable": field_tables,
    "Properties": properties,
    "Batch": st.lists(st.tuples(properties, st.binary(max_size=20)), max_size=4),
    "Records": st.lists(st.tuples(st.integers(0, 2**64 - 1), short_strs, short_strs, properties,
                                  st.binary(max_size=20)), max_size=4),
    # StreamFetchOk runs, in their decoded form (runs.py rule 2): columns
    "Chunks": st.lists(st.builds(
        lambda first, entries: (first, *(tuple(column) for column in zip(*entries, strict=True)))
        if entries else (first, (), (), (), ()),
        st.integers(0, 2**64 - 1),
        st.lists(st.tuples(short_strs, short_strs, properties, st.binary(max_size=20)),
                 max_size=3)), max_size=3),
}


def frames_of(cls: type[f.Frame]) -> st.SearchStrategy[f.Frame]:
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return st.builds(cls, *(KINDS[str(field.type)] for field in fields))


# (Body frames are the codec's own: it makes and joins them, see the messages in parts below.)
any_frame = st.sampled_from([cls for cls in f.FRAME_TYPES if cls is not f.Body]).flatmap(frames_of)


def receiver_for(frame: f.Frame, *, reverse: bool = False) -> tuple[NativeCodec, NativeCodec]:
    """(sender, receiver) codecs for a frame; ``reverse`` picks server->client for "both"."""
    from_server = frame.sender == "server" or (frame.sender == "both" and reverse)
    if from_server:
        return NativeCodec(role="server"), NativeCodec(role="client")
    receiver = NativeCodec(role="server")
    receiver.receive_data(PREAMBLE)
    return NativeCodec(role="client"), receiver


def same(a: object, b: object) -> bool:
    """Equality that also tells Decimal('1.0') from Decimal('1.00') and 1 from True."""
    return type(a) is type(b) and repr(a) == repr(b)


# --- round trips --------------------------------------------------------------------------


@given(any_frame, st.booleans())
def test_every_frame_round_trips(frame: f.Frame, reverse: bool) -> None:
    sender, receiver = receiver_for(frame, reverse=reverse)
    receiver.receive_data(sender.send(frame))
    got = receiver.frames()
    assert got == [frame]
    assert same(got[0], frame)


@given(field_tables)
def test_header_values_round_trip_with_exact_types(headers: dict[str, FieldValue]) -> None:
    frame = f.Publish(1, "", "q", False, Properties(headers=headers), b"")
    sender, receiver = receiver_for(frame)
    receiver.receive_data(sender.send(frame))
    got = receiver.next_frame()
    assert isinstance(got, f.Publish)
    assert same(got.properties.headers, headers)


@given(any_frame)
def test_fast_path_and_checked_path_agree(frame: f.Frame) -> None:
    sender, _ = receiver_for(frame)
    values = msgpack.unpackb(sender.send(frame)[4:], timestamp=3, ext_hook=ext_hook)
    schema = _SCHEMAS[frame.opcode]
    assert schema.decode(list(values)) == schema.check(list(values)) == frame


@given(st.lists(any_frame.filter(lambda fr: fr.sender != "server"), min_size=1, max_size=6),
       st.data())
def test_split_reads_decode_the_same(sent: list[f.Frame], data: st.DataObject) -> None:
    wire = PREAMBLE + NativeCodec(role="client").send_many(sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    codec = NativeCodec(role="server")
    got: list[f.Frame] = []
    for start, stop in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        if start < stop:  # b"" would mean end of stream
            codec.receive_data(wire[start:stop])
        got.extend(codec.frames())
    codec.receive_data(b"")
    assert codec.next_frame() is None and codec.closed
    assert got == sent


# --- limits -------------------------------------------------------------------------------


@given(st.integers(MIN_FRAME_SIZE, 2**20), st.integers(1, 2**32 - 1 - 2**20))
def test_oversized_length_prefix_is_refused_before_the_body(limit: int, excess: int) -> None:
    codec = NativeCodec(role="server", max_frame_size=limit)
    codec.receive_data(PREAMBLE + (limit + excess).to_bytes(4, "big"))
    try:
        codec.frames()
    except FrameError as exc:
        assert exc.reply_code == 501 and str(limit) in exc.text
    else:
        raise AssertionError("an oversized frame was not refused")


# --- fuzzing: only ProtocolError ever escapes ----------------------------------------------


def feed_all(codec: NativeCodec, chunks: list[bytes]) -> None:
    try:
        for chunk in [*chunks, b""]:
            codec.receive_data(chunk)
            codec.frames()
            codec.next_frame()
    except ProtocolError:
        pass


@given(st.lists(st.binary(max_size=64), max_size=6), st.sampled_from(["client", "server"]))
def test_arbitrary_bytes_raise_only_protocol_errors(chunks: list[bytes], role: str) -> None:
    feed_all(NativeCodec(role=role), chunks)  # type: ignore[arg-type]


@given(st.lists(st.binary(max_size=64), max_size=6))
def test_arbitrary_bytes_after_the_preamble_raise_only_protocol_errors(
    chunks: list[bytes],
) -> None:
    feed_all(NativeCodec(role="server"), [PREAMBLE, *chunks])


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text()
    | st.binary() | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=16)),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=5) | st.binary(max_size=5), inner, max_size=5),
    max_leaves=20,
)


@given(st.sampled_from(sorted(_SCHEMAS)), st.integers(-2, 70000),
       st.lists(msgpack_values, max_size=10), st.sampled_from(["client", "server"]))
def test_wellformed_arrays_with_bad_fields_raise_only_protocol_errors(
    opcode: int, channel: int, fields: list[Any], role: str
) -> None:
    payload = msgpack.packb([opcode, channel, *fields], use_bin_type=True)
    codec = NativeCodec(role=role)  # type: ignore[arg-type]
    feed_all(codec, [PREAMBLE if role == "server" else b"",
                     len(payload).to_bytes(4, "big") + payload])


@given(any_frame, st.data())
def test_corrupted_frames_raise_only_protocol_errors(frame: f.Frame, data: st.DataObject) -> None:
    sender, receiver = receiver_for(frame)
    wire = bytearray(sender.send(frame))
    for _ in range(data.draw(st.integers(1, 4))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    feed_all(receiver, [bytes(wire)])


# --- messages in parts (Body frames) ---------------------------------------------------------

message_frames = st.one_of(
    st.builds(f.Publish, st.integers(1, 3), st.text(max_size=5), st.text(max_size=5),
              st.booleans(), properties, st.just(b"")),
    st.builds(f.Deliver, st.integers(1, 3), st.text(max_size=5), st.integers(1, 2**64 - 1),
              st.booleans(), st.text(max_size=5), st.text(max_size=5), properties, st.just(b"")),
    st.builds(f.GetOk, st.integers(1, 3), st.integers(1, 2**64 - 1), st.booleans(),
              st.text(max_size=5), st.text(max_size=5), st.integers(0, 2**32 - 1), properties,
              st.just(b"")),
    st.builds(f.Return, st.integers(1, 3), st.integers(0, 0xFFFF), st.text(max_size=5),
              st.text(max_size=5), st.text(max_size=5), properties, st.just(b"")),
)


def _body(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"x" * (size % 256)


@settings(max_examples=40)  # each example moves up to 30 KiB through two codecs
@given(st.lists(st.tuples(message_frames, st.integers(0, 3 * MIN_FRAME_SIZE)), min_size=1,
                max_size=3), st.data())
def test_messages_of_any_size_cross_whole_in_any_reads(
    sent: list[tuple[f.Frame, int]], data: st.DataObject,
) -> None:
    """Whatever the size, a message comes out whole and equal, from reads cut anywhere; frames
    of other kinds and channels keep their order around it."""
    frames = [dataclasses.replace(frame, body=_body(size))  # type: ignore[type-var]
              for frame, size in sent]
    from_server = [fr for fr in frames if fr.sender == "server"]
    from_client = [fr for fr in frames if fr.sender == "client"]
    for group, sender_role in ((from_server, "server"), (from_client, "client")):
        if not group:
            continue
        sender = NativeCodec(role=sender_role, max_frame_size=MIN_FRAME_SIZE)  # type: ignore[arg-type]
        receiver = NativeCodec(role="client" if sender_role == "server" else "server",
                               max_frame_size=MIN_FRAME_SIZE)
        wire = b"".join([sender.send(fr) + sender.send(f.Heartbeat()) for fr in group])
        if sender_role == "client":
            wire = PREAMBLE + wire
        cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
        got: list[f.Frame] = []
        for start, stop in zip([0, *cuts], [*cuts, len(wire)], strict=True):
            if start < stop:
                receiver.receive_data(wire[start:stop])
            got.extend(receiver.frames())
        assert got == [x for fr in group for x in (fr, f.Heartbeat())]
        assert receiver.partial_bytes == 0


@settings(max_examples=40)
@given(st.integers(MIN_FRAME_SIZE, 4 * MIN_FRAME_SIZE), st.data())
def test_corrupted_messages_in_parts_raise_only_protocol_errors(
    size: int, data: st.DataObject,
) -> None:
    frame = f.Publish(1, "", "q", False, Properties(), b"m" * size)
    wire = bytearray(NativeCodec(role="client", max_frame_size=MIN_FRAME_SIZE).send(frame))
    for _ in range(data.draw(st.integers(1, 4))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    feed_all(NativeCodec(role="server", max_frame_size=MIN_FRAME_SIZE), [PREAMBLE, bytes(wire)])


def test_decimal_exponents_survive() -> None:
    frame = f.Publish(1, "", "q", False,
                      Properties(headers={"d": decimal.Decimal("1.5E+3")}), b"")
    sender, receiver = receiver_for(frame)
    receiver.receive_data(sender.send(frame))
    got = receiver.next_frame()
    assert isinstance(got, f.Publish) and got.properties.headers is not None
    assert str(got.properties.headers["d"]) == "1.5E+3"


# --- hostile numbers in every value type: decoders raise only protocol errors --------------------

# Number texts built to hit Python's limits: int() refuses more than 4,300 digits, 10**exponent
# of a huge exponent never returns, and decimal has NaN and infinities.
number_texts = st.one_of(
    st.integers(1, 20_000).map(lambda n: "9" * n),
    st.builds(lambda digits, exponent: f"{digits}E{exponent:+d}",
              st.integers(0, 10**12), st.integers(-(10**20), 10**20)),
    st.builds(lambda n, exponent: "0" * n + f"E{exponent:+d}",
              st.integers(1, 5), st.integers(-(10**20), 10**20)),
    st.sampled_from(["NaN", "-sNaN", "Infinity", "-0", "1e", "", " 1", "0x10", "1_000"]),
    st.text(alphabet="0123456789.eE+-", max_size=40),
)
hostile_scalars = st.one_of(
    number_texts.map(lambda text: msgpack.ExtType(1, text.encode())),  # decimal
    st.binary(max_size=16).map(lambda raw: msgpack.ExtType(2, raw)),  # naive datetime
    st.builds(msgpack.Timestamp, st.integers(-(2**63), 2**63 - 1), st.integers(0, 999_999_999)),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(),
    number_texts,
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8,
)


def publish_payload(headers: Any, properties_tail: list[Any], text: str) -> bytes:
    properties = [text, text, headers, *properties_tail]
    return msgpack.packb([0x50, 1, text[:200], text[:200], False, properties, b""],
                         use_bin_type=True, datetime=True)


@given(st.dictionaries(st.text(max_size=4), hostile_values, max_size=4),
       st.lists(st.none() | hostile_scalars, max_size=11), st.text(max_size=8) | number_texts)
def test_hostile_numbers_anywhere_in_a_publish_raise_only_protocol_errors(
    headers: dict[str, Any], tail: list[Any], text: str
) -> None:
    payload = publish_payload(headers, tail, text)
    codec = NativeCodec(role="server", max_frame_size=2**24)
    try:
        codec.receive_data(PREAMBLE + len(payload).to_bytes(4, "big") + payload)
        frames = codec.frames()
    except ProtocolError:
        return
    # What the server accepts from a native client can always be sent on to an AMQP consumer.
    [frame] = frames
    assert isinstance(frame, f.Publish)
    encode_amqp_properties(frame.properties)


def test_a_decimal_of_4301_digits_is_a_protocol_error_not_a_value_error() -> None:
    headers = {"d": msgpack.ExtType(1, b"1" * 4301)}
    payload = publish_payload(headers, [], "")
    codec = NativeCodec(role="server")
    codec.receive_data(PREAMBLE + len(payload).to_bytes(4, "big") + payload)
    try:
        codec.frames()
    except FrameSyntaxError as exc:
        assert "cannot be carried by AMQP" in exc.text and len(exc.text) < 300
    else:
        raise AssertionError("a 4,301-digit decimal was accepted")


def test_zero_with_a_huge_exponent_costs_nothing() -> None:
    # 0E+99999999999 once computed 10**99999999999 while checking that AMQP can carry it.
    payload = publish_payload({"d": msgpack.ExtType(1, b"0E+99999999999")}, [], "")
    codec = NativeCodec(role="server")
    codec.receive_data(PREAMBLE + len(payload).to_bytes(4, "big") + payload)
    [frame] = codec.frames()
    assert isinstance(frame, f.Publish) and frame.properties.headers == {"d": decimal.Decimal(0)}
    assert encode_amqp_properties(frame.properties)
