"""Messages as the core sees them: protocol-neutral, immutable, never copied.

Rules:

1. A :class:`Message` is created once per publish and shared by every queue it is routed to;
   the body is kept as the ``bytes`` object the codec produced and is never decoded or copied.
2. :class:`Properties` holds the 14 basic properties of AMQP 0-9-1 (§4.2.6.1) under their AMQP
   names. ``None`` means "absent": a property that was not sent is re-emitted as not sent.
3. Header values are :data:`FieldValue`: the types an AMQP field table can carry. Both
   protocols convert to and from these exact Python types, so a message crosses protocols intact.
4. An AMQP timestamp is any unsigned 64-bit count of seconds; ``datetime`` stops at the year
   9999, so a later one is a :class:`Timestamp`: an ``int`` that remembers it was a timestamp.
"""

from __future__ import annotations

import datetime
import decimal
from typing import TypeAlias

from minibroker.valueclass import valueclass

__all__ = [
    "EMPTY_PROPERTIES", "FieldTable", "FieldValue", "Message", "Properties", "Timestamp",
    "field_type_name",
]

class Timestamp(int):
    """A header timestamp (AMQP ``T``) after the year 9999, which ``datetime`` cannot hold: the
    seconds since the epoch, as an ``int`` (rule 4). AMQP re-sends it as ``T``, unchanged; the
    native protocol carries it as a plain integer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Timestamp({int(self)})"


#: A value in an AMQP field table: bool, int, float, str, bytes (AMQP byte array 'x'),
#: Decimal ('D'), datetime ('T', UTC), None ('V'), nested arrays ('A') and tables ('F').
FieldValue: TypeAlias = (
    "bool | int | float | str | bytes | decimal.Decimal | datetime.datetime"
    " | list[FieldValue] | dict[str, FieldValue] | None"
)
FieldTable: TypeAlias = "dict[str, FieldValue]"


def field_type_name(value: FieldValue, *, integer: str | None = "long") -> str:
    """The AMQP field type RabbitMQ names for ``value`` in its error texts. RabbitMQ says
    ``long`` or ``signedint`` for an integer depending on the message, hence ``integer``;
    ``integer=None`` names an integer by the width pika and RabbitMQ's own encoder would send it
    in (``signedint`` when it fits 32 bits, else ``long``), unless its type says otherwise in
    ``AMQP_TYPE``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, int):
        if integer is not None:
            return integer
        known: str | None = getattr(type(value), "AMQP_TYPE", None)
        if known is not None:
            return known
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "longstr"
    if isinstance(value, bytes):
        return "binary"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return "void"


@valueclass(frozen=True)
class Properties:
    """The basic properties of a message (AMQP 0-9-1 class ``basic``), in spec order."""

    content_type: str | None = None
    content_encoding: str | None = None
    headers: FieldTable | None = None
    delivery_mode: int | None = None  #: 1 transient, 2 persistent
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None  #: milliseconds, as a decimal string (RabbitMQ's rule)
    message_id: str | None = None
    timestamp: int | None = None  #: seconds since the epoch
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None
    cluster_id: str | None = None


EMPTY_PROPERTIES = Properties()


@valueclass(frozen=True)
class Message:
    """One published message: where it was published and what it carries."""

    exchange: str
    routing_key: str
    body: bytes
    properties: Properties = EMPTY_PROPERTIES

    @property
    def persistent(self) -> bool:
        return self.properties.delivery_mode == 2
