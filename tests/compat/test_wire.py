"""Raw-socket checks of the AMQP listener: protocol header refusal and heartbeats.

Every wait is a socket read with a timeout: the test waits for the broker's octets, not for
time. The broker's time is a :class:`ManualClock` the test moves.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from minibroker.config import ServerConfig
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.frames import Frame, Heartbeat, MethodFrame, encode_method
from minibroker.protocols.amqp091.methods import (
    ConnectionOpen,
    ConnectionOpenOk,
    ConnectionStartOk,
    ConnectionTuneOk,
)
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER
from minibroker.testing import ManualClock
from tests.compat.conftest import TIMEOUT, ServerThread, make_server


@pytest.fixture
def manual_clock_broker() -> Iterator[tuple[ServerThread, ManualClock]]:
    """A broker proposing 10 s heartbeats, on a clock that moves only when the test says."""
    clock = ManualClock()
    running = make_server(ServerConfig(port=0, heartbeat=10), clock)
    running.call(clock.attach, running.server)  # on the loop's thread: advance() runs there
    try:
        yield running, clock
    finally:
        running.stop()


class RawClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.codec = AMQPCodec("client")

    def next_frame(self) -> Frame | None:
        """The next frame from the broker; ``None`` once the broker closed the socket."""
        while True:
            frame = self.codec.next_frame()
            if frame is not None:
                return frame
            data = self.sock.recv(65536)
            if not data:
                return None
            self.codec.receive_data(data)

    def open(self, heartbeat: int) -> None:
        self.sock.sendall(PROTOCOL_HEADER)
        self.next_frame()  # connection.start
        self.sock.sendall(encode_method(0, ConnectionStartOk({}, "PLAIN", b"\0guest\0guest")))
        self.next_frame()  # connection.tune
        self.sock.sendall(encode_method(0, ConnectionTuneOk(2047, 131072, heartbeat)))
        self.sock.sendall(encode_method(0, ConnectionOpen("/")))
        assert self.next_frame() == MethodFrame(0, ConnectionOpenOk(""))

    def close(self) -> None:
        self.sock.close()


def test_unsupported_protocol_header_is_answered_and_closed(broker: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"AMQP\x01\x01\x00\x0a")  # AMQP 1.0
        answer = b""
        while chunk := sock.recv(64):
            answer += chunk
    assert answer == b"AMQP\x00\x00\x09\x01"


def test_broker_sends_heartbeats_and_drops_a_silent_peer(
    manual_clock_broker: tuple[ServerThread, ManualClock],
) -> None:
    running, clock = manual_clock_broker
    client = RawClient(running.port)
    try:
        client.open(heartbeat=10)
        clock.advance(0)  # the broker notes the handshake's traffic at time 0
        clock.advance(5)  # half an interval with nothing sent: the broker's heartbeat is due
        assert client.next_frame() == Heartbeat()
        clock.advance(25)  # 30 s in all without a byte from us: more than two intervals
        frames = []
        while (frame := client.next_frame()) is not None:
            frames.append(frame)
        # At most heartbeats came meanwhile, then the broker hung up without a close.
        assert all(isinstance(frame, Heartbeat) for frame in frames)
    finally:
        client.close()

