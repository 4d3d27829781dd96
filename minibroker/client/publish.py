"""Encoding a publish: properties from keyword arguments, and the Publish frame's bytes.

Shared by the asyncio channel and the blocking wrapper, which encodes in the caller's thread.

Rules:

1. The message properties a publish takes as keywords are written once, in
   :class:`PublishProperties`; every publish signature takes them as ``**properties`` with that
   type, and a unit test checks the list against :class:`~minibroker.message.Properties`.
2. No property given means the shared ``EMPTY_PROPERTIES``, which the codec sends as one byte
   without looking at it; ``None`` is "absent" for every property, so falsy values such as
   ``priority=0`` or ``headers={}`` are sent.
3. A ``str`` body is sent as UTF-8. A body of any size is sent: one that does not fit a frame
   goes in Body frames before the Publish (``docs/protocol.md`` section 2.1), all in one
   ``bytes``. Properties and names that do not fit a frame by themselves raise
   :class:`ClientError` before anything is written, so the connection stays usable; a body
   over the broker's ``max_message_size`` closes the channel (406), as over AMQP.
4. What the broker's codec would refuse with 502, closing the whole connection — an exchange
   or routing key over 255 bytes, a property out of range (``priority=300``), a header value
   AMQP cannot carry — raises :class:`ClientError` naming it, before anything is written. The
   check is skipped for a publish with short names and the very ``Properties`` object checked
   last, so a publisher that reuses one pays nothing for it.
"""

from __future__ import annotations

from typing import TypedDict

from minibroker.errors import ClientError, ProtocolError
from minibroker.message import EMPTY_PROPERTIES, FieldTable, Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec

__all__ = ["PublishProperties", "encode_publish", "message_properties"]


class PublishProperties(TypedDict, total=False):
    """The message properties a publish takes as keyword arguments (rule 1): AMQP's basic
    properties but ``cluster_id``, which RabbitMQ reserves. ``None`` means absent."""

    content_type: str | None
    content_encoding: str | None
    headers: FieldTable | None
    delivery_mode: int | None  #: 1 transient, 2 persistent
    priority: int | None
    correlation_id: str | None
    reply_to: str | None
    expiration: str | None  #: milliseconds, as a decimal string
    message_id: str | None
    timestamp: int | None  #: seconds since the epoch
    type: str | None
    user_id: str | None
    app_id: str | None


def message_properties(properties: Properties | None, fields: PublishProperties) -> Properties:
    """The properties of a publish: ``properties`` when given, else built from the keyword
    ``fields`` (rule 2)."""
    if properties is not None:
        if any(value is not None for value in fields.values()):
            raise TypeError("publish takes properties= or property keywords, not both")
        return properties
    if not fields or all(value is None for value in fields.values()):
        return EMPTY_PROPERTIES
    unknown = fields.keys() - PublishProperties.__annotations__.keys()
    if unknown:
        raise TypeError(f"publish() got unexpected keyword argument(s) {sorted(unknown)}")
    return Properties(**fields)


def encode_publish(codec: NativeCodec, channel: int, exchange: str, routing_key: str,
                   body: bytes | str, mandatory: bool, properties: Properties,
                   ) -> tuple[bytes, bytes]:
    """The bytes of a Publish frame (after Body frames for a body too large for one, rule 3),
    and the body as bytes (a ``str`` is sent as UTF-8)."""
    if not isinstance(body, bytes):
        if isinstance(body, str):
            body = body.encode()
        elif isinstance(body, bytearray | memoryview):
            body = bytes(body)
        else:
            # bytes(5) would be five NUL bytes and bytes([1, 2]) b"\x01\x02": never guess.
            raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    frame = f.Publish(channel, exchange, routing_key, mandatory, properties, body)
    try:
        if len(exchange) > 63 or len(routing_key) > 63 or properties is not _checked[0]:
            codec.check(frame)  # rule 4
            _checked[0] = properties
        return codec.send(frame), body
    except ProtocolError as exc:  # a value the wire cannot carry, or fields that do not fit
        raise ClientError(f"cannot publish: {exc.text}") from exc


#: The properties object the last check found sendable (rule 4; a race between threads only
#: costs a check more).
_checked: list[Properties] = [EMPTY_PROPERTIES]
