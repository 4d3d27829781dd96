"""Equivalence on redeclare, and how RabbitMQ names and prints argument values in its texts.

RabbitMQ's ``rabbit_misc:assert_args_equivalence`` (the same function in 3.10.8 and 4.2)
decides both whether a redeclare matches and how a mismatch reads.

Rules:

1. A flag (``durable``, ``auto_delete``, ``internal``) or the exchange ``type`` that differs:
   ``inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is
   'false'``.
2. A checked argument present on both sides matches when its values are equal within one
   type class (every integer type is one class, ``float`` and ``double`` another); a mismatch
   prints the bare values: ``received '11' but current is '10'`` (also when the types differ:
   ``received '5' but current is 'a'``).
3. A checked argument present on one side only prints the present side with its type:
   ``received the value '3' of type 'signedint' but current is none``. An absent
   ``x-queue-type`` and ``classic`` are the same.
4. Field values lose their wire width when decoded, so an integer is named by what pika,
   py-amqp and RabbitMQ's own encoder send for it: ``signedint`` when it fits 32 bits, else
   ``long`` (a client that sends a smaller type, such as aio-pika's ``byte`` for small values,
   reads ``signedint`` here where RabbitMQ would say ``byte``). An ``int`` subclass that knows
   its type says so in ``AMQP_TYPE``: :class:`Long` is what RabbitMQ's management API makes of
   a JSON number.
5. Values print as Erlang prints them (``~s`` for strings, ``~p`` for the rest): ``true``,
   ``11``, ``[{longstr,<<"a">>}]`` for an array, ``{1,15}`` for the decimal 1.5.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Sequence

from minibroker.errors import PreconditionFailed
from minibroker.message import FieldTable, FieldValue, field_type_name

__all__ = [
    "Long",
    "check_arguments",
    "check_flag",
    "erlang_text",
    "type_mismatch",
    "wire_type",
]

class Long(int):
    """An integer RabbitMQ holds as an AMQP ``long`` whatever its size (rule 4)."""

    __slots__ = ()
    AMQP_TYPE = "long"


def wire_type(value: FieldValue) -> str:
    """The AMQP field type RabbitMQ names for ``value`` (rule 4)."""
    return field_type_name(value, integer=None)


def _type_class(value: FieldValue) -> str:
    kind = wire_type(value)
    if kind in ("signedint", "long", "decimal"):
        return "int"
    return "float" if kind == "double" else kind


def _term(value: FieldValue) -> str:
    """``value`` as Erlang's ``~p`` prints the term RabbitMQ holds for it."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | bytes):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'<<"{escaped}">>'
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        unscaled = int(value.scaleb(scale))
        return f"{{{scale},{unscaled}}}"
    if isinstance(value, datetime.datetime):
        when = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return str(int(when.timestamp()))
    if isinstance(value, list):
        return "[" + ",".join(f"{{{wire_type(item)},{_term(item)}}}" for item in value) + "]"
    if isinstance(value, dict):
        return "[" + ",".join(
            f"{{{_term(key)},{wire_type(item)},{_term(item)}}}" for key, item in value.items()
        ) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def erlang_text(value: FieldValue) -> str:
    """``value`` as RabbitMQ's texts print it: bare for a string, as a term otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return _term(value)


def _typed(value: FieldValue | None, present: bool) -> str:
    if not present:
        return "none"
    return f"the value '{erlang_text(value)}' of type '{wire_type(value)}'"


def check_flag(what: str, prop: str, received: object, current: object) -> None:
    """Rule 1 (``received`` and ``current`` are bools or the exchange type's name)."""
    if received != current:
        raise PreconditionFailed(
            f"inequivalent arg '{prop}' for {what}: received '{_flag(received)}' "
            f"but current is '{_flag(current)}'"
        )


def _flag(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(a: FieldValue, b: FieldValue) -> bool:
    if isinstance(a, decimal.Decimal) is not isinstance(b, decimal.Decimal):
        return False  # one class in Erlang, but {Scale, Value} never equals an integer
    return _type_class(a) == _type_class(b) and a == b


def check_arguments(
    what: str, keys: Sequence[str], received: FieldTable, current: FieldTable,
) -> None:
    """Rules 2 and 3 for each of ``keys``, in order."""
    for key in keys:
        has_new, has_old = key in received, key in current
        if not (has_new or has_old):
            continue
        new, old = received.get(key), current.get(key)
        if has_new and has_old:
            if _equal(new, old):
                continue
            raise PreconditionFailed(
                f"inequivalent arg '{key}' for {what}: received '{erlang_text(new)}' "
                f"but current is '{erlang_text(old)}'"
            )
        if key == "x-queue-type" and (new if has_new else old) == "classic":
            continue  # rabbit_misc: "Classic queues do not necessarily have an x-queue-type"
        raise PreconditionFailed(
            f"inequivalent arg '{key}' for {what}: received {_typed(new, has_new)} "
            f"but current is {_typed(old, has_old)}"
        )


def type_mismatch(value: FieldValue, key: str, where: str) -> PreconditionFailed:
    """RabbitMQ's text for an argument naming an exchange that is not a string
    (``rabbit_misc:r_arg``): ``invalid type 'signedint' for arg 'alternate-exchange' in
    exchange 'x' in vhost '/'``."""
    return PreconditionFailed(f"invalid type '{wire_type(value)}' for arg '{key}' in {where}")
