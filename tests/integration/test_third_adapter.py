"""A third protocol plugs into the session pipeline with an adapter and nothing else.

A toy line protocol ("declare q", "publish q body", "count q"), about as much glue as an
HTTP management adapter needs, served on a listener of its own: the pipeline does the rest
(entering and leaving the core, running commands, failing a channel, replies).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from minibroker.core import commands as c
from minibroker.core.effects import Effect, QueueDeclareOk, Reply
from minibroker.errors import AMQPError
from minibroker.message import Message
from minibroker.protocols.events import ChannelOpened, CloseSocket, ConnectionOpened
from minibroker.server import BrokerServer
from minibroker.server.protocol import BrokerProtocol
from minibroker.server.session import Session
from tests.integration.conftest import RunBroker


@dataclass
class Line:
    channel: int
    words: list[str]


class LineAdapter:
    name: ClassVar[str] = "lines"
    heartbeat = 0

    def __init__(self, session: Session) -> None:
        self.session = session
        self._buffer = b""
        self._opened = False

    def receive(self, data: bytes) -> None:
        self._buffer += data

    def events(self) -> Iterator[Any]:
        if not self._opened:
            self._opened = True
            yield ConnectionOpened("guest", "/", {})
            yield ChannelOpened(1)
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            yield Line(1, line.decode().split())

    def command(self, frame: Line) -> c.Command | None:
        verb, queue, *rest = frame.words
        connection = self.session.id
        if verb == "declare":
            return c.DeclareQueue(connection, 1, queue)
        if verb == "publish":
            return c.Publish(connection, 1, Message("", queue, rest[0].encode()))
        ready = self.session.server.broker.queue_statistics(queue).ready  # answered here
        self.session.write(b"%d\n" % ready)
        return None

    def batch_command(self, frames: Sequence[Any]) -> c.Command:
        raise AssertionError("this protocol makes no runs")

    def send_reply(self, frame: Line, reply: Reply | None) -> None:
        name = reply.queue if isinstance(reply, QueueDeclareOk) else ""
        self.session.write(f"ok {name}".strip().encode() + b"\n")

    def send_effect(self, effect: Effect) -> None:
        pass

    def channel_is_open(self, channel: int) -> bool:
        return not self.session.closed

    def close_channel(self, channel: int, reply_code: int, reply_text: str, *,
                      frame: Any = None, error: AMQPError | None = None) -> bool:
        self.session.write(f"error {reply_code}\n".encode())
        return True

    def close_connection(self, reply_code: int, reply_text: str, *, frame: Any = None,
                         error: AMQPError | None = None) -> CloseSocket:
        return CloseSocket(reply_text)

    def tick(self, now: float, *, heard: bool) -> bool:
        return True

    def before_flush(self) -> None:
        pass

    def flushed(self) -> None:
        pass

    def set_blocked(self, reason: str | None) -> bool:
        return False


def test_a_third_protocol_needs_only_an_adapter(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        server.adapters["lines"] = LineAdapter
        listener = await server.loop.create_server(
            lambda: BrokerProtocol(server, only="lines"), "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"declare jobs\npublish jobs one\npublish jobs two\ncount jobs\n")
        assert [await reader.readline() for _ in range(2)] == [b"ok jobs\n", b"ok\n"]
        assert [await reader.readline() for _ in range(2)] == [b"ok\n", b"2\n"]
        assert server.broker.queue_statistics("jobs").ready == 2
        writer.write(b"publish nowhere-exchange-less x\ndeclare amq.reserved\n")
        assert await reader.readline() == b"ok\n"  # default exchange, no such queue: dropped
        assert await reader.readline() == b"error 403\n"  # the core refused: channel error
        writer.close()
        await writer.wait_closed()
        listener.close()

    run_broker(scenario)
