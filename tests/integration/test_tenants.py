"""Vhosts, permissions and limits over real sockets, with pika (AMQP 0-9-1) and the native
client: RabbitMQ's codes and texts, and vhosts that never see each other."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pika
import pytest
from pika.exceptions import (
    ChannelClosedByBroker,
    ConnectionClosedByBroker,
    ProbableAccessDeniedError,
)

import minibroker
from minibroker.errors import AccessRefused, ConnectionClosed
from minibroker.testing import ThreadBroker, broker_in_thread, running_broker

TIMEOUT = 10.0


@pytest.fixture
def broker() -> Iterator[ThreadBroker]:
    with broker_in_thread(heartbeat=0, vhosts=("orders",)) as started:
        started.add_user("app", "pw", permissions={"orders": (".*", ".*", ".*")})
        started.add_user("reader", "pw", permissions={"/": ("^$", "^$", "^in$")})
        yield started


def _connect(broker: ThreadBroker, user: str, vhost: str = "/") -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", broker.port, vhost, pika.PlainCredentials(user, "pw" if user != "guest"
                                                             else "guest"),
        connection_attempts=1, socket_timeout=TIMEOUT, stack_timeout=TIMEOUT))


def test_vhosts_keep_their_queues_and_messages_apart(broker: ThreadBroker) -> None:
    root = _connect(broker, "guest")
    orders = _connect(broker, "app", "orders")
    try:
        for connection, body in ((root, b"root"), (orders, b"orders")):
            channel = connection.channel()
            channel.queue_declare("q")
            channel.basic_publish("", "q", body)
        assert root.channel().basic_get("q", auto_ack=True)[2] == b"root"
        channel = orders.channel()
        assert channel.basic_get("q", auto_ack=True)[2] == b"orders"
        assert channel.basic_get("q", auto_ack=True) == (None, None, None)
        # each vhost has its own amq.* exchanges
        channel.exchange_declare("amq.topic", "topic", passive=True)
        channel.queue_bind("q", "amq.topic", "k")
        channel.basic_publish("amq.topic", "k", b"via orders' amq.topic")
        assert channel.basic_get("q", auto_ack=True)[2] == b"via orders' amq.topic"
        with pytest.raises(ChannelClosedByBroker) as missing:
            orders.channel().queue_declare("only-in-root", passive=True)
        assert missing.value.reply_code == 404
        assert missing.value.reply_text == "NOT_FOUND - no queue 'only-in-root' in vhost 'orders'"
        assert broker.queue("q").ready == 0  # the toolkit looks at "/" unless told
        assert broker.has_queue("q", vhost="orders")
        assert not broker.has_queue("only-in-root", vhost="orders")
        assert broker.queue("q", vhost="orders").ready == 0
        assert [b.binding_key for b in broker.bindings(vhost="orders")
                if b.source == "amq.topic"] == ["k"]
        with pytest.raises(KeyError, match="no queue 'x' in vhost 'orders'"):
            broker.queue("x", vhost="orders")
    finally:
        root.close()
        orders.close()


@pytest.mark.parametrize(("user", "vhost", "text"), [
    ("guest", "nowhere", "NOT_ALLOWED - vhost nowhere not found"),
    ("guest", "orders", "NOT_ALLOWED - access to vhost 'orders' refused for user 'guest'"),
    ("app", "/", "NOT_ALLOWED - access to vhost '/' refused for user 'app'"),
])
def test_opening_a_vhost_is_refused_with_530(broker: ThreadBroker, user: str, vhost: str,
                                            text: str) -> None:
    with pytest.raises(ProbableAccessDeniedError) as refused:
        _connect(broker, user, vhost)
    assert f"(530) {text!r}" in str(refused.value).replace('"', "'") or text in str(
        refused.value)
    assert broker.statistics().connections == 0


def test_permissions_refuse_with_403_and_change_for_open_connections(
    broker: ThreadBroker,
) -> None:
    connection = _connect(broker, "reader")
    try:
        with pytest.raises(ChannelClosedByBroker) as refused:
            connection.channel().queue_declare("in")
        assert (refused.value.reply_code, refused.value.reply_text) == (
            403, "ACCESS_REFUSED - configure access to queue 'in' in vhost '/' refused for "
            "user 'reader'")
        broker.declare_queue("in")
        channel = connection.channel()
        channel.basic_publish("", "in", b"x")  # pika does not wait: the refusal closes it
        with pytest.raises(ChannelClosedByBroker) as refused:
            channel.basic_get("in")
        assert refused.value.reply_text == (
            "ACCESS_REFUSED - write access to exchange 'amq.default' in vhost '/' refused for "
            "user 'reader'")
        assert broker.queue("in").ready == 0
        broker.set_permissions("reader", "/", "^$", ".*", "^in$")
        channel = connection.channel()
        channel.basic_publish("", "in", b"now allowed")
        assert channel.basic_get("in", auto_ack=True)[2] == b"now allowed"
        broker.set_permissions("reader", "/", "^$", "^$", "^in$")
        channel.basic_publish("", "in", b"refused again")
        with pytest.raises(ChannelClosedByBroker):
            channel.basic_get("in")
    finally:
        if connection.is_open:
            connection.close()


def test_the_native_protocol_has_the_same_vhosts_and_permissions() -> None:
    async def main() -> None:
        async with running_broker(heartbeat=0, vhosts=("orders",)) as broker:
            broker.add_user("app", "pw", permissions={"orders": ("^app\\.", ".*", ".*")})
            url = f"minibroker://app:pw@127.0.0.1:{broker.port}/orders"
            async with minibroker.connect(url) as conn:
                channel = await conn.channel()
                await channel.declare_queue("app.q")
                with pytest.raises(AccessRefused, match="403 ACCESS_REFUSED - configure "
                                   "access to queue 'other' in vhost 'orders' refused for "
                                   "user 'app'"):
                    await (await conn.channel()).declare_queue("other")
            assert not broker.has_queue("app.q")  # it lives in "orders", not "/"
            with pytest.raises(ConnectionClosed, match="530 NOT_ALLOWED - vhost nowhere "
                               "not found"):
                await minibroker.connect(f"minibroker://app:pw@127.0.0.1:{broker.port}/nowhere")
            with pytest.raises(ConnectionClosed, match="530 NOT_ALLOWED - access to vhost '/' "
                               "refused for user 'app'"):
                await minibroker.connect(f"minibroker://app:pw@127.0.0.1:{broker.port}")

    asyncio.run(main())


def test_limits_per_tenant(broker: ThreadBroker) -> None:
    broker.add_vhost("small", limits={"max-connections": 1, "max-queues": 1})
    broker.add_user("lim", "pw", permissions={"/": (".*", ".*", ".*"),
                                              "small": (".*", ".*", ".*")},
                    limits={"max-channels": 2})
    first = _connect(broker, "lim", "small")
    try:
        with pytest.raises(ProbableAccessDeniedError) as refused:
            _connect(broker, "lim", "small")
        assert ("(530) \"NOT_ALLOWED - access to vhost 'small' refused for user 'lim': "
                "connection limit (1) is reached\"") in str(refused.value)
        channel = first.channel()
        channel.queue_declare("one")
        with pytest.raises(ChannelClosedByBroker) as full:
            channel.queue_declare("two")
        assert full.value.args == (406, "PRECONDITION_FAILED - cannot declare queue 'two': "
                                   "queue limit in vhost 'small' (1) is reached")
        first.channel()  # the 406 closed the other one: one channel of "lim" is open
        other = _connect(broker, "lim")  # the user's channels count over its connections
        other.channel()
        with pytest.raises(ConnectionClosedByBroker) as too_many:
            other.channel()
        assert too_many.value.args == (530, "NOT_ALLOWED - number of channels opened for user "
                                       "'lim' has reached the maximum allowed user limit of 2")
    finally:
        first.close()
    _connect(broker, "lim", "small").close()  # the closed connection no longer counts


def test_timers_of_another_vhost_fire() -> None:
    """The server's one timer covers every vhost's core: a TTL in "orders" expires."""
    from minibroker.testing import ManualClock

    clock = ManualClock()
    with broker_in_thread(heartbeat=0, clock=clock, vhosts=("orders",)) as broker:
        broker.set_permissions("guest", "orders")
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url_in("orders")))
        try:
            channel = connection.channel()
            channel.queue_declare("short", arguments={"x-message-ttl": 5000})
            channel.basic_publish("", "short", b"soon gone")
            assert channel.queue_declare("short", passive=True).method.message_count == 1
            clock.advance(6)
            assert channel.queue_declare("short", passive=True).method.message_count == 0
        finally:
            connection.close()


def test_messages_in_another_vhost_count_against_the_memory_mark() -> None:
    """Every vhost's core weighs against the one memory high-water mark: a publisher filling a
    queue outside ``/`` is blocked like one in ``/``, and told so."""
    import asyncio

    import pika

    from minibroker.config import ServerConfig
    from minibroker.core.access import Permissions, VHost
    from minibroker.server.server import BrokerServer
    from tests.integration.test_overload import wait_until

    blocked: list[str] = []
    body = b"x" * 64 * 1024

    async def main() -> None:
        server = BrokerServer(ServerConfig(port=0, memory_high_water=1024 * 1024, heartbeat=0))
        await server.start()
        try:
            server.access.put_vhost(VHost("tenant"))
            server.access.set_permissions("guest", "tenant", Permissions())
            loop = asyncio.get_running_loop()

            def client() -> pika.BlockingConnection:
                connection = pika.BlockingConnection(pika.ConnectionParameters(
                    "127.0.0.1", server.amqp_port, "tenant", heartbeat=0))
                connection.add_on_connection_blocked_callback(
                    lambda _conn, frame: blocked.append(frame.method.reason))
                channel = connection.channel()
                channel.queue_declare("backlog")
                for _ in range(40):  # 2.5 MiB, past the 1 MiB mark
                    channel.basic_publish("", "backlog", body)
                deadline = loop.time() + 10
                while not blocked and loop.time() < deadline:
                    connection.process_data_events(time_limit=0.1)
                return connection

            connection = await loop.run_in_executor(None, client)
            assert server.flow.alarm is not None and server.flow.alarm.startswith("memory")
            assert server.vhosts.cores["tenant"].published < 40

            def purge() -> int:  # another connection to the vhost empties the queue
                other = pika.BlockingConnection(pika.ConnectionParameters(
                    "127.0.0.1", server.amqp_port, "tenant", heartbeat=0))
                count = other.channel().queue_purge("backlog").method.message_count
                other.close()
                return count

            # Each purge clears the alarm; the publisher is read again and sends the rest
            # (perhaps blocked again on the way). Every message is accounted for.
            purged = 0
            for _ in range(40):
                purged += await loop.run_in_executor(None, purge)
                if purged == 40:
                    break
                await wait_until(server, lambda: server.flow.alarm is not None or (
                    server.vhosts.cores["tenant"].published == 40))
            assert purged == 40 and server.flow.alarm is None
            await loop.run_in_executor(None, connection.close)
        finally:
            await server.close()

    asyncio.run(main())
    assert blocked and blocked[0].startswith("memory")
