"""The broker on a real socket, through the native protocol, one frame at a time (rawclient).

Every scenario runs on a server at 127.0.0.1:0 (see conftest.py) and is bounded in time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import struct

import msgpack
import pytest

from minibroker import __version__
from minibroker.message import Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import PREAMBLE
from minibroker.server import BrokerServer
from tests.integration.conftest import TEST_CONFIG, ManualClock, RunBroker
from tests.integration.rawclient import RawClient

QUEUE = "q1"


def confirmed(frames: list[f.Frame], already: set[int] | None = None) -> set[int]:
    """Publish sequence numbers acknowledged by ConfirmAck frames (``multiple`` expanded)."""
    tags = set(already or ())
    for frame in frames:
        if isinstance(frame, f.ConfirmAck):
            tags |= set(range(1, frame.delivery_tag + 1)) if frame.multiple else {
                frame.delivery_tag}
    return tags


# -- handshake ----------------------------------------------------------------------------------


LOGIN_REFUSED = ("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                 "For details see the broker logfile.")


def test_handshake_reports_version_and_limits_and_registers(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        assert client.hello_ok == f.HelloOk(__version__, 131072, 2047, 60)
        assert server.broker.statistics().connections == 1
        await client.close()
        assert server.broker.statistics().connections == 0

    run_broker(scenario)


def test_wrong_password_is_refused_with_403(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, handshake=False)
        client.send_raw(PREAMBLE)
        client.send(f.Hello("t", "guest", "wrong"))
        close = await client.expect(f.ConnectionClose)
        assert (close.reply_code, close.reply_text) == (403, LOGIN_REFUSED)
        client.send(f.ConnectionCloseOk())
        assert await client.frames_until_eof() == []
        assert server.broker.statistics().connections == 0

    run_broker(scenario)


@pytest.mark.parametrize(("username", "password"), [("admin", None), ("nobody", "x")])
def test_an_unknown_user_is_refused_even_without_a_password(
    run_broker: RunBroker, username: str, password: str | None
) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, handshake=False)
        client.send_raw(PREAMBLE)
        client.send(f.Hello("t", username, password))
        close = await client.expect(f.ConnectionClose)
        assert (close.reply_code, close.reply_text) == (403, LOGIN_REFUSED)
        assert server.broker.statistics().connections == 0

    run_broker(scenario)


def test_hello_without_credentials_is_refused_when_there_is_no_guest(
    run_broker: RunBroker,
) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, handshake=False)
        client.send_raw(PREAMBLE)
        client.send(f.Hello("t"))
        assert (await client.expect(f.ConnectionClose)).reply_code == 403

    run_broker(scenario, config=dataclasses.replace(TEST_CONFIG, users={"alice": "pw"}))


@pytest.mark.parametrize(("username", "password"), [(None, None), (None, "wrong"),
                                                    (None, "guest"), ("guest", None)])
def test_a_hello_without_full_credentials_is_refused(
    run_broker: RunBroker, username: str | None, password: str | None,
) -> None:
    """The server never picks a user for the client (it used to log such a hello in as
    guest)."""
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, handshake=False)
        client.send_raw(PREAMBLE)
        client.send(f.Hello("t", username, password))
        close = await client.expect(f.ConnectionClose)
        assert (close.reply_code, close.reply_text) == (403, LOGIN_REFUSED)
        assert server.broker.statistics().connections == 0

    run_broker(scenario)


def test_tune_lowers_the_frame_size(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, max_frame_size=8192)
        await client.open_channel()
        client.codec.max_frame_size = 1 << 20  # let our side send what the server refuses
        client.publish(b"x" * 10_000, QUEUE)
        close = await client.expect(f.ConnectionClose)
        assert close.reply_code == 501
        assert "8192" in close.reply_text

    run_broker(scenario)


# -- messages -----------------------------------------------------------------------------------


def test_declare_bind_publish_consume_ack_round_trip(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        ok = await client.declare_queue(QUEUE)
        assert ok == f.QueueDeclareOk(1, QUEUE, 0, 0)
        await client.call(f.QueueBind(1, QUEUE, "amq.direct", "key", {}), f.QueueBindOk)
        await client.call(f.Qos(1, 10, False), f.QosOk)
        tag = await client.consume(QUEUE, tag="c1")
        assert tag == "c1"
        properties = Properties(content_type="text/plain", headers={"n": 1}, delivery_mode=2)
        client.publish(b"hello", "key", exchange="amq.direct", properties=properties)
        deliver = await client.expect(f.Deliver)
        assert deliver == f.Deliver(1, "c1", 1, False, "amq.direct", "key", properties, b"hello")
        assert server.broker.queue_statistics(QUEUE).unacked == 1
        client.send(f.Ack(1, deliver.delivery_tag))
        await client.call(f.Cancel(1, "c1"), f.CancelOk)  # a round trip: the ack went first
        stats = server.broker.queue_statistics(QUEUE)
        assert (stats.ready, stats.unacked, stats.acked) == (0, 0, 1)
        await client.close()

    run_broker(scenario)


def test_get_empty_then_get_ok(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        await client.declare_queue(QUEUE)
        assert await client.call(f.Get(1, QUEUE, False), f.GetEmpty) == f.GetEmpty(1)
        client.publish(b"a", QUEUE)
        client.publish(b"b", QUEUE)
        got = await client.call(f.Get(1, QUEUE, False), f.GetOk)
        assert (got.body, got.delivery_tag, got.message_count, got.routing_key) == (
            b"a", 1, 1, QUEUE)
        client.send(f.Reject(1, got.delivery_tag, requeue=True))
        purged = await client.call(f.QueuePurge(1, QUEUE), f.QueuePurgeOk)
        assert purged.message_count == 2
        await client.close()

    run_broker(scenario)


def test_confirm_numbering_and_mandatory_return(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        await client.declare_queue(QUEUE)
        await client.call(f.ConfirmSelect(1), f.ConfirmSelectOk)
        for n in range(3):
            client.publish(b"%d" % n, QUEUE)
        frames: list[f.Frame] = []
        while confirmed(frames) != {1, 2, 3}:
            frames.append(await client.recv())
        assert all(isinstance(frame, f.ConfirmAck) for frame in frames)
        # An unroutable mandatory message: Return first, then its confirm (RabbitMQ's order).
        client.publish(b"lost", "no-such-queue", mandatory=True)
        returned = await client.expect(f.Return)
        assert (returned.reply_code, returned.reply_text, returned.body) == (
            312, "NO_ROUTE", b"lost")
        assert await client.expect(f.ConfirmAck) == f.ConfirmAck(1, 4, False)
        # A new channel numbers its publishes from 1 again.
        await client.open_channel(2)
        await client.call(f.ConfirmSelect(2), f.ConfirmSelectOk)
        client.publish(b"x", QUEUE, channel=2)
        assert await client.expect(f.ConfirmAck) == f.ConfirmAck(2, 1, False)
        await client.close()

    run_broker(scenario)


def test_channel_error_closes_only_the_channel(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel(1)
        await client.open_channel(2)
        await client.declare_queue(QUEUE, channel=2)
        client.publish(b"m", QUEUE, channel=2)
        got = await client.call(f.Get(2, QUEUE, False), f.GetOk)
        client.send(f.QueueDeclare(2, "missing", True, False, False, False, {}))
        close = await client.expect(f.ChannelClose)
        assert (close.channel, close.reply_code) == (2, 404)
        assert close.reply_text.startswith("NOT_FOUND - ") and "missing" in close.reply_text
        # The closed channel's unacked message is back in its queue at once.
        assert server.broker.queue_statistics(QUEUE).ready == 1
        # Until our close-ok, frames on that channel are ignored (no reply, no error), except
        # a crossing ChannelClose, which gets its close-ok ...
        client.send(f.Ack(2, got.delivery_tag), f.Get(2, QUEUE, False), f.ChannelOpen(2),
                    f.ChannelClose(2, 200, "crossing"))
        assert await client.recv() == f.ChannelCloseOk(2)
        # ... while channel 1 keeps working.
        assert (await client.call(f.Get(1, QUEUE, True), f.GetOk)).redelivered
        client.send(f.ChannelCloseOk(2))
        await client.open_channel(2)
        assert await client.call(f.Get(2, QUEUE, False), f.GetEmpty) == f.GetEmpty(2)
        await client.close()

    run_broker(scenario)


def test_a_bad_ack_inside_a_batch_applies_the_acks_before_it(run_broker: RunBroker) -> None:
    """Acks sent in one write are handled as one core input; an unknown tag among them must
    still behave as if they were handled one by one."""

    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        await client.declare_queue(QUEUE)
        for body in (b"1", b"2", b"3"):
            client.publish(body, QUEUE)
        await client.consume(QUEUE)
        tags = [(await client.expect(f.Deliver)).delivery_tag for _ in range(3)]
        client.send(f.Ack(1, tags[0]), f.Ack(1, tags[1]), f.Ack(1, 99), f.Ack(1, tags[2]))
        close = await client.expect(f.ChannelClose)
        assert close.reply_code == 406 and "unknown delivery tag 99" in close.reply_text
        stats = server.broker.queue_statistics(QUEUE)
        # Two acks took effect; the third message went back when the channel closed.
        assert (stats.acked, stats.ready, stats.unacked) == (2, 1, 0)
        await client.close()

    run_broker(scenario)


def test_a_bad_publish_inside_a_batch_publishes_the_ones_before_it(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        await client.declare_queue(QUEUE)
        client.send(
            f.Publish(1, "", QUEUE, False, Properties(), b"1"),
            f.Publish(1, "missing", QUEUE, False, Properties(), b"2"),
            f.Publish(1, "", QUEUE, False, Properties(), b"3"),
        )
        close = await client.expect(f.ChannelClose)
        assert close.reply_code == 404 and "missing" in close.reply_text
        assert server.broker.queue_statistics(QUEUE).ready == 1  # only the first got in
        await client.close()

    run_broker(scenario)


def test_client_close_requeues_unacked(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        await client.declare_queue(QUEUE)
        await client.consume(QUEUE)
        client.publish(b"m", QUEUE)
        await client.expect(f.Deliver)
        await client.call(f.ChannelClose(1, 200, "bye"), f.ChannelCloseOk)
        assert server.broker.queue_statistics(QUEUE).ready == 1
        await client.open_channel()
        await client.consume(QUEUE)
        assert (await client.expect(f.Deliver)).redelivered
        await client.close()
        assert server.broker.queue_statistics(QUEUE).ready == 1

    run_broker(scenario)


# -- bad input ----------------------------------------------------------------------------------


def _raw_frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


# name -> (bytes sent after the handshake and ChannelOpen(1), expected code, word in the text)
BAD_INPUT = {
    "malformed frame": (_raw_frame(b"\xc1\xc1"), 502, "msgpack"),
    "wrong arity": (_raw_frame(msgpack.packb([f.QueueDelete.opcode, 1, "q"])), 502, "QueueDelete"),
    "unknown opcode": (_raw_frame(msgpack.packb([0x7E, 1])), 503, "0x7e"),
    "server-only opcode": (_raw_frame(msgpack.packb([f.Deliver.opcode, 1])), 503, "Deliver"),
    "oversized frame": (struct.pack(">I", 1 << 30), 501, "max_frame_size"),
    "channel not open": (
        _raw_frame(msgpack.packb([f.Get.opcode, 9, QUEUE, False])), 504, "channel 9"),
    "second channel open": (_raw_frame(msgpack.packb([f.ChannelOpen.opcode, 1])), 504, "second"),
    "channel above channel_max": (
        _raw_frame(msgpack.packb([f.ChannelOpen.opcode, 4000])), 504, "2047"),
    "hello after open": (
        _raw_frame(msgpack.packb([f.Hello.opcode, 0, "again", None, None, {}, "/"])), 505, "Hello"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_closes_only_that_connection(
    run_broker: RunBroker, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    data, code, word = BAD_INPUT[case]

    async def scenario(server: BrokerServer) -> None:
        bystander = await RawClient.connect(server.port)
        await bystander.open_channel()
        await bystander.declare_queue(QUEUE)
        bystander.publish(b"kept", QUEUE)
        got = await bystander.call(f.Get(1, QUEUE, False), f.GetOk)

        offender = await RawClient.connect(server.port)
        await offender.open_channel()
        offender.send_raw(data)
        close = await offender.expect(f.ConnectionClose)
        assert close.reply_code == code
        assert word.lower() in close.reply_text.lower()
        offender.send(f.ConnectionCloseOk())
        assert await offender.frames_until_eof() == []

        # The bystander never noticed: its delivery is still unacked and it still works.
        assert server.broker.queue_statistics(QUEUE).unacked == 1
        client_ack = f.Ack(1, got.delivery_tag)
        bystander.send(client_ack)
        assert await bystander.call(f.Get(1, QUEUE, False), f.GetEmpty) == f.GetEmpty(1)
        await bystander.close()

    with caplog.at_level(logging.WARNING, logger="minibroker.server"):
        run_broker(scenario)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(code) in message and "127.0.0.1:" in message for message in warnings)


def test_unknown_preamble_version_is_answered_with_ours(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        bystander = await RawClient.connect(server.port)
        client = await RawClient.connect(server.port, handshake=False)
        client.send_raw(b"MBRK\x00\x09\x00\x00")
        assert await client.raw_until_eof() == PREAMBLE
        await bystander.open_channel()
        await bystander.close()

    run_broker(scenario)


def test_frames_before_the_handshake_are_unexpected(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, handshake=False)
        client.send_raw(PREAMBLE)
        client.send(f.ChannelOpen(1))
        close = await client.expect(f.ConnectionClose)
        assert close.reply_code == 505 and "Hello" in close.reply_text
        # Without our close-ok the server still closes, after its grace period.
        assert await client.frames_until_eof() == []

    run_broker(scenario)


def test_a_socket_that_never_completes_the_handshake_is_dropped(run_broker: RunBroker) -> None:
    clock = ManualClock()

    async def scenario(server: BrokerServer) -> None:
        bystander = await RawClient.connect(server.port)
        silent = await RawClient.connect(server.port, handshake=False)
        half = await RawClient.connect(server.port, handshake=False)
        half.send_raw(PREAMBLE)  # a protocol was chosen, but no Hello follows
        clock.advance(server.config.handshake_timeout - 1)
        server.fire_timers()
        await bystander.open_channel()  # a round trip: the sweep ran, nobody was dropped yet
        assert len(server.protocols) == 3
        clock.advance(2)
        server.fire_timers()
        assert await silent.raw_until_eof() == b""
        assert await half.raw_until_eof() == b""
        await bystander.declare_queue(QUEUE)  # the registered connection is untouched
        await bystander.close()

    run_broker(scenario, clock=clock)


def test_an_amqp_handshake_follows_the_configured_timeout(run_broker: RunBroker) -> None:
    """The handshake timeout is the shell's, the same for both protocols and from the config."""
    clock = ManualClock()
    config = dataclasses.replace(TEST_CONFIG, handshake_timeout=30.0)

    async def scenario(server: BrokerServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"AMQP\x00\x00\x09\x01")
        assert await asyncio.wait_for(reader.read(1), 5)  # connection.start began
        clock.advance(20)  # past RabbitMQ's 10 s, within the configured 30 s
        server.fire_timers()
        assert len(server.protocols) == 1
        clock.advance(11)
        server.fire_timers()
        await asyncio.wait_for(reader.read(), 5)  # EOF: the broker closed it
        writer.close()

    run_broker(scenario, clock=clock, config=config)


def test_a_closing_connection_is_not_mistaken_for_an_unfinished_handshake(
    run_broker: RunBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection released after its handshake (here: closing after a protocol error, waiting
    for the client's close-ok) must not be reported as a handshake that never completed."""
    clock = ManualClock()

    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        client.send_raw(struct.pack(">I", 3) + b"\xc1\xc1\xc1")  # not msgpack
        assert (await client.expect(f.ConnectionClose)).reply_code == 502  # SYNTAX_ERROR
        clock.advance(server.config.handshake_timeout + 1)
        server.fire_timers()
        assert await client.frames_until_eof() == []

    with caplog.at_level(logging.WARNING, logger="minibroker.server"):
        run_broker(scenario, clock=clock)
    assert not [r for r in caplog.records if "handshake not completed" in r.getMessage()]


# -- heartbeats ---------------------------------------------------------------------------------


def test_heartbeat_sent_when_idle_and_silent_peer_dropped(run_broker: RunBroker) -> None:
    clock = ManualClock()

    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, heartbeat=10)
        await client.open_channel()
        await client.declare_queue(QUEUE)
        await client.consume(QUEUE)
        client.publish(b"m", QUEUE)
        await client.expect(f.Deliver)
        clock.advance(6)  # more than half an interval without sending anything
        server.fire_timers()
        assert await client.expect(f.Heartbeat) == f.Heartbeat()
        assert server.broker.queue_statistics(QUEUE).unacked == 1
        clock.advance(15)  # 21 s of silence from the client: more than two intervals
        server.fire_timers()
        assert await client.frames_until_eof() == []
        stats = server.broker.queue_statistics(QUEUE)
        assert (stats.ready, stats.unacked) == (1, 0)

    run_broker(scenario, clock=clock)


def test_a_connection_we_do_not_read_is_not_dropped_and_still_gets_heartbeats(
    run_broker: RunBroker,
) -> None:
    """A blocked publisher (flow control) is silent because we stopped reading it: it must not
    be dropped for that, and it must keep hearing from us, or the client drops the broker."""
    clock = ManualClock()

    async def scenario(server: BrokerServer) -> None:
        before = set(server.sessions)
        client = await RawClient.connect(server.port, heartbeat=10)
        [session_id] = set(server.sessions) - before
        session = server.sessions[session_id]
        session.hold_reading("test")
        for _ in range(5):
            clock.advance(6)  # 30 s of silence in all: three intervals
            server.fire_timers()
            assert await client.expect(f.Heartbeat) == f.Heartbeat()
        assert session_id in server.sessions
        session.release_reading("test")
        await client.open_channel()
        await client.close()

    run_broker(scenario, clock=clock)


def test_heartbeat_timeout_in_real_time(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, heartbeat=1)
        await client.open_channel()
        await client.declare_queue(QUEUE)
        await client.consume(QUEUE)
        client.publish(b"m", QUEUE)
        await client.expect(f.Deliver)
        frames = await client.frames_until_eof(timeout=4)  # silent from here on
        assert frames and all(frame == f.Heartbeat() for frame in frames)
        assert server.broker.queue_statistics(QUEUE).ready == 1

    run_broker(scenario, config=dataclasses.replace(TEST_CONFIG, heartbeat=1))


def test_heartbeat_zero_disables(run_broker: RunBroker) -> None:
    clock = ManualClock()

    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, heartbeat=0)
        clock.advance(1000)
        server.fire_timers()
        await client.open_channel()
        await client.close()

    run_broker(scenario, clock=clock)


# -- backpressure -------------------------------------------------------------------------------


def test_slow_consumer_cannot_make_the_broker_buffer_without_bound(run_broker: RunBroker) -> None:
    body = b"x" * 16384
    count = 2000  # 32 MB: far beyond the socket buffers of the stalled consumer

    async def scenario(server: BrokerServer) -> None:
        stalled = await RawClient.connect(server.port, receive_buffer=4096)
        await stalled.open_channel()
        await stalled.declare_queue(QUEUE)
        await stalled.consume(QUEUE, no_ack=True)
        # From now on the stalled client reads nothing.
        publisher = await RawClient.connect(server.port)
        await publisher.open_channel()
        await publisher.call(f.ConfirmSelect(1), f.ConfirmSelectOk)
        acked: set[int] = set()
        for start in range(0, count, 100):
            for _ in range(100):
                publisher.publish(body, QUEUE)
            await publisher.drain()
            while len(acked) < start + 100:
                acked = confirmed([await publisher.recv()], acked)
        assert acked == set(range(1, count + 1))  # the publisher was never held up
        stats = server.broker.queue_statistics(QUEUE)
        assert stats.ready > count // 2  # the broker stopped delivering ...
        session = server.sessions[min(server.sessions)]  # the stalled client came first
        # ... and what it holds for the stalled client stays near the transport's high-water
        # mark instead of growing with the backlog.
        assert session.transport.get_write_buffer_size() < 2 * 1024 * 1024
        stalled.abort()

    run_broker(scenario, timeout=30)


# -- shutdown -----------------------------------------------------------------------------------


def test_shutdown_sends_connection_forced(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        closing = asyncio.create_task(server.close())
        close = await client.expect(f.ConnectionClose)
        assert close.reply_code == 320
        client.send(f.ConnectionCloseOk())
        assert await client.frames_until_eof() == []
        await closing
        assert not server.sessions

    run_broker(scenario)


# -- dead-letter times --------------------------------------------------------------------------


def test_x_death_time_is_wall_clock_time(run_broker: RunBroker) -> None:
    """The core only sees the server clock (monotonic); x-death must still carry epoch time."""

    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        await client.declare_queue("dead")
        await client.call(
            f.QueueDeclare(1, "work", False, False, False, False,
                           {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}),
            f.QueueDeclareOk,
        )
        client.publish(b"m", "work")
        got = await client.call(f.Get(1, "work", False), f.GetOk)
        client.send(f.Reject(1, got.delivery_tag, False))
        dead = await client.call(f.Get(1, "dead", True), f.GetOk)
        headers = dead.properties.headers or {}
        deaths = headers["x-death"]
        assert isinstance(deaths, list) and isinstance(deaths[0], dict)
        when = deaths[0]["time"]
        assert isinstance(when, datetime.datetime)
        now = datetime.datetime.now(datetime.UTC)
        assert abs((now - when.astimezone(datetime.UTC)).total_seconds()) < 60
        await client.close()

    run_broker(scenario)


def test_queued_messages_share_their_routing_key_strings(run_broker: RunBroker) -> None:
    """Memory: a million queued messages must not each keep a copy of the same routing key."""

    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        await client.declare_queue(QUEUE)
        client.publish(b"1", QUEUE)  # a single publish in one read
        await client.declare_queue(QUEUE)  # a round trip, so the next two come in one read
        client.send(f.Publish(1, "", QUEUE, False, Properties(), b"2"),
                    f.Publish(1, "", QUEUE, False, Properties(), b"3"))
        await client.declare_queue(QUEUE)
        ready = server.broker.topology.queues[QUEUE].entries()
        keys = [entry.message.routing_key for entry in ready]
        assert keys == [QUEUE] * 3
        assert keys[0] is keys[1] is keys[2]
        await client.close()

    run_broker(scenario)


def test_a_header_integer_amqp_cannot_carry_is_refused_at_publish(run_broker: RunBroker) -> None:
    """Every message must be deliverable over AMQP too: an integer beyond 64 bits is a 502 for
    the publisher that sent it, naming the field, not a failure at some AMQP consumer later."""

    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        await client.declare_queue(QUEUE)
        client.publish(b"m", QUEUE, properties=Properties(headers={"n": 2**64 - 1}))
        close = await client.expect(f.ConnectionClose)
        assert close.reply_code == 502 and "'n'" in close.reply_text
        assert server.broker.queue_statistics(QUEUE).ready == 0

    run_broker(scenario)


def test_a_message_bigger_than_a_consumers_frames_reaches_it_in_parts(
    run_broker: RunBroker,
) -> None:
    """A consumer that negotiated the smallest frame size still gets a big message: in Body
    frames, then the Deliver with the last part (docs/protocol.md section 2.1)."""

    async def scenario(server: BrokerServer) -> None:
        consumer = await RawClient.connect(server.port, max_frame_size=4096)
        await consumer.open_channel()
        await consumer.declare_queue(QUEUE)
        await consumer.consume(QUEUE)
        publisher = await RawClient.connect(server.port)
        await publisher.open_channel()
        await publisher.call(f.ConfirmSelect(1), f.ConfirmSelectOk)
        body = bytes(range(256)) * 40  # 10 KiB: three frames of 4 KiB
        publisher.publish(body, QUEUE)
        assert isinstance(await publisher.expect(f.ConfirmAck), f.ConfirmAck)
        deliver = await consumer.expect(f.Deliver)
        assert deliver.body == body
        await _ack_all(server, consumer, f.Ack(1, deliver.delivery_tag), acked=1)
        await publisher.close()
        await consumer.close()

    run_broker(scenario)


def _record_runs(server: BrokerServer) -> list[int]:
    """The sizes of the delivery runs the core hands the shell (so a scenario knows it sent
    a run, ``core/effects.py`` rule 5, not single deliveries)."""
    from minibroker.core.effects import DeliverRun

    sizes: list[int] = []
    apply = server.apply_effects

    def recording(effects: list) -> None:  # type: ignore[type-arg]
        sizes.extend(len(e.messages) for e in effects if type(e) is DeliverRun)
        apply(effects)

    server.apply_effects = recording  # type: ignore[method-assign]
    return sizes


def test_a_run_of_deliveries_splits_the_one_bigger_than_the_consumers_frames(
    run_broker: RunBroker,
) -> None:
    """A backlog goes to a consumer as one run; the message in it that does not fit the
    consumer's 4 KiB frames arrives in parts, between the others, every tag in order."""

    async def scenario(server: BrokerServer) -> None:
        runs = _record_runs(server)
        publisher = await _confirming_publisher(server)
        big = bytes(range(256)) * 40  # 10 KiB: three frames of 4 KiB
        bodies = [b"first", big, b"last"]
        for body in bodies:
            publisher.publish(body, QUEUE)
        assert confirmed(await _confirms(publisher, 3)) == {1, 2, 3}
        consumer = await RawClient.connect(server.port, max_frame_size=4096)
        await consumer.open_channel()
        await consumer.consume(QUEUE)
        delivers = [await consumer.expect(f.Deliver) for _ in bodies]
        assert [(d.delivery_tag, d.body) for d in delivers] == [(1, b"first"), (2, big),
                                                                (3, b"last")]
        assert runs == [3]
        await _ack_all(server, consumer, f.Ack(1, 3, True), acked=3)
        await publisher.close()
        await consumer.close()

    run_broker(scenario)


async def _confirming_publisher(server: BrokerServer) -> RawClient:
    """A client with channel 1 open in confirm mode, after declaring the queue."""
    publisher = await RawClient.connect(server.port)
    await publisher.open_channel()
    await publisher.declare_queue(QUEUE)
    await publisher.call(f.ConfirmSelect(1), f.ConfirmSelectOk)
    return publisher


async def _ack_all(server: BrokerServer, consumer: RawClient, ack: f.Ack, *, acked: int) -> None:
    """Send ``ack``; once handled (a round trip), the queue holds nothing and counts
    ``acked`` acks."""
    consumer.send(ack)
    await consumer.declare_queue(QUEUE)
    stats = server.broker.queue_statistics(QUEUE)
    assert (stats.ready, stats.unacked, stats.acked) == (0, 0, acked)


async def _confirms(client: RawClient, count: int) -> list[f.Frame]:
    """Confirm frames until ``count`` publishes are confirmed."""
    frames: list[f.Frame] = []
    while len(confirmed(frames)) < count:
        frames.append(await client.expect(f.ConfirmAck))
    return frames


def test_a_consumer_that_cannot_take_a_delivery_of_a_run_gets_the_ones_before_it(
    run_broker: RunBroker,
) -> None:
    """As with single deliveries: the deliveries before the one whose fields alone exceed the
    consumer's frame size arrive, then the connection is closed (not the publisher's), and
    everything it had comes back to the queue."""

    async def scenario(server: BrokerServer) -> None:
        runs = _record_runs(server)
        publisher = await _confirming_publisher(server)
        publisher.publish(b"first", QUEUE)
        publisher.publish(b"huge", QUEUE, properties=Properties(headers={"h": "x" * 8000}))
        publisher.publish(b"last", QUEUE)
        await _confirms(publisher, 3)
        consumer = await RawClient.connect(server.port, max_frame_size=4096)
        await consumer.open_channel()
        await consumer.consume(QUEUE)
        deliver = await consumer.expect(f.Deliver)
        assert (deliver.delivery_tag, deliver.body) == (1, b"first")
        close = await consumer.expect(f.ConnectionClose)
        assert close.reply_code == 501
        assert runs == [3]
        consumer.send(f.ConnectionCloseOk())
        await consumer.frames_until_eof()
        await publisher.declare_queue(QUEUE)  # the publisher's connection lives on
        stats = server.broker.queue_statistics(QUEUE)
        assert (stats.ready, stats.unacked) == (3, 0)
        await publisher.close()

    run_broker(scenario)
