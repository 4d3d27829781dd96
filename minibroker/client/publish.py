"""Encoding a publish: properties from keyword arguments, and the Publish frame's bytes.

Shared by the asyncio channel and the blocking wrapper, which encodes in the caller's thread.

Rules:

1. No property given means the shared ``EMPTY_PROPERTIES``, which the codec sends as one byte
   without looking at it; ``None`` is "absent" for every property, so falsy values such as
   ``priority=0`` or ``headers={}`` are sent.
2. A ``str`` body is sent as UTF-8; a body the frame cannot carry (over ``max_frame_size``
   minus the Publish headroom of docs/protocol.md) raises :class:`ClientError` before anything
   is written, so the connection stays usable.
"""

from __future__ import annotations

from minibroker.errors import ClientError, ProtocolError
from minibroker.message import EMPTY_PROPERTIES, FieldTable, Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec

__all__ = ["encode_publish", "message_properties"]


def message_properties(
    content_type: str | None = None, content_encoding: str | None = None,
    headers: FieldTable | None = None, delivery_mode: int | None = None,
    priority: int | None = None, correlation_id: str | None = None, reply_to: str | None = None,
    expiration: str | None = None, message_id: str | None = None, timestamp: int | None = None,
    type: str | None = None, user_id: str | None = None, app_id: str | None = None,
) -> Properties:
    """Properties from publish's keyword arguments; the shared ``EMPTY_PROPERTIES`` when none
    is given (the codec sends it as one byte without looking at it)."""
    if (content_type is None and content_encoding is None and headers is None
            and delivery_mode is None and priority is None and correlation_id is None
            and reply_to is None and expiration is None and message_id is None
            and timestamp is None and type is None and user_id is None and app_id is None):
        return EMPTY_PROPERTIES
    return Properties(content_type, content_encoding, headers, delivery_mode, priority,
                      correlation_id, reply_to, expiration, message_id, timestamp, type, user_id,
                      app_id)


def encode_publish(codec: NativeCodec, channel: int, exchange: str, routing_key: str,
                   body: bytes | str, mandatory: bool, properties: Properties,
                   ) -> tuple[bytes, bytes]:
    """The bytes of a Publish frame, and the body as bytes (a ``str`` is sent as UTF-8)."""
    if not isinstance(body, bytes):
        if isinstance(body, str):
            body = body.encode()
        elif isinstance(body, bytearray | memoryview):
            body = bytes(body)
        else:
            # bytes(5) would be five NUL bytes and bytes([1, 2]) b"\x01\x02": never guess.
            raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    try:
        return codec.send(f.Publish(channel, exchange, routing_key, mandatory, properties,
                                    body)), body
    except ProtocolError as exc:  # too large, or a value the wire cannot carry
        raise ClientError(f"cannot publish: {exc.text}") from exc
