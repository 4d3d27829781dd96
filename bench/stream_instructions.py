"""A deterministic, socket-less run of the native stream paths, for instruction counts.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/stream_instructions.py append 20000      # then with 40000
        python bench/stream_instructions.py read 20000

(Ir(2 N) - Ir(N)) / N is what the broker and this driver spend per message, as for
``bench/instructions.py``, whose fake transport and clients this reuses.

Rules:

1. ``append``: one publisher in confirm mode sends ``PublishBatch`` frames of 1,000 16-byte
   messages to a stream, one frame per loop turn, and waits for each confirm.
2. ``read``: the stream is filled with ``FILL`` messages first (the same in both runs, so the
   difference cancels it), then one client reads N of them from ``first`` with reads of
   5,000 and builds each message, as ``Channel.read`` does.
3. The broker has a data directory (``sync="never"``: the disk is out of the count), so the
   stream is a durable one and reads come from its files. The frames are ``StreamFetch``
   where this build has them, ``StreamRead`` otherwise, so the same script measures the
   commit before them.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instructions import Client, settle

from minibroker.config import ServerConfig
from minibroker.message import Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native import streamframes as sf
from minibroker.protocols.native.codec import NativeCodec
from minibroker.server import BrokerServer

BATCH = 1000
READ = 5000
FILL = 40_000
STREAM = {"x-queue-type": "stream"}


def _open(server: BrokerServer) -> tuple[Client, NativeCodec]:
    client, codec = Client(server), NativeCodec(role="client")
    client.send(codec.send_preamble() + codec.send(f.Hello("bench", "guest", "guest")))
    client.send(codec.send(f.Tune(16 * 1024 * 1024, 2047, 0)) + codec.send(f.ChannelOpen(1)))
    return client, codec


def _frames(client: Client, codec: NativeCodec) -> list[f.Frame]:
    data = client.take()
    if data:
        codec.receive_data(data)
    return codec.frames()


async def _append(client: Client, codec: NativeCodec, count: int) -> None:
    frame = codec.send(sf.PublishBatch(1, "", "s", False, [(Properties(), b"x" * 16)] * BATCH))
    confirmed = 0
    for _ in range(count // BATCH):
        client.send(frame)
        await settle()
        confirmed = max([confirmed, *(fr.delivery_tag for fr in _frames(client, codec)
                                      if type(fr) is f.ConfirmAck)])
    while confirmed < count:
        await settle()
        confirmed = max([confirmed, *(fr.delivery_tag for fr in _frames(client, codec)
                                      if type(fr) is f.ConfirmAck)])


async def _read(client: Client, codec: NativeCodec, count: int) -> None:
    fetch = getattr(sf, "StreamFetch", None)
    offset = read = 0
    while read < count:
        arguments = {"x-stream-offset": offset}
        if fetch is not None:
            from minibroker.client.streams import messages_of

            client.send(codec.send(fetch(1, "s", arguments, READ, 1 << 22)))
            await settle()
            [ok] = _frames(client, codec)
            messages = messages_of(ok.chunks)  # type: ignore[attr-defined]
        else:
            from minibroker.client.streams import build_stream_message  # type: ignore

            client.send(codec.send(sf.StreamRead(1, "s", arguments, READ, 1 << 22)))
            await settle()
            [ok] = _frames(client, codec)
            messages = [build_stream_message(*record)
                        for record in ok.messages]  # type: ignore[attr-defined]
        assert messages[0].offset == offset, (messages[0].offset, offset)
        read += len(messages)
        offset = ok.next_offset  # type: ignore[attr-defined]


async def main(mode: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        server = BrokerServer(ServerConfig(host="127.0.0.1", port=0, heartbeat=0,
                                           data_dir=directory, sync="never"))
        await server.start()
        client, codec = _open(server)
        client.send(codec.send_many([
            f.QueueDeclare(1, "s", False, True, False, False, STREAM), f.ConfirmSelect(1)]))
        await settle()
        _frames(client, codec)
        if mode == "append":
            await _append(client, codec, count)
        else:
            await _append(client, codec, FILL)
            await _read(client, codec, count)
        await server.abort()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("append", "read"):
        sys.exit("usage: stream_instructions.py append|read COUNT")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
