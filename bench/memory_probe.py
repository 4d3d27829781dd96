"""What one queued message costs, object by object, without sockets (tracemalloc).

    python bench/memory_probe.py native      # 16-byte bodies, no properties
    python bench/memory_probe.py amqp        # 16-byte bodies, pika-like properties
    python bench/memory_probe.py amqp 200000 # COUNT messages (default 100,000)

Scenario 6 of the suite (``bench/scenarios_memory.py``) measures the broker process's RSS;
this script says where those bytes are: it publishes ``COUNT`` messages (confirm mode) into a
queue without consumers through the real session, codec and core (``bench/instructions.py``'s
fake transport), then prints the bytes and objects a message added, by allocating line, and
the new GC-tracked objects by type.

Rules:

1. Only what the queued messages keep is counted: a warm-up of 1,000 messages comes first
   (caches, buffers), and ``gc.collect()`` runs before each snapshot.
2. tracemalloc reports requested sizes: a 49-byte ``bytes`` object takes a 64-byte block of
   CPython's allocator, so RSS per message (scenario 6) is a little higher than the total.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import sys
import tracemalloc

from instructions import Client, settle
from scenarios_memory import PIKA_LIKE

from minibroker.config import ServerConfig
from minibroker.message import Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec
from minibroker.server import BrokerServer

QUEUE = "q"
BATCH = 500


def open_publisher(server: BrokerServer, protocol: str) -> tuple[Client, bytes]:
    """A publisher in confirm mode on a declared queue, and one encoded publish."""
    client = Client(server)
    if protocol == "native":
        codec = NativeCodec(role="client")
        client.send(codec.send_preamble() + codec.send(f.Hello("probe", "guest", "guest")))
        client.send(codec.send(f.Tune(131072, 2047, 0)) + codec.send(f.ChannelOpen(1)))
        client.send(codec.send(f.QueueDeclare(1, QUEUE, False, False, False, False, {}))
                    + codec.send(f.ConfirmSelect(1)))
        return client, codec.send(f.Publish(1, "", QUEUE, False, Properties(), b"x" * 16))
    amqp = AMQPCodec(role="client")
    client.send(PROTOCOL_HEADER)
    client.send(amqp.encode_method(0, m.ConnectionStartOk(
        {"product": "probe"}, "PLAIN", b"\0guest\0guest")))
    client.send(amqp.encode_method(0, m.ConnectionTuneOk(2047, 131072, 0))
                + amqp.encode_method(0, m.ConnectionOpen(virtual_host="/"))
                + amqp.encode_method(1, m.ChannelOpen())
                + amqp.encode_method(1, m.QueueDeclare(queue=QUEUE))
                + amqp.encode_method(1, m.ConfirmSelect()))
    return client, amqp.encode_content(1, m.BasicPublish(exchange="", routing_key=QUEUE),
                                       PIKA_LIKE, b"x" * 16)


async def publish(client: Client, one: bytes, count: int) -> None:
    sent = 0
    while sent < count:
        n = min(BATCH, count - sent)
        client.send(one * n)
        sent += n
        await settle()
        client.take()  # the confirms


async def main(protocol: str, count: int) -> None:
    server = BrokerServer(ServerConfig(host="127.0.0.1", port=0, heartbeat=0))
    await server.start()
    client, one = open_publisher(server, protocol)
    await settle()
    client.take()
    await publish(client, one, 1000)  # rule 1
    gc.collect()
    types_before = collections.Counter(type(o).__name__ for o in gc.get_objects())
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    await publish(client, one, count)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    types = collections.Counter(type(o).__name__ for o in gc.get_objects()) - types_before
    stats = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    print(f"{protocol}: {count:,} queued 16 B messages, {total / count:.1f} bytes a message "
          f"({total / count - 16:.1f} beyond the body; tracemalloc, rule 2)")
    for stat in stats:
        if abs(stat.size_diff) >= count:  # at least a byte a message
            frame = stat.traceback[0]
            print(f"  {stat.size_diff / count:6.1f} B  {stat.count_diff / count:5.2f} objects"
                  f"  {frame.filename.rsplit('minibroker/', 1)[-1]}:{frame.lineno}")
    tracked = ", ".join(f"{name} {n / count:.2f}" for name, n in types.most_common(4)
                        if n >= count // 100)
    print(f"  GC-tracked objects a message: {tracked}")
    await server.abort()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("native", "amqp"):
        sys.exit("usage: memory_probe.py native|amqp [COUNT]")
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 100_000))
