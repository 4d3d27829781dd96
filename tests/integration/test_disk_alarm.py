"""``--disk-free-limit``: below it, the resource alarm blocks publishers (``flow.py`` rule 6),
and an AMQP client that asked for it is told ``connection.blocked``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pika

from minibroker.config import ServerConfig
from minibroker.server.server import BrokerServer


def test_too_little_free_disk_blocks_publishers(tmp_path: Path) -> None:
    blocked: list[str] = []

    async def main() -> None:
        server = BrokerServer(ServerConfig(port=0, data_dir=str(tmp_path),
                                           disk_free_limit=1 << 62))
        await server.start()
        try:
            durability = server.durability
            assert durability is not None
            loop = asyncio.get_running_loop()

            def client() -> pika.BlockingConnection:
                connection = pika.BlockingConnection(pika.ConnectionParameters(
                    "127.0.0.1", server.amqp_port))
                connection.add_on_connection_blocked_callback(
                    lambda _conn, frame: blocked.append(frame.method.reason))
                channel = connection.channel()
                channel.basic_publish("", "nowhere", b"x")
                deadline = loop.time() + 10
                while not blocked and loop.time() < deadline:
                    connection.process_data_events(time_limit=0.1)
                return connection

            durability.maintain()  # what the periodic sweep runs
            alarm = server.flow.alarm
            assert alarm is not None and "--disk-free-limit" in alarm and str(tmp_path) in alarm
            connection = await loop.run_in_executor(None, client)
            server.flow.disk_alarm(None)  # the space is back: the publisher is read again
            assert server.flow.alarm is None
            await loop.run_in_executor(None, connection.close)
        finally:
            await server.close()

    asyncio.run(main())
    assert blocked and blocked[0].startswith("disk:")
