"""The AMQP mapping's whole surface (``protocols/amqp091/mapping.py``), beyond the paths the
adapter takes on its own (``server/amqp_adapter.py`` handles basic.publish and basic.deliver
itself): every frame maps the same way through :func:`command_for` and :func:`effect_bytes`,
and what a client must never send is refused as RabbitMQ refuses it."""

from __future__ import annotations

import pytest

from minibroker.core import commands as c
from minibroker.core.effects import ConsumerCancelled, Deliver, QueueDeclareOk
from minibroker.errors import CommandInvalid
from minibroker.message import EMPTY_PROPERTIES, Message, Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame, encode_method
from minibroker.protocols.amqp091.mapping import (
    command_for,
    deliver_bytes,
    effect_bytes,
    publish_command,
    reply_bytes,
)

FRAME_MAX = 4096


def test_a_publish_maps_the_same_through_command_for_as_on_the_hot_path() -> None:
    frame = ContentMethod(1, m.BasicPublish(exchange="x", routing_key="k", mandatory=True),
                          Properties(message_id="m1"), b"body")
    command = command_for(7, frame)
    assert command == publish_command(7, frame)
    assert command == c.Publish(7, 1, Message("x", "k", b"body", Properties(message_id="m1")),
                                True)


def test_a_cancel_ok_from_the_client_is_nothing_to_do() -> None:
    assert command_for(7, MethodFrame(1, m.BasicCancelOk("ctag"))) is None


@pytest.mark.parametrize("frame", [
    MethodFrame(1, m.BasicDeliver("ctag", 1, False, "", "q")),
    MethodFrame(1, m.QueueDeclareOk("q", 0, 0)),
    ContentMethod(1, m.BasicReturn(312, "NO_ROUTE", "", "q"), EMPTY_PROPERTIES, b""),
])
def test_a_method_only_the_server_sends_is_503_unimplemented(
    frame: MethodFrame | ContentMethod,
) -> None:
    with pytest.raises(CommandInvalid) as info:
        command_for(7, frame)
    method = frame.method
    assert (info.value.reply_code, info.value.text) == (503, f"unimplemented method {method.NAME}")
    assert (info.value.class_id, info.value.method_id) == (method.CLASS_ID, method.METHOD_ID)


def test_queue_declare_nowait_has_no_reply_frame() -> None:
    ok = QueueDeclareOk("q", 3, 1)
    assert reply_bytes(1, m.QueueDeclare(queue="q", nowait=True), ok, FRAME_MAX) is None
    assert reply_bytes(1, m.QueueDeclare(queue="q"), ok, FRAME_MAX) == encode_method(
        1, m.QueueDeclareOk("q", 3, 1))


def test_a_delivery_maps_the_same_through_effect_bytes_as_on_the_hot_path() -> None:
    deliver = Deliver(7, 1, "ctag", 5, True, Message("x", "k", b"body", EMPTY_PROPERTIES))
    assert effect_bytes(deliver, FRAME_MAX, True) == deliver_bytes(deliver, FRAME_MAX)


def test_a_consumer_cancelled_is_told_only_to_a_client_that_asked() -> None:
    cancelled = ConsumerCancelled(7, 1, "ctag")
    assert effect_bytes(cancelled, FRAME_MAX, False) is None
    # RabbitMQ's basic.cancel from the server carries nowait=true: no cancel-ok expected
    assert effect_bytes(cancelled, FRAME_MAX, True) == encode_method(
        1, m.BasicCancel("ctag", True))


def test_an_effect_the_protocol_cannot_carry_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"^unknown effect 'not an effect'$"):
        effect_bytes("not an effect", FRAME_MAX, True)  # type: ignore[arg-type]
