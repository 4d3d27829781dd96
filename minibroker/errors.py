"""The one error hierarchy of minibroker, carrying AMQP 0-9-1 reply codes.

Rules:

1. Every error a peer can cause carries an AMQP reply code (``reply_code``) and a human text
   (``text``). ``reply_text`` renders them the way RabbitMQ does: ``"NOT_FOUND - no queue 'q'
   in vhost '/'"``. Both protocols send exactly these codes and texts.
2. :class:`ChannelError` subclasses (soft errors, AMQP §4.8 / the XML's ``soft-error`` class)
   close only the channel that caused them; the connection keeps running.
3. :class:`ConnectionLevelError` subclasses (hard errors) close the whole connection.
   :class:`ProtocolError` is the one a codec raises on bytes it cannot accept; it is a hard
   error too, with 501 (frame error) unless a more specific code applies.
4. :class:`ClientError` and its subclasses are raised by the client library, never by the
   broker; they are all here, with the rest of the hierarchy. Errors the broker reports keep
   their own classes (rebuilt with :func:`error_for_code`), carried by :class:`ConnectionClosed`
   and :class:`ChannelClosed` once the connection or channel is gone.
5. The core raises these before it changes any state, so a failed command leaves the broker
   exactly as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # (type-only: the returned message is the client's)
    from minibroker.client.delivery import ReturnedMessage

__all__ = [
    "REPLY_NAMES",
    "AMQPError",
    "AccessRefused",
    "ChannelClosed",
    "ChannelError",
    "ChannelStateError",
    "ClientError",
    "CommandInvalid",
    "ConnectionClosed",
    "ConnectionForced",
    "ConnectionLevelError",
    "ContentTooLarge",
    "FrameError",
    "FrameSyntaxError",
    "InternalError",
    "MessageReturned",
    "MinibrokerError",
    "NotAllowed",
    "NotFound",
    "NotImplementedFeature",
    "PreconditionFailed",
    "ProtocolError",
    "PublishNacked",
    "ResourceError",
    "ResourceLocked",
    "UnexpectedFrame",
    "error_for_code",
]

#: Reply code -> the constant name AMQP 0-9-1 gives it (used as the reply-text prefix).
REPLY_NAMES: dict[int, str] = {
    200: "REPLY_SUCCESS",
    311: "CONTENT_TOO_LARGE",
    312: "NO_ROUTE",
    313: "NO_CONSUMERS",
    320: "CONNECTION_FORCED",
    402: "INVALID_PATH",
    403: "ACCESS_REFUSED",
    404: "NOT_FOUND",
    405: "RESOURCE_LOCKED",
    406: "PRECONDITION_FAILED",
    501: "FRAME_ERROR",
    502: "SYNTAX_ERROR",
    503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR",
    505: "UNEXPECTED_FRAME",
    506: "RESOURCE_ERROR",
    530: "NOT_ALLOWED",
    540: "NOT_IMPLEMENTED",
    541: "INTERNAL_ERROR",
}


class MinibrokerError(Exception):
    """Base of every error minibroker raises on purpose."""


class AMQPError(MinibrokerError):
    """An error with an AMQP reply code. ``class_id``/``method_id`` name the offending method
    when the protocol adapter knows it (0 otherwise)."""

    reply_code: ClassVar[int] = 541
    is_channel_error: ClassVar[bool] = False

    def __init__(self, text: str, *, class_id: int = 0, method_id: int = 0) -> None:
        super().__init__(text)
        self.text = text
        self.class_id = class_id
        self.method_id = method_id

    @property
    def reply_text(self) -> str:
        """The text as RabbitMQ words it: ``"<NAME> - <detail>"``."""
        return f"{REPLY_NAMES.get(self.reply_code, 'ERROR')} - {self.text}"

    def __str__(self) -> str:
        return f"{self.reply_code} {self.reply_text}"


class ChannelError(AMQPError):
    """A soft error: the channel closes, the connection lives."""

    is_channel_error = True
    reply_code = 406


class ContentTooLarge(ChannelError):
    reply_code = 311


class AccessRefused(ChannelError):
    reply_code = 403


class NotFound(ChannelError):
    reply_code = 404


class ResourceLocked(ChannelError):
    reply_code = 405


class PreconditionFailed(ChannelError):
    reply_code = 406


class ConnectionLevelError(AMQPError):  # not "ConnectionError": that builtin is an OSError
    """A hard error (the spec's "connection exception"): the connection closes."""

    reply_code = 541


class ConnectionForced(ConnectionLevelError):
    reply_code = 320


class ProtocolError(ConnectionLevelError):
    """Raised by a codec on bytes it cannot accept (the only exception a codec raises)."""

    reply_code = 501


class FrameError(ProtocolError):
    reply_code = 501


class FrameSyntaxError(ProtocolError):
    reply_code = 502


class UnexpectedFrame(ProtocolError):
    reply_code = 505


class CommandInvalid(ConnectionLevelError):
    reply_code = 503


class ChannelStateError(ConnectionLevelError):
    """504 CHANNEL_ERROR: a method on a channel that is not open, a second open, ..."""

    reply_code = 504


class ResourceError(ConnectionLevelError):
    reply_code = 506


class NotAllowed(ConnectionLevelError):
    reply_code = 530


class NotImplementedFeature(ConnectionLevelError):
    reply_code = 540


class InternalError(ConnectionLevelError):
    reply_code = 541


_BY_CODE: dict[int, type[AMQPError]] = {
    cls.reply_code: cls
    for cls in (
        ContentTooLarge, AccessRefused, NotFound, ResourceLocked, PreconditionFailed,
        ConnectionForced, FrameError, FrameSyntaxError, UnexpectedFrame, CommandInvalid,
        ChannelStateError, ResourceError, NotAllowed, NotImplementedFeature, InternalError,
    )
}


def error_for_code(
    reply_code: int, text: str, *, class_id: int = 0, method_id: int = 0
) -> AMQPError:
    """Rebuild the error a peer reported (used by clients to raise the matching class).

    ``text`` is the detail without the ``NAME - `` prefix when the peer sent one."""
    name = REPLY_NAMES.get(reply_code)
    if name and text.startswith(name + " - "):
        text = text[len(name) + 3 :]
    cls = _BY_CODE.get(reply_code)
    if cls is None:
        cls = ChannelError if 300 <= reply_code < 500 else ConnectionLevelError
        err = cls(text, class_id=class_id, method_id=method_id)
        err.reply_code = reply_code  # type: ignore[misc]  # an unlisted code keeps its number
        return err
    return cls(text, class_id=class_id, method_id=method_id)


class ClientError(MinibrokerError):
    """Misuse of the client library (e.g. using a closed channel), never sent by the broker."""


class ConnectionClosed(ClientError):
    """The connection is closed; ``error`` holds the broker's error when it closed it."""

    def __init__(self, text: str, error: AMQPError | None = None) -> None:
        super().__init__(text)
        self.error = error


class ChannelClosed(ClientError):
    """The channel is closed; ``error`` is the broker's error when the broker closed it."""

    def __init__(self, text: str, error: AMQPError | None = None) -> None:
        super().__init__(text)
        self.error = error


class PublishNacked(ClientError):
    """The broker nacked a publish made in confirm mode (it did not take responsibility)."""

    def __init__(self, publish_seq: int) -> None:
        super().__init__(f"the broker nacked publish #{publish_seq}")
        self.publish_seq = publish_seq


class MessageReturned(ClientError):
    """A ``mandatory`` message published in confirm mode could not be routed to any queue."""

    def __init__(self, message: ReturnedMessage) -> None:
        super().__init__(
            f"message returned: {message.reply_code} {message.reply_text} "
            f"(exchange {message.exchange!r}, routing key {message.routing_key!r})"
        )
        self.message = message
        self.reply_code = message.reply_code
        self.reply_text = message.reply_text
