"""The TLS listener (--tls-port): AMQPS with pika, minibrokers:// with the native client, and
client certificates with --verify-peer. Certificates are made at run time by trustme."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from urllib.parse import quote

import aio_pika
import pika
import pytest
from pika.exceptions import AMQPConnectionError

import minibroker
from minibroker.errors import ConnectionClosed
from minibroker.testing import broker_in_thread, running_broker
from minibroker.tls import TLSSettings
from tests.unit.security.test_tls import Files

TIMEOUT = 10.0


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def _pika(port: int, files: Files, *, client_cert: bool) -> pika.BlockingConnection:
    context = ssl.create_default_context(cafile=files.cafile)
    if client_cert:
        context.load_cert_chain(files.client_cert, files.client_key)
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", port, ssl_options=pika.SSLOptions(context, "localhost"),
        connection_attempts=1, socket_timeout=TIMEOUT, stack_timeout=TIMEOUT))


def test_pika_over_tls(files: Files) -> None:
    settings = TLSSettings(files.server_cert, files.server_key)
    with broker_in_thread(heartbeat=0, tls_port=0, tls=settings) as broker:
        connection = _pika(broker.server.tls_port, files, client_cert=False)
        try:
            channel = connection.channel()
            channel.queue_declare("q")
            channel.basic_publish("", "q", b"encrypted on the wire")
            assert channel.basic_get("q", auto_ack=True)[2] == b"encrypted on the wire"
        finally:
            connection.close()
        assert broker.port != broker.server.tls_port  # the plain port still serves


def test_the_native_client_over_tls(files: Files) -> None:
    async def main() -> None:
        settings = TLSSettings(files.server_cert, files.server_key)
        async with running_broker(heartbeat=0, tls_port=0, tls=settings) as broker:
            port = broker.server.tls_port
            url = f"minibrokers://localhost:{port}/?cafile={quote(files.cafile)}"
            async with minibroker.connect(url) as conn:
                channel = await conn.channel()
                await channel.declare_queue("q")
            assert broker.has_queue("q")
            # A server certificate from a CA the client does not trust fails the handshake.
            untrusted = f"minibrokers://localhost:{port}/?cafile={quote(files.other_cafile)}"
            with pytest.raises(ConnectionClosed, match="CERTIFICATE_VERIFY_FAILED"):
                await minibroker.connect(untrusted)

    asyncio.run(main())


def test_verify_peer_refuses_a_client_without_a_certificate(files: Files) -> None:
    settings = TLSSettings(files.server_cert, files.server_key, cafile=files.cafile,
                           verify_peer=True)
    with broker_in_thread(heartbeat=0, tls_port=0, tls=settings) as broker:
        port = broker.server.tls_port
        with pytest.raises(AMQPConnectionError):
            _pika(port, files, client_cert=False)
        _pika(port, files, client_cert=True).close()
        assert broker.statistics().connections == 0

    async def native() -> None:
        base = f"minibrokers://localhost:{port}/?cafile={quote(files.cafile)}"
        async with minibroker.connect(
                f"{base}&certfile={quote(files.client_cert)}&keyfile={quote(files.client_key)}"
        ) as conn:
            await conn.channel()
        async with minibroker.connect(
                f"{base}&certfile={quote(files.stranger_cert)}"
                f"&keyfile={quote(files.stranger_key)}"):
            pass

    with broker_in_thread(heartbeat=0, tls_port=0, tls=settings) as broker:
        port = broker.server.tls_port
        with pytest.raises(ConnectionClosed):  # the stranger's certificate is refused
            asyncio.run(native())


def test_aio_pika_over_tls(files: Files) -> None:
    async def main() -> None:
        settings = TLSSettings(files.server_cert, files.server_key)
        async with running_broker(heartbeat=0, tls_port=0, tls=settings) as broker:
            context = ssl.create_default_context(cafile=files.cafile)
            connection = await aio_pika.connect(
                f"amqps://guest:guest@localhost:{broker.server.tls_port}/",
                ssl_context=context, timeout=TIMEOUT)
            async with connection:
                channel = await connection.channel()
                queue = await channel.declare_queue("q")
                await channel.default_exchange.publish(aio_pika.Message(b"tls"), "q")
                message = await queue.get(timeout=TIMEOUT)
                assert message is not None and message.body == b"tls"
                await message.ack()

    asyncio.run(main())
