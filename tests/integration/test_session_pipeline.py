"""The session pipeline on a fake socket: fairness (one connection's huge read is processed a
share per loop iteration, with its socket not read meanwhile, so other connections are served in
between), and internal errors (they close only their connection)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

import pytest

from minibroker.config import ServerConfig
from minibroker.core import commands as c
from minibroker.core.effects import Outcome
from minibroker.message import Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec
from minibroker.server import BrokerServer
from minibroker.server.amqp_adapter import AMQPAdapter
from minibroker.server.native_adapter import NativeAdapter
from minibroker.server.protocol import BrokerProtocol
from minibroker.server.session import FAIR_SHARE, Session


class FakeTransport:
    """Just what a session uses, recording whether reading is paused."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.reading = True
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 1) if name == "peername" else None  # loopback: guest logs in


async def native_session(server: BrokerServer) -> tuple[Session, FakeTransport, bytes]:
    """A native session on a fake socket, past the handshake, with queue "q" declared; and
    the bytes of one publish to it."""
    await server.start()
    transport = FakeTransport()
    session = Session(server, server.next_connection_id(), transport, "test",  # type: ignore[arg-type]
                      NativeAdapter)
    client = NativeCodec(role="client")
    session.data_received(client.send_preamble() + client.send(f.Hello("t", "guest", "guest")))
    session.data_received(client.send(f.Tune(131072, 2047, 0)) + client.send(
        f.ChannelOpen(1)) + client.send(f.QueueDeclare(1, "q", False, False, False, False, {})))
    return session, transport, client.send(f.Publish(1, "", "q", False, Properties(), b"m"))


async def amqp_session(server: BrokerServer) -> tuple[Session, FakeTransport, bytes]:
    """The same over AMQP 0-9-1."""
    await server.start()
    transport = FakeTransport()
    session = Session(server, server.next_connection_id(), transport, "test",  # type: ignore[arg-type]
                      AMQPAdapter)
    client = AMQPCodec("client")
    session.data_received(PROTOCOL_HEADER)
    session.data_received(
        client.encode_method(0, m.ConnectionStartOk({}, "PLAIN", b"\0guest\0guest"))
        + client.encode_method(0, m.ConnectionTuneOk(2047, 131072, 0))
        + client.encode_method(0, m.ConnectionOpen())
        + client.encode_method(1, m.ChannelOpen())
        + client.encode_method(1, m.QueueDeclare(queue="q")))
    return session, transport, client.encode_content(
        1, m.BasicPublish(routing_key="q"), Properties(), b"m")


@pytest.mark.parametrize("open_session", [native_session, amqp_session])
def test_a_huge_read_is_processed_a_share_per_loop_iteration(
    open_session: Callable[[BrokerServer], Awaitable[tuple[Session, FakeTransport, bytes]]],
) -> None:
    """The same rule for every protocol: the session pipeline, not the protocol, keeps it."""

    async def scenario() -> None:
        server = BrokerServer(ServerConfig(port=0, heartbeat=0))
        session, transport, one = await open_session(server)
        total = 3 * FAIR_SHARE + 10
        session.data_received(one * total)
        # The first share is done at once; the socket is not read until the rest is.
        assert server.broker.queue_statistics("q").ready == FAIR_SHARE
        assert not transport.reading
        for _ in range(3):
            await asyncio.sleep(0)  # one loop iteration: the next share
        assert server.broker.queue_statistics("q").ready == total
        assert transport.reading
        await server.close()

    asyncio.run(scenario())


def test_a_bad_frame_after_a_huge_read_is_answered_without_more_input() -> None:
    """The codec hands out the good frames before a bad one and raises on the next call: once
    the backlog is done, the session must ask again, not wait for bytes that never come."""

    async def scenario() -> None:
        server = BrokerServer(ServerConfig(port=0, heartbeat=0))
        session, transport, one = await native_session(server)
        garbage = struct.pack(">I", 3) + b"\xc1\xc1\xc1"  # not msgpack
        session.data_received(one * (2 * FAIR_SHARE + 5) + garbage)
        for _ in range(2):
            await asyncio.sleep(0)
        session.flush()
        reply = NativeCodec(role="client")
        reply.receive_data(b"".join(transport.written))
        frames = reply.frames()
        assert any(isinstance(frame, f.ConnectionClose) and frame.reply_code == 502
                   for frame in frames), frames
        assert server.broker.queue_statistics("q").ready == 2 * FAIR_SHARE + 5
        await server.close()

    asyncio.run(scenario())


class FailingPurge:
    """An interceptor standing in for a bug in the broker: purging raises."""

    def execute(self, session: Session, command: c.Command) -> Outcome:
        if isinstance(command, c.PurgeQueue):
            raise RuntimeError("a bug")
        return session.server.execute(command)

    def hold_reply(self, session: Session, command: c.Command, send: object) -> bool:
        return False


def test_an_internal_error_closes_its_connection_and_the_close_ok_is_still_read() -> None:
    async def scenario() -> None:
        server = BrokerServer(ServerConfig(port=0, heartbeat=0))
        await server.start()
        transport = FakeTransport()
        protocol = BrokerProtocol(server)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        client = NativeCodec(role="client")
        protocol.data_received(client.send_preamble() + client.send(f.Hello("t", "guest", "guest")))
        protocol.data_received(client.send(f.Tune(131072, 2047, 0)) + client.send(
            f.ChannelOpen(1)) + client.send(f.QueueDeclare(1, "q", False, False, False, False,
                                                           {})))
        server.interceptor = FailingPurge()
        protocol.data_received(client.send(f.QueuePurge(1, "q")))
        assert server.internal_errors == 1
        assert protocol.session is not None
        protocol.session.flush()
        replies = NativeCodec(role="client")
        replies.receive_data(b"".join(transport.written))
        assert replies.frames()[-1] == f.ConnectionClose(541, "INTERNAL_ERROR")
        assert not transport.closed  # waiting for the client's close-ok...
        protocol.data_received(client.send(f.ConnectionCloseOk()))
        assert transport.closed  # ...which is read: the socket closes at once
        await server.close()

    asyncio.run(scenario())
