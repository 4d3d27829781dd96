"""A deterministic, socket-less run of the hot path, for instruction counts (callgrind).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/instructions.py native 2000      # then with 4000

The difference of the two totals ("Collected : N") divided by 2000 is the instructions the
broker and this driver spend per message: publish (confirm mode) → route → deliver → ack.
Unlike wall-clock time it does not move with the load of a shared machine, so it compares two
commits of the shell, the codecs or the core (the driver's own share is the same in both).

Rules:

1. The broker is a real :class:`BrokerServer` on a plain asyncio loop, and each client is a
   real :class:`BrokerProtocol` on a fake transport: every byte goes through the same session,
   codec and core code as over TCP, but no socket makes reads split differently between runs.
2. Load shape (bench/scenarios_throughput.py's, scaled down): 1 publisher in confirm mode and
   1 consumer with prefetch 100 and one ack per delivery, 16-byte bodies; the publisher writes
   ``BATCH`` publishes per read, the consumer acks everything one read brought in one write.
3. The script checks that every message was delivered and confirmed, so a broken broker cannot
   make a cheap run.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from minibroker.config import ServerConfig
from minibroker.message import Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame, encode_basic_ack
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec
from minibroker.server import BrokerServer
from minibroker.server.protocol import BrokerProtocol

BATCH = 50
PREFETCH = 100
QUEUE = "q"


class FakeTransport:
    """What a session uses of a transport; written bytes go to ``received``."""

    def __init__(self, received: Callable[[bytes], None]) -> None:
        self.received = received
        self.closing = False

    def write(self, data: bytes) -> None:
        self.received(data)

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 1) if name == "peername" else None


class Client:
    """One client connection: a codec on our side, a BrokerProtocol on the broker's."""

    def __init__(self, server: BrokerServer) -> None:
        self.protocol = BrokerProtocol(server)
        self.protocol.connection_made(FakeTransport(self.on_bytes))  # type: ignore[arg-type]
        self.inbox: list[bytes] = []

    def on_bytes(self, data: bytes) -> None:
        self.inbox.append(data)

    def send(self, data: bytes) -> None:
        self.protocol.data_received(data)

    def take(self) -> bytes:
        data, self.inbox = b"".join(self.inbox), []
        return data


async def settle() -> None:
    """Let the loop run the flushes and continuations the last input scheduled."""
    for _ in range(4):
        await asyncio.sleep(0)


async def exchange(count: int, publisher: Client, consumer: Client, one: bytes,
                   deliveries: Callable[[bytes], list[int]], acks: Callable[[list[int]], bytes],
                   confirms: Callable[[bytes], list[int]]) -> None:
    """Rule 2's loop, the same for both protocols: only the encoders differ."""
    delivered = confirmed = sent = 0
    while delivered < count or confirmed < count:
        if sent < count and sent - confirmed < 4 * BATCH:
            n = min(BATCH, count - sent)
            publisher.send(one * n)
            sent += n
        await settle()
        tags = deliveries(consumer.take())
        delivered += len(tags)
        if tags:
            consumer.send(acks(tags))
        confirmed = max([confirmed, *confirms(publisher.take())])
    assert delivered == count and confirmed == count, (delivered, confirmed)


async def native(server: BrokerServer, count: int) -> None:
    def open_client() -> tuple[Client, NativeCodec]:
        client, codec = Client(server), NativeCodec(role="client")
        client.send(codec.send_preamble() + codec.send(f.Hello("bench", "guest", "guest")))
        client.send(codec.send(f.Tune(131072, 2047, 0)) + codec.send(f.ChannelOpen(1)))
        return client, codec

    def frames(codec: NativeCodec, data: bytes) -> list[f.Frame]:
        if data:
            codec.receive_data(data)
        return codec.frames()

    publisher, pcodec = open_client()
    consumer, ccodec = open_client()
    consumer.send(ccodec.send_many([
        f.QueueDeclare(1, QUEUE, False, False, False, False, {}), f.Qos(1, PREFETCH, False),
        f.Consume(1, QUEUE, "", False, False, {}),
    ]))
    publisher.send(pcodec.send(f.ConfirmSelect(1)))
    await settle()
    frames(pcodec, publisher.take())
    frames(ccodec, consumer.take())
    await exchange(
        count, publisher, consumer,
        pcodec.send(f.Publish(1, "", QUEUE, False, Properties(), b"x" * 16)),
        lambda data: [fr.delivery_tag for fr in frames(ccodec, data) if type(fr) is f.Deliver],
        lambda tags: ccodec.send_many([f.Ack(1, tag) for tag in tags]),
        lambda data: [fr.delivery_tag for fr in frames(pcodec, data)
                      if type(fr) is f.ConfirmAck],
    )


async def amqp(server: BrokerServer, count: int) -> None:
    def open_client() -> tuple[Client, AMQPCodec]:
        client, codec = Client(server), AMQPCodec(role="client")
        client.send(PROTOCOL_HEADER)
        client.send(codec.encode_method(0, m.ConnectionStartOk(
            {"product": "bench"}, "PLAIN", b"\0guest\0guest")))
        client.send(codec.encode_method(0, m.ConnectionTuneOk(2047, 131072, 0))
                    + codec.encode_method(0, m.ConnectionOpen(virtual_host="/"))
                    + codec.encode_method(1, m.ChannelOpen()))
        return client, codec

    def methods(codec: AMQPCodec, data: bytes) -> list[m.Method]:
        if data:
            codec.receive_data(data)
        return [fr.method for fr in codec.frames() if type(fr) in (MethodFrame, ContentMethod)]

    publisher, pcodec = open_client()
    consumer, ccodec = open_client()
    consumer.send(ccodec.encode_method(1, m.QueueDeclare(queue=QUEUE))
                  + ccodec.encode_method(1, m.BasicQos(prefetch_count=PREFETCH))
                  + ccodec.encode_method(1, m.BasicConsume(queue=QUEUE)))
    publisher.send(pcodec.encode_method(1, m.ConfirmSelect()))
    await settle()
    methods(pcodec, publisher.take())
    methods(ccodec, consumer.take())
    await exchange(
        count, publisher, consumer,
        pcodec.encode_content(1, m.BasicPublish(exchange="", routing_key=QUEUE), Properties(),
                              b"x" * 16),
        lambda data: [x.delivery_tag for x in methods(ccodec, data)
                      if isinstance(x, m.BasicDeliver)],
        lambda tags: b"".join(encode_basic_ack(1, tag) for tag in tags),
        lambda data: [x.delivery_tag for x in methods(pcodec, data) if type(x) is m.BasicAck],
    )


async def main(protocol: str, count: int) -> None:
    server = BrokerServer(ServerConfig(host="127.0.0.1", port=0, heartbeat=0))
    await server.start()
    await (native if protocol == "native" else amqp)(server, count)
    await server.abort()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("native", "amqp"):
        sys.exit("usage: instructions.py native|amqp COUNT")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
