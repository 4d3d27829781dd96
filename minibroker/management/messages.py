"""Messages over the API: ``POST .../publish`` bodies in, ``POST .../get`` answers out.

Rules:

1. A published body is ``payload`` text with ``payload_encoding`` ``"string"`` (UTF-8) or
   ``"base64"``; ``properties`` uses the AMQP basic property names. Wrong types are refused
   naming the property (``["not_int", "delivery_mode"]``), an unknown encoding with
   ``["unsupported_encoding", "<name>"]``, as RabbitMQ does.
2. A fetched message is rendered as RabbitMQ renders it: ``payload_bytes`` is the full size;
   the payload is cut to ``truncate`` bytes first, then sent as ``"string"`` when it is valid
   UTF-8 and ``encoding`` is ``"auto"``, else as ``"base64"``. Properties that were not sent are
   absent; a message with no properties at all shows ``[]`` (RabbitMQ's rendering of an empty
   property list).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import fields
from typing import Any

from minibroker.core.effects import GetOk
from minibroker.management.body import field_table, integer, require, text
from minibroker.management.errors import bad_request
from minibroker.management.render import json_value
from minibroker.message import EMPTY_PROPERTIES, Message, Properties

__all__ = ["ENCODINGS", "message_of", "rendered"]

ENCODINGS = ("auto", "base64")
_INTEGER_PROPERTIES = {"delivery_mode", "priority", "timestamp"}
_PROPERTY_NAMES = [f.name for f in fields(Properties)]


def _properties(obj: dict[str, Any]) -> Properties:
    raw = obj.get("properties", {})
    if raw in ([], None):
        raw = {}
    if not isinstance(raw, dict):
        raise bad_request(["not_table", "properties"])
    values: dict[str, Any] = {}
    for name in _PROPERTY_NAMES:
        if name not in raw:
            continue
        if name == "headers":
            values[name] = field_table(raw, "headers")
        elif name in _INTEGER_PROPERTIES:
            values[name] = integer(raw, name)
            if not 0 <= values[name] <= (0xFF if name != "timestamp" else 2**64 - 1):
                raise bad_request(["out_of_range", name])
        else:
            values[name] = text(raw, name)
    return Properties(**values) if values else EMPTY_PROPERTIES


def message_of(exchange: str, obj: dict[str, Any]) -> Message:
    """The message a ``publish`` body describes (rule 1)."""
    require(obj, ("routing_key", "payload", "payload_encoding"))
    routing_key = text(obj, "routing_key")
    payload = text(obj, "payload")
    encoding = obj["payload_encoding"]
    if encoding == "string":
        body = payload.encode("utf-8")
    elif encoding == "base64":
        try:
            body = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("payload is not valid base64") from None
    else:
        raise bad_request(["unsupported_encoding", str(encoding)])
    return Message(exchange, routing_key, body, _properties(obj))


def _rendered_properties(properties: Properties) -> dict[str, Any] | list[Any]:
    out = {name: json_value(value) for name in _PROPERTY_NAMES
           if (value := getattr(properties, name)) is not None}
    return out or []


def _text_of(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def rendered(got: GetOk, *, encoding: str, truncate: int | None) -> dict[str, Any]:
    """One fetched message as ``POST .../get`` answers it (rule 2)."""
    body = got.message.body
    shown = body if truncate is None else body[:max(truncate, 0)]
    payload = _text_of(shown) if encoding == "auto" else None
    payload_encoding = "string" if payload is not None else "base64"
    if payload is None:
        payload = base64.b64encode(shown).decode("ascii")
    return {
        "payload_bytes": len(body),
        "redelivered": got.redelivered,
        "exchange": got.exchange,
        "routing_key": got.routing_key,
        "message_count": got.message_count,
        "properties": _rendered_properties(got.message.properties),
        "payload": payload,
        "payload_encoding": payload_encoding,
    }
