"""What a consumer receives: :class:`Delivery` (pushed or fetched) and :class:`ReturnedMessage`.

Rules:

1. The body is the ``bytes`` object the codec produced; nothing is copied or decoded.
2. Every message property is reachable both as ``delivery.properties`` (a
   :class:`~minibroker.message.Properties`) and as a shortcut (``delivery.headers``,
   ``delivery.correlation_id`` ...). The shortcuts live in :class:`MessageFields`, shared with
   the blocking wrapper's delivery.
3. A delivery is settled at most once, as the broker counts it: by its own ack, nack or
   reject, or by a ``multiple`` ack or nack of a later delivery of the same channel (the
   channel's ledger, ``channel.py`` rule 6). Settling it again raises
   :class:`~minibroker.errors.ClientError` saying how it was settled, and sends nothing,
   instead of letting the broker close the channel with 406 "unknown delivery tag". A
   ``no_ack`` delivery cannot be settled at all; neither can one ``basic.recover`` requeued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minibroker.errors import ClientError
from minibroker.message import FieldTable, Properties
from minibroker.valueclass import valueclass

if TYPE_CHECKING:
    from minibroker.client.channel import Channel

__all__ = ["Delivery", "MessageFields", "ReturnedMessage", "stream_offset"]


class MessageFields:
    """Read-only shortcuts to a message's properties (rule 2)."""

    __slots__ = ()
    properties: Properties

    @property
    def content_type(self) -> str | None:
        return self.properties.content_type

    @property
    def content_encoding(self) -> str | None:
        return self.properties.content_encoding

    @property
    def headers(self) -> FieldTable:
        """The headers table; empty when the message had none."""
        return self.properties.headers or {}

    @property
    def delivery_mode(self) -> int | None:
        return self.properties.delivery_mode

    @property
    def persistent(self) -> bool:
        return self.properties.delivery_mode == 2

    @property
    def priority(self) -> int | None:
        return self.properties.priority

    @property
    def correlation_id(self) -> str | None:
        return self.properties.correlation_id

    @property
    def reply_to(self) -> str | None:
        return self.properties.reply_to

    @property
    def expiration(self) -> str | None:
        return self.properties.expiration

    @property
    def message_id(self) -> str | None:
        return self.properties.message_id

    @property
    def timestamp(self) -> int | None:
        return self.properties.timestamp

    @property
    def type(self) -> str | None:
        return self.properties.type

    @property
    def user_id(self) -> str | None:
        return self.properties.user_id

    @property
    def app_id(self) -> str | None:
        return self.properties.app_id


def stream_offset(properties: Properties) -> int | None:
    """The ``x-stream-offset`` header a stream's delivery carries, if any."""
    offset = (properties.headers or {}).get("x-stream-offset")
    return offset if isinstance(offset, int) and not isinstance(offset, bool) else None


class Delivery(MessageFields):
    """One message handed to this client by ``basic.deliver`` (a consumer) or ``basic.get-ok``.

    ``consumer_tag`` is ``""`` and ``message_count`` (messages left in the queue) is set only for
    a delivery fetched with :meth:`Channel.get`."""

    __slots__ = ("_channel", "_settled", "body", "consumer_tag", "delivery_tag", "exchange",
                 "message_count", "no_ack", "properties", "redelivered", "routing_key")

    def __init__(
        self,
        channel: Channel,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        properties: Properties,
        body: bytes,
        *,
        no_ack: bool = False,
        message_count: int | None = None,
    ) -> None:
        self._channel = channel
        #: How it was settled (rule 3); None while it waits for an ack, nack or reject.
        self._settled: str | None = "consumed with no_ack" if no_ack else None
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body
        self.no_ack = no_ack
        self.message_count = message_count

    @property
    def channel(self) -> Channel:
        return self._channel

    @property
    def offset(self) -> int | None:
        """The message's offset when it came from a stream (``x-stream-offset``), else
        ``None``."""
        return stream_offset(self.properties)

    @property
    def settled(self) -> bool:
        """True once acked, nacked or rejected — by itself or by a ``multiple`` of a later
        delivery — or requeued by ``basic.recover``; always true for a ``no_ack`` delivery."""
        return self._settled is not None

    def _check_unsettled(self, verb: str) -> None:
        self._channel._check_open()  # a closed channel's deliveries were requeued: stay unsettled
        if self._settled is not None:
            tag = self.delivery_tag
            raise ClientError(
                f"cannot {verb} delivery {tag}: it was {self._settled}"
                + ("" if self.no_ack else
                   f" (the broker would close channel {self._channel.number} with 406 "
                   f"PRECONDITION_FAILED - unknown delivery tag {tag})"))

    async def ack(self, *, multiple: bool = False) -> None:
        """Acknowledge this delivery (and every earlier one of the channel when ``multiple``)."""
        self._check_unsettled("ack")
        await self._channel.ack(self.delivery_tag, multiple=multiple)

    async def nack(self, *, requeue: bool = True, multiple: bool = False) -> None:
        """Refuse this delivery (and every earlier one of the channel when ``multiple``);
        ``requeue=True`` puts it back in its queue, marked redelivered."""
        self._check_unsettled("nack")
        await self._channel.nack(self.delivery_tag, requeue=requeue, multiple=multiple)

    async def reject(self, *, requeue: bool = True) -> None:
        """Refuse this one delivery (AMQP ``basic.reject``)."""
        self._check_unsettled("reject")
        await self._channel.reject(self.delivery_tag, requeue=requeue)

    def __repr__(self) -> str:
        return (f"<Delivery tag={self.delivery_tag} exchange={self.exchange!r} "
                f"routing_key={self.routing_key!r} redelivered={self.redelivered} "
                f"body={self.body[:40]!r}>")


@valueclass(frozen=True)
class ReturnedMessage(MessageFields):
    """A ``mandatory`` message the broker could not route (``basic.return``, 312 NO_ROUTE)."""

    reply_code: int
    reply_text: str
    exchange: str
    routing_key: str
    properties: Properties
    body: bytes
