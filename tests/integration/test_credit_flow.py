"""Per-queue credit flow (``server/credit.py``): a publisher feeding a queue whose consumer
lags is paused alone, and resumed when the queue drains; other publishers go on; nothing is
lost. Real sockets on 127.0.0.1:0; every wait is on an observable event, with a timeout.
"""

from __future__ import annotations

import struct

import pytest

from minibroker.cli import build_parser
from minibroker.config import ServerConfig
from minibroker.message import EMPTY_PROPERTIES as _PROPS
from minibroker.protocols.amqp091.frames import MethodFrame
from minibroker.protocols.amqp091.methods import (
    ConnectionBlocked,
    ConnectionUnblocked,
    QueueDeclare,
    QueueDeclareOk,
)
from minibroker.protocols.native import frames as f
from minibroker.server import BrokerServer
from minibroker.server.session import Session
from tests.integration.conftest import RunBroker
from tests.integration.rawclient import RawClient
from tests.integration.test_overload import (
    READ_SIZE,
    AMQPClient,
    numbered,
    session_of,
    wait_until,
)

CREDIT = 200
CONFIG = ServerConfig(port=0, shutdown_grace=0.2, queue_credit=CREDIT)
BODY = 1024
#: One read of the flooder may land after the queue passed its credit (``credit.py`` rule 2).
SLACK = READ_SIZE // BODY + 1
SLOW, OTHER = "slow", "other"


async def connect(server: BrokerServer) -> tuple[RawClient, Session]:
    """A native client with channel 1 open, and its session in the broker."""
    before = set(server.sessions)
    client = await RawClient.connect(server.port)
    await client.open_channel()
    return client, session_of(server, before)


def flood(client: RawClient, queue: str, count: int) -> None:
    """Everything written at once, no confirms, nothing awaited."""
    client.send(*(f.Publish(1, "", queue, False, _PROPS, numbered(i, BODY))
                  for i in range(count)))


async def confirmed_publishes(client: RawClient, queue: str, count: int) -> None:
    """Publish ``count`` messages in confirm mode; return once every one is confirmed."""
    await client.call(f.ConfirmSelect(1), f.ConfirmSelectOk)
    flood(client, queue, count)
    confirmed = 0
    while confirmed < count:
        frame = await client.expect(f.ConfirmAck)
        confirmed = frame.delivery_tag if frame.multiple else confirmed + 1


async def receive_in_order(client: RawClient, count: int, *, ack: bool) -> None:
    """``count`` deliveries numbered 0, 1, 2... (each acked when ``ack``)."""
    for expected in range(count):
        frame = await client.expect(f.Deliver)
        assert struct.unpack_from(">I", frame.body)[0] == expected
        if ack:
            client.send(f.Ack(1, frame.delivery_tag))


def test_a_flooder_is_paused_alone_while_its_queue_lags_and_resumed_when_it_drains(
        run_broker: RunBroker) -> None:
    total = 20 * CREDIT

    async def scenario(server: BrokerServer) -> None:
        consumer, _ = await connect(server)
        await consumer.declare_queue(SLOW)
        await consumer.declare_queue(OTHER)
        await consumer.call(f.Qos(1, 10, False), f.QosOk)
        await consumer.consume(SLOW)  # takes 10 deliveries and acks nothing for now
        flooder, flooder_session = await connect(server)
        flood(flooder, SLOW, total)

        await wait_until(server, lambda: flooder_session in server.flow.credit.paused)
        slow = server.broker.topology.queues[SLOW]
        assert not flooder_session.transport.is_reading()
        assert CREDIT < len(slow.ready) <= CREDIT + SLACK, len(slow.ready)
        assert server.flow.alarm is None and not server.flow.blocked  # no global alarm
        published = slow.published

        # Another publisher, into another queue whose consumer keeps up, is not held.
        worker, _ = await connect(server)
        await worker.consume(OTHER, no_ack=True)
        other, other_session = await connect(server)
        await confirmed_publishes(other, OTHER, 5 * CREDIT)
        await receive_in_order(worker, 5 * CREDIT, ack=False)
        assert other_session not in server.flow.credit.paused
        assert flooder_session in server.flow.credit.paused and slow.published == published

        # The consumer drains the queue: the flooder is resumed (perhaps paused again on the
        # way) and every message arrives once, in order.
        await receive_in_order(consumer, total, ack=True)
        assert server.flow.credit.pauses >= 1
        await wait_until(server, lambda: not server.flow.credit.paused)
        assert flooder_session.transport.is_reading()
        for client in (consumer, flooder, worker, other):
            client.abort()

    run_broker(scenario, config=CONFIG, timeout=60)


def test_a_publisher_that_also_consumes_is_not_paused(run_broker: RunBroker) -> None:
    """No deadlock (``credit.py`` rule 4): its acks are what drains the queue it feeds."""
    total = 10 * CREDIT

    async def scenario(server: BrokerServer) -> None:
        client, session = await connect(server)
        await client.declare_queue(SLOW)
        await client.call(f.Qos(1, 10, False), f.QosOk)
        await client.consume(SLOW)
        flood(client, SLOW, total)
        await receive_in_order(client, total, ack=True)
        assert session not in server.flow.credit.paused and server.flow.credit.pauses == 0
        client.abort()

    run_broker(scenario, config=CONFIG, timeout=60)


def test_a_queue_without_consumers_takes_any_backlog(run_broker: RunBroker) -> None:
    """Storage for consumers that come later: only the alarms bound it (rule 1)."""

    async def scenario(server: BrokerServer) -> None:
        client, session = await connect(server)
        await client.declare_queue(SLOW)
        await confirmed_publishes(client, SLOW, 10 * CREDIT)
        assert len(server.broker.topology.queues[SLOW].ready) == 10 * CREDIT
        assert session not in server.flow.credit.paused and server.flow.credit.pauses == 0
        client.abort()

    run_broker(scenario, config=CONFIG)


def test_losing_the_last_consumer_resumes_the_publisher(run_broker: RunBroker) -> None:
    total = 10 * CREDIT

    async def scenario(server: BrokerServer) -> None:
        consumer, _ = await connect(server)
        await consumer.declare_queue(SLOW)
        await consumer.call(f.Qos(1, 10, False), f.QosOk)
        await consumer.consume(SLOW)
        flooder, flooder_session = await connect(server)
        flood(flooder, SLOW, total)
        await wait_until(server, lambda: flooder_session in server.flow.credit.paused)
        consumer.abort()  # its 10 unacked deliveries go back to the queue
        slow = server.broker.topology.queues[SLOW]
        await wait_until(server, lambda: len(slow.ready) == total)
        assert flooder_session not in server.flow.credit.paused
        flooder.abort()

    run_broker(scenario, config=CONFIG, timeout=30)


def test_credit_flow_off_leaves_a_lagging_queue_to_the_alarms(run_broker: RunBroker) -> None:
    config = ServerConfig(port=0, shutdown_grace=0.2, queue_credit=0, queue_high_water=CREDIT)

    async def scenario(server: BrokerServer) -> None:
        consumer, _ = await connect(server)
        await consumer.declare_queue(SLOW)
        await consumer.call(f.Qos(1, 10, False), f.QosOk)
        await consumer.consume(SLOW)
        flooder, flooder_session = await connect(server)
        flood(flooder, SLOW, 10 * CREDIT)
        await wait_until(server, lambda: flooder_session in server.flow.blocked)
        assert server.flow.alarm is not None and server.flow.credit.pauses == 0
        for client in (consumer, flooder):
            client.abort()

    run_broker(scenario, config=config, timeout=30)


@pytest.mark.parametrize(("argv", "credit"), [([], 20_000), (["--queue-credit", "0"], 0),
                                              (["--queue-credit", "500"], 500)])
def test_the_credit_comes_from_the_command_line(argv: list[str], credit: int) -> None:
    assert ServerConfig().queue_credit == 20_000
    args = build_parser().parse_args(argv)
    assert args.queue_credit == credit


def test_a_negative_credit_is_refused() -> None:
    with pytest.raises(ValueError, match="queue_credit"):
        ServerConfig(queue_credit=-1)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--queue-credit", "-1"])


def test_an_amqp_publisher_paused_by_credit_is_not_told_blocked(run_broker: RunBroker) -> None:
    """``connection.blocked`` stays the alarms' notification (``credit.py`` rule 5)."""
    total = 10 * CREDIT

    async def scenario(server: BrokerServer) -> None:
        consumer, _ = await connect(server)
        await consumer.declare_queue(SLOW)
        await consumer.call(f.Qos(1, 10, False), f.QosOk)
        await consumer.consume(SLOW)
        before = set(server.sessions)
        amqp = await AMQPClient.connect(server.port)  # announces connection.blocked
        session = session_of(server, before)
        for i in range(total):
            amqp.publish(numbered(i, BODY), routing_key=SLOW)
        await wait_until(server, lambda: session in server.flow.credit.paused)
        await receive_in_order(consumer, total, ack=True)
        await wait_until(server, lambda: not server.flow.credit.paused)
        # A synchronous request: any notification sent before would come before its reply.
        amqp.send(QueueDeclare(0, SLOW, True), channel=1)
        while True:
            frame = await amqp.recv()
            assert isinstance(frame, MethodFrame), frame
            assert not isinstance(frame.method, ConnectionBlocked | ConnectionUnblocked)
            if isinstance(frame.method, QueueDeclareOk):
                break
        amqp.writer.close()
        consumer.abort()

    run_broker(scenario, config=CONFIG, timeout=30)


def test_dead_letters_from_expiry_are_not_blamed_on_the_next_publisher(
        run_broker: RunBroker) -> None:
    """Expiry is an input of its own (a timer): a queue it made lag pauses nobody who did not
    publish into it."""

    async def scenario(server: BrokerServer) -> None:
        consumer, _ = await connect(server)
        await consumer.declare_queue(SLOW)
        await consumer.declare_queue(OTHER)
        await consumer.call(f.Qos(1, 10, False), f.QosOk)
        await consumer.consume(SLOW)  # holds 10 deliveries: SLOW lags once it passes CREDIT
        expiring = {"x-message-ttl": 20, "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": SLOW}
        await consumer.call(f.QueueDeclare(1, "expiring", False, False, False, False, expiring),
                            f.QueueDeclareOk)
        worker, _ = await connect(server)
        await worker.consume(OTHER, no_ack=True)
        other, other_session = await connect(server)
        publisher, _ = await connect(server)
        await confirmed_publishes(publisher, "expiring", 2 * CREDIT)  # no consumer: no lag
        slow = server.broker.topology.queues[SLOW]
        await wait_until(server, lambda: len(slow.ready) > CREDIT)
        # The next input after the expiry: a publish into a queue that keeps up.
        flood(other, OTHER, 10)
        await receive_in_order(worker, 10, ack=False)
        assert other_session not in server.flow.credit.paused
        assert server.flow.credit.pauses == 0
        for client in (consumer, worker, publisher, other):
            client.abort()

    run_broker(scenario, config=CONFIG, timeout=30)
