"""The native client library: asyncio first, with a blocking wrapper in ``minibroker.blocking``.

Reading order: ``connection.py`` (socket, handshake, heartbeats, demux), ``channel.py`` (every
AMQP verb), ``publish.py`` (encoding a publish), ``confirms.py`` (which confirm settles which
publish), ``consumer.py`` (pushed deliveries as an async iterator), ``delivery.py`` (what a
consumer receives), ``errors.py``, ``params.py`` (the URL).

Rule: the client uses the same :class:`~minibroker.protocols.native.codec.NativeCodec` as the
server, so the two cannot disagree about the wire.

    async with minibroker.connect("minibroker://127.0.0.1:5680") as conn:
        ch = await conn.channel()
        q = await ch.declare_queue("", exclusive=True)
        await ch.publish("", q.name, b"hello")
        async with ch.consume(q.name) as consumer:
            async for delivery in consumer:
                await delivery.ack()
                break
"""

from minibroker.client.channel import Channel, ChannelState, QueueInfo
from minibroker.client.connection import Connection, connect
from minibroker.client.consumer import Consumer, ConsumerStatistics
from minibroker.client.delivery import Delivery, MessageFields, ReturnedMessage
from minibroker.client.errors import ChannelClosed, MessageReturned, PublishNacked
from minibroker.client.params import DEFAULT_URL, ConnectionParameters

__all__ = [
    "DEFAULT_URL",
    "Channel",
    "ChannelClosed",
    "ChannelState",
    "Connection",
    "ConnectionParameters",
    "Consumer",
    "ConsumerStatistics",
    "Delivery",
    "MessageFields",
    "MessageReturned",
    "PublishNacked",
    "QueueInfo",
    "ReturnedMessage",
    "connect",
]
