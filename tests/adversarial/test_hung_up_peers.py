"""``peer_hung_up``: how the sweep tells that a socket we do not read has lost its peer."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from minibroker.server.session import peer_hung_up


class _Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> object:
        return self.sock if name == "socket" else None


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    yield server, client
    server.close()
    client.close()


def test_a_live_peer_has_not_hung_up(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    assert not peer_hung_up(_Transport(server))  # type: ignore[arg-type]
    client.sendall(b"pending")
    assert not peer_hung_up(_Transport(server))  # type: ignore[arg-type]


def test_a_peer_that_shut_down_has_hung_up_once_nothing_is_left_to_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    client.sendall(b"last words")
    client.shutdown(socket.SHUT_WR)
    assert not peer_hung_up(_Transport(server))  # type: ignore[arg-type]  # still to read
    assert server.recv(100) == b"last words"
    assert peer_hung_up(_Transport(server))  # type: ignore[arg-type]


def test_a_peer_that_reset_has_hung_up(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.sendall(b"lost anyway")
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    assert peer_hung_up(_Transport(server))  # type: ignore[arg-type]
