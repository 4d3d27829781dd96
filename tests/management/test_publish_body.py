"""The message a management ``publish`` body describes (``management/messages.py``), as
RabbitMQ's API reads it: ``properties`` may be ``[]`` or ``null`` for none, headers are a
field table, integer properties are range-checked, and a body RabbitMQ refuses is a 400 with
its reason."""

from __future__ import annotations

from typing import Any

import pytest

from minibroker.management.errors import ApiError
from minibroker.management.messages import message_of
from minibroker.message import EMPTY_PROPERTIES, Properties


def body(**extra: Any) -> dict[str, Any]:
    return {"routing_key": "k", "payload": "hi", "payload_encoding": "string", **extra}


@pytest.mark.parametrize("none", [[], None, {}])
def test_empty_properties_in_any_spelling(none: Any) -> None:
    message = message_of("x", body(properties=none))
    assert (message.exchange, message.routing_key, message.body) == ("x", "k", b"hi")
    assert message.properties is EMPTY_PROPERTIES


def test_headers_and_integer_properties() -> None:
    message = message_of("", body(properties={
        "headers": {"n": 1, "s": "t"}, "priority": 9, "delivery_mode": 2, "app_id": "api"}))
    assert message.properties == Properties(headers={"n": 1, "s": "t"}, priority=9,
                                            delivery_mode=2, app_id="api")


def test_base64_payload() -> None:
    assert message_of("", body(payload="AAEC", payload_encoding="base64")).body == b"\x00\x01\x02"


@pytest.mark.parametrize(("extra", "reason"), [
    ({"properties": "none"}, ["not_table", "properties"]),
    ({"properties": {"priority": 256}}, ["out_of_range", "priority"]),
    ({"properties": {"delivery_mode": -1}}, ["out_of_range", "delivery_mode"]),
    ({"payload": "not base64!", "payload_encoding": "base64"}, "payload is not valid base64"),
    ({"payload_encoding": "rot13"}, ["unsupported_encoding", "rot13"]),
])
def test_a_body_rabbitmq_refuses_is_400_with_its_reason(extra: dict[str, Any],
                                                        reason: Any) -> None:
    with pytest.raises(ApiError) as info:
        message_of("", body(**extra))
    assert (info.value.status, info.value.error, info.value.reason) == (400, "bad_request",
                                                                       reason)
