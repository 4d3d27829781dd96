"""The blocking client (``minibroker.blocking``) against a real broker on 127.0.0.1:0.

Same flows as the asyncio client's tests, called from the test's own thread with no ``await``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from minibroker import blocking
from minibroker.client import ChannelClosed, MessageReturned
from minibroker.errors import ClientError, ConnectionClosed, NotAllowed, NotFound
from minibroker.server import BrokerServer
from tests.integration.test_client import running_server


@pytest.fixture
def url() -> Iterator[str]:
    server: BrokerServer
    with running_server() as server:
        yield server.url


def test_publish_consume_ack(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        ch.declare_exchange("logs", "topic")
        q = ch.declare_queue("", exclusive=True)
        ch.bind_queue(q.name, "logs", "eu.#")
        ch.qos(prefetch_count=10)
        ch.publish("logs", "eu.orders", b"hello", headers={"k": 1}, correlation_id="c")
        ch.publish("logs", "us.orders", b"not routed here")
        with ch.consume(q.name) as consumer:
            delivery = consumer.receive(timeout=5)
            assert (delivery.body, delivery.routing_key, delivery.exchange) == (
                b"hello", "eu.orders", "logs")
            assert delivery.headers == {"k": 1} and delivery.correlation_id == "c"
            assert delivery.consumer_tag == consumer.consumer_tag
            delivery.ack()
            with pytest.raises(TimeoutError):
                consumer.receive(timeout=0.05)
        assert ch.declare_queue(q.name, passive=True).message_count == 0


def test_large_messages_and_multiple_acks(url: str) -> None:
    big = bytes(range(256)) * 2000  # 512000 bytes: four of the broker's frames
    with blocking.connect(url) as conn:
        ch = conn.channel()
        q = ch.declare_queue("", exclusive=True)
        ch.publish("", q.name, big)  # split into Body frames in this thread
        ch.publish("", q.name, b"small")
        first, second = ch.get(q.name), ch.get(q.name)
        assert first is not None and second is not None and first.body == big
        second.ack(multiple=True)
        assert first.settled
        with pytest.raises(ClientError, match=r"acked by ack\(multiple=True\) of delivery 2"):
            first.ack()
        assert ch.declare_queue(q.name, passive=True).message_count == 0


def test_get_purge_delete(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        ch.declare_queue("jobs")
        assert ch.get("jobs") is None
        for body in (b"1", b"2", b"3"):
            ch.publish("", "jobs", body)
        got = ch.get("jobs")
        assert got is not None and got.body == b"1" and got.message_count == 2
        got.ack()
        assert ch.purge_queue("jobs") == 2
        ch.publish("", "jobs", b"4")
        assert ch.delete_queue("jobs") == 1


def test_iter_ends_after_a_quiet_timeout(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        q = ch.declare_queue("", exclusive=True)
        for i in range(3):
            ch.publish("", q.name, b"%d" % i)
        with ch.consume(q.name) as consumer:
            bodies = []
            for delivery in consumer.iter(timeout=0.2):
                bodies.append(delivery.body)
                delivery.ack()
        assert bodies == [b"0", b"1", b"2"]


def test_prefetch_and_nack_requeue(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        ch.qos(prefetch_count=2)
        q = ch.declare_queue("", exclusive=True)
        for i in range(5):
            ch.publish("", q.name, b"%d" % i)
        with ch.consume(q.name) as consumer:
            first = consumer.receive(timeout=5)
            consumer.receive(timeout=5)
            assert ch.declare_queue(q.name, passive=True).message_count == 3
            assert consumer.statistics().buffered == 0
            first.nack(requeue=True)
            again = consumer.receive(timeout=5)
            assert (again.body, again.redelivered) == (b"0", True)


def test_confirms_and_returns(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        ch.confirm_select()
        q = ch.declare_queue("", exclusive=True)
        ch.publish("", q.name, b"safe", mandatory=True)
        with pytest.raises(MessageReturned) as caught:
            ch.publish("", "nowhere", b"bounced", mandatory=True)
        assert caught.value.reply_code == 312
        assert ch.declare_queue(q.name, passive=True).message_count == 1


def test_channel_error_then_connection_error(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        with pytest.raises(NotFound):
            ch.declare_queue("missing", passive=True)
        with pytest.raises(ChannelClosed):
            ch.get("missing")
        ch2 = conn.channel()
        q = ch2.declare_queue("", exclusive=True)
        ch2.consume(q.name, consumer_tag="dup")
        with pytest.raises(ConnectionClosed) as caught:
            ch2.consume(q.name, consumer_tag="dup")
        assert isinstance(caught.value.error, NotAllowed)
        assert conn.is_closed


def test_close_requeues_unacked_for_another_connection(url: str) -> None:
    with blocking.connect(url) as first:
        ch = first.channel()
        ch.declare_queue("shared")
        ch.publish("", "shared", b"job")
        taken = ch.consume("shared").receive(timeout=5)
        assert not taken.redelivered
    with blocking.connect(url) as second, second.channel().consume("shared") as consumer:
        again = consumer.receive(timeout=5)
        assert (again.body, again.redelivered) == (b"job", True)
        again.ack()


def test_deliveries_cross_threads(url: str) -> None:
    """A consumer in one thread, a producer in another, one connection each."""
    with blocking.connect(url) as consumer_conn:
        ch = consumer_conn.channel()
        ch.declare_queue("crossing")
        consumer = ch.consume("crossing")

        def produce() -> None:
            with blocking.connect(url) as producer:
                pch = producer.channel()
                for i in range(20):
                    pch.publish("", "crossing", b"%d" % i)

        producer_thread = threading.Thread(target=produce)
        producer_thread.start()
        bodies = []
        for _ in range(20):
            delivery = consumer.receive(timeout=5)
            bodies.append(delivery.body)
            delivery.ack()
        producer_thread.join()
        assert bodies == [b"%d" % i for i in range(20)]


def test_two_threads_receiving_from_one_consumer_both_get_deliveries(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        q = ch.declare_queue("", exclusive=True)
        consumer = ch.consume(q.name)
        got: dict[str, list[bytes]] = {"a": [], "b": []}
        both_waiting = threading.Barrier(2)

        def worker(who: str) -> None:
            both_waiting.wait(5)
            for delivery in consumer.iter(timeout=0.5):
                got[who].append(delivery.body)
                delivery.ack()

        threads = [threading.Thread(target=worker, args=(who,)) for who in got]
        for thread in threads:
            thread.start()
        for i in range(40):
            ch.publish("", q.name, b"%d" % i)
        for thread in threads:
            thread.join(10)
        assert sorted(got["a"] + got["b"], key=int) == [b"%d" % i for i in range(40)]
        assert not any(thread.is_alive() for thread in threads)


def test_blocking_call_from_the_loop_thread_is_refused(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        errors: list[BaseException] = []

        def on_return(message: object) -> None:
            try:
                ch.declare_queue("", exclusive=True)
            except ClientError as exc:
                errors.append(exc)

        ch.channel.on_return = on_return
        ch.publish("", "nowhere", b"x", mandatory=True)
        ch.declare_queue("", exclusive=True)  # the return was handled before this reply
        assert len(errors) == 1 and "deadlock" in str(errors[0])


def test_pipelined_publishes_arrive_in_order(url: str) -> None:
    with blocking.connect(url) as conn:
        ch = conn.channel()
        q = ch.declare_queue("", exclusive=True)
        for i in range(1000):  # handed to the loop thread without waiting for each
            ch.publish("", q.name, b"%d" % i, headers={"i": i} if i % 2 else None)
        assert ch.declare_queue(q.name, passive=True).message_count == 1000
        got = [ch.get(q.name, no_ack=True) for _ in range(1000)]
        assert [d.body for d in got if d] == [b"%d" % i for i in range(1000)]
        assert got[1] is not None and got[1].headers == {"i": 1}
        with pytest.raises(ClientError, match="fields besides the body"):  # in this thread
            ch.publish("", q.name, b"x", headers={"h": "v" * conn.connection.max_frame_size})
        ch.publish("missing-exchange", "k", b"x")  # fails the channel asynchronously
        # The next call raises NotFound if it was sent before the broker's channel.close
        # arrived, ChannelClosed (carrying the NotFound) if after: both are correct.
        with pytest.raises((NotFound, ChannelClosed)) as caught:
            ch.declare_queue("", exclusive=True)
        error = caught.value
        assert isinstance(error.error if isinstance(error, ChannelClosed) else error, NotFound)
        with pytest.raises(ChannelClosed):
            ch.publish("", q.name, b"after the close")
