"""``server/liveness.py``: how the sweep tells a slow sender (``FrameWatch``, driven here with
explicit times) and a socket we do not read that has lost its peer (``peer_hung_up``, real
sockets)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from minibroker.server.liveness import FrameWatch, peer_hung_up


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


def test_a_frame_in_progress_is_dated_from_the_read_that_began_it() -> None:
    watch = FrameWatch()
    watch.received += 10
    watch.after_read(4, lambda: 100.0)  # 6 bytes were frames, 4 begin the next one
    assert watch.stalled_since == 100.0
    watch.received += 1
    watch.after_read(5, lambda: 150.0)  # one more byte of the same frame: not progress
    assert watch.stalled_since == 100.0
    assert not watch.expired(160.0, 60.0, held=False)
    assert watch.expired(160.5, 60.0, held=False)
    assert not watch.expired(160.5, 0.0, held=False)  # 0 disables
    watch.received += 5
    watch.after_read(2, lambda: 170.0)  # the frame completed, another began
    assert watch.stalled_since == 170.0
    assert not watch.expired(300.0, 60.0, held=True)  # our hold: the wait restarts
    assert watch.stalled_since == 300.0
    watch.received += 2
    watch.after_read(0, lambda: 301.0)  # nothing in progress
    assert watch.stalled_since is None and not watch.expired(10_000.0, 60.0, held=False)
