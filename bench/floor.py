"""Where a pure-Python broker's floor is: a relay that does nothing but move messages.

    python bench/floor.py                 # every mode, 200,000 messages each
    python bench/floor.py --count 50000 --mode frames

A relay process (uvloop, like the broker) takes one publisher and one consumer connection
and forwards what the publisher sends, in one of three modes of increasing work:

- ``bytes``: every read is written to the consumer as it is. No frame is looked at: this is
  the event loop, the two syscalls a read and a write, and nothing else.
- ``frames``: the read is cut into its length-prefixed frames (4-byte length + payload) in a
  Python loop, and each payload re-framed for the consumer, one write per read: the cost of
  touching each message once in Python.
- ``msgpack``: each frame is also decoded with msgpack, turned into a native ``Deliver``
  value list (channel, consumer tag, delivery tag, exchange, routing key, properties, body)
  and packed again: the least a broker speaking the native protocol must do, without a
  queue, an ack or a confirm.

Rules:

1. Same load shape as the suite's (``scenarios_throughput.py``): 16-byte bodies, publishes
   written 1,000 at a time in native ``Publish`` frames, at most ``window`` in flight (here
   counted against what the consumer received, as nothing is confirmed).
2. Relay CPU per message is its process's utime + stime over the run / messages, from
   ``/proc`` (``harness.cpu_seconds``); wall-clock rates are as noisy as the machine is.
3. The numbers are a floor for minibroker's *per message* costs, not a goal: the relay has
   no queue, no acks, no confirms, no flow control and no protocol state.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgpack
from harness import cpu_seconds

from minibroker.message import Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec

MODES = ("bytes", "frames", "msgpack")
LENGTH = struct.Struct(">I")
PACKER = msgpack.Packer()  # one packer, reused, like the codec's


class Relay(asyncio.Protocol):
    """One side of the relay; the first connection publishes, the second consumes."""

    peers: list[Relay] = []
    mode = "bytes"

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.buffer = b""
        self.tag = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peers.append(self)

    def data_received(self, data: bytes) -> None:
        if len(self.peers) < 2 or self is not self.peers[0]:
            return
        out = self.peers[1].transport
        assert out is not None
        if self.mode == "bytes":
            out.write(data)
            return
        buffer = self.buffer + data if self.buffer else data
        offset, end, parts = 0, len(buffer), []
        pack, unpackb = PACKER.pack, msgpack.unpackb
        while end - offset >= 4:
            size = LENGTH.unpack_from(buffer, offset)[0]
            stop = offset + 4 + size
            if stop > end:
                break
            payload = buffer[offset + 4:stop]
            if self.mode == "msgpack":
                _, channel, exchange, key, _, properties, body = unpackb(payload)
                self.tag += 1
                payload = pack([0x60, channel, "ctag", self.tag, False, exchange, key,
                                properties, body])
            parts.append(LENGTH.pack(len(payload)))
            parts.append(payload)
            offset = stop
        self.buffer = buffer[offset:]
        out.write(b"".join(parts))


async def serve(mode: str) -> None:
    Relay.mode = mode
    server = await asyncio.get_running_loop().create_server(Relay, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


class Consumer(asyncio.Protocol):
    def __init__(self) -> None:
        self.received = 0
        self.buffer = b""
        self.changed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        offset, end = 0, len(buffer)
        while end - offset >= 4:
            stop = offset + 4 + LENGTH.unpack_from(buffer, offset)[0]
            if stop > end:
                break
            self.received += 1
            offset = stop
        self.buffer = buffer[offset:]
        self.changed.set()


async def run(mode: str, count: int, window: int) -> tuple[float, float]:
    relay = subprocess.Popen([sys.executable, __file__, "--serve", mode],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert relay.stdout is not None
        port = int(relay.stdout.readline())
        loop = asyncio.get_running_loop()
        publisher, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        await asyncio.sleep(0.1)  # the relay must see the publisher first (its rule)
        _, consumer = await loop.create_connection(Consumer, "127.0.0.1", port)
        await asyncio.sleep(0.1)
        frame = NativeCodec(role="client").send(
            f.Publish(1, "", "minibroker-bench", False, Properties(), b"x" * 16))
        cpu0, t0 = cpu_seconds(relay.pid), time.perf_counter()
        sent = 0
        while consumer.received < count:
            room = min(window - (sent - consumer.received), count - sent, 1000)
            if room > 0:
                publisher.write(frame * room)
                sent += room
                await asyncio.sleep(0)
                continue
            consumer.changed.clear()
            await consumer.changed.wait()
        seconds, cpu = time.perf_counter() - t0, cpu_seconds(relay.pid) - cpu0
        publisher.close()
        return count / seconds, cpu / count * 1e6
    finally:
        relay.kill()
        relay.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--mode", choices=MODES, action="append")
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop
    if args.serve:
        uvloop.run(serve(args.serve))
        return
    print("| relay mode | msgs/s | relay CPU µs/msg |\n|---|---:|---:|")
    for mode in args.mode or MODES:
        # bytes: ten times the messages, or the run is over within a few CPU clock ticks
        count = args.count * (10 if mode == "bytes" else 1)
        rate, cpu = uvloop.run(run(mode, count, args.window))
        print(f"| {mode} | {rate:,.0f} | {cpu:.2f} |", flush=True)


if __name__ == "__main__":
    main()
