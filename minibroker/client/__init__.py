"""The native client library: asyncio first, with a blocking wrapper in ``minibroker.blocking``.

Reading order: ``connection.py`` (socket, heartbeat timer, demux), ``channel.py`` (every AMQP
verb), ``publish.py`` (encoding a publish), ``confirms.py`` (which confirm settles which
publish), ``consumer.py`` (pushed deliveries as an async iterator), ``delivery.py`` (what a
consumer receives), ``params.py`` (the URL). Its errors are in ``minibroker/errors.py``.

Rules: the client drives the same sans-IO
:class:`~minibroker.protocols.native.connection.NativeConnection` (handshake, channel states,
closing, heartbeats) and :class:`~minibroker.protocols.native.codec.NativeCodec` as the server,
so the two cannot disagree about the wire. The client imports neither the broker core nor the
server (``tests/test_layering.py``).

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
from minibroker.client.params import DEFAULT_URL, ConnectionParameters
from minibroker.client.publish import PublishProperties
from minibroker.client.streams import StreamBatch, StreamMessage
from minibroker.errors import ChannelClosed, MessageReturned, PublishNacked

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
    "PublishProperties",
    "QueueInfo",
    "ReturnedMessage",
    "StreamBatch",
    "StreamMessage",
    "connect",
]
