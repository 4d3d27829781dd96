"""The native connection state machine without sockets: handshake, channels, closing,
heartbeats and confirm coalescing, for both roles (``protocols/native/connection.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from minibroker.accounts import Login, build_access
from minibroker.errors import FrameError
from minibroker.message import Message, Properties
from minibroker.protocols import events as ev
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec
from minibroker.protocols.native.confirms import ConfirmCoalescer
from minibroker.protocols.native.connection import NativeConnection, State

USERS = {"guest": "guest", "bob": "secret"}
LOGIN_REFUSED = ("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                 "For details see the broker logfile.")
LOGIN = Login(build_access(USERS), "127.0.0.1")


class Peer:
    """A NativeConnection and, across the wire, a bare codec playing the other side."""

    def __init__(self, role: str = "server", **options: Any) -> None:
        self.out: list[bytes] = []
        self.connection = NativeConnection(role, self.out.append, **options)  # type: ignore[arg-type]
        self.codec = NativeCodec(role="client" if role == "server" else "server")
        self.now = 0.0

    def feed(self, *frames: f.Frame, preamble: bool = False) -> list[Any]:
        data = b"".join(self.codec.send(frame) for frame in frames)
        if preamble:
            data = self.codec.send_preamble() + data
        self.connection.receive_data(data, now=self.now)
        return list(self.connection.events())

    def written(self) -> list[f.Frame]:
        data, self.out[:] = b"".join(self.out), []
        if not data:
            return []
        self.codec.receive_data(data)
        return self.codec.frames()


def open_server(**options: Any) -> Peer:
    peer = Peer("server", login=LOGIN, max_frame_size=131072, channel_max=16, heartbeat=10,
                **options)
    assert peer.feed(f.Hello("test", "guest", "guest"), preamble=True) == []
    events = peer.feed(f.Tune(0, 0, 10))
    assert events == [ev.ConnectionOpened("guest", "/", {}, "test")]
    assert peer.written() == [f.HelloOk(_version(), 131072, 16, 10), f.TuneOk()]
    return peer


def _version() -> str:
    from minibroker import __version__

    return __version__


# -- server handshake -------------------------------------------------------------------------


def test_server_handshake_negotiates_the_lower_limits_and_opens() -> None:
    peer = Peer("server", login=LOGIN, max_frame_size=131072, channel_max=16, heartbeat=10)
    assert peer.feed(f.Hello("app", "bob", "secret"), preamble=True) == []
    assert peer.written() == [f.HelloOk(_version(), 131072, 16, 10)]
    [opened] = peer.feed(f.Tune(65536, 0, 4))
    assert opened == ev.ConnectionOpened("bob", "/", {}, "app")
    assert peer.written() == [f.TuneOk()]
    connection = peer.connection
    assert (connection.max_frame_size, connection.channel_max, connection.heartbeat) == \
        (65536, 16, 4)
    assert connection.codec.max_frame_size == 65536 and connection.state is State.OPEN


def test_server_refuses_a_wrong_password_with_403() -> None:
    peer = Peer("server", login=LOGIN)
    [closing] = peer.feed(f.Hello("app", "bob", "wrong"), preamble=True)
    assert isinstance(closing, ev.ConnectionClosing) and closing.reply_code == 403
    [close] = peer.written()
    assert isinstance(close, f.ConnectionClose) and close.reply_text == LOGIN_REFUSED
    # Rule 4: while closing only the close handshake is read.
    assert peer.feed(f.Tune(0, 0, 0)) == []
    assert peer.feed(f.ConnectionCloseOk()) == [ev.CloseSocket("connection closed")]


@pytest.mark.parametrize("hello", [f.Hello("app"), f.Hello("app", None, "wrong"),
                                   f.Hello("app", "guest", None), f.Hello("app", "guest", "")])
def test_a_hello_without_full_credentials_is_refused(hello: f.Hello) -> None:
    peer = Peer("server", login=LOGIN)
    [closing] = peer.feed(hello, preamble=True)
    assert closing == ev.ConnectionClosing(403, LOGIN_REFUSED)


def test_a_frame_out_of_handshake_order_is_505() -> None:
    peer = Peer("server", login=LOGIN)
    [closing] = peer.feed(f.ChannelOpen(1), preamble=True)
    assert closing == ev.ConnectionClosing(505,
                                           "UNEXPECTED_FRAME - expected Hello, got ChannelOpen")


def test_a_tune_below_the_minimum_frame_size_is_530() -> None:
    peer = Peer("server", login=LOGIN)
    peer.feed(f.Hello("app", "guest", "guest"), preamble=True)
    [closing] = peer.feed(f.Tune(1000, 0, 0))
    assert isinstance(closing, ev.ConnectionClosing) and closing.reply_code == 530


def test_a_bad_preamble_is_answered_with_ours_and_the_socket_closes() -> None:
    peer = Peer("server", login=LOGIN)
    peer.connection.receive_data(b"MBRK\x00\x09\x00\x00", now=0)
    [event] = peer.connection.events()
    assert isinstance(event, ev.CloseSocket)
    assert b"".join(peer.out) == NativeCodec(role="client").send_preamble()


def test_the_owner_may_refuse_the_connection_before_tune_ok() -> None:
    peer = Peer("server", login=LOGIN)
    peer.feed(f.Hello("app", "guest", "guest"), preamble=True)
    peer.written()
    peer.connection.receive_data(peer.codec.send(f.Tune(0, 0, 0)), now=0)
    events = peer.connection.events()
    assert next(events) == ev.ConnectionOpened("guest", "/", {}, "app")
    peer.connection.close(320, "broker shutdown")  # e.g. the server is shutting down
    assert list(events) == []
    assert peer.written() == [f.ConnectionClose(320, "broker shutdown")]


# -- server channel rules --------------------------------------------------------------------


def test_channels_open_and_close_with_their_events() -> None:
    peer = open_server()
    assert peer.feed(f.ChannelOpen(1)) == [ev.ChannelOpened(1)]
    assert peer.written() == [f.ChannelOpenOk(1)]
    declare = f.QueueDeclare(1, "q", False, False, False, False, {})
    assert peer.feed(declare) == [declare]  # work is handed over as the frame itself
    assert peer.feed(f.ChannelClose(1, 200, "bye")) == [ev.ChannelEnded(1)]
    assert peer.written() == [f.ChannelCloseOk(1)]
    assert not peer.connection.channel_is_open(1)


@pytest.mark.parametrize(("frames", "code"), [
    ([f.ChannelOpen(17)], 504),  # above channel_max
    ([f.ChannelOpen(1), f.ChannelOpen(1)], 504),  # second open
    ([f.QueuePurge(2, "q")], 504),  # a channel that is not open
    ([f.ChannelOpen(1), f.ChannelCloseOk(1)], 505),  # we did not close it
    ([f.Tune(0, 0, 0)], 505),  # the handshake is over
])
def test_channel_rule_violations_close_the_connection(frames: list[f.Frame], code: int) -> None:
    peer = open_server()
    events = peer.feed(*frames)
    assert isinstance(events[-1], ev.ConnectionClosing) and events[-1].reply_code == code


def test_after_we_close_a_channel_its_input_is_ignored_until_close_ok() -> None:
    peer = open_server()
    peer.feed(f.ChannelOpen(1))
    peer.written()
    assert peer.connection.close_channel(1, 404, "NOT_FOUND - no queue 'q'")
    assert peer.written() == [f.ChannelClose(1, 404, "NOT_FOUND - no queue 'q'")]
    assert peer.feed(f.QueuePurge(1, "q"), f.ChannelOpen(1)) == []  # ignored
    assert peer.feed(f.ChannelClose(1, 200, "")) == []  # crossed ours: answered
    assert peer.written() == [f.ChannelCloseOk(1)]
    assert peer.feed(f.ChannelCloseOk(1)) == []
    assert peer.feed(f.ChannelOpen(1)) == [ev.ChannelOpened(1)]  # the number is free again


def test_publishes_and_single_acks_of_one_channel_come_as_runs() -> None:
    peer = open_server()
    peer.feed(f.ChannelOpen(1), f.ChannelOpen(2))
    publish = f.Publish(1, "", "q", False, Properties(), b"m")
    other = f.Publish(2, "", "q", False, Properties(), b"m")
    events = peer.feed(publish, publish, other, f.Ack(1, 1), f.Ack(1, 2), f.Ack(1, 3, True))
    assert _frames_of(events) == [
        ev.HotRun([publish, publish]), other, ev.HotRun([f.Ack(1, 1), f.Ack(1, 2)]),
        f.Ack(1, 3, True)]
    # Read by the codec's lanes now (lanes.py rule 5): runs of bodies and tags, the same frames.
    events = peer.feed(publish, publish, publish, f.Ack(1, 4), f.Ack(1, 5), f.Ack(1, 6, True),
                       f.Ack(1, 7))
    assert [type(event.frames).__name__ for event in events[:2]] == ["PublishRun", "AckRun"]
    assert _frames_of(events) == [
        ev.HotRun([publish] * 3), ev.HotRun([f.Ack(1, 4), f.Ack(1, 5)]), f.Ack(1, 6, True),
        f.Ack(1, 7)]
    assert list(events[0].frames[1:]) == [publish] * 2  # a slice is a run again
    assert events[0].frames[-1] == publish
    acks = events[1].frames
    assert type(acks[1:]).__name__ == "AckRun" and list(acks[1:]) == [f.Ack(1, 5)]
    assert acks.channel == acks[:1].channel == 1 and acks[0] == f.Ack(1, 4)


def _frames_of(events: list[Any]) -> list[Any]:
    """Runs compared by the frames they stand for."""
    return [ev.HotRun(list(event.frames)) if type(event) is ev.HotRun else event
            for event in events]


def test_a_lane_run_on_a_channel_that_is_not_open_is_taken_frame_by_frame() -> None:
    peer = open_server()
    peer.feed(f.ChannelOpen(1))
    publish = f.Publish(1, "", "q", False, Properties(), b"m")
    assert len(peer.feed(publish, publish)) == 1  # the lane is learned
    assert peer.connection.close_channel(1, 406, "PRECONDITION_FAILED - x")
    assert peer.feed(publish, publish, f.Ack(1, 1), f.Ack(1, 2)) == []  # ignored, closing
    assert peer.feed(f.ChannelCloseOk(1)) == []
    events = peer.feed(publish, publish, publish)  # the channel is gone: 504, the first names it
    assert [type(event) for event in events] == [ev.ConnectionClosing]
    assert events[0].reply_code == 504
    assert "Publish on channel 1" in events[0].reply_text


def test_events_are_lazy_so_a_run_sees_the_channel_close_it_caused() -> None:
    peer = open_server()
    peer.feed(f.ChannelOpen(1))
    publish = f.Publish(1, "", "q", False, Properties(), b"m")
    data = b"".join(peer.codec.send(frame) for frame in (publish, publish, f.QueuePurge(1, "q")))
    peer.connection.receive_data(data, now=0)
    events = peer.connection.events()
    assert type(next(events)) is ev.HotRun
    peer.connection.close_channel(1, 406, "PRECONDITION_FAILED - x")  # the run failed
    assert list(events) == []  # the purge finds the channel closing


def test_bad_bytes_are_502_and_nothing_after_them_is_read() -> None:
    """A well-framed payload that is not one msgpack value is a syntax error (502,
    docs/protocol.md), not a framing error."""
    peer = open_server()
    peer.connection.receive_data(b"\x00\x00\x00\x03\xc1\xc1\xc1", now=0)
    [closing] = peer.connection.events()
    assert isinstance(closing, ev.ConnectionClosing) and closing.reply_code == 502
    assert closing.reply_text.startswith("SYNTAX_ERROR - frame is not one msgpack value")
    peer.connection.receive_data(peer.codec.send(f.ConnectionCloseOk()), now=0)
    assert list(peer.connection.events()) == []


def test_a_peer_close_is_answered_in_any_state() -> None:
    peer = open_server()
    assert peer.feed(f.ConnectionClose(200, "bye")) == [ev.CloseSocket(
        "the peer closed the connection", 200, "bye", by_peer=True)]
    assert peer.written() == [f.ConnectionCloseOk()]
    assert peer.connection.state is State.CLOSED


# -- heartbeats ---------------------------------------------------------------------------------


def test_heartbeats_follow_the_time_given() -> None:
    peer = open_server()  # heartbeat 10, everything happened at 0
    assert peer.connection.tick(4.9)
    assert peer.written() == []
    assert peer.connection.tick(5.0)  # half an interval without sending
    assert peer.written() == [f.Heartbeat()]
    peer.connection.note_sent(5.0)
    assert peer.connection.next_tick() == 10.0
    assert peer.connection.tick(20.0)  # two intervals of silence: still alive
    assert not peer.connection.tick(20.5)  # more than two: dead


def test_a_peer_we_do_not_read_counts_as_heard() -> None:
    peer = open_server()
    for now in (6.0, 12.0, 18.0, 24.0, 30.0):
        assert peer.connection.tick(now, heard=True)
        peer.connection.note_sent(now)
    assert peer.written() == [f.Heartbeat()] * 5


def test_heartbeat_zero_disables_both_directions() -> None:
    peer = Peer("server", login=LOGIN, heartbeat=10)
    peer.feed(f.Hello("x", "guest", "guest"), preamble=True)
    peer.feed(f.Tune(0, 0, 0))
    peer.written()
    assert peer.connection.tick(1000.0) and peer.written() == []
    assert peer.connection.next_tick() is None


# -- client role ------------------------------------------------------------------------------


def test_client_handshake_asks_for_at_most_the_server_offer() -> None:
    peer = Peer("client", max_frame_size=0, channel_max=100, heartbeat=0)
    peer.connection.start("app", "bob", "secret", {"product": "test"})
    sent = b"".join(peer.out)
    peer.out.clear()
    server = NativeCodec(role="server")
    server.receive_data(sent)
    assert server.frames() == [f.Hello("app", "bob", "secret", {"product": "test"})]
    peer.codec = server
    assert peer.feed(f.HelloOk("9.9", 65536, 50, 30)) == []
    assert peer.written() == [f.Tune(65536, 50, 30)]
    [opened] = peer.feed(f.TuneOk())
    assert isinstance(opened, ev.ConnectionOpened) and peer.connection.server_version == "9.9"


def test_client_channel_close_by_the_server_is_answered() -> None:
    peer = _open_client()
    peer.connection.open_channel(1)
    peer.written()
    assert peer.feed(f.ChannelOpenOk(1)) == [f.ChannelOpenOk(1)]
    assert peer.connection.channel_is_open(1)
    assert peer.feed(f.ChannelClose(1, 404, "NOT_FOUND - no queue 'q'")) == [
        ev.ChannelEnded(1, 404, "NOT_FOUND - no queue 'q'")]
    assert peer.written() == [f.ChannelCloseOk(1)]
    assert peer.feed(f.GetEmpty(1)) == []  # a channel we no longer know: dropped


def test_client_close_waits_for_close_ok_and_discards_the_rest() -> None:
    peer = _open_client()
    peer.connection.open_channel(1)
    peer.feed(f.ChannelOpenOk(1))
    peer.written()
    assert peer.connection.close(200, "bye") == ev.ConnectionClosing(200, "bye")
    assert peer.feed(f.GetEmpty(1), f.Heartbeat()) == []
    assert peer.feed(f.ConnectionCloseOk()) == [ev.CloseSocket("connection closed")]


def test_client_refuses_an_unexpected_frame_with_505() -> None:
    peer = _open_client()
    [closing] = peer.feed(f.HelloOk("x", 4096, 1, 0))
    assert isinstance(closing, ev.ConnectionClosing) and closing.reply_code == 505


def _open_client() -> Peer:
    peer = Peer("client")
    peer.connection.start("app", None, None, {})
    peer.codec.receive_data(b"".join(peer.out))
    peer.out.clear()
    peer.codec.frames()
    peer.feed(f.HelloOk("1", 131072, 16, 0))
    peer.feed(f.TuneOk())
    peer.written()
    return peer


# -- confirm coalescing ------------------------------------------------------------------------


def test_confirm_coalescer_only_merges_settled_prefixes() -> None:
    confirms = ConfirmCoalescer()
    assert confirms.add(1, 1, False, True) is None
    assert confirms.add(1, 2, False, True) is None
    assert confirms.add(1, 3, False, False) == f.ConfirmNack(1, 3, False)
    assert confirms.take(1) == [f.ConfirmAck(1, 2, True)]  # the caller sends this first
    assert confirms.add(1, 5, False, True) == f.ConfirmAck(1, 5, False)  # 4 is not settled
    assert confirms.add(1, 4, False, True) is None
    assert confirms.take(0) == [f.ConfirmAck(1, 4, False)]
    confirms.reset(1)  # a reopened channel numbers from 1 again
    assert confirms.add(1, 1, False, True) is None


def test_the_confirm_coalescer_merges_a_multiple_confirm_into_its_run() -> None:
    coalescer = ConfirmCoalescer()
    assert coalescer.add(1, 1, False, True) is None
    assert coalescer.add(1, 50, True, True) is None  # publishes 2..50 at once
    assert coalescer.take(1) == [f.ConfirmAck(1, 50, multiple=True)]
    assert coalescer.add(1, 51, True, True) is None  # only 51 was open
    assert coalescer.take(1) == [f.ConfirmAck(1, 51, multiple=False)]
    assert coalescer.add(1, 52, False, False) == f.ConfirmNack(1, 52, multiple=False)


def test_held_confirms_go_out_before_any_other_frame_of_their_channel() -> None:
    peer = open_server()
    peer.feed(f.ChannelOpen(1))
    peer.written()
    assert not peer.connection.send_confirm(1, 1, False, True)
    assert not peer.connection.send_confirm(1, 2, False, True)
    peer.connection.send_deliver(1, "c", 1, False, "", "q", Properties(), b"m")
    assert peer.written() == [f.ConfirmAck(1, 2, True),
                              f.Deliver(1, "c", 1, False, "", "q", Properties(), b"m")]
    assert not peer.connection.send_confirm(1, 3, False, True)
    peer.connection.flush_held()  # before the owner writes to the socket
    assert peer.written() == [f.ConfirmAck(1, 3, False)]


# -- runs of deliveries (rule 8) ----------------------------------------------------------------

_RUN = (Message("", "q", b"a"), Message("x", "k", b"b", Properties(priority=3)),
        Message("", "q", b"c"))


def _run_frames(first: int = 5, redelivered: tuple[int, ...] = ()) -> list[f.Frame]:
    return [f.Deliver(1, "c", tag, tag in redelivered, m.exchange, m.routing_key, m.properties,
                      m.body) for tag, m in enumerate(_RUN, first)]


def test_a_run_of_deliveries_is_one_write_of_every_delivery() -> None:
    peer = open_server()
    peer.feed(f.ChannelOpen(1))
    peer.written()
    peer.connection.send_deliver_run(1, "c", 5, _RUN, (6,))
    assert len(peer.out) == 1
    assert peer.written() == _run_frames(redelivered=(6,))


def test_held_confirms_go_out_before_a_run_of_their_channel() -> None:
    peer = open_server()
    peer.feed(f.ChannelOpen(1))
    peer.written()
    assert not peer.connection.send_confirm(1, 1, False, True)
    peer.connection.send_deliver_run(1, "c", 5, _RUN, ())
    assert peer.written() == [f.ConfirmAck(1, 1, False), *_run_frames()]


def test_a_traced_run_traces_each_delivery() -> None:
    peer = open_server()
    peer.feed(f.ChannelOpen(1))
    peer.written()
    traced: list[tuple[str, f.Frame]] = []
    peer.connection.trace = lambda direction, frame: traced.append((direction, frame))
    peer.connection.send_deliver_run(1, "c", 5, _RUN, ())
    assert traced == [("out", frame) for frame in _run_frames()]
    assert peer.written() == _run_frames()


def test_a_run_with_a_delivery_that_cannot_be_sent_writes_the_ones_before_it() -> None:
    """As single deliveries: the first goes out, the second (its properties alone exceed the
    frame size) raises FrameError, the third is not sent."""
    peer = open_server()
    peer.feed(f.ChannelOpen(1))
    peer.written()
    huge = Message("", "q", b"b", Properties(headers={"h": "x" * 140_000}))
    with pytest.raises(FrameError, match="max_frame_size"):
        peer.connection.send_deliver_run(1, "c", 5, (_RUN[0], huge, _RUN[2]), ())
    assert peer.written() == _run_frames()[:1]
