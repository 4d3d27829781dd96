"""TLS contexts: real handshakes over loopback with plain asyncio streams, certificates made at
run time by trustme, and settings that cannot work refused with the file they name."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable
from pathlib import Path

import pytest
import trustme

from minibroker.tls import TLSConfigError, TLSSettings, client_context, server_context

TIMEOUT = 10.0


class Files:
    """A CA, a server certificate for localhost/127.0.0.1, and a client certificate."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.ca = trustme.CA()
        self.cafile = self.write("ca.pem", self.ca.cert_pem.bytes())
        server = self.ca.issue_cert("localhost", "127.0.0.1")
        self.server_cert = self.write("server.pem", b"".join(
            blob.bytes() for blob in server.cert_chain_pems))
        self.server_key = self.write("server.key", server.private_key_pem.bytes())
        client = self.ca.issue_cert("client@example.com")
        self.client_cert = self.write("client.pem", b"".join(
            blob.bytes() for blob in client.cert_chain_pems))
        self.client_key = self.write("client.key", client.private_key_pem.bytes())
        other = trustme.CA()
        self.other_cafile = self.write("other-ca.pem", other.cert_pem.bytes())
        stranger = other.issue_cert("stranger@example.com")
        self.stranger_cert = self.write("stranger.pem", b"".join(
            blob.bytes() for blob in stranger.cert_chain_pems))
        self.stranger_key = self.write("stranger.key", stranger.private_key_pem.bytes())

    def write(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.write_bytes(data)
        return str(path)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


async def echo_server(context: ssl.SSLContext, seen: list[object]) -> asyncio.Server:
    """A TLS echo server on 127.0.0.1:0 recording each accepted peer's certificate names."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        seen.append(peer.get("subjectAltName") if peer else None)
        data = await reader.readexactly(4)
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context,
                                      ssl_handshake_timeout=TIMEOUT)


async def exchange(server: asyncio.Server, context: ssl.SSLContext,
                   host: str = "localhost") -> bytes:
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                   server_hostname=host)
    try:
        writer.write(b"ping")
        await writer.drain()
        return await reader.readexactly(4)
    finally:
        writer.close()


def run(coro: Awaitable[bytes]) -> bytes:
    async def bounded() -> bytes:
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(bounded())


def test_server_without_client_certificates(files: Files) -> None:
    seen: list[object] = []

    async def main() -> bytes:
        server = await echo_server(
            server_context(TLSSettings(files.server_cert, files.server_key)), seen)
        async with server:
            return await exchange(server, client_context(cafile=files.cafile))

    assert run(main()) == b"PING"
    assert seen == [None]  # no client certificate was asked for


def test_key_inside_the_certfile(files: Files) -> None:
    combined = files.write("combined.pem", Path(files.server_cert).read_bytes()
                           + Path(files.server_key).read_bytes())

    async def main() -> bytes:
        server = await echo_server(server_context(TLSSettings(combined)), [])
        async with server:
            return await exchange(server, client_context(cafile=files.cafile))

    assert run(main()) == b"PING"


def test_verify_peer_accepts_a_client_certificate_from_the_ca(files: Files) -> None:
    seen: list[object] = []
    settings = TLSSettings(files.server_cert, files.server_key, files.cafile, verify_peer=True)

    async def main() -> bytes:
        server = await echo_server(server_context(settings), seen)
        async with server:
            client = client_context(cafile=files.cafile, certfile=files.client_cert,
                                    keyfile=files.client_key)
            return await exchange(server, client)

    assert run(main()) == b"PING"
    assert seen == [(("email", "client@example.com"),)]


async def refused(settings: TLSSettings, client: ssl.SSLContext, seen: list[object]) -> None:
    """The handshake fails: the client sees an error or the connection end, never an echo, and
    the server never hands the connection to its handler."""
    server = await echo_server(server_context(settings), seen)
    async with server:
        with pytest.raises((ssl.SSLError, ConnectionResetError, asyncio.IncompleteReadError,
                            BrokenPipeError)):
            await exchange(server, client)


def test_verify_peer_refuses_a_client_without_a_certificate(files: Files) -> None:
    seen: list[object] = []
    settings = TLSSettings(files.server_cert, files.server_key, files.cafile, verify_peer=True)
    asyncio.run(asyncio.wait_for(
        refused(settings, client_context(cafile=files.cafile), seen), TIMEOUT))
    assert seen == []


def test_verify_peer_refuses_a_certificate_from_another_ca(files: Files) -> None:
    seen: list[object] = []
    settings = TLSSettings(files.server_cert, files.server_key, files.cafile, verify_peer=True)
    client = client_context(cafile=files.cafile, certfile=files.stranger_cert,
                            keyfile=files.stranger_key)
    asyncio.run(asyncio.wait_for(refused(settings, client, seen), TIMEOUT))
    assert seen == []


def test_client_refuses_a_server_signed_by_an_unknown_ca(files: Files) -> None:
    async def main() -> None:
        server = await echo_server(
            server_context(TLSSettings(files.server_cert, files.server_key)), [])
        async with server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await exchange(server, client_context(cafile=files.other_cafile))

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


def test_client_checks_the_host_name_unless_told_not_to(files: Files) -> None:
    async def main() -> bytes:
        server = await echo_server(
            server_context(TLSSettings(files.server_cert, files.server_key)), [])
        async with server:
            with pytest.raises(ssl.SSLCertVerificationError, match=r"match|mismatch"):
                await exchange(server, client_context(cafile=files.cafile), host="other.test")
            lenient = client_context(cafile=files.cafile, check_hostname=False)
            return await exchange(server, lenient, host="other.test")

    assert run(main()) == b"PING"


def test_contexts_require_tls_12_or_later(files: Files) -> None:
    server = server_context(TLSSettings(files.server_cert, files.server_key))
    client = client_context(cafile=files.cafile)
    assert server.minimum_version == client.minimum_version == ssl.TLSVersion.TLSv1_2


# -- settings that cannot work ------------------------------------------------------------------


def test_missing_certfile_is_named(files: Files) -> None:
    missing = str(files.dir / "nope.pem")
    with pytest.raises(TLSConfigError, match=r"certfile '.*nope\.pem' does not exist"):
        server_context(TLSSettings(missing, files.server_key))


def test_missing_keyfile_is_named(files: Files) -> None:
    with pytest.raises(TLSConfigError, match=r"keyfile '.*nokey\.pem' does not exist"):
        server_context(TLSSettings(files.server_cert, str(files.dir / "nokey.pem")))


def test_certfile_without_a_certificate_is_named(files: Files) -> None:
    garbage = files.write("garbage.pem", b"not a certificate\n")
    with pytest.raises(TLSConfigError, match=r"certfile '.*garbage\.pem' holds no PEM"):
        server_context(TLSSettings(garbage, files.server_key))


def test_certfile_without_its_key_is_named(files: Files) -> None:
    with pytest.raises(TLSConfigError, match=r"certfile '.*server\.pem' holds no PEM private"):
        server_context(TLSSettings(files.server_cert))


def test_key_of_another_certificate_is_named(files: Files) -> None:
    with pytest.raises(TLSConfigError,
                       match=r"keyfile '.*client\.key' does not hold the private key"):
        server_context(TLSSettings(files.server_cert, files.client_key))


def test_a_directory_is_not_a_certfile(files: Files) -> None:
    with pytest.raises(TLSConfigError, match="is a directory"):
        server_context(TLSSettings(str(files.dir), files.server_key))


def test_bad_cafile_is_named(files: Files) -> None:
    with pytest.raises(TLSConfigError, match=r"cafile '.*server\.key' holds no PEM certificate"):
        server_context(TLSSettings(files.server_cert, files.server_key, files.server_key))
    with pytest.raises(TLSConfigError, match=r"cafile '.*missing-ca\.pem' does not exist"):
        client_context(cafile=str(files.dir / "missing-ca.pem"))


def test_verify_peer_needs_a_cafile(files: Files) -> None:
    with pytest.raises(TLSConfigError, match="verify_peer needs a cafile"):
        TLSSettings(files.server_cert, files.server_key, verify_peer=True)


def test_client_keyfile_needs_a_certfile(files: Files) -> None:
    with pytest.raises(TLSConfigError, match="keyfile given without a certfile"):
        client_context(cafile=files.cafile, keyfile=files.client_key)
