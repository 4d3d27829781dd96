"""The AMQP trace rendering (``protocols/amqp091/tracing.py``): wire names, arguments by their
spec names without the reserved ones, content with properties and body, secrets hidden, and
sent octets decoded back into frames."""

from __future__ import annotations

from minibroker.message import Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.content import encode_content
from minibroker.protocols.amqp091.frames import (
    ContentMethod,
    Heartbeat,
    MethodFrame,
    encode_heartbeat,
    encode_method,
)
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER
from minibroker.protocols.amqp091.tracing import SentFrames, describe


def test_a_method_is_shown_by_its_wire_name_and_spec_argument_names() -> None:
    assert describe(MethodFrame(3, m.BasicQos(prefetch_count=5, global_=True))) == (
        3, "basic.qos(prefetch_size=0, prefetch_count=5, global=True)")
    assert describe(MethodFrame(1, m.ExchangeDeclare(exchange="x", exchange_type="topic"))) == (
        1, "exchange.declare(exchange='x', type='topic', passive=False, durable=False, "
           "auto_delete=False, internal=False, nowait=False, arguments={})")
    assert describe(MethodFrame(1, m.ConfirmSelectOk())) == (1, "confirm.select-ok()")


def test_reserved_arguments_are_left_out() -> None:
    assert describe(MethodFrame(1, m.QueuePurge(queue="q")))[1] == \
        "queue.purge(queue='q', nowait=False)"
    assert describe(MethodFrame(0, m.ConnectionOpen("/")))[1] == \
        "connection.open(virtual_host='/')"
    assert describe(MethodFrame(1, m.ChannelOpenOk()))[1] == "channel.open-ok()"


def test_content_shows_present_properties_and_a_body_preview() -> None:
    frame = ContentMethod(2, m.BasicPublish(exchange="", routing_key="q"),
                          Properties(content_type="text/plain", delivery_mode=2), b"x" * 100)
    channel, text = describe(frame)
    assert channel == 2
    assert text == ("basic.publish(exchange='', routing_key='q', mandatory=False, "
                    "immediate=False, properties=(content_type='text/plain', delivery_mode=2), "
                    f"body=<100 bytes {b'x' * 64!r}...>)")


def test_a_login_response_is_hidden() -> None:
    start_ok = m.ConnectionStartOk({}, "PLAIN", b"\0guest\0secret")
    text = describe(MethodFrame(0, start_ok))[1]
    assert "secret" not in text and "response='***'" in text


def test_sent_octets_are_decoded_back_into_frames_in_order() -> None:
    sent = SentFrames()
    deliver = m.BasicDeliver("ctag", 7, False, "", "q")
    data = (encode_method(1, m.ConfirmSelectOk())
            + encode_content(1, deliver, Properties(), b"hello", 131072)
            + encode_heartbeat())
    assert sent.feed(data[:10]) == []  # a frame not complete yet
    assert sent.feed(data[10:]) == [
        (1, "confirm.select-ok()"),
        (1, "basic.deliver(consumer_tag='ctag', delivery_tag=7, redelivered=False, "
            "exchange='', routing_key='q', body=<5 bytes b'hello'>)"),
        (0, "heartbeat"),
    ]
    assert describe(Heartbeat()) == (0, "heartbeat")


def test_octets_that_are_no_frame_are_shown_as_octets() -> None:
    sent = SentFrames()
    assert sent.feed(PROTOCOL_HEADER) == [(0, f"octets <8 bytes {PROTOCOL_HEADER!r}>")]
