"""Request bodies: JSON objects and their fields, refused with RabbitMQ's reasons.

Rules:

1. A body must be a JSON object (an empty body is ``{}``, as RabbitMQ takes a bodiless PUT);
   anything else is ``400 bad_request`` with reason ``"not_json"``.
2. A field of the wrong type is refused naming it the way RabbitMQ does: ``["not_boolean",
   "yes"]`` for a flag, ``["not_int", "<field>"]`` for a number; missing required fields are
   listed as ``[{key_missing,<field>}]``.
3. AMQP tables arrive as JSON objects and are checked to be what a field table can carry
   (integers within a signed 64-bit value), so a declaration or a message accepted here can
   be sent on to any client.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from minibroker.core.equivalence import Long
from minibroker.management.errors import bad_request
from minibroker.message import FieldTable, FieldValue

__all__ = ["field_table", "flag", "integer", "json_object", "require", "text"]

_INT64 = (-(2**63), 2**63 - 1)


def json_object(body: bytes, *, reason: str = "not_json") -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise bad_request(reason) from None
    if not isinstance(value, dict):
        raise bad_request(reason)
    return value


def require(obj: dict[str, Any], names: Sequence[str]) -> None:
    missing = [name for name in names if name not in obj]
    if missing:
        raise bad_request("[" + ",\n ".join(f"{{key_missing,{name}}}" for name in missing) + "]")


def flag(obj: dict[str, Any], name: str, default: bool = False) -> bool:
    value = obj.get(name, default)
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"  # RabbitMQ's form posts send strings
    if not isinstance(value, bool):
        raise bad_request(["not_boolean", _show(value)])
    return value


def integer(obj: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = obj.get(name, default)
    if value is None:
        return None
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(["not_int", name])
    return value


def text(obj: dict[str, Any], name: str, default: str = "") -> str:
    value = obj.get(name)
    if value is None:  # absent, or null as some clients send for "not given"
        return default
    if not isinstance(value, str):
        raise bad_request(["not_string", name])
    return value


def field_table(obj: dict[str, Any], name: str) -> FieldTable:
    value = obj.get(name)
    if value is None or value == []:  # [] is an empty table to RabbitMQ (an empty proplist)
        return {}
    if not isinstance(value, dict):
        raise bad_request(["not_table", name])
    return {key: _field_value(name, item) for key, item in value.items()}


def _field_value(where: str, value: Any) -> FieldValue:
    if isinstance(value, dict):
        return {key: _field_value(where, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_field_value(where, item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64[0] <= value <= _INT64[1]:
            raise bad_request(f"{where}: integer {value} does not fit a signed 64-bit field value")
        return Long(value)  # RabbitMQ's management API makes every JSON integer an AMQP long
    return value  # type: ignore[no-any-return]  # str, float, bool, None: all field values


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
