"""The sans-IO AMQP connection state machine, driven with octets; its output decoded with a
client-side codec."""

from __future__ import annotations

from typing import Any

import pytest

from minibroker.accounts import Login, build_access
from minibroker.message import EMPTY_PROPERTIES
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.connection import (
    AMQPConnection,
    ChannelEnded,
    ChannelOpened,
    CloseSocket,
    ConnectionClosing,
    ConnectionOpened,
    Event,
    State,
)
from minibroker.protocols.amqp091.content import encode_content
from minibroker.protocols.amqp091.fields import encode_table
from minibroker.protocols.amqp091.frames import Frame, MethodFrame, encode_heartbeat, encode_method
from minibroker.protocols.amqp091.methods import (
    BasicPublish,
    ChannelClose,
    ChannelCloseOk,
    ChannelFlow,
    ChannelFlowOk,
    ChannelOpen,
    ChannelOpenOk,
    ConnectionClose,
    ConnectionCloseOk,
    ConnectionOpen,
    ConnectionOpenOk,
    ConnectionStart,
    ConnectionStartOk,
    ConnectionTune,
    ConnectionTuneOk,
    ConnectionUpdateSecret,
    ConnectionUpdateSecretOk,
    Method,
    QueueDeclare,
)
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER, PROTOCOL_HEADER_0_9

CAPS: dict[str, Any] = {"capabilities": {"authentication_failure_close": True,
                                         "consumer_cancel_notify": True}}


class Peer:
    """A client talking to one :class:`AMQPConnection` through octets only."""

    def __init__(self, heartbeat: int = 60, max_message_size: int | None = None) -> None:
        self.out: list[bytes] = []
        self.connection = AMQPConnection(
            self.out.append, login=Login(build_access({"guest": "guest"}), "127.0.0.1"),
            heartbeat=heartbeat, now=0.0,
            max_message_size=max_message_size,
        )
        self.codec = AMQPCodec("client")

    def send(self, data: bytes) -> list[Event]:
        self.connection.receive_data(data)
        return list(self.connection.events())

    def call(self, channel: int, method: Method) -> list[Event]:
        return self.send(encode_method(channel, method))

    def received(self) -> list[Frame]:
        data = b"".join(self.out)
        self.out.clear()
        if not data:
            return []
        self.codec.receive_data(data)
        return self.codec.frames()

    def methods(self) -> list[tuple[int, Method]]:
        frames = self.received()
        assert all(isinstance(frame, MethodFrame) for frame in frames)
        return [(frame.channel, frame.method) for frame in frames]  # type: ignore[union-attr]

    def open(self, *, properties: dict[str, Any] | None = None, tune: ConnectionTuneOk | None = None
             ) -> list[Event]:
        self.send(PROTOCOL_HEADER)
        self.call(0, ConnectionStartOk(properties or CAPS, "PLAIN", b"\x00guest\x00guest"))
        self.call(0, tune or ConnectionTuneOk(2047, 131072, 60))
        events = self.call(0, ConnectionOpen("/"))
        self.received()
        return events


def plain(user: str, password: str) -> bytes:
    return f"\x00{user}\x00{password}".encode()


def test_bad_protocol_header_is_answered_with_ours_then_closed() -> None:
    peer = Peer()
    events = peer.send(b"AMQP\x01\x01\x00\x0a")
    assert b"".join(peer.out) == b"AMQP\x00\x00\x09\x01"
    assert [type(event) for event in events] == [CloseSocket]


def test_handshake_start_tune_open() -> None:
    peer = Peer()
    assert peer.send(PROTOCOL_HEADER) == []
    [(channel, start)] = peer.methods()
    assert channel == 0 and isinstance(start, ConnectionStart)
    assert (start.version_major, start.version_minor) == (0, 9)
    assert (start.mechanisms, start.locales) == ("AMQPLAIN PLAIN", "en_US")
    properties = start.server_properties
    assert properties["product"] == "minibroker"
    for key in ("version", "platform", "copyright", "information"):
        assert isinstance(properties[key], str)
    capabilities = properties["capabilities"]
    assert isinstance(capabilities, dict)
    assert capabilities["publisher_confirms"] is True and capabilities["basic.nack"] is True
    assert capabilities["direct_reply_to"] is True and capabilities["consumer_priorities"] is True

    assert peer.call(0, ConnectionStartOk(CAPS, "PLAIN", plain("guest", "guest"))) == []
    assert peer.methods() == [(0, ConnectionTune(2047, 131072, 60))]
    assert peer.call(0, ConnectionTuneOk(2047, 131072, 30)) == []
    assert peer.methods() == []
    events = peer.call(0, ConnectionOpen("/"))
    assert peer.methods() == [(0, ConnectionOpenOk(""))]
    assert events == [ConnectionOpened("guest", "/", CAPS)]
    assert peer.connection.state is State.OPEN
    assert (peer.connection.heartbeat, peer.connection.channel_max) == (30, 2047)
    assert peer.connection.consumer_cancel_notify is True


def test_amqplain_login() -> None:
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    response = encode_table({"LOGIN": "guest", "PASSWORD": "guest"})[4:]  # no length prefix
    peer.received()
    assert peer.call(0, ConnectionStartOk({}, "AMQPLAIN", response)) == []
    assert peer.methods() == [(0, ConnectionTune(2047, 131072, 60))]


def test_bad_credentials_close_403_when_the_client_asked_for_it() -> None:
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    peer.received()
    events = peer.call(0, ConnectionStartOk(CAPS, "PLAIN", plain("guest", "nope")))
    assert [type(event) for event in events] == [ConnectionClosing]
    assert peer.methods() == [(0, ConnectionClose(
        403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For"
        " details see the broker logfile.", 10, 11,
    ))]
    assert [type(event) for event in peer.call(0, ConnectionCloseOk())] == [CloseSocket]


def test_bad_credentials_just_close_without_the_capability() -> None:
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    peer.received()
    events = peer.call(0, ConnectionStartOk({}, "PLAIN", plain("mallory", "guest")))
    assert [type(event) for event in events] == [CloseSocket]
    assert peer.received() == []


def test_unoffered_mechanism_closes_without_a_word() -> None:
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    peer.received()
    events = peer.call(0, ConnectionStartOk(CAPS, "EXTERNAL", b""))
    assert [type(event) for event in events] == [CloseSocket]
    assert peer.received() == []


@pytest.mark.parametrize("frame_max", [262144, 2048, 0])
def test_tune_ok_frame_max_out_of_range_closes(frame_max: int) -> None:
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    peer.call(0, ConnectionStartOk(CAPS, "PLAIN", plain("guest", "guest")))
    peer.received()
    events = peer.call(0, ConnectionTuneOk(2047, frame_max, 60))
    assert [type(event) for event in events] == [CloseSocket]
    assert peer.received() == []


def test_unknown_vhost_is_530() -> None:
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    peer.call(0, ConnectionStartOk(CAPS, "PLAIN", plain("guest", "guest")))
    peer.call(0, ConnectionTuneOk(2047, 131072, 60))
    peer.received()
    events = peer.call(0, ConnectionOpen("no-such-vhost"))
    assert [type(event) for event in events] == [ConnectionClosing]
    assert peer.methods() == [
        (0, ConnectionClose(530, "NOT_ALLOWED - vhost no-such-vhost not found", 10, 40))
    ]


def test_method_before_the_handshake_is_done_closes() -> None:
    peer = Peer()
    peer.send(PROTOCOL_HEADER)
    peer.received()
    events = peer.call(1, ChannelOpen())
    assert [type(event) for event in events] == [CloseSocket]
    assert peer.received() == []


def test_method_on_unopened_channel_is_504() -> None:
    peer = Peer()
    peer.open()
    events = peer.call(3, QueueDeclare(queue="q"))
    assert [type(event) for event in events] == [ConnectionClosing]
    assert peer.methods() == [
        (0, ConnectionClose(504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10))
    ]


def test_second_channel_open_is_504() -> None:
    peer = Peer()
    peer.open()
    assert peer.call(1, ChannelOpen()) == [ChannelOpened(1)]
    assert peer.methods() == [(1, ChannelOpenOk(""))]
    peer.call(1, ChannelOpen())
    assert peer.methods() == [
        (0, ConnectionClose(504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10))
    ]


def test_bad_frame_end_is_501() -> None:
    peer = Peer()
    peer.open()
    frame = bytearray(encode_method(1, ChannelOpen()))
    frame[-1] = 0x00
    events = peer.send(bytes(frame))
    assert [type(event) for event in events] == [ConnectionClosing]
    [(channel, close)] = peer.methods()
    assert channel == 0 and isinstance(close, ConnectionClose)
    assert close.reply_code == 501 and close.reply_text.startswith("FRAME_ERROR - ")
    assert "invalid_frame_end_marker" in close.reply_text


def test_channel_method_on_channel_zero_is_504_and_connection_method_elsewhere_503() -> None:
    peer = Peer()
    peer.open()
    peer.call(0, QueueDeclare(queue="q"))
    [(_, close)] = peer.methods()
    assert isinstance(close, ConnectionClose) and close.reply_code == 504
    other = Peer()
    other.open()
    other.call(1, ChannelOpen())
    other.received()
    other.call(1, ConnectionOpen("/"))
    [(_, close)] = other.methods()
    assert isinstance(close, ConnectionClose)
    assert (close.reply_code, close.class_id, close.method_id) == (503, 10, 40)


def test_channel_flow() -> None:
    peer = Peer()
    peer.open()
    peer.call(1, ChannelOpen())
    peer.received()
    assert peer.call(1, ChannelFlow(True)) == []
    assert peer.methods() == [(1, ChannelFlowOk(True))]
    peer.call(1, ChannelFlow(False))
    assert peer.methods() == [
        (0, ConnectionClose(540, "NOT_IMPLEMENTED - active=false", 20, 20))
    ]


def test_work_frames_pass_through_and_client_close_is_an_event() -> None:
    peer = Peer()
    peer.open()
    pipelined = (
        encode_method(1, ChannelOpen()) + encode_method(1, QueueDeclare(queue="q"))
        + encode_method(1, ChannelClose(200, "bye"))
    )
    peer.connection.receive_data(pipelined)
    seen = []
    for event in peer.connection.events():
        seen.append(event)
        if isinstance(event, MethodFrame):
            # The owner's reply goes out before the close-ok of the next frame (rule 1).
            peer.out.append(encode_method(1, ChannelFlowOk(True)))
    assert seen == [ChannelOpened(1), MethodFrame(1, QueueDeclare(queue="q")), ChannelEnded(1)]
    assert peer.methods() == [
        (1, ChannelOpenOk("")), (1, ChannelFlowOk(True)), (1, ChannelCloseOk())
    ]
    assert peer.call(1, ChannelOpen()) == [ChannelOpened(1)]  # the number is free again


def test_after_server_channel_close_input_is_ignored_until_close_ok() -> None:
    peer = Peer()
    peer.open()
    peer.call(1, ChannelOpen())
    peer.received()
    peer.connection.close_channel(1, 404, "NOT_FOUND - no queue 'q'", 50, 10)
    assert peer.methods() == [(1, ChannelClose(404, "NOT_FOUND - no queue 'q'", 50, 10))]
    assert peer.call(1, QueueDeclare(queue="ignored")) == []
    assert peer.received() == []
    assert peer.call(1, ChannelCloseOk()) == []
    assert peer.call(1, ChannelOpen()) == [ChannelOpened(1)]


def test_channel_open_before_close_ok_is_504() -> None:
    peer = Peer()
    peer.open()
    peer.call(1, ChannelOpen())
    peer.connection.close_channel(1, 406, "PRECONDITION_FAILED - x", 50, 10)
    peer.received()
    peer.call(1, ChannelOpen())
    [(_, close)] = peer.methods()
    assert isinstance(close, ConnectionClose) and close.reply_code == 504


def test_channel_open_in_the_same_read_as_the_clients_close_is_504() -> None:
    # RabbitMQ: a channel.open pipelined behind channel.close, before our close-ok can have
    # reached the client, is "second 'channel.open' seen" and closes the connection — before
    # the close-ok is written, so the client never gets one.
    peer = Peer()
    peer.open()
    peer.call(1, ChannelOpen())
    peer.received()
    events = peer.send(encode_method(1, ChannelClose(200, "bye", 0, 0))
                       + encode_method(1, ChannelOpen()))
    assert [type(event) for event in events] == [ChannelEnded, ConnectionClosing]
    assert peer.methods() == [
        (0, ConnectionClose(504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10)),
    ]


def test_frames_behind_the_clients_close_in_the_same_read_go_to_the_closing_channel() -> None:
    # RabbitMQ's closing channel ignores a method, answers a second close, and drops its
    # close-ok when the client sends close-ok itself; other channels' replies come after the
    # close-ok.
    peer = Peer()
    peer.open()
    peer.call(1, ChannelOpen())
    peer.call(2, ChannelOpen())
    peer.received()
    close = encode_method(1, ChannelClose(200, "bye", 0, 0))
    events = peer.send(close + encode_method(1, QueueDeclare(queue="ignored"))
                       + encode_method(2, QueueDeclare(queue="q")))
    assert events == [ChannelEnded(1), MethodFrame(2, QueueDeclare(queue="q"))]
    assert peer.methods() == [(1, ChannelCloseOk())]  # declare-ok would be the owner's to write
    peer.call(1, ChannelOpen())
    assert peer.send(close + close) == [ChannelEnded(1)]
    assert peer.methods()[-2:] == [(1, ChannelCloseOk()), (1, ChannelCloseOk())]
    peer.call(1, ChannelOpen())
    peer.received()
    assert peer.send(close + encode_method(1, ChannelCloseOk())) == [ChannelEnded(1)]
    assert peer.methods() == []


def test_channel_open_in_a_later_read_reuses_the_number() -> None:
    peer = Peer()
    peer.open()
    peer.call(1, ChannelOpen())
    assert peer.call(1, ChannelClose(200, "bye", 0, 0)) == [ChannelEnded(1)]
    assert peer.call(1, ChannelOpen()) == [ChannelOpened(1)]
    assert peer.methods()[-2:] == [(1, ChannelCloseOk()), (1, ChannelOpenOk(""))]


def test_content_over_max_message_size_closes_the_channel_with_406() -> None:
    peer = Peer(max_message_size=100)
    peer.open()
    peer.call(1, ChannelOpen())
    peer.received()
    publish = encode_method(1, BasicPublish(0, "", "q"))
    header = encode_content(1, BasicPublish(0, "", "q"), EMPTY_PROPERTIES, b"x" * 101, 131072)
    header = header[len(publish):]  # header + one body frame
    events = peer.send(publish + header[:22])  # the content header only
    text = "PRECONDITION_FAILED - message size 101 is larger than configured max size 100"
    assert events == [ChannelEnded(1, 406, text, by_peer=False)]
    assert peer.methods() == [(1, ChannelClose(406, text, 60, 40))]
    # The body still on its way is dropped, then the channel waits for close-ok.
    assert peer.send(header[22:]) == []
    assert peer.call(1, QueueDeclare(queue="ignored")) == []
    assert peer.received() == []
    assert peer.call(1, ChannelCloseOk()) == []
    assert peer.call(1, ChannelOpen()) == [ChannelOpened(1)]


def test_tune_ok_channel_max_above_ours_or_zero_closes_like_rabbitmq() -> None:
    for channel_max in (2048, 65535, 0):
        peer = Peer()
        peer.send(PROTOCOL_HEADER)
        peer.call(0, ConnectionStartOk(CAPS, "PLAIN", plain("guest", "guest")))
        peer.received()
        events = peer.call(0, ConnectionTuneOk(channel_max, 131072, 60))
        assert [type(event) for event in events] == [CloseSocket], channel_max
        assert peer.received() == []
    lower = Peer()
    lower.open(tune=ConnectionTuneOk(10, 131072, 60))
    assert lower.connection.channel_max == 10


def test_long_reply_texts_are_cut_like_rabbitmqs() -> None:
    peer = Peer()
    peer.open()
    peer.call(1, ChannelOpen())
    peer.received()
    peer.connection.close_channel(1, 404, "no queue '" + "q" * 300 + "'", 50, 10)
    [(_, close)] = peer.methods()
    assert isinstance(close, ChannelClose)
    assert len(close.reply_text) == 255 and close.reply_text.endswith("qqq...")


def test_legacy_0_9_header_starts_the_handshake() -> None:
    peer = Peer()
    assert peer.send(PROTOCOL_HEADER_0_9) == []
    [(channel, start)] = peer.methods()
    assert channel == 0 and isinstance(start, ConnectionStart)
    assert (start.version_major, start.version_minor) == (0, 9)


def test_client_close_and_close_during_closing() -> None:
    peer = Peer()
    peer.open()
    events = peer.call(0, ConnectionClose(200, "bye"))
    assert [type(event) for event in events] == [CloseSocket]
    assert peer.methods() == [(0, ConnectionCloseOk())]

    closing = Peer()
    closing.open()
    closing.call(1, ChannelOpen())
    closed = closing.connection.close_connection(320, "broker shutdown")
    assert isinstance(closed, ConnectionClosing)
    assert closing.methods()[-1] == (0, ConnectionClose(320, "CONNECTION_FORCED - broker shutdown"))
    assert closing.call(1, QueueDeclare(queue="ignored")) == []
    assert [type(e) for e in closing.call(0, ConnectionClose(200, "bye"))] == [CloseSocket]
    assert closing.methods() == [(0, ConnectionCloseOk())]


def test_channel_max_is_enforced() -> None:
    peer = Peer()
    peer.open(tune=ConnectionTuneOk(1, 131072, 0))
    assert peer.call(1, ChannelOpen()) == [ChannelOpened(1)]
    peer.received()
    peer.call(2, ChannelOpen())
    [(_, close)] = peer.methods()
    assert isinstance(close, ConnectionClose) and close.reply_code == 530


def test_heartbeats_sent_when_idle_and_silent_peer_is_dead() -> None:
    peer = Peer(heartbeat=2)
    peer.open(tune=ConnectionTuneOk(2047, 131072, 2))
    connection = peer.connection
    assert connection.tick(0.5, sent=True, received=True)
    assert peer.out == []
    assert connection.tick(1.6, sent=False, received=True)  # idle for 1.1 s >= 2 / 2
    assert peer.out == [encode_heartbeat()]
    assert connection.tick(4.5, sent=False, received=False)  # silent 2.9 s: not yet
    assert not connection.tick(5.7, sent=False, received=False)  # silent 4.1 s > 2 * 2


def test_heartbeat_zero_in_tune_ok_disables_them() -> None:
    peer = Peer(heartbeat=60)
    peer.open(tune=ConnectionTuneOk(2047, 131072, 0))
    assert peer.connection.tick(1000.0, sent=False, received=False)
    assert peer.out == []


def test_consecutive_acks_of_a_channel_come_out_as_one_run_before_what_follows() -> None:
    from minibroker.protocols.amqp091.events import HotRun
    from minibroker.protocols.amqp091.methods import BasicAck, ChannelOpen, QueueDeclare

    peer = Peer()
    peer.open()
    peer.call(1, ChannelOpen())
    peer.received()
    data = b"".join(encode_method(1, BasicAck(tag)) for tag in (1, 2, 3))
    data += encode_method(1, QueueDeclare(0, "q"))
    peer.connection.receive_data(data)
    events = peer.connection.events()
    run = next(events)
    assert isinstance(run, HotRun)
    assert [frame.method.delivery_tag for frame in run.frames] == [1, 2, 3]  # type: ignore[union-attr]
    # The owner handles the run first; if that closes the channel, the frame after it must
    # find the channel closing rather than come out as work for an open channel.
    peer.connection.close_channel(1, 406, "unknown delivery tag 3")
    assert list(events) == []


def test_update_secret_is_answered_and_the_connection_stays_open() -> None:
    """RabbitMQ's ``connection.update-secret`` extension: answered with update-secret-ok, no
    event for the broker (credentials do not expire here), the connection still usable."""
    peer = Peer()
    peer.open()
    assert peer.call(0, ConnectionUpdateSecret(b"new-token", "refresh")) == []
    assert peer.methods() == [(0, ConnectionUpdateSecretOk())]
    assert peer.connection.state is State.OPEN
    peer.call(1, ChannelOpen())
    assert peer.methods() == [(1, ChannelOpenOk())]


def test_a_handshake_method_on_an_open_connection_is_504() -> None:
    peer = Peer()
    peer.open()
    [closing] = peer.call(0, ConnectionTuneOk(2047, 131072, 60))
    assert isinstance(closing, ConnectionClosing) and closing.reply_code == 504
    assert peer.methods() == [(0, ConnectionClose(
        504, "CHANNEL_ERROR - unexpected method in connection state running", 10, 31))]
