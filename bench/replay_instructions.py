"""A deterministic, socket-less AMQP stream replay, for instruction counts (callgrind).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/replay_instructions.py 4000 2000     # stored, replayed
        python bench/replay_instructions.py 4000 4000     # then the difference / 2000
    sh bench/replay_instructions.sh [N] [--durable]      # both runs and the division

One consumer (prefetch 1,000, one multiple ack per window) reads stored 16-byte messages of
a stream from ``x-stream-offset: first`` over AMQP 0-9-1, as ``bench/streams.py``'s replay
does over TCP. The two runs store the same number of messages and replay different numbers,
so their difference is the replay alone: start-up and appends cancel out.

Rules:

1. The broker is a real :class:`BrokerServer` on a plain asyncio loop and the clients are
   real :class:`BrokerProtocol` objects on ``instructions.py``'s fake transport: every byte
   goes through the session, the codec, the mapping and the core as over TCP.
2. The consumer does not decode what it receives: it walks the frames and counts the
   ``basic.deliver`` methods (delivery tags are consecutive), so nearly all of the counted
   instructions are the broker's. The run checks that exactly the asked number arrived.
3. ``--durable``: the broker has a data directory (``sync="never"``), so the stream is in
   the segment files and the replay reads them.
4. ``--profile`` shows where the broker's own time goes during the replay (cProfile, sorted
   by own time): the profiler runs inside ``Client.send`` and ``settle``
   (``instructions.BROKER_ENTER``/``BROKER_LEAVE``) once the appends are done.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import instructions
from instructions import Client, settle

from minibroker.config import ServerConfig
from minibroker.message import Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame, encode_basic_ack
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER
from minibroker.server import BrokerServer

STREAM = "s"
WINDOW = 1000
APPEND_BATCH = 500
_FRAME = struct.Struct(">BHI")
_DELIVER_KEY = struct.pack(">HH", 60, 60)
PROFILER: cProfile.Profile | None = None


def open_client(server: BrokerServer) -> tuple[Client, AMQPCodec]:
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


class DeliverCounter:
    """Rule 2: counts basic.deliver frames in the octets received, across reads."""

    def __init__(self) -> None:
        self.pending = b""

    def count(self, data: bytes) -> int:
        data = self.pending + data
        found = at = 0
        while at + 7 <= len(data):
            kind, _, size = _FRAME.unpack_from(data, at)
            end = at + 8 + size
            if end > len(data):
                break
            if kind == 1 and data[at + 7:at + 11] == _DELIVER_KEY:
                found += 1
            at = end
        self.pending = data[at:]
        return found


async def run(server: BrokerServer, stored: int, replay: int) -> None:
    publisher, pcodec = open_client(server)
    publisher.send(pcodec.encode_method(1, m.QueueDeclare(
        queue=STREAM, durable=True, arguments={"x-queue-type": "stream"})))
    one = pcodec.encode_content(1, m.BasicPublish(exchange="", routing_key=STREAM),
                                Properties(), b"x" * 16)
    for start in range(0, stored, APPEND_BATCH):
        publisher.send(one * min(APPEND_BATCH, stored - start))
        await settle()
    methods(pcodec, publisher.take())
    if PROFILER is not None:  # rule 4: the replay only
        instructions.BROKER_ENTER = PROFILER.enable
        instructions.BROKER_LEAVE = PROFILER.disable

    consumer, ccodec = open_client(server)
    consumer.send(ccodec.encode_method(1, m.BasicQos(prefetch_count=WINDOW)))
    await settle()
    methods(ccodec, consumer.take())
    consumer.send(ccodec.encode_method(1, m.BasicConsume(
        queue=STREAM, arguments={"x-stream-offset": "first"})))
    counter = DeliverCounter()
    delivered = 0
    while delivered < replay:
        await settle()
        got = counter.count(consumer.take())
        if not got:
            raise AssertionError(f"the replay stalled after {delivered} deliveries")
        delivered += got
        if delivered < replay:
            consumer.send(encode_basic_ack(1, delivered, True))
    assert delivered == replay, (delivered, replay)


async def main(stored: int, replay: int, durable: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="minibroker-replay-") as directory:
        server = BrokerServer(ServerConfig(
            host="127.0.0.1", port=0, heartbeat=0, data_dir=directory if durable else None,
            sync="never"))
        await server.start()
        try:
            await run(server, stored, replay)
        finally:
            await server.abort()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = set(sys.argv[1:]) - set(args)
    if len(args) != 2 or not flags <= {"--durable", "--profile"}:
        sys.exit("usage: replay_instructions.py STORED REPLAY [--durable] [--profile]")
    stored, replay = int(args[0]), int(args[1])
    if replay % WINDOW or replay > stored:
        sys.exit(f"REPLAY must be a multiple of {WINDOW}, at most STORED")
    if "--profile" in flags:
        PROFILER = cProfile.Profile()
        asyncio.run(main(stored, replay, "--durable" in flags))
        pstats.Stats(PROFILER).sort_stats("tottime").print_stats(30)
    else:
        asyncio.run(main(stored, replay, "--durable" in flags))
