"""The native codec's fast lanes (codec rule 10): where they read, and where they must not.

That they read what the full decode reads is ``tests/property/test_native_lanes_property.py``.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from minibroker.errors import FrameError
from minibroker.message import Properties
from minibroker.protocols.native import codec as codec_module
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import (
    FRAME_HEADROOM,
    MIN_FRAME_SIZE,
    PREAMBLE,
    NativeCodec,
    OversizedPublish,
)

_CLIENT = NativeCodec(role="client")


class _CountingMsgpack:
    """``msgpack`` as the codec module sees it, counting full decodes."""

    def __init__(self) -> None:
        self.decodes = 0

    def unpackb(self, *args: Any, **kwargs: Any) -> Any:
        self.decodes += 1
        return msgpack.unpackb(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(msgpack, name)


def _server(**options: Any) -> NativeCodec:
    codec = NativeCodec(role="server", **options)
    codec.receive_data(PREAMBLE)
    return codec


def _decode_counting(codec: NativeCodec, data: bytes,
                     monkeypatch: pytest.MonkeyPatch) -> tuple[list[f.Frame], int]:
    counting = _CountingMsgpack()
    monkeypatch.setattr(codec_module, "msgpack", counting)
    codec.receive_data(data)
    frames = codec.frames()
    monkeypatch.undo()
    return frames, counting.decodes


def test_a_run_of_publishes_is_decoded_once_then_read_by_its_prefix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sent = [f.Publish(3, "amq.direct", "key", True, Properties(content_type="text/plain"),
                      bytes([n]) * size)
            for n, size in enumerate((16, 0, 255, 256, 70000))]
    frames, decodes = _decode_counting(_server(), b"".join(map(_CLIENT.send, sent)), monkeypatch)
    assert frames == sent
    assert decodes == 1
    # One Properties, exchange and routing key for the whole run.
    assert len({id(frame.properties) for frame in frames if type(frame) is f.Publish}) == 1


def test_a_run_of_acks_is_decoded_once_then_read_by_its_prefix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sent = [f.Ack(200, tag, multiple) for tag, multiple in
            ((1, False), (127, False), (128, True), (65536, False), (2**64 - 1, False))]
    frames, decodes = _decode_counting(_server(), b"".join(map(_CLIENT.send, sent)), monkeypatch)
    assert frames == sent
    assert decodes == 1


def test_another_channel_or_routing_key_takes_the_full_decode(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sent = [f.Publish(1, "", "a", False, Properties(), b"x"),
            f.Publish(1, "", "b", False, Properties(), b"x"),
            f.Publish(2, "", "b", False, Properties(), b"x"),
            f.Ack(1, 1), f.Ack(2, 1), f.Ack(2, 2)]
    frames, decodes = _decode_counting(_server(), b"".join(map(_CLIENT.send, sent)), monkeypatch)
    assert frames == sent
    assert decodes == 5  # each new prefix is learned by a full decode


def test_messages_with_headers_keep_a_table_each(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = [f.Publish(1, "", "q", False, Properties(headers={"n": 1}), b"x")] * 3
    frames, decodes = _decode_counting(_server(), b"".join(map(_CLIENT.send, sent)), monkeypatch)
    assert frames == sent
    assert decodes == 3
    tables = [frame.properties.headers for frame in frames if type(frame) is f.Publish]
    assert tables[0] is not tables[1]


def test_a_laned_publish_over_the_message_size_limit_is_refused_as_oversized() -> None:
    codec = _server(max_message_size=100)
    codec.receive_data(b"".join(_CLIENT.send(f.Publish(1, "", "q", False, Properties(), body))
                                for body in (b"x" * 100, b"x" * 101)))
    first, second = codec.frames()
    assert type(first) is f.Publish
    assert second == OversizedPublish(1, 101, 100)


def test_a_laned_publish_over_the_headroom_line_is_a_frame_error() -> None:
    codec = _server(max_frame_size=MIN_FRAME_SIZE)
    big = NativeCodec(role="client")  # a peer that does not split: one frame, too close
    small = big.send(f.Publish(1, "", "q", False, Properties(), b"x"))
    too_close = big.send(f.Publish(1, "", "q", False, Properties(),
                                   b"x" * (MIN_FRAME_SIZE - FRAME_HEADROOM)))
    codec.receive_data(small + too_close)
    assert len(codec.frames()) == 1
    with pytest.raises(FrameError, match="headroom"):
        codec.frames()


def test_no_lane_while_a_message_in_parts_is_pending() -> None:
    """Body frames interleave with other channels' publishes (codec rule 9): a publish on the
    channel of a pending message completes it, whatever its prefix."""
    client = NativeCodec(role="client", max_frame_size=MIN_FRAME_SIZE)
    codec = _server(max_frame_size=MIN_FRAME_SIZE)
    small = f.Publish(1, "", "q", False, Properties(), b"s")
    large = f.Publish(1, "", "q", False, Properties(), b"L" * (3 * MIN_FRAME_SIZE))
    codec.receive_data(client.send(small) + client.send(large) + client.send(small))
    assert codec.frames() == [small, large, small]


def _block(frames: list[f.Frame], index: int, at: int, octet: int) -> bytes:
    """The frames' bytes with octet ``at`` of frame ``index`` (counted from its length
    prefix) replaced."""
    encoded = [_CLIENT.send(frame) for frame in frames]
    one = encoded[index]
    encoded[index] = one[:at] + bytes((octet,)) + one[at + 1:]
    return b"".join(encoded)


@pytest.mark.parametrize("octet", [0xD9, 0xC5, 0xC7])  # str 8; bin 16 and ext 8 cut short
def test_a_block_ends_at_a_publish_whose_body_header_differs(octet: int) -> None:
    """lanes.py rule 6: a frame of the block's size and prefix whose body is written another
    way is read (or refused) by the full decode, as without lanes."""
    from tests.property.test_native_lanes_property import _both

    publish = f.Publish(1, "", "q", False, Properties(), b"x" * 16)
    header_at = len(_CLIENT.send(publish)) - 18
    _both([_block([publish] * 12, 5, header_at, octet)], None)


@pytest.mark.parametrize("octet", [0xE0, 0xC0, 0xC3, 0x90, 0xA0])  # one-octet strangers
def test_a_block_ends_at_an_ack_whose_tag_is_not_a_fixint(octet: int) -> None:
    """lanes.py rule 6: a one-octet msgpack value where a fixint tag stood, or ``true`` for
    the tag, is the full decode's to read or refuse."""
    from tests.property.test_native_lanes_property import _both

    acks = [f.Ack(1, tag) for tag in range(1, 13)]
    tag_at = len(_CLIENT.send(acks[0])) - 2
    _both([_block(acks, 5, tag_at, octet)], None)
    mixed = [*acks[:5], f.Ack(1, 6, True), *acks[6:]]  # a multiple ack ends the run
    _both([b"".join(_CLIENT.send(frame) for frame in mixed)], None)


def test_an_oversized_publish_that_teaches_a_lane_begins_no_run() -> None:
    """A Publish over ``max_message_size`` is handed out as refused (OversizedPublish), not as
    the start of a run, and the frame after it is read as itself (lanes.py rule 5)."""
    server = NativeCodec(role="server", max_message_size=10)
    server.receive_data(PREAMBLE)
    declare = f.QueueDeclare(1, "q", False, False, False, False, {})
    server.receive_data(_CLIENT.send(f.Publish(1, "", "q", False, Properties(), b"x" * 20))
                        + _CLIENT.send(declare) + _CLIENT.send(f.Ack(1, 1)))
    oversized, frame, run = server.frames_and_runs()
    assert type(oversized) is OversizedPublish and frame == declare
    assert list(run) == [f.Ack(1, 1)]  # an ack that teaches its lane begins a run


@pytest.mark.parametrize("count", [4, 12])  # the loop's reading, and a block's
def test_a_tag_of_the_width_but_another_type_is_the_full_decodes(count: int) -> None:
    """lanes.py rules 2 and 6: a tag written as int16 (0xd1, as wide as the uint16 around it)
    is not read as a uint16: -1 is refused by the full decode, 300 read as 300."""
    from tests.property.test_native_lanes_property import _both

    acks = [f.Ack(1, 300 + n) for n in range(count)]
    marker_at = len(_CLIENT.send(acks[0])) - 4
    for tag_octets in (b"\xff\xff", b"\x01\x2c"):
        stream = _block(acks, count // 2, marker_at, 0xD1)
        one = len(_CLIENT.send(acks[0]))
        at = count // 2 * one + marker_at + 1
        _both([stream[:at] + tag_octets + stream[at + 2:]], None)


def test_a_block_whose_first_ack_has_multiple_is_read_frame_by_frame() -> None:
    """lanes.py rule 6: a block holds acks without ``multiple`` from its first frame on, so a
    first ack with ``multiple`` is its own frame, and the run begins after it."""
    from tests.property.test_native_lanes_property import _both

    acks = [f.Ack(1, 1), f.Ack(1, 2, True), *(f.Ack(1, tag) for tag in range(3, 15))]
    stream = b"".join(_CLIENT.send(frame) for frame in acks)  # the first teaches the lane
    _both([stream], None)
    server = NativeCodec(role="server")
    server.receive_data(PREAMBLE + stream)
    taught, multiple, run = server.frames_and_runs()
    assert (list(taught), multiple, list(run)) == (acks[:1], acks[1], acks[2:])


def test_a_block_checks_each_tags_marker_not_only_its_value() -> None:
    """lanes.py rule 6: in a block of uint8 tags (0xcc) all 204 — the marker's own value — an
    int8 tag (0xd0) of the same octet, -52, is the full decode's to refuse, not a uint8 204."""
    from tests.property.test_native_lanes_property import _both

    acks = [f.Ack(1, 204) for _ in range(12)]
    one = len(_CLIENT.send(acks[0]))
    stream = bytearray(b"".join(_CLIENT.send(frame) for frame in acks))
    stream[6 * one + one - 3: 6 * one + one - 1] = b"\xd0\xcc"
    _both([bytes(stream)], None)


def test_frames_smaller_than_a_lanes_prefix_are_no_block() -> None:
    """lanes.py rule 6: after a Publish with a long prefix, a run of frames shorter than that
    prefix (heartbeats) is read as itself, not looked into past its end (found by hypothesis:
    an IndexError)."""
    from tests.property.test_native_lanes_property import _both

    publish = f.Publish(1, "", "k" * 200, False, Properties(), b"")
    _both([b"".join(_CLIENT.send(frame) for frame in [publish] + [f.Heartbeat()] * 12)], None)


def test_a_block_unpacks_about_what_it_keeps_whatever_the_stream(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """lanes.py rule 6: a stream in which every third frame is a heartbeat keeps breaking the
    publishers' blocks; the rows unpacked grow as the stream does, not as its square
    (unpacking all that was buffered at every block did: 1,117,054 rows for 3,000 frames)."""
    import struct

    from minibroker.protocols.native import lanes

    unpacked = 0

    class Counting(struct.Struct):
        def iter_unpack(self, buffer: Any) -> Any:
            nonlocal unpacked
            unpacked += len(buffer) // self.size
            return super().iter_unpack(buffer)

    monkeypatch.setattr(lanes, "_layout", Counting)
    publish = f.Publish(1, "", "q", False, Properties(), b"x" * 16)

    def rows(count: int) -> int:
        nonlocal unpacked
        unpacked = 0
        frames = [publish if n % 3 else f.Heartbeat() for n in range(count)]
        server = NativeCodec(role="server")
        server.receive_data(PREAMBLE + b"".join(_CLIENT.send(frame) for frame in frames))
        read = [frame for item in server.frames_and_runs() for frame in
                (item if type(item) is lanes.PublishRun else [item])]
        assert read == frames
        return unpacked

    small, large = rows(3000), rows(6000)
    assert small <= 32 * 3000  # a first chunk of 64 rows a block, a block every 3 frames
    assert large <= 2.2 * small
