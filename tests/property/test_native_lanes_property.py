"""The native codec's fast lanes (codec rule 10) decode exactly what the full decode does.

Streams of publishes and acks, sound or damaged at one octet, are read by a server codec with
its lanes and by one whose lanes never learn anything: the same frames come out, in the same
reads, and the same error (type and text) ends them. Read as the server reads them, with the
lanes' runs (lanes.py rule 5), the runs stand for those very frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from minibroker.errors import ProtocolError
from minibroker.message import Properties
from minibroker.protocols.native import codec as codec_module
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import PREAMBLE, NativeCodec
from minibroker.protocols.native.lanes import AckRun, PublishRun

_CLIENT = NativeCodec(role="client")

names = st.sampled_from(["", "amq.direct", "q", "é"]) | st.text(max_size=70)
plain_properties = st.sampled_from([
    Properties(), Properties(content_type="text/plain", delivery_mode=2),
    Properties(headers={"x": 1}), Properties(expiration="100"),
])
channels = st.sampled_from([1, 127, 128, 255, 256, 65535])
bodies = st.sampled_from([b"", b"x" * 16, b"y" * 255, b"z" * 256, b"w" * 70000]) | st.binary(
    max_size=300)
tags = st.sampled_from([0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32,
                        2**64 - 1]) | st.integers(0, 2**64 - 1)


@st.composite
def publishes(draw: st.DrawFn) -> list[f.Frame]:
    """Mostly runs of one prefix, as a publisher sends them, with the odd stranger."""
    channel, exchange, key = draw(channels), draw(names), draw(names)
    mandatory, properties = draw(st.booleans()), draw(plain_properties)
    frames: list[f.Frame] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 4)) == 0:
            frames.append(f.Publish(draw(channels), draw(names), draw(names), draw(st.booleans()),
                                    draw(plain_properties), draw(bodies)))
        else:
            frames.append(f.Publish(channel, exchange, key, mandatory, properties, draw(bodies)))
    return frames


@st.composite
def acks(draw: st.DrawFn) -> list[f.Frame]:
    channel = draw(channels)
    return [f.Ack(draw(channels) if draw(st.integers(0, 5)) == 0 else channel, draw(tags),
                  draw(st.booleans()))
            for _ in range(draw(st.integers(1, 6)))]


def others() -> st.SearchStrategy[list[f.Frame]]:
    """Frames no lane reads, between the runs."""
    return st.sampled_from([
        [f.QueueDeclare(1, "q", False, False, False, False, {})], [f.Qos(1, 10, False)],
        [f.Nack(1, 1, False, True)], [f.Heartbeat()],
        [f.Heartbeat()] * 10,  # a run of frames shorter than a publish lane's prefix
    ])


@contextmanager
def _no_lanes() -> Iterator[None]:
    """The full decode only: lanes are never learned."""
    learn_publish, learn_ack = codec_module.learn_publish, codec_module.learn_ack
    codec_module.learn_publish = lambda *args: None  # type: ignore[assignment]
    codec_module.learn_ack = lambda *args: None  # type: ignore[assignment]
    try:
        yield
    finally:
        codec_module.learn_publish, codec_module.learn_ack = learn_publish, learn_ack


def _flat(items: list[Any]) -> list[Any]:
    """The frames that runs stand for, each run checked to be one channel's and not empty."""
    frames: list[Any] = []
    for item in items:
        if type(item) in (PublishRun, AckRun):
            assert len(item) > 0
            assert {frame.channel for frame in item} == {item.channel}
            assert all(type(frame) is f.Publish or not frame.multiple for frame in item)
            frames.extend(item)
        else:
            frames.append(item)
    return frames


def _read(chunks: list[bytes], max_message_size: int | None, runs: bool = False) -> list[Any]:
    """Every read's frames, then the error that ended the stream (if any)."""
    codec = NativeCodec(role="server", max_message_size=max_message_size)
    codec.receive_data(PREAMBLE)
    seen: list[Any] = []
    try:
        for chunk in chunks:
            codec.receive_data(chunk)
            while True:
                frames = _flat(codec.frames_and_runs()) if runs else codec.frames()
                if not frames:
                    break
                seen.append(frames)
        codec.receive_data(b"")
        seen.append(codec.frames())
    except ProtocolError as err:
        seen.append((type(err), str(err)))
    return seen


def _both(chunks: list[bytes], max_message_size: int | None) -> None:
    with_lanes = _read(chunks, max_message_size)
    with_runs = _read(chunks, max_message_size, runs=True)
    with _no_lanes():
        without = _read(chunks, max_message_size)
    assert with_lanes == without
    assert with_runs == without


@given(st.lists(publishes() | acks() | others(), min_size=1, max_size=4), st.data(),
       st.sampled_from([None, 100, 70000]))
def test_lanes_read_what_the_full_decode_reads(
    groups: list[list[f.Frame]], data: st.DataObject, max_message_size: int | None,
) -> None:
    _sound_cut_and_damaged([frame for group in groups for frame in group], data,
                           max_message_size)


def _sound_cut_and_damaged(frames: list[f.Frame], data: st.DataObject,
                           max_message_size: int | None) -> None:
    """``_both`` on the frames' stream in one read, cut at a random point into two, and with
    one octet of a later frame changed (so a lane may have been learned): the lane must not
    read it differently, whether the octet is in its prefix, its tail or its length."""
    encoded = [_CLIENT.send(frame) for frame in frames]
    stream = b"".join(encoded)
    _both([stream], max_message_size)
    cut = data.draw(st.integers(0, len(stream)))
    _both([stream[:cut], stream[cut:]], max_message_size)
    if len(encoded) > 1:
        where = len(encoded[0]) + data.draw(st.integers(0, len(stream) - len(encoded[0]) - 1))
        octet = data.draw(st.integers(0, 255))
        _both([stream[:where] + bytes((octet,)) + stream[where + 1:]], max_message_size)


@given(st.sampled_from([b"\xc5\x00\x10", b"\xc6\x00\x00\x00\x10", b"\xc4\x11", b"\xc4\x0f",
                        b"\xc7\x10\x00", b"\xd9\x10"]),
       st.sampled_from([b"\xcd\x00\x05", b"\xd0\x05", b"\xd0\xfb", b"\xff", b"\xca\x00\x00\x00\x00",
                        b"\xcc", b"\xcf\x00\x00\x00\x00\x00\x00\x00\x01\x00"]))
def test_unusual_spellings_take_the_full_decode(body_header: bytes, tag: bytes) -> None:
    """A body whose ``bin`` header is not the shortest, or not a ``bin``, and tags written as
    other msgpack types: read (or refused) as the full decode reads them."""
    publish = _CLIENT.send(f.Publish(1, "", "q", False, Properties(), b"x" * 16))
    payload = publish[4:-18] + body_header + b"x" * 16
    odd_publish = len(payload).to_bytes(4, "big") + payload
    ack = _CLIENT.send(f.Ack(1, 1))
    payload = ack[4:-2] + tag + b"\xc2"
    odd_ack = len(payload).to_bytes(4, "big") + payload
    _both([publish + odd_publish + publish], None)
    _both([ack + odd_ack + ack], None)


@st.composite
def blocks(draw: st.DrawFn) -> list[f.Frame]:
    """Long runs of frames of one size (lanes.py rule 6): bodies of one length, tags of one
    width across the width boundaries, with the odd stranger (another size, a multiple ack,
    another channel) anywhere in the run."""
    channel = draw(channels)
    frames: list[f.Frame] = []
    if draw(st.booleans()):
        body = draw(st.sampled_from([b"", b"x" * 16, b"y" * 255, b"z" * 256, b"w" * 300]))
        publish = f.Publish(channel, draw(names), draw(names), draw(st.booleans()),
                            draw(plain_properties), body)
        for _ in range(draw(st.integers(8, 40))):
            if draw(st.integers(0, 9)) == 0:
                frames.append(f.Publish(channel, publish.exchange, publish.routing_key,
                                        publish.mandatory, publish.properties,
                                        draw(bodies)))
            else:
                frames.append(publish)
    else:
        first = draw(st.sampled_from([0, 100, 120, 250, 65_530, 2**32 - 6, 2**64 - 50]))
        for n in range(draw(st.integers(8, 40))):
            tag = min(first + n, 2**64 - 1)
            if draw(st.integers(0, 9)) == 0:
                frames.append(f.Ack(draw(channels), draw(tags), draw(st.booleans())))
            else:
                frames.append(f.Ack(channel, tag, draw(st.integers(0, 19)) == 0))
    return frames


@given(st.lists(blocks() | others(), min_size=1, max_size=3), st.data(),
       st.sampled_from([None, 100, 70000]))
def test_blocks_read_what_the_full_decode_reads(
    groups: list[list[f.Frame]], data: st.DataObject, max_message_size: int | None,
) -> None:
    """Rule 6's blocks, sound, cut into two reads, and damaged at one octet: the runs stand
    for exactly the frames the full decode reads, and the same error ends them."""
    _sound_cut_and_damaged([frame for group in groups for frame in group], data,
                           max_message_size)
