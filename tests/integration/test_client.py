"""The asyncio native client against a real broker on 127.0.0.1:0.

The broker runs in a background thread with its own event loop (``running_server``); each test
drives the client with ``asyncio.run`` in the test's thread, bounded by ``TIMEOUT``. Ordering
is observed with round trips, never with sleeps: the broker handles a channel's frames in order,
so every delivery an earlier frame caused arrives before the reply to a later request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pika
import pytest

import minibroker
from minibroker.client import (
    Channel,
    ChannelClosed,
    Connection,
    ConnectionParameters,
    MessageReturned,
    connect,
)
from minibroker.config import ServerConfig
from minibroker.errors import (
    AccessRefused,
    ClientError,
    ConnectionClosed,
    ConnectionForced,
    NotAllowed,
    NotFound,
    UnexpectedFrame,
)
from minibroker.message import Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec
from minibroker.server import BrokerServer
from minibroker.testing import ManualClock

TIMEOUT = 10.0
_T = TypeVar("_T")


@contextlib.contextmanager
def running_server(config: ServerConfig | None = None) -> Iterator[BrokerServer]:
    """A broker listening on a free port, served by a loop in a background thread."""
    server = BrokerServer(config or ServerConfig(port=0, shutdown_grace=0.2))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="broker", daemon=True)
    thread.start()
    assert started.wait(TIMEOUT), "the broker did not start"
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        if not server.closing:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()
    assert server.internal_errors == 0


@pytest.fixture
def server() -> Iterator[BrokerServer]:
    with running_server() as running:
        yield running


@pytest.fixture
def url(server: BrokerServer) -> str:
    return server.url


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    async def bounded() -> _T:
        async with asyncio.timeout(TIMEOUT):
            return await coro

    return asyncio.run(bounded())


async def _queue_with(ch: Channel, *bodies: bytes) -> str:
    q = await ch.declare_queue("", exclusive=True)
    for body in bodies:
        await ch.publish("", q.name, body)
    return q.name


# -- connecting -----------------------------------------------------------------------------


def test_package_exports_connect() -> None:
    assert minibroker.connect is connect


def test_url_parsing() -> None:
    params = ConnectionParameters.from_url(
        "minibroker://bob:s%40cret@example.org:1234/?heartbeat=7&client_name=app",
        connect_timeout=2.5)
    assert (params.host, params.port, params.username, params.password) == (
        "example.org", 1234, "bob", "s@cret")
    assert (params.heartbeat, params.client_name, params.connect_timeout) == (7, "app", 2.5)
    assert ConnectionParameters.from_url("minibroker://").port == 5680
    with pytest.raises(ValueError, match=r"^expected a minibroker:// URL, got 'amqp://localhost': "
                       r"amqp:// is for AMQP clients .*minibroker://host:5680$"):
        ConnectionParameters.from_url("amqp://localhost")
    with pytest.raises(ValueError, match=r"^unknown connection option 'bogus' in "
                       r"'minibroker://h/\?bogus=1'$"):
        ConnectionParameters.from_url("minibroker://h/?bogus=1")


def test_connect_negotiates_limits(url: str) -> None:
    async def scenario() -> None:
        conn = await connect(url, heartbeat=5, max_frame_size=65536)
        assert (conn.heartbeat, conn.max_frame_size, conn.channel_max) == (5, 65536, 2047)
        assert conn.server_version == minibroker.__version__
        await conn.aclose()
        assert conn.is_closed
        with pytest.raises(ConnectionClosed):
            await conn.channel()

    run(scenario())


def test_connect_with_bad_credentials_is_refused(url: str) -> None:
    async def scenario() -> None:
        with pytest.raises(ConnectionClosed) as caught:
            await connect(url.replace("//", "//guest:wrong@"))
        assert isinstance(caught.value.error, AccessRefused)
        async with connect(url.replace("//", "//guest:guest@")) as conn:
            await conn.channel()

    run(scenario())


def test_connect_to_a_closed_port_raises_connection_closed() -> None:
    with running_server() as server:
        closed_url = server.url
    with pytest.raises(ConnectionClosed):
        run(connect(closed_url).__aenter__())


class Stranger:
    """A TCP server on port 0 that is not a minibroker: it answers our first bytes with
    ``answer`` (nothing at all when None), then hangs up if ``hang_up``."""

    def __init__(self, answer: bytes | None, *, hang_up: bool = True) -> None:
        self.answer = answer
        self.hang_up = hang_up
        self.gone = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(8)
        if self.answer is not None:
            writer.write(self.answer)
            await writer.drain()
        if self.hang_up:
            writer.close()
        else:
            await reader.read()  # until the client gives up
        self.gone.set()

    async def url(self) -> str:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"minibroker://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize(("answer", "hang_up", "said"), [
    (b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n", True,
     r"this is not a minibroker: it sent b'HTTP/1\.1 400 Bad Request\\r\\n"),
    (b"AMQP\x00\x00\x09\x01", True, "it sent the AMQP protocol header"),
    (b"\x00\x00", True, r"127\.0\.0\.1:\d+ closed the connection during the handshake, after "
                       r"sending b'\\x00\\x00' \(is a minibroker listening there\?\)"),
    (b"+OK", True, r"after sending b'\+OK'"),
    (b"", True, "closed the connection during the handshake"),
    (None, False, r"no answer to our Hello within 0\.2 s \(is a minibroker listening"),
], ids=["http", "amqp", "two-bytes", "four-bytes", "hang-up", "silent"])
def test_a_port_that_is_not_a_minibroker_is_named_once(
    answer: bytes | None, hang_up: bool, said: str, caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        stranger = Stranger(answer, hang_up=hang_up)
        url = await stranger.url()
        with pytest.raises(ConnectionClosed, match=said):
            await connect(url, connect_timeout=0.2)
        await asyncio.wait_for(stranger.gone.wait(), TIMEOUT)

    with caplog.at_level("DEBUG", logger="minibroker.client"):
        run(scenario())
    # The exception says it; no log line says it again.
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


# -- topology -------------------------------------------------------------------------------


def test_topic_routing_with_bind_and_unbind(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.declare_exchange("logs", "topic")
            q = await ch.declare_queue("", exclusive=True)
            assert q.name.startswith("amq.gen-") and q.message_count == q.consumer_count == 0
            await ch.bind_queue(q.name, "logs", "eu.#")
            for key in ("eu.orders", "us.orders", "eu.billing.late"):
                await ch.publish("logs", key, key.encode())
            await ch.unbind_queue(q.name, "logs", "eu.#")
            await ch.publish("logs", "eu.after-unbind", b"x")
            got = [(await ch.get(q.name, no_ack=True)) for _ in range(3)]
            assert [d.routing_key if d else None for d in got] == [
                "eu.orders", "eu.billing.late", None]

    run(scenario())


def test_exchange_to_exchange_binding(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.declare_exchange("upstream", "fanout")
            await ch.declare_exchange("downstream", "direct")
            await ch.bind_exchange("downstream", "upstream")
            q = await ch.declare_queue("", exclusive=True)
            await ch.bind_queue(q.name, "downstream", "k")
            await ch.publish("upstream", "k", b"through")
            await ch.unbind_exchange("downstream", "upstream")
            await ch.publish("upstream", "k", b"not-through")
            first = await ch.get(q.name)
            assert first is not None and first.body == b"through"
            assert first.exchange == "upstream" and first.message_count == 0
            assert await ch.get(q.name) is None

    run(scenario())


def test_purge_delete_and_passive_declare(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.declare_queue("work")
            for i in range(3):
                await ch.publish("", "work", b"%d" % i)
            assert (await ch.declare_queue("work", passive=True)).message_count == 3
            assert await ch.purge_queue("work") == 3
            await ch.publish("", "work", b"again")
            assert await ch.delete_queue("work") == 1
            await ch.declare_exchange("gone", "fanout")
            await ch.delete_exchange("gone")
            with pytest.raises(NotFound) as caught:
                await ch.declare_exchange("gone", "fanout", passive=True)
            assert caught.value.reply_code == 404

    run(scenario())


# -- errors ---------------------------------------------------------------------------------


def test_channel_error_closes_only_that_channel(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            other = await conn.channel()
            ch = await conn.channel()
            with pytest.raises(NotFound) as caught:
                await ch.declare_queue("missing", passive=True)
            assert caught.value.reply_code == 404 and "missing" in caught.value.text
            assert ch.is_closed
            with pytest.raises(ChannelClosed) as later:
                await ch.declare_queue("", exclusive=True)
            assert isinstance(later.value, ClientError)
            assert isinstance(later.value.error, NotFound)
            # The connection and its other channels keep working; the number is reused.
            assert (await other.declare_queue("", exclusive=True)).message_count == 0
            again = await conn.channel()
            assert again.number == ch.number
            await again.declare_queue("", exclusive=True)

    run(scenario())


def test_publish_to_a_missing_exchange_fails_the_next_call(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.publish("no-such-exchange", "k", b"lost")  # pipelined: no round trip
            with pytest.raises(NotFound):
                await ch.declare_queue("", exclusive=True)
            with pytest.raises(ChannelClosed):
                await ch.publish("", "q", b"x")

    run(scenario())


def test_duplicate_consumer_tag_closes_the_connection(url: str) -> None:
    async def scenario() -> None:
        conn = await connect(url)
        ch = await conn.channel()
        q = await ch.declare_queue("", exclusive=True)
        consumer = await ch.consume(q.name, consumer_tag="tag")
        with pytest.raises(ConnectionClosed) as caught:
            await ch.consume(q.name, consumer_tag="tag")
        assert isinstance(caught.value.error, NotAllowed)
        assert caught.value.error.reply_code == 530
        assert conn.is_closed
        with pytest.raises(ConnectionClosed):
            await conn.channel()
        with pytest.raises(ConnectionClosed):  # the consumer ends with the connection's error
            await consumer.__anext__()
        await conn.aclose()  # closing again is harmless
        async with connect(url) as fresh:
            await (await fresh.channel()).declare_queue("", exclusive=True)

    run(scenario())


def test_double_ack_is_refused_by_the_client(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            name = await _queue_with(ch, b"once")
            delivery = await ch.get(name)
            assert delivery is not None
            await delivery.ack()
            with pytest.raises(ClientError, match="cannot ack delivery 1: it was acked"):
                await delivery.ack()
            # A tag never delivered: the broker would close the channel with 406; the client
            # refuses it before sending, and the channel lives on.
            with pytest.raises(ClientError, match="unknown delivery tag 999"):
                await ch.ack(999)
            assert not ch.is_closed
            await ch.declare_queue("", exclusive=True)

    run(scenario())


def test_messages_larger_than_a_frame_cross_in_parts(url: str) -> None:
    """The broker's frames are 128 KiB; a 1 MiB message is published, delivered, fetched and
    returned in Body frames (docs/protocol.md section 2.1), whole."""
    big = bytes(range(256)) * 4096

    async def scenario() -> None:
        async with connect(url) as conn:
            assert conn.max_frame_size == 131072
            ch = await conn.channel()
            name = await _queue_with(ch, big, big)
            got = await ch.get(name)
            assert got is not None and got.body == big
            async with ch.consume(name) as consumer:
                delivery = await consumer.receive()
                assert delivery.body == big
                await delivery.ack(multiple=True)
            await ch.confirm_select()
            with pytest.raises(MessageReturned) as caught:
                await ch.publish("", "no-such-queue", big, mandatory=True)
            assert caught.value.message.body == big

    run(scenario())


def test_a_large_message_published_over_amqp_reaches_a_native_consumer(
    server: BrokerServer,
) -> None:
    """Regression: a message larger than the native consumer's frames used to cost its
    connection a 541 INTERNAL_ERROR."""
    big = b"x" * 1_000_000

    def publish_with_pika() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
        connection.channel().basic_publish("", "from-amqp", big)
        connection.close()

    async def scenario() -> None:
        async with connect(server.url) as conn:
            ch = await conn.channel()
            await ch.declare_queue("from-amqp", exclusive=True)
            await asyncio.to_thread(publish_with_pika)
            async with ch.consume("from-amqp") as consumer:
                delivery = await consumer.receive()
                assert delivery.body == big
                await delivery.ack()

    run(scenario())


def test_properties_too_large_for_a_frame_are_refused_before_sending(url: str) -> None:
    async def scenario() -> None:
        async with connect(url, max_frame_size=4096) as conn:
            ch = await conn.channel()
            headers = {f"h{i}": "v" * 200 for i in range(30)}
            with pytest.raises(ClientError, match="cannot publish: Publish frame: its fields "
                               "besides the body take"):
                await ch.publish("", "q", b"small", headers=headers)
            name = await _queue_with(ch, b"small")
            assert (await ch.declare_queue(name, passive=True)).message_count == 1

    run(scenario())


@pytest.mark.parametrize("body", [5, [1, 2], None])
def test_a_body_that_is_not_bytes_or_str_is_refused_before_sending(url: str, body: object) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            with pytest.raises(TypeError, match="body must be bytes or str"):
                await ch.publish("", "q", body)  # type: ignore[arg-type]
            name = await _queue_with(ch, bytearray(b"ok"))  # bytearray is fine
            assert (await ch.declare_queue(name, passive=True)).message_count == 1

    run(scenario())


def test_broker_shutdown_ends_consumers_with_connection_forced() -> None:
    with running_server() as server:
        async def scenario() -> None:
            async with connect(server.url) as conn:
                ch = await conn.channel()
                q = await ch.declare_queue("", exclusive=True)
                async with ch.consume(q.name) as consumer:
                    asyncio.run_coroutine_threadsafe(server.close(), server.loop)
                    with pytest.raises(ConnectionClosed) as caught:
                        await consumer.__anext__()
                assert isinstance(caught.value.error, ConnectionForced)

        run(scenario())


# -- consuming ------------------------------------------------------------------------------


def test_consume_delivers_every_property(url: str) -> None:
    props = dict(content_type="application/json", content_encoding="utf-8",
                 headers={"k": 1, "nested": {"list": [1, "two", b"3"]}}, delivery_mode=2,
                 priority=5, correlation_id="c-1", reply_to="replies", expiration="60000",
                 message_id="m-1", timestamp=1_700_000_000, type="order", user_id="guest",
                 app_id="tests")

    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue("", exclusive=True)
            await ch.publish("", q.name, b"hello", **props)  # type: ignore[arg-type]
            async with ch.consume(q.name) as consumer:
                delivery = await consumer.__anext__()
            assert delivery.body == b"hello" and delivery.routing_key == q.name
            assert delivery.exchange == "" and not delivery.redelivered
            assert delivery.consumer_tag == consumer.consumer_tag != ""
            assert delivery.delivery_tag == 1
            assert delivery.properties == Properties(**props)  # type: ignore[arg-type]
            assert delivery.headers == props["headers"] and delivery.persistent
            assert (delivery.correlation_id, delivery.reply_to) == ("c-1", "replies")
            await delivery.ack()

    run(scenario())


def test_prefetch_limits_unacked_deliveries(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.qos(prefetch_count=2)
            name = await _queue_with(ch, *(b"%d" % i for i in range(5)))
            async with ch.consume(name) as consumer:
                first = await consumer.__anext__()
                second = await consumer.__anext__()
                # A round trip: any delivery sent before its reply has arrived by now.
                assert (await ch.declare_queue(name, passive=True)).message_count == 3
                assert consumer.statistics().buffered == 0
                assert consumer.statistics().received == 2
                await first.ack()
                third = await consumer.__anext__()
                assert [first.body, second.body, third.body] == [b"0", b"1", b"2"]
                assert (await ch.declare_queue(name, passive=True)).message_count == 2
                assert consumer.statistics().received == 3

    run(scenario())


def test_nack_and_reject_requeue_set_redelivered(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            name = await _queue_with(ch, b"a", b"b")
            async with ch.consume(name) as consumer:
                a = await consumer.__anext__()
                b = await consumer.__anext__()
                assert not a.redelivered and not b.redelivered
                await a.nack(requeue=True)
                again = await consumer.__anext__()
                assert (again.body, again.redelivered) == (b"a", True)
                await b.reject(requeue=True)
                b_again = await consumer.__anext__()
                assert (b_again.body, b_again.redelivered) == (b"b", True)
                await again.reject(requeue=False)  # dropped: no dead-letter exchange
                await b_again.ack()
            assert (await ch.declare_queue(name, passive=True)).message_count == 0

    run(scenario())


def test_recover_redelivers_unacked(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            name = await _queue_with(ch, b"m")
            got = await ch.get(name)
            assert got is not None and not got.redelivered
            await ch.recover()
            again = await ch.get(name)
            assert again is not None and again.redelivered and again.body == b"m"

    run(scenario())


def test_cancel_ends_iteration_and_leaves_messages_queued(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            name = await _queue_with(ch, b"before")
            consumer = await ch.consume(name, no_ack=True)
            assert (await consumer.__anext__()).body == b"before"
            await ch.cancel(consumer.consumer_tag)
            assert [d async for d in consumer] == []
            await ch.publish("", name, b"after")
            assert (await ch.declare_queue(name, passive=True)).message_count == 1

    run(scenario())


def test_queue_deletion_cancels_the_consumer(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.declare_queue("doomed")
            async with ch.consume("doomed") as consumer:
                other = await conn.channel()
                await other.delete_queue("doomed")
                assert [d async for d in consumer] == []
                assert not consumer.statistics().active

    run(scenario())


def test_no_ack_deliveries_cannot_be_acked(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            name = await _queue_with(ch, b"x")
            async with ch.consume(name, no_ack=True) as consumer:
                delivery = await consumer.__anext__()
                with pytest.raises(ClientError) as info:
                    await delivery.ack()
                # refused by the client itself, not a channel the broker closed
                assert type(info.value) is ClientError
                assert str(info.value) == (
                    f"cannot ack delivery {delivery.delivery_tag}: it was consumed with no_ack")
            assert (await ch.declare_queue(name, passive=True)).message_count == 0

    run(scenario())


def test_leaving_the_consumer_requeues_what_the_application_did_not_take(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.qos(prefetch_count=3)
            name = await _queue_with(ch, b"1", b"2", b"3")
            async with ch.consume(name) as consumer:
                taken = await consumer.__anext__()
                await ch.declare_queue(name, passive=True)  # the other two are buffered now
                assert consumer.statistics().buffered == 2
            await taken.ack()  # still possible: the channel is open
            left = [await ch.get(name, no_ack=True) for _ in range(2)]
            assert [(d.body, d.redelivered) for d in left if d] == [(b"2", True), (b"3", True)]

    run(scenario())


def test_closing_a_connection_requeues_its_unacked_messages(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as first:
            ch = await first.channel()
            await ch.declare_queue("shared")
            await ch.publish("", "shared", b"job")
            consumer = await ch.consume("shared")
            delivery = await consumer.__anext__()
            assert not delivery.redelivered
        async with connect(url) as second:
            ch2 = await second.channel()
            async with ch2.consume("shared") as consumer2:
                again = await consumer2.__anext__()
                assert (again.body, again.redelivered) == (b"job", True)
                await again.ack()

    run(scenario())


# -- publishing -----------------------------------------------------------------------------


def test_publish_pipelines_many_messages(url: str) -> None:
    count = 5000

    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue("", exclusive=True)
            body = b"x" * 1000
            for _ in range(count):
                await ch.publish("", q.name, body)
            assert (await ch.declare_queue(q.name, passive=True)).message_count == count

    run(scenario())


def test_confirms_ack_each_publish_and_raise_on_return(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.confirm_select()
            assert ch.confirm_mode
            q = await ch.declare_queue("", exclusive=True)
            await ch.publish("", q.name, b"confirmed")
            await ch.publish("", "nowhere", b"unroutable, not mandatory")
            with pytest.raises(MessageReturned) as caught:
                await ch.publish("", "nowhere", b"bounced", mandatory=True)
            assert caught.value.reply_code == 312 and caught.value.message.body == b"bounced"
            # Pipelined from many tasks: the broker coalesces acks; returns hit exactly the
            # mandatory unroutable publishes.
            targets = [q.name if i % 3 else "nowhere" for i in range(30)]
            results = await asyncio.gather(
                *(ch.publish("", target, b"%d" % i, mandatory=True)
                  for i, target in enumerate(targets)),
                return_exceptions=True)
            returned = [i for i, r in enumerate(results) if isinstance(r, MessageReturned)]
            assert returned == [i for i, t in enumerate(targets) if t == "nowhere"]
            assert all(r is None for i, r in enumerate(results) if i not in returned)
            assert (await ch.declare_queue(q.name, passive=True)).message_count == 21

    run(scenario())


def test_confirm_mode_publish_to_missing_exchange_raises(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.confirm_select()
            with pytest.raises(NotFound):
                await ch.publish("missing", "k", b"x")

    run(scenario())


def test_returns_outside_confirm_mode_reach_on_return(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            returned: list[bytes] = []
            ch.on_return = lambda message: returned.append(message.body)
            await ch.publish("", "nowhere", b"back", mandatory=True)
            await ch.declare_queue("", exclusive=True)  # the return precedes this reply
            assert returned == [b"back"]

    run(scenario())


def test_channel_close_and_reopen(url: str) -> None:
    async def scenario() -> None:
        conn: Connection
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.qos(prefetch_count=1)
            name = await _queue_with(ch, b"held")
            got = await ch.get(name)
            assert got is not None
            await ch.aclose()
            await ch.aclose()  # idempotent
            with pytest.raises(ChannelClosed):
                await ch.get(name)
            ch2 = await conn.channel()
            again = await ch2.get(name)  # closing the channel requeued it
            assert again is not None and again.redelivered

    run(scenario())


class HeartbeatsHeard(logging.Handler):
    """Sets :attr:`heard` when the broker's trace logs a heartbeat it received."""

    def __init__(self) -> None:
        super().__init__()
        self.heard = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if " <- " in message and "Heartbeat" in message:
            self.heard.set()


def test_an_idle_client_sends_heartbeats_and_detects_a_silent_broker() -> None:
    """Both sides on manual clocks, over a real socket: while the client is idle its
    heartbeats keep the broker from dropping it; once the broker falls silent (its clock
    stops), the client gives up on it after two intervals."""

    async def scenario() -> None:
        server_clock, client_clock = ManualClock(), ManualClock()
        server = BrokerServer(ServerConfig(port=0, heartbeat=10, trace=True), clock=server_clock)
        await server.start()
        seen = HeartbeatsHeard()
        trace = logging.getLogger("minibroker.trace")
        trace.addHandler(seen)
        level, trace.level = trace.level, logging.INFO
        try:
            async with connect(server.url, clock=client_clock) as conn:
                assert conn.heartbeat == 10
                [session] = server.sessions.values()

                async def idle(seconds: float) -> None:
                    """``seconds`` of idleness on the client: its heartbeat reaches the broker."""
                    seen.heard.clear()
                    client_clock.advance(seconds)
                    await asyncio.wait_for(seen.heard.wait(), TIMEOUT)

                for _ in range(6):  # 30 s: three intervals, of which the broker hears only
                    await idle(5)  # heartbeats
                    server_clock.advance(5)
                    server.fire_timers()
                assert server.sessions.get(session.id) is session and not conn.is_closed

                # The broker falls silent: its clock no longer moves, so it sends nothing.
                ch = await conn.channel()  # a round trip: what it sent before is read
                for _ in range(4):
                    await idle(5)  # 20 s without a byte from the broker: not more than 2h
                assert not conn.is_closed
                client_clock.advance(5)
                assert conn.is_closed
                with pytest.raises(ConnectionClosed, match="heartbeat timeout"):
                    await ch.qos(1)
        finally:
            trace.removeHandler(seen)
            trace.level = level
            await server.close()
        assert server.internal_errors == 0

    run(scenario())


def test_a_lost_connection_fails_the_client_and_requeues(url: str, server: BrokerServer) -> None:
    def drop_every_socket() -> None:
        for session in list(server.sessions.values()):
            session.transport.abort()

    async def scenario() -> None:
        async with connect(url) as first:
            ch = await first.channel()
            await ch.declare_queue("jobs")
            await ch.publish("", "jobs", b"job")
            consumer = await ch.consume("jobs")
            assert not (await consumer.__anext__()).redelivered
            server.loop.call_soon_threadsafe(drop_every_socket)
            with pytest.raises(ConnectionClosed) as caught:
                await consumer.__anext__()
            assert caught.value.error is None and first.is_closed
        async with connect(url) as second:
            again = await (await second.channel()).get("jobs")
            assert again is not None and again.redelivered

    run(scenario())


# -- against a scripted fake broker ---------------------------------------------------------


class FakeBroker:
    """A scripted server speaking the native protocol with the shared codec."""

    def __init__(self, heartbeat: int = 0, *, echo_heartbeats: bool = False) -> None:
        self.heartbeat = heartbeat
        self.echo_heartbeats = echo_heartbeats
        self.received: list[f.Frame] = []
        self.replies: dict[type[f.Frame], f.Frame] = {}
        #: Set whenever a heartbeat arrives (a test clears it, then waits for the next one).
        self.heartbeat_seen = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"minibroker://127.0.0.1:{port}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        codec = NativeCodec(role="server")
        while data := await reader.read(65536):
            codec.receive_data(data)
            for frame in codec.frames():
                self.received.append(frame)
                if isinstance(frame, f.Hello):
                    writer.write(codec.send(f.HelloOk("fake", 131072, 16, self.heartbeat)))
                elif isinstance(frame, f.Tune):
                    writer.write(codec.send(f.TuneOk()))
                elif isinstance(frame, f.ChannelOpen):
                    writer.write(codec.send(f.ChannelOpenOk(frame.channel)))
                elif isinstance(frame, f.ConnectionClose):
                    writer.write(codec.send(f.ConnectionCloseOk()))
                elif isinstance(frame, f.Heartbeat):
                    if self.echo_heartbeats:
                        writer.write(codec.send(f.Heartbeat()))
                        await writer.drain()
                    self.heartbeat_seen.set()
                elif type(frame) in self.replies:
                    writer.write(codec.send(self.replies[type(frame)]))
        writer.close()


def test_a_silent_broker_is_detected_by_heartbeat() -> None:
    """Client heartbeats follow the clock the client is given: here a manual one."""

    async def scenario() -> None:
        clock = ManualClock()
        fake = FakeBroker(heartbeat=10)  # answers the handshake, then never sends a heartbeat
        async with fake as fake_url, connect(fake_url, clock=clock) as conn:
            assert conn.heartbeat == 10
            channel = await conn.channel()
            clock.advance(5)  # half an interval without sending: our heartbeat goes out
            await asyncio.wait_for(fake.heartbeat_seen.wait(), TIMEOUT)
            assert not conn.is_closed
            clock.advance(15.5)  # more than two intervals without a byte from the broker
            assert conn.is_closed
            with pytest.raises(ConnectionClosed) as caught:
                await channel.qos(1)
            assert "heartbeat" in str(caught.value)

    run(scenario())


def test_heartbeats_keep_a_connection_to_a_live_broker_open() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        fake = FakeBroker(heartbeat=10, echo_heartbeats=True)
        async with fake as fake_url, connect(fake_url, clock=clock) as conn:
            for _ in range(10):  # 50 s: five times the heartbeat interval
                fake.heartbeat_seen.clear()
                clock.advance(5)
                await asyncio.wait_for(fake.heartbeat_seen.wait(), TIMEOUT)
                await conn.channel()  # a round trip: the echo has been read since
            assert not conn.is_closed

    run(scenario())


def test_an_unexpected_reply_closes_the_connection_with_505() -> None:
    async def scenario() -> None:
        fake = FakeBroker()
        fake.replies[f.QueueDeclare] = f.QosOk(1)  # the wrong reply
        async with fake as fake_url, connect(fake_url) as conn:
            ch = await conn.channel()
            with pytest.raises(ConnectionClosed) as caught:
                await ch.declare_queue("q")
            assert isinstance(caught.value.error, UnexpectedFrame)
        closes = [frame for frame in fake.received if isinstance(frame, f.ConnectionClose)]
        assert closes and closes[0].reply_code == 505

    run(scenario())
