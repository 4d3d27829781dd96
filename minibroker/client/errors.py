"""Errors the client library raises on its own (all :class:`~minibroker.errors.ClientError`).

Rules:

1. Errors the *broker* reports keep their own classes from ``minibroker.errors`` (rebuilt with
   ``error_for_code``): the call that caused a channel error raises e.g. ``NotFound``.
2. Once a channel is closed, every later use of it raises :class:`ChannelClosed`, whose
   ``error`` holds the broker's error when the broker closed it (``None`` when we closed it).
3. A publish in confirm mode fails with :class:`PublishNacked` when the broker nacks it and with
   :class:`MessageReturned` when the broker returned it as unroutable (``mandatory=True``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minibroker.errors import AMQPError, ClientError

if TYPE_CHECKING:
    from minibroker.client.delivery import ReturnedMessage

__all__ = ["ChannelClosed", "MessageReturned", "PublishNacked"]


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
