"""running_broker and broker_in_thread: ready on entry, independent, gone on exit."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import pika
import pytest

import minibroker
import minibroker.blocking
from minibroker.testing import ManualClock, broker_in_thread, running_broker


def test_running_broker_accepts_connections_on_entry_on_both_protocols() -> None:
    async def main() -> None:
        async with running_broker() as broker:
            assert broker.host == "127.0.0.1" and broker.port > 0
            assert broker.url == f"minibroker://127.0.0.1:{broker.port}"
            assert broker.amqp_url == f"amqp://guest:guest@127.0.0.1:{broker.port}/"
            async with minibroker.connect(broker.url) as conn:
                channel = await conn.channel()
                await channel.declare_queue("jobs")
            # The AMQP protocol header is answered on the same port.
            reader, writer = await asyncio.open_connection(broker.host, broker.port)
            writer.write(b"AMQP\x00\x00\x09\x01")
            frame_type = await reader.readexactly(1)
            assert frame_type == b"\x01"  # a method frame: connection.start
            writer.close()
            assert [q.name for q in broker.queues()] == ["jobs"]

    asyncio.run(main())


def test_two_brokers_at_once_are_independent() -> None:
    async def main() -> None:
        async with running_broker() as one, running_broker() as two:
            assert one.port != two.port
            async with minibroker.connect(one.url) as conn:
                channel = await conn.channel()
                await channel.declare_queue("only-in-one")
            assert [q.name for q in one.queues()] == ["only-in-one"]
            assert two.queues() == ()

    asyncio.run(main())


def test_the_port_is_released_on_exit() -> None:
    async def main() -> int:
        async with running_broker() as broker:
            return broker.port

    port = asyncio.run(main())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nothing listens there any more


def test_options_are_server_config_fields() -> None:
    async def main() -> None:
        async with running_broker(heartbeat=0, users={"ann": "secret"}) as broker:
            assert broker.server.config.heartbeat == 0
            url = f"minibroker://ann:secret@127.0.0.1:{broker.port}"
            async with minibroker.connect(url) as conn:
                await conn.channel()

    asyncio.run(main())


def test_the_urls_log_in_as_a_configured_user() -> None:
    """Without guest, the URLs carry the first configured user (quoted: any password works)."""
    users = {"ann": "p@ss:w/rd %", "bob": "hunter2"}
    with broker_in_thread(users=users) as broker:
        port = broker.port
        assert broker.url == f"minibroker://ann:p%40ss%3Aw%2Frd%20%25@127.0.0.1:{port}"
        assert broker.amqp_url == f"amqp://ann:p%40ss%3Aw%2Frd%20%25@127.0.0.1:{port}/"
        assert broker.amqp_url_for("bob") == f"amqp://bob:hunter2@127.0.0.1:{port}/"
        with pytest.raises(KeyError, match=r"no user 'guest' \(configured users: ann, bob\)"):
            broker.url_for("guest")
        for url, user in ((broker.url, "ann"), (broker.url_for("bob"), "bob")):
            with minibroker.blocking.connect(url) as conn:
                conn.channel()
                assert {info.user for info in broker.connections()} == {user}
        for url, user in ((broker.amqp_url, "ann"), (broker.amqp_url_for("bob"), "bob")):
            connection = pika.BlockingConnection(pika.URLParameters(url))
            assert {info.user for info in broker.connections()} == {user}
            connection.close()
            broker.wait_for_connections(0)


def test_guest_stays_the_default_user_when_configured() -> None:
    with broker_in_thread(users={"ann": "x", "guest": "guest"}) as broker:
        assert broker.url == f"minibroker://127.0.0.1:{broker.port}"
        assert broker.amqp_url == f"amqp://guest:guest@127.0.0.1:{broker.port}/"
        assert broker.url_for("ann") == f"minibroker://ann:x@127.0.0.1:{broker.port}"


def test_broker_in_thread_serves_blocking_clients_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    with broker_in_thread() as broker:
        with minibroker.blocking.connect(broker.url) as conn:
            channel = conn.channel()
            channel.declare_queue("jobs")
            channel.publish("", "jobs", b"hello")
            broker.wait_for_queue("jobs", ready=1)
        assert [m.body for m in broker.messages("jobs")] == [b"hello"]
    assert set(threading.enumerate()) == before


def test_no_files_are_left_behind(tmp_path: os.PathLike[str]) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with broker_in_thread() as broker, minibroker.blocking.connect(broker.url) as conn:
            conn.channel().declare_queue("q")
    finally:
        os.chdir(cwd)
    assert os.listdir(tmp_path) == []


def test_start_failure_is_raised_in_the_test_thread() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError), broker_in_thread(port=port):
            pass


def test_a_manual_clock_can_serve_a_thread_broker_from_the_test_thread() -> None:
    clock = ManualClock()
    with broker_in_thread(clock=clock) as broker:
        fired: list[float] = []
        broker._call(lambda: clock.call_at(5.0, lambda: fired.append(clock.now())))
        clock.advance(4.0)
        assert fired == []
        clock.advance(2.0)  # returns once the loop thread has fired it
        assert fired == [5.0]
        assert clock.now() == 6.0


def _declare_unknown_exchange_type(url: str) -> tuple[str, int]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().exchange_declare("x", "no-such-type")
    except pika.exceptions.ChannelClosedByBroker as err:
        connection.close()
        return "channel", err.reply_code
    except pika.exceptions.ConnectionClosedByBroker as err:
        return "connection", err.reply_code
    raise AssertionError("the declare was accepted")


def test_rabbitmq_option_answers_as_that_release_also_after_reset() -> None:
    # RabbitMQ 3.10 closes the connection on an unknown exchange type; since 3.13.3 the channel.
    with broker_in_thread(rabbitmq="3.10") as old, broker_in_thread() as newest:
        assert _declare_unknown_exchange_type(old.amqp_url) == ("connection", 503)
        assert _declare_unknown_exchange_type(newest.amqp_url) == ("channel", 406)
        old.reset()
        assert _declare_unknown_exchange_type(old.amqp_url) == ("connection", 503)


def test_running_broker_takes_the_rabbitmq_option_too() -> None:
    async def main() -> None:
        async with running_broker(rabbitmq="3.10") as broker:
            assert broker.broker.profile.name == "3.10"

    asyncio.run(main())


def test_an_unmodelled_rabbitmq_version_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match=r"RabbitMQ 3\.8 is not modelled"), \
            broker_in_thread(rabbitmq="3.8"):
        pass
