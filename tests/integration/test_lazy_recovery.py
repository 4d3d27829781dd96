"""Recovered messages come back lazily (``persistence/recovery.py`` rule 2,
``server/durability.py``): a server started on a data directory serves at once and restores
:data:`CHUNK` messages per loop iteration, in queue order; a purge that arrives meanwhile
loads the rest of its queue first, so it empties the whole queue and counts every message."""

from __future__ import annotations

import asyncio
from pathlib import Path

from minibroker.config import ServerConfig
from minibroker.core import commands as c
from minibroker.core.effects import QueuePurgeOk
from minibroker.message import Message, Properties
from minibroker.persistence.recovery import CHUNK
from minibroker.server.server import BrokerServer
from minibroker.testing import broker_in_thread

COUNT = 2 * CHUNK + 1  # three chunks
PERSISTENT = Properties(delivery_mode=2)


def _store_messages(directory: Path, count: int = COUNT) -> None:
    async def main() -> None:
        server = BrokerServer(ServerConfig(port=0, data_dir=str(directory)))
        await server.start()
        server.execute(c.OpenConnection(900))
        server.execute(c.OpenChannel(900, 1))
        server.execute(c.DeclareQueue(900, 1, "big", durable=True))
        server.execute(c.PublishMany(900, 1, tuple(
            (Message("", "big", b"%d" % number, PERSISTENT), False)
            for number in range(count))))
        server.execute(c.CloseConnection(900))
        await server.close()

    asyncio.run(main())


async def _one_iteration() -> None:
    await asyncio.sleep(0)  # one turn of the loop (the loader takes one chunk per turn)


def test_recovered_messages_load_a_chunk_per_loop_iteration(tmp_path: Path) -> None:
    _store_messages(tmp_path)

    async def main() -> list[int]:
        server = BrokerServer(ServerConfig(port=0, data_dir=str(tmp_path)))
        starting = asyncio.ensure_future(server.start())
        await _one_iteration()  # the definitions are back; the loader has not run yet
        try:
            assert server.durability is not None and server.durability.loader is not None
            ready = [server.broker.queue_statistics("big").ready]
            while server.durability.loader is not None:
                await _one_iteration()
                ready.append(server.broker.queue_statistics("big").ready)
            server.execute(c.OpenConnection(900))
            server.execute(c.OpenChannel(900, 1))
            first = server.execute(c.Get(900, 1, "big", no_ack=True)).reply
            assert first is not None and first.message.body == b"0"  # queue order
            return ready
        finally:
            await starting
            await server.close()

    assert asyncio.run(main()) == [0, CHUNK, 2 * CHUNK, COUNT]


def test_a_purge_while_loading_empties_the_whole_queue(tmp_path: Path) -> None:
    _store_messages(tmp_path)

    async def main() -> None:
        server = BrokerServer(ServerConfig(port=0, data_dir=str(tmp_path)))
        starting = asyncio.ensure_future(server.start())
        await _one_iteration()  # the definitions are back; the loader has not run yet
        try:
            assert server.durability is not None and server.durability.loader is not None
            server.execute(c.OpenConnection(900))
            server.execute(c.OpenChannel(900, 1))
            purged = server.execute(c.PurgeQueue(900, 1, "big")).reply
            assert purged == QueuePurgeOk(COUNT)
            while server.durability.loader is not None:
                await _one_iteration()
            assert server.broker.queue_statistics("big").ready == 0
        finally:
            await starting
            await server.close()

    asyncio.run(main())


def test_a_broker_stopped_while_loading_keeps_every_message(tmp_path: Path) -> None:
    many = 10 * CHUNK  # more chunks than a start takes loop turns
    _store_messages(tmp_path, many)

    async def stop_while_loading() -> None:
        server = BrokerServer(ServerConfig(port=0, data_dir=str(tmp_path)))
        starting = asyncio.ensure_future(server.start())
        await _one_iteration()
        await _one_iteration()
        assert server.durability is not None and server.durability.loader is not None
        await starting  # a few loop turns: the loader is still at it
        await server.close()  # (its next turn finds the server closing)

    async def count() -> int:
        server = BrokerServer(ServerConfig(port=0, data_dir=str(tmp_path)))
        await server.start()
        try:
            assert server.durability is not None
            while server.durability.loader is not None:
                await _one_iteration()
            return server.broker.queue_statistics("big").ready
        finally:
            await server.close()

    asyncio.run(stop_while_loading())
    assert asyncio.run(count()) == many


def test_the_toolkit_restart_waits_for_every_recovered_message(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path), heartbeat=0) as broker:
        broker.declare_queue("kept", durable=True)
        for body in (b"a", b"b", b"c"):
            broker.publish("", "kept", body, delivery_mode=2)
        broker.restart()
        assert broker.broker.queue_statistics("kept").ready == 3  # no waiting after restart
        assert [broker.get("kept").body for _ in range(3)] == [b"a", b"b", b"c"]
