"""Consumer timeout: a delivery left unacknowledged longer than ``consumer_timeout`` closes its
channel with RabbitMQ's 406 and text, and the message goes back to its queue.

RabbitMQ's default is 30 minutes (``consumer_timeout = 1800000`` ms); here the server's
``ManualClock`` moves time, so nothing waits.
"""

from __future__ import annotations

from minibroker.config import ServerConfig
from minibroker.core.timers import consumer_timeout_text
from minibroker.protocols.amqp091.frames import ContentMethod
from minibroker.protocols.amqp091.methods import (
    BasicConsume,
    BasicDeliver,
    BasicQos,
    ChannelClose,
    QueueDeclare,
)
from minibroker.server import BrokerServer
from minibroker.testing import ManualClock
from tests.adversarial.canary import Canary
from tests.integration.conftest import RunBroker
from tests.integration.test_overload import AMQPClient

TIMEOUT = 30.0
CONFIG = ServerConfig(port=0, shutdown_grace=0.2, heartbeat=0, consumer_timeout=TIMEOUT)


def test_rabbitmqs_default_and_text() -> None:
    assert ServerConfig().consumer_timeout == 1800.0
    assert consumer_timeout_text(1, 1800.0) == (
        "delivery acknowledgement on channel 1 timed out. Timeout value used: 1800000 ms. "
        "This timeout value can be configured, see consumers doc guide to learn more")


def test_an_unacknowledged_delivery_closes_its_channel_after_the_timeout(
    run_broker: RunBroker,
) -> None:
    clock = ManualClock()

    async def scenario(server: BrokerServer) -> None:
        clock.attach(server)
        canary = await Canary.start(server.url)
        stuck = await AMQPClient.connect(server.port)
        stuck.send(QueueDeclare(0, "work"), channel=1)
        await stuck.recv()
        stuck.send(BasicQos(0, 10, False), channel=1)
        await stuck.recv()
        stuck.send(BasicConsume(0, "work", "stuck", False, False), channel=1)
        await stuck.recv()  # consume-ok
        stuck.publish(b"job", routing_key="work")
        frame = await stuck.recv()
        assert isinstance(frame, ContentMethod) and isinstance(frame.method, BasicDeliver)

        clock.advance(TIMEOUT * 2 / 3)  # not yet
        await canary.round()
        assert server.broker.queue_statistics("work").unacked == 1
        clock.advance(TIMEOUT * 2 / 3)  # 40 s after the delivery
        close = await stuck.method(ChannelClose)
        assert isinstance(close, ChannelClose)
        assert (close.reply_code, close.reply_text) == (
            406, "PRECONDITION_FAILED - " + consumer_timeout_text(1, TIMEOUT))
        statistics = server.broker.queue_statistics("work")
        assert (statistics.ready, statistics.unacked) == (1, 0)  # requeued, not lost
        await canary.round()
        await canary.close()
        stuck.writer.close()

    run_broker(scenario, config=CONFIG, clock=clock)
