"""Protocol errors: octets RabbitMQ accepts are accepted, and the closes a client provokes are
logged one line each, rate-limited.

Issue: an invalid UTF-8 routing key closed the whole connection (RabbitMQ 3.10 routes it: it
refuses such octets in ``queue.bind``, not in ``basic.publish``), and closes caused by protocol
errors were not logged, or would be logged 100,000 times for 100,000 refused publishes.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from minibroker.message import EMPTY_PROPERTIES
from minibroker.protocols.amqp091.content import encode_content
from minibroker.protocols.amqp091.methods import (
    BasicGet,
    BasicGetOk,
    BasicPublish,
    ChannelClose,
    ChannelCloseOk,
    ChannelOpen,
    QueueDeclare,
)
from minibroker.server import BrokerServer
from minibroker.server.closelog import BURST, CloseLog
from minibroker.testing import ManualClock
from tests.adversarial.canary import Canary
from tests.integration.conftest import RunBroker
from tests.integration.test_overload import AMQPClient

NOT_UTF8 = b"\xff\xfe".decode("utf-8", "surrogateescape")
CHANNEL_ERRORS = 1000


def test_an_invalid_utf8_routing_key_is_routed_not_refused(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        client = await AMQPClient.connect(server.port)
        client.send(QueueDeclare(0, "q"), channel=1)
        await client.recv()
        for exchange in ("amq.direct", ""):  # unroutable both ways, as in RabbitMQ
            client.writer.write(encode_content(1, BasicPublish(0, exchange, NOT_UTF8),
                                               EMPTY_PROPERTIES, b"x", 0))
        client.publish(b"after", routing_key="q")
        client.send(BasicGet(0, "q", True), channel=1)
        got = await client.method(BasicGetOk)
        assert isinstance(got, BasicGetOk) and got.routing_key == "q"
        await canary.round()
        await canary.close()
        client.writer.close()

    run_broker(scenario)


def test_channel_errors_in_a_loop_log_a_bounded_number_of_lines(
    run_broker: RunBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="minibroker.server")

    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        client = await AMQPClient.connect(server.port)
        # Channel 1 is open: a publish to a missing exchange closes it (404); the client
        # answers close-ok and opens it again, pipelined, a thousand times.
        for _ in range(CHANNEL_ERRORS):
            client.writer.write(encode_content(1, BasicPublish(0, "missing", "k"),
                                               EMPTY_PROPERTIES, b"x", 0))
            client.send(ChannelCloseOk(), channel=1)
            client.send(ChannelOpen(), channel=1)
        for _ in range(CHANNEL_ERRORS):
            method = await client.method(ChannelClose)
            assert isinstance(method, ChannelClose) and method.reply_code == 404
        await canary.rounds_while(3)
        await canary.close()
        client.writer.close()

    # The server's clock stands still: the bucket never refills.
    run_broker(scenario, clock=ManualClock())
    lines = [r for r in caplog.records if "closing channel" in r.getMessage()]
    assert len(lines) == BURST, len(lines)
    assert "404" in lines[0].getMessage() and "missing" in lines[0].getMessage()


def test_the_close_log_is_a_token_bucket_that_reports_what_it_suppressed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="test.closelog")
    close_log = CloseLog(logging.getLogger("test.closelog"), rate=10, burst=20)
    logged = sum(close_log.log(100.0, logging.WARNING, "close %d", i) for i in range(100_000))
    assert logged == 20 and close_log.suppressed == 99_980
    assert close_log.log(101.0, logging.WARNING, "close again")  # ten tokens back
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 22
    assert "suppressed 99980 more" in messages[20] and messages[21] == "close again"
    close_log.log(101.0, logging.WARNING, "x")  # nine left...
    for _ in range(20):
        close_log.log(101.0, logging.WARNING, "x")
    close_log.flush(200.0)
    assert "suppressed 12 more" in caplog.records[-1].getMessage()


def test_sockets_refused_in_a_loop_log_a_bounded_number_of_lines(
    run_broker: RunBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="minibroker.server")

    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        for _ in range(100):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GARBAGE!")
            assert await reader.read(8) != b""  # our preamble, then the close
            assert await reader.read() == b""
            writer.close()
        await canary.round()
        await canary.close()

    run_broker(scenario, clock=ManualClock())
    lines = [r for r in caplog.records if "unknown protocol header" in r.getMessage()]
    assert len(lines) == BURST, len(lines)
