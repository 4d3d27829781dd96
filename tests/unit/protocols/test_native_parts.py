"""Messages larger than a frame (``protocols/native/parts.py``): split into Body frames by the
sending codec, joined by the receiving one, refused by their announced size, and every way a
peer can get the parts wrong is a frame error."""

from __future__ import annotations

import msgpack
import pytest

from minibroker.errors import FrameError, UnexpectedFrame
from minibroker.message import EMPTY_PROPERTIES, Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import (
    FRAME_HEADROOM,
    MIN_FRAME_SIZE,
    PREAMBLE,
    NativeCodec,
    OversizedPublish,
)
from minibroker.protocols.native.parts import BODY_OVERHEAD

BODY = bytes(range(256)) * 40  # 10240 bytes: three frames of MIN_FRAME_SIZE


def server(**options: object) -> NativeCodec:
    codec = NativeCodec(role="server", max_frame_size=MIN_FRAME_SIZE, **options)  # type: ignore[arg-type]
    codec.receive_data(PREAMBLE)
    assert codec.frames() == []
    return codec


def client() -> NativeCodec:
    return NativeCodec(role="client", max_frame_size=MIN_FRAME_SIZE)


def frames_of(wire: bytes) -> list[list[object]]:
    """The msgpack arrays of the frames in ``wire``, checking each fits MIN_FRAME_SIZE."""
    out, offset = [], 0
    while offset < len(wire):
        size = int.from_bytes(wire[offset : offset + 4], "big")
        assert size <= MIN_FRAME_SIZE
        out.append(msgpack.unpackb(wire[offset + 4 : offset + 4 + size]))
        offset += 4 + size
    return out


def first_frame_end(wire: bytes, count: int = 1) -> int:
    """Where the ``count``-th frame of ``wire`` ends."""
    offset = 0
    for _ in range(count):
        offset += 4 + int.from_bytes(wire[offset : offset + 4], "big")
    return offset


def body_frame(channel: int, body_size: int, chunk: bytes) -> bytes:
    payload: bytes = msgpack.packb([f.Body.opcode, channel, body_size, chunk])
    return len(payload).to_bytes(4, "big") + payload


def test_a_publish_too_large_for_a_frame_goes_as_body_frames_then_the_publish() -> None:
    publish = f.Publish(1, "", "q", False, Properties(delivery_mode=2), BODY)
    wire = client().send(publish)
    sent = frames_of(wire)
    assert [frame[0] for frame in sent] == [f.Body.opcode] * 2 + [f.Publish.opcode]
    assert all(frame[1:3] == [1, len(BODY)] for frame in sent[:-1])  # channel, body_size
    first, second, last = (frame[-1] for frame in sent)
    assert len(first) == MIN_FRAME_SIZE - BODY_OVERHEAD  # full parts first
    assert first + second + last == BODY  # type: ignore[operator]
    assert len(wire) - 4 * 3 - 2 * BODY_OVERHEAD < len(BODY) + FRAME_HEADROOM
    receiver = server()
    receiver.receive_data(wire)
    assert receiver.frames() == [publish]
    assert receiver.partial_bytes == 0


@pytest.mark.parametrize("frame", [
    f.Deliver(2, "ctag", 9, True, "x", "rk", EMPTY_PROPERTIES, BODY),
    f.GetOk(2, 9, False, "x", "rk", 3, EMPTY_PROPERTIES, BODY),
    f.Return(2, 312, "NO_ROUTE", "x", "rk", EMPTY_PROPERTIES, BODY),
], ids=["deliver", "get-ok", "return"])
def test_every_message_frame_a_server_sends_is_split_and_joined(frame: f.Frame) -> None:
    sender = NativeCodec(role="server", max_frame_size=MIN_FRAME_SIZE)
    wire = sender.send(frame)
    assert frames_of(wire)[0][0] == f.Body.opcode
    receiver = client()
    receiver.receive_data(wire)
    assert receiver.frames() == [frame]


def test_the_deliver_fast_path_splits_too() -> None:
    sender = NativeCodec(role="server", max_frame_size=MIN_FRAME_SIZE)
    wire = sender.send_deliver(1, "ctag", 1, False, "", "q", EMPTY_PROPERTIES, BODY)
    receiver = client()
    receiver.receive_data(wire)
    assert receiver.frames() == [f.Deliver(1, "ctag", 1, False, "", "q", EMPTY_PROPERTIES, BODY)]


def test_parts_held_count_as_partial_bytes_until_the_message_is_whole() -> None:
    wire = client().send(f.Publish(1, "", "q", False, EMPTY_PROPERTIES, BODY))
    receiver = server()
    first_two = first_frame_end(wire, 2)
    receiver.receive_data(wire[:first_two])
    assert receiver.frames() == []
    first, second, _ = frames_of(wire)
    assert receiver.partial_bytes == len(first[-1]) + len(second[-1])  # type: ignore[arg-type]
    receiver.receive_data(wire[first_two:])
    assert [type(frame) for frame in receiver.frames()] == [f.Publish]
    assert receiver.partial_bytes == 0


def test_frames_of_other_channels_may_come_between_the_parts() -> None:
    sender = client()
    one = sender.send(f.Publish(1, "", "q", False, EMPTY_PROPERTIES, BODY))
    cut = first_frame_end(one)  # after the first Body frame
    other = sender.send_many([f.Ack(2, 7), f.Heartbeat()])
    receiver = server()
    receiver.receive_data(one[:cut] + other + one[cut:])
    assert receiver.frames() == [f.Ack(2, 7), f.Heartbeat(),
                                 f.Publish(1, "", "q", False, EMPTY_PROPERTIES, BODY)]


def test_a_message_over_max_message_size_is_refused_by_its_first_part() -> None:
    """Like AMQP's content header: the size is known before the body, so nothing is kept."""
    wire = client().send(f.Publish(1, "", "q", False, EMPTY_PROPERTIES, BODY))
    receiver = server(max_message_size=10_000)
    receiver.receive_data(wire[: first_frame_end(wire)])  # the first part only
    assert receiver.frames() == [OversizedPublish(1, len(BODY), 10_000)]
    receiver.receive_data(wire[first_frame_end(wire) :] + client().send(f.Ack(1, 1)))
    assert receiver.frames() == [f.Ack(1, 1)]  # the rest was read and dropped
    assert receiver.partial_bytes == 0


def test_a_body_frame_handed_to_send_is_refused() -> None:
    with pytest.raises(UnexpectedFrame, match="made by the codec itself"):
        client().send(f.Body(1, 10, b"x"))


def test_a_message_whose_other_fields_do_not_fit_is_still_refused() -> None:
    headers = {f"h{i}": "v" * 200 for i in range(30)}  # about 6 KiB of headers
    publish = f.Publish(1, "", "q", False, Properties(headers=headers), b"small")
    with pytest.raises(FrameError, match="fields besides the body"):
        client().send(publish)


PUBLISH_END = f.Publish(1, "", "q", False, EMPTY_PROPERTIES, b"cd")


@pytest.mark.parametrize(("wire", "error"), [
    (body_frame(1, 4, b"ab") + body_frame(1, 5, b"c"), "announces 5 bytes, the earlier parts"),
    (body_frame(1, 4, b"abc") + body_frame(1, 4, b"de"), "carry more than the 4 bytes"),
    (body_frame(1, 5, b"ab") + client().send(PUBLISH_END), "has 4 bytes, its Body frames "
                                                           "announced 5"),
    (body_frame(1, 4, b"ab") + client().send(f.Ack(1, 1)), "Ack on channel 1 inside a message"),
], ids=["sizes-disagree", "too-many-bytes", "too-few-bytes", "other-frame-between"])
def test_parts_that_do_not_add_up_are_a_frame_error(wire: bytes, error: str) -> None:
    receiver = server()
    receiver.receive_data(wire)
    with pytest.raises(FrameError, match=error):
        receiver.frames()


def test_parts_ended_by_their_message_frame_give_the_whole_body() -> None:
    receiver = server()
    receiver.receive_data(body_frame(1, 4, b"ab") + client().send(PUBLISH_END))
    [publish] = receiver.frames()
    assert isinstance(publish, f.Publish) and publish.body == b"abcd"
