"""Overload: a publisher flood is throttled, a stalled consumer costs a bounded buffer, and
many idle connections are served. Real sockets on 127.0.0.1:0; every wait has a timeout.

``open_idle_connections(port, count)`` is reusable (the 10,000-connection benchmark).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import struct
from collections.abc import Callable

import pytest

from minibroker.cli import build_parser
from minibroker.config import ServerConfig
from minibroker.core.channels import DELIVERY_BURST
from minibroker.message import EMPTY_PROPERTIES as _PROPS
from minibroker.message import FieldTable
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.content import encode_content
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame, encode_method
from minibroker.protocols.amqp091.frames import Frame as AMQPFrame
from minibroker.protocols.amqp091.methods import (
    BasicConsume,
    BasicPublish,
    BasicQos,
    ChannelOpen,
    ConnectionBlocked,
    ConnectionOpen,
    ConnectionStartOk,
    ConnectionTuneOk,
    ConnectionUnblocked,
    Method,
    QueueDeclare,
)
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER
from minibroker.protocols.native import frames as f
from minibroker.server import BrokerServer
from minibroker.server.flow import install_accept_error_handler, raise_open_file_limit
from minibroker.server.session import Session
from tests.integration.conftest import RunBroker
from tests.integration.rawclient import RawClient

QUEUE = "flood"
TIMEOUT = 10.0
#: The most one socket read hands the broker (asyncio's and uvloop's read size).
READ_SIZE = 256 * 1024


# -- helpers ------------------------------------------------------------------------------------


class AMQPClient:
    """Just enough AMQP 0-9-1 over asyncio streams, announcing ``connection.blocked``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.codec = AMQPCodec("client")

    @classmethod
    async def connect(cls, port: int, receive_buffer: int | None = None) -> AMQPClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        client = cls(*await asyncio.open_connection(sock=sock))
        client.writer.write(PROTOCOL_HEADER)
        await client.recv()  # connection.start
        capabilities: FieldTable = {"capabilities": {"connection.blocked": True}}
        client.send(ConnectionStartOk(capabilities, "PLAIN", b"\0guest\0guest"))
        await client.recv()  # connection.tune
        client.send(ConnectionTuneOk(2047, 131072, 0))
        client.send(ConnectionOpen("/"))
        await client.recv()  # connection.open-ok
        client.send(ChannelOpen(), channel=1)
        await client.recv()  # channel.open-ok
        return client

    def send(self, method: Method, channel: int = 0) -> None:
        self.writer.write(encode_method(channel, method))

    def publish(self, body: bytes, routing_key: str = QUEUE) -> None:
        self.writer.write(encode_content(1, BasicPublish(0, "", routing_key), _PROPS, body, 0))

    async def recv(self, timeout: float = TIMEOUT) -> AMQPFrame:
        async with asyncio.timeout(timeout):
            while (frame := self.codec.next_frame()) is None:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("the broker closed the connection")
                self.codec.receive_data(data)
        return frame

    async def method(self, kind: type[Method], timeout: float = TIMEOUT) -> Method:
        """The next method of ``kind``, skipping others (deliveries, ...)."""
        while True:
            frame = await self.recv(timeout)
            if isinstance(frame, MethodFrame | ContentMethod) and isinstance(frame.method, kind):
                return frame.method


async def open_idle_connections(port: int, count: int, *, batch: int = 200) -> list[RawClient]:
    """Open ``count`` native connections, each through its handshake, ``batch`` at a time."""
    clients: list[RawClient] = []
    for start in range(0, count, batch):
        clients += await asyncio.gather(*(RawClient.connect(port)
                                          for _ in range(min(batch, count - start))))
    return clients


def numbered(index: int, size: int) -> bytes:
    return struct.pack(">I", index) + b"x" * (size - 4)


def session_of(server: BrokerServer, before: set[int]) -> Session:
    """The one session registered since ``before`` (a snapshot of ``server.sessions``)."""
    (new,) = set(server.sessions) - before
    return server.sessions[new]


def on_every_input(server: BrokerServer, probe: Callable[[], None]) -> None:
    server.input_hooks.append(probe)


async def wait_until(server: BrokerServer, condition: Callable[[], bool]) -> None:
    """Wait (bounded) until ``condition()`` holds after one of the broker's inputs."""
    if condition():
        return
    done = asyncio.get_running_loop().create_future()

    def check() -> None:
        if not done.done() and condition():
            done.set_result(None)
    server.input_hooks.append(check)
    try:
        await asyncio.wait_for(done, TIMEOUT)
    finally:
        server.input_hooks.remove(check)


# -- publisher flood ----------------------------------------------------------------------------

FLOOD_BODY = 1024
FLOOD_CONFIG = ServerConfig(port=0, shutdown_grace=0.2, queue_high_water=2000,
                            memory_high_water=16 * 1024 * 1024)


def test_a_flood_is_throttled_without_losing_a_message(run_broker: RunBroker) -> None:
    total = 20_000  # 20 MB of bodies: ten times the queue's high-water mark

    async def scenario(server: BrokerServer) -> None:
        queue_high = FLOOD_CONFIG.queue_high_water
        # One read of each of the two publishers may land after the alarm went on.
        slack = 2 * (READ_SIZE // FLOOD_BODY + 1)
        peak = [0]

        def probe() -> None:
            queue = server.broker.topology.queues.get(QUEUE)
            if queue is not None:
                peak[0] = max(peak[0], len(queue.ready))
        on_every_input(server, probe)

        consumer = await RawClient.connect(server.port)
        await consumer.open_channel()
        await consumer.declare_queue(QUEUE)
        before = set(server.sessions)
        flooder = await RawClient.connect(server.port)
        flooder_session = session_of(server, before)
        await flooder.open_channel()
        before = set(server.sessions)
        amqp = await AMQPClient.connect(server.port)
        amqp_session = session_of(server, before)

        # The flood: everything written at once, no confirms, nothing awaited.
        flooder.send(*(f.Publish(1, "", QUEUE, False, _PROPS, numbered(i, FLOOD_BODY))
                       for i in range(total)))
        await wait_until(server, lambda: server.flow.alarm is not None)
        assert flooder_session in server.flow.blocked
        assert not flooder_session.transport.is_reading()
        # The AMQP client publishes during the alarm: it is blocked and told so.
        amqp.publish(numbered(total, FLOOD_BODY))
        blocked = await amqp.method(ConnectionBlocked)
        assert isinstance(blocked, ConnectionBlocked) and QUEUE in blocked.reason, blocked
        assert amqp_session in server.flow.blocked

        # A consumer drains the queue while the flooder is still far from done.
        consumer.send(f.Qos(1, 100, False))
        await consumer.expect(f.QosOk)
        await consumer.consume(QUEUE)
        seen: set[int] = set()
        received_during_flood = 0
        unblocked = asyncio.ensure_future(amqp.method(ConnectionUnblocked, timeout=2 * TIMEOUT))
        while len(seen) < total + 1:
            frame = await consumer.expect(f.Deliver)
            index = struct.unpack_from(">I", frame.body)[0]
            assert index not in seen, f"message {index} delivered twice"
            seen.add(index)
            consumer.send(f.Ack(1, frame.delivery_tag))
            if server.broker.published < total:  # the flooder is not done yet
                received_during_flood += 1
        assert seen == set(range(total + 1))  # nothing lost
        assert received_during_flood > 0  # the consumer made progress during the flood
        await asyncio.wait_for(unblocked, TIMEOUT)
        assert server.flow.alarm is None and not server.flow.blocked
        assert server.flow.alarms >= 1
        assert peak[0] <= queue_high + slack, (peak[0], queue_high, slack)
        assert server.flow.meter.total == 0  # everything delivered and acked: meter back to 0
        for client in (flooder, consumer):
            client.abort()
        amqp.writer.close()

    run_broker(scenario, config=FLOOD_CONFIG, timeout=60)


def test_the_memory_mark_blocks_a_flood_of_large_messages(run_broker: RunBroker) -> None:
    body_size = 64 * 1024
    config = ServerConfig(port=0, shutdown_grace=0.2, memory_high_water=4 * 1024 * 1024)

    async def scenario(server: BrokerServer) -> None:
        peak = [0]
        on_every_input(server, lambda: peak.__setitem__(0, max(peak[0], server.flow.meter.total)))
        publisher = await RawClient.connect(server.port)
        await publisher.open_channel()
        await publisher.declare_queue(QUEUE)
        publisher.send(*(f.Publish(1, "", QUEUE, False, _PROPS, numbered(i, body_size))
                         for i in range(200)))  # 12.5 MiB
        await wait_until(server, lambda: bool(server.flow.blocked))
        assert "memory" in (server.flow.alarm or "")
        assert server.broker.published < 200
        # Another connection purges: the alarm clears, the publisher is resumed and sends the
        # rest (perhaps blocked again on the way); every message is accounted for.
        admin = await RawClient.connect(server.port)
        await admin.open_channel()
        purged = 0
        while True:
            purged += (await admin.call(f.QueuePurge(1, QUEUE), f.QueuePurgeOk)).message_count
            assert server.flow.alarm is None and not server.flow.blocked
            if purged == 200:
                break
            # The resumed publisher sends until it is blocked again or done.
            await wait_until(server, lambda: server.broker.published == 200 or bool(
                server.flow.blocked))
        assert peak[0] <= config.memory_high_water + READ_SIZE + 2 * body_size, peak[0]
        publisher.abort()
        admin.abort()

    run_broker(scenario, config=config, timeout=30)


# -- slow consumers -----------------------------------------------------------------------------

SLOW_BODY = 16 * 1024
PREFETCH = 20
#: asyncio's default write-buffer high-water mark: past it the transport calls pause_writing.
TRANSPORT_HIGH_WATER = 64 * 1024


@pytest.mark.parametrize("no_ack", [False, True], ids=["ack", "no-ack"])
@pytest.mark.parametrize("protocol", ["native", "amqp"])
def test_a_stalled_consumer_gets_a_bounded_buffer(
    run_broker: RunBroker, protocol: str, no_ack: bool
) -> None:
    count = 1000  # 16 MB, far beyond the stalled consumer's socket buffers

    async def scenario(server: BrokerServer) -> None:
        before = set(server.sessions)
        stalled: RawClient | AMQPClient
        if protocol == "native":
            stalled = await RawClient.connect(server.port, receive_buffer=4096)
            await stalled.open_channel()
            await stalled.declare_queue(QUEUE)
            stalled.send(f.Qos(1, PREFETCH, False))
            await stalled.expect(f.QosOk)
            await stalled.consume(QUEUE, no_ack=no_ack)
        else:
            stalled = await AMQPClient.connect(server.port, receive_buffer=4096)
            stalled.send(BasicQos(0, PREFETCH, False), channel=1)
            await stalled.recv()
            stalled.send(QueueDeclare(0, QUEUE), channel=1)
            await stalled.recv()  # declare-ok
            stalled.send(BasicConsume(0, QUEUE, "", False, no_ack), channel=1)
            await stalled.recv()  # consume-ok
        session = session_of(server, before)
        peak = [0]
        on_every_input(server, lambda: peak.__setitem__(
            0, max(peak[0], session.transport.get_write_buffer_size())))
        # From now on the stalled consumer reads nothing.
        publisher = await RawClient.connect(server.port)
        await publisher.open_channel()
        await publisher.call(f.ConfirmSelect(1), f.ConfirmSelectOk)
        acked: set[int] = set()
        for start in range(0, count, 50):
            publisher.send(*(f.Publish(1, "", QUEUE, False, _PROPS, numbered(i, SLOW_BODY))
                             for i in range(start, start + 50)))
            while len(acked) < start + 50:
                frame = await publisher.recv()
                if isinstance(frame, f.ConfirmAck):
                    acked |= set(range(1, frame.delivery_tag + 1)) if frame.multiple else {
                        frame.delivery_tag}
        ready = server.broker.queue_statistics(QUEUE).ready
        delivered = count - ready
        frame_size = SLOW_BODY + 200
        # Ack: the prefetch window; no-ack: one read of the publisher after the buffer filled.
        burst = PREFETCH if not no_ack else READ_SIZE // SLOW_BODY + 1
        # What left the queue sits in the kernel's socket buffers (auto-tuned, up to a few MB)
        # and the transport's buffer; the rest stays ready.
        assert ready >= count // 2, delivered
        assert peak[0] <= TRANSPORT_HIGH_WATER + burst * frame_size, (peak[0], delivered)
        assert session.transport.get_write_buffer_size() <= peak[0]
        publisher.abort()
        if isinstance(stalled, RawClient):
            stalled.abort()
        else:
            stalled.writer.close()

    run_broker(scenario, timeout=30)


@pytest.mark.parametrize("prefetch", [None, 0], ids=["no-ack", "ack-without-window"])
def test_a_backlog_reaches_a_window_less_consumer_one_burst_at_a_time(
    run_broker: RunBroker, prefetch: int | None
) -> None:
    """A consumer with no prefetch window subscribing to a big backlog must not get all of it
    written into its buffer at once: deliveries go out one burst per loop iteration, and stop
    once the socket pushes back."""
    count = 1000  # 16 MB ready before the consumer arrives

    async def scenario(server: BrokerServer) -> None:
        publisher = await RawClient.connect(server.port)
        await publisher.open_channel()
        await publisher.declare_queue(QUEUE)
        for start in range(0, count, 100):
            publisher.send(*(f.Publish(1, "", QUEUE, False, _PROPS, numbered(i, SLOW_BODY))
                             for i in range(start, start + 100)))
        await wait_until(server, lambda: server.broker.queue_statistics(QUEUE).ready == count)
        before = set(server.sessions)
        stalled = await RawClient.connect(server.port, receive_buffer=4096)
        session = session_of(server, before)
        await stalled.open_channel()
        peak = [0]
        on_every_input(server, lambda: peak.__setitem__(
            0, max(peak[0], session.transport.get_write_buffer_size())))
        original_flush = session.flush

        def flush_and_measure() -> None:
            original_flush()
            peak[0] = max(peak[0], session.transport.get_write_buffer_size())

        session.flush = flush_and_measure  # type: ignore[method-assign]
        await stalled.consume(QUEUE, no_ack=prefetch is None)
        # Give the broker every chance to push more: round trips on another connection.
        for _ in range(20):
            await publisher.declare_queue(QUEUE)
        ready = server.broker.queue_statistics(QUEUE).ready
        assert ready >= count // 2, ready
        assert peak[0] <= TRANSPORT_HIGH_WATER + DELIVERY_BURST + 2 * (SLOW_BODY + 200), peak[0]
        publisher.abort()
        stalled.abort()

    run_broker(scenario, timeout=30)


# -- many idle connections ----------------------------------------------------------------------


def test_hundreds_of_idle_connections_are_all_served(run_broker: RunBroker) -> None:
    count = 500

    async def scenario(server: BrokerServer) -> None:
        clients = await open_idle_connections(server.port, count)
        assert len(server.sessions) == count
        # Every one of them is still served: a round trip on each.
        for client in clients:
            client.send(f.ChannelOpen(1))
        for client in clients:
            await client.expect(f.ChannelOpenOk)
        for client in clients:
            client.abort()

    run_broker(scenario, timeout=60)


def test_running_out_of_descriptors_is_one_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        install_accept_error_handler(loop)
        context = {"message": "socket.accept() out of system resource",
                   "exception": OSError(errno.EMFILE, "Too many open files")}
        with caplog.at_level(logging.DEBUG, logger="asyncio"):
            for _ in range(5):  # asyncio retries every second
                loop.call_exception_handler(context)
    finally:
        loop.close()
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "RLIMIT_NOFILE" in errors[0].getMessage()
    assert errors[0].exc_info is None  # a sentence, not a traceback


def test_start_raises_the_descriptor_limit_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    now = raise_open_file_limit(1)
    assert now == resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= soft
    if hard != resource.RLIM_INFINITY:  # an unlimited hard limit may be beyond the kernel's
        assert now == hard


@pytest.mark.parametrize(("field", "value"), [
    ("max_frame_size", 1000), ("max_frame_size", 2**32), ("channel_max", 0),
    ("channel_max", 70_000), ("heartbeat", -1), ("heartbeat", 70_000),
])
def test_impossible_protocol_limits_are_refused_in_the_config(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        ServerConfig(**{field: value})  # type: ignore[arg-type]


def test_overload_marks_are_validated_and_come_from_the_command_line() -> None:
    with pytest.raises(ValueError, match="memory_low_water"):
        ServerConfig(memory_high_water=100, memory_low_water=200)
    with pytest.raises(ValueError, match="queue_high_water"):
        ServerConfig(queue_high_water=0)
    args = build_parser().parse_args(["--memory-high-water", "1048576", "--queue-high-water", "5"])
    assert (args.memory_high_water, args.queue_high_water) == (1048576, 5)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--queue-high-water", "0"])
