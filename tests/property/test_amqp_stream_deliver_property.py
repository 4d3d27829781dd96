"""A stream's delivery over AMQP 0-9-1: the ``x-stream-offset`` header the encoder adds to the
stored message's properties (``content.py`` rule 7) is what a client decodes, whatever the
properties, the body and the frame size, and is written as RabbitMQ writes it."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from minibroker.core.effects import Deliver, with_offset
from minibroker.message import Message, Properties
from minibroker.protocols.amqp091.fields import encode_text
from minibroker.protocols.amqp091.frames import ContentMethod
from minibroker.protocols.amqp091.mapping import deliver_bytes
from minibroker.protocols.amqp091.methods import BasicDeliver
from tests.property.test_amqp_codec_property import properties, server

OFFSETS = st.integers(0, 2**63 - 1)
#: The octets RabbitMQ 3.10.8 sent (content header frame payload) for a 5-byte body at
#: offset 1, published with headers {"z": 1, "x-stream-offset": 99, "a": "s",
#: "m": 5000000000, "b": True}: the table sorted by key, the offset a signed 64-bit "l".
RABBITMQ_HEADER = bytes.fromhex(
    "003c00000000000000000005200000000037016153000000017301627401016d6c000000012a05f200"
    "0f782d73747265616d2d6f66667365746c0000000000000001017a4900000001")
#: The same without headers, at offset 0.
RABBITMQ_BARE_HEADER = bytes.fromhex(
    "003c000000000000000000052000000000190f782d73747265616d2d6f66667365746c0000000000000000")


def decode(data: bytes) -> ContentMethod:
    codec = server()
    codec.frame_max = 0
    codec.receive_data(data)
    (frame,) = codec.frames()
    assert isinstance(frame, ContentMethod)
    return frame


def header_payload(data: bytes) -> bytes:
    """The payload of the content header frame that follows the basic.deliver frame."""
    (method_size,) = struct.unpack_from(">I", data, 3)
    at = 7 + method_size + 1
    (size,) = struct.unpack_from(">I", data, at + 3)
    return data[at + 7:at + 7 + size]


@given(properties, st.binary(max_size=300), OFFSETS, st.sampled_from([0, 64, 100, 4096]),
       st.integers(1, 2**16 - 1))
def test_a_client_decodes_the_stored_properties_with_the_offset(
    props: Properties, body: bytes, offset: int, frame_max: int, channel: int,
) -> None:
    message = Message("ex", "rk", body, props)
    data = deliver_bytes(Deliver(9, channel, "ctag", 42, False, message, offset), frame_max)
    frame = decode(data)
    assert frame.channel == channel
    assert frame.method == BasicDeliver("ctag", 42, False, "ex", "rk")
    assert frame.body == body
    # What the consumer receives: the stored properties, the offset header replacing any.
    assert frame.properties == with_offset(message, offset).properties
    headers = frame.properties.headers
    assert headers is not None
    keys = [encode_text(name) for name in headers]
    assert keys == sorted(keys)  # RabbitMQ sorts the table by key octets
    assert b"\x0fx-stream-offsetl" + struct.pack(">q", offset) in header_payload(data)


@given(properties, st.lists(OFFSETS, min_size=2, max_size=4), st.integers(0, 40))
def test_deliveries_of_one_stored_message_each_carry_their_own_offset(
    props: Properties, offsets: list[int], size: int,
) -> None:
    message = Message("", "s", b"x" * size, props)  # one properties object, cached octets
    for tag, offset in enumerate(offsets, 1):
        frame = decode(deliver_bytes(Deliver(1, 1, "c", tag, False, message, offset), 4096))
        assert frame.properties.headers is not None
        assert frame.properties.headers["x-stream-offset"] == offset
        assert frame.method.delivery_tag == tag  # type: ignore[attr-defined]


def test_the_header_is_the_octets_rabbitmq_sends() -> None:
    props = Properties(headers={"z": 1, "x-stream-offset": 99, "a": "s", "m": 5000000000,
                                "b": True})
    message = Message("", "q", b"hello", props)
    data = deliver_bytes(Deliver(1, 1, "c", 2, False, message, 1), 131072)
    assert header_payload(data) == RABBITMQ_HEADER
    bare = deliver_bytes(Deliver(1, 1, "c", 1, False, Message("", "q", b"hello"), 0), 131072)
    assert header_payload(bare) == RABBITMQ_BARE_HEADER


def test_a_classic_delivery_is_not_given_the_header() -> None:
    frame = decode(deliver_bytes(Deliver(1, 1, "c", 1, True, Message("", "q", b"m")), 4096))
    assert frame.properties == Properties()
    assert frame.method.redelivered is True  # type: ignore[attr-defined]
