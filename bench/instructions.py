"""A deterministic, socket-less run of the hot path, for instruction counts (callgrind).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/instructions.py native 2000      # then with 4000
        python bench/instructions.py amqp 2000 --no-ack

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
4. ``--no-ack``: the consumer subscribes with no-ack and sends nothing back.
   ``--backlog``: the suite's shape instead (``bench/scenarios_throughput.py``): the publisher
   writes 1,000 publishes per read and keeps up to 4,000 in flight, so the queue holds a
   backlog and every delivery is dispatched from it when an ack frees credit (the default
   shape mostly delivers straight to the consumer, ``core/delivery.py`` rule 5).
5. ``Client.send`` and :func:`settle` are the broker's share of the run (the session, codecs,
   core and loop callbacks); the rest is the driver's. ``bench/layers.py`` profiles only the
   broker's share through the two hooks ``BROKER_ENTER`` / ``BROKER_LEAVE``.
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
NO_ACK = False


def _nothing() -> None:
    pass


#: Rule 5: called around the broker's share of the run (a profiler's enable/disable).
BROKER_ENTER: Callable[[], None] = _nothing
BROKER_LEAVE: Callable[[], None] = _nothing


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
        BROKER_ENTER()
        self.protocol.data_received(data)
        BROKER_LEAVE()

    def take(self) -> bytes:
        data, self.inbox = b"".join(self.inbox), []
        return data


async def settle() -> None:
    """Let the loop run the flushes and continuations the last input scheduled."""
    BROKER_ENTER()
    for _ in range(4):
        await asyncio.sleep(0)
    BROKER_LEAVE()


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
        if tags and not NO_ACK:
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
        f.Consume(1, QUEUE, "", NO_ACK, False, {}),
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
                  + ccodec.encode_method(1, m.BasicConsume(queue=QUEUE, no_ack=NO_ACK)))
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
    args = [a for a in sys.argv[1:] if a not in ("--no-ack", "--backlog")]
    NO_ACK = "--no-ack" in sys.argv[1:]
    if "--backlog" in sys.argv[1:]:
        BATCH = 1000
    if len(args) != 2 or args[0] not in ("native", "amqp"):
        sys.exit("usage: instructions.py native|amqp COUNT [--no-ack] [--backlog]")
    asyncio.run(main(args[0], int(args[1])))
