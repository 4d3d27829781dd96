"""The blocking client's whole surface against a real server (``minibroker/blocking.py``):
exchange-to-exchange routing and unbinding, a consumer that ends, settling by tag on the
channel, and the refusals of a closed connection, each with its text."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from minibroker import __version__, blocking
from minibroker.errors import ClientError, ConnectionClosed
from minibroker.server import BrokerServer
from tests.integration.test_client import running_server


@pytest.fixture
def url() -> Iterator[str]:
    server: BrokerServer
    with running_server() as server:
        yield server.url


def test_exchange_to_exchange_routing_until_unbound(url: str) -> None:
    with blocking.connect(url, heartbeat=7) as conn:
        assert (conn.server_version, conn.heartbeat) == (__version__, 7)
        with conn.channel() as ch:
            assert (ch.number, ch.is_closed) == (1, False)
            ch.declare_exchange("front", "topic")
            ch.declare_exchange("back", "fanout")
            ch.bind_exchange("back", "front", "orders.#")
            ch.declare_queue("orders")
            ch.bind_queue("orders", "back")
            ch.publish("front", "orders.new", b"routed")
            got = ch.get("orders", no_ack=True)
            assert got is not None and got.body == b"routed"
            ch.unbind_exchange("back", "front", "orders.#")
            ch.publish("front", "orders.new", b"dropped")
            ch.bind_queue("orders", "front", "direct.#")
            ch.unbind_queue("orders", "front", "direct.#")
            ch.publish("front", "direct.x", b"dropped too")
            assert ch.get("orders") is None
            ch.delete_exchange("back")
            ch.delete_exchange("front")
        assert ch.is_closed


def test_settling_by_tag_on_the_channel_and_a_consumer_that_ends(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        ch.declare_queue("work")
        for body in (b"a", b"b", b"c"):
            ch.publish("", "work", body)
        consumer = ch.consume("work", consumer_tag="worker")
        first, second, third = (consumer.receive(timeout=5) for _ in range(3))
        assert repr(first).startswith("<BlockingDelivery")
        ch.ack(first.delivery_tag)
        ch.nack(second.delivery_tag, requeue=False)  # dropped
        third.reject(requeue=True)  # back to the queue, redelivered
        requeued = consumer.receive(timeout=5)
        assert (requeued.body, requeued.redelivered) == (b"c", True)
        ch.reject(requeued.delivery_tag, requeue=False)
        ch.cancel("worker")
        with pytest.raises(ClientError, match=r"^consumer 'worker' has ended$"):
            consumer.receive(timeout=5)
        assert list(consumer) == []  # an ended consumer's iteration stops at once
        ch.recover(requeue=True)
        assert ch.declare_queue("work", passive=True).message_count == 0
        again = ch.consume("work")
        again.cancel()
        assert list(again.iter(timeout=5)) == []


def test_a_closed_connection_refuses_calls_and_a_failed_connect_leaves_no_thread(
    url: str,
) -> None:
    conn = blocking.connect(url)
    ch = conn.channel()
    conn.close()
    with pytest.raises(ClientError, match=r"^the blocking connection is closed$"):
        ch.declare_queue("late")
    with pytest.raises(ClientError, match=r"^the blocking connection is closed$"):
        conn._runner.submit(print)
    conn.close()  # twice is fine
    threads = threading.active_count()
    with pytest.raises(ConnectionClosed):
        blocking.connect("minibroker://127.0.0.1:1/", connect_timeout=2)
    assert threading.active_count() == threads  # the client's loop thread stopped
