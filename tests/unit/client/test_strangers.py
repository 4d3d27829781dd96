"""A native client pointed at something that is not a minibroker says so at once, quoting
what the other side sent (codec rule 8), instead of reporting a nonsense frame size or
waiting for a frame that never completes."""

from __future__ import annotations

import pytest

from minibroker.errors import FrameError
from minibroker.message import Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import MIN_FRAME_SIZE, NativeCodec
from minibroker.protocols.native.connection import NativeConnection

HTTP = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _greeted(data: bytes) -> NativeCodec:
    codec = NativeCodec(role="client")
    codec.expect_greeting = True
    codec.receive_data(data)
    return codec


@pytest.mark.parametrize("answer", [
    HTTP,
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"-ERR unknown command\r\n",
    b"\x00\x00\x00\x10ab",  # a plausible length, then not a msgpack array
    (MIN_FRAME_SIZE + 1).to_bytes(4, "big") + b"\x91",  # too large to be a greeting
], ids=["http", "ssh", "redis", "not-msgpack", "too-large"])
def test_bytes_no_native_server_sends_first_are_named_at_once(answer: bytes) -> None:
    codec = _greeted(answer)
    with pytest.raises(FrameError) as caught:
        codec.frames()
    quoted = repr(answer[:48])
    assert caught.value.text.startswith(f"this is not a minibroker: it sent {quoted}")
    assert caught.value.text.endswith("..." if len(answer) > 48 else quoted)


def test_an_amqp_broker_is_named_as_one() -> None:
    codec = _greeted(b"AMQP\x00\x00\x09\x01")
    with pytest.raises(FrameError, match=r"this is not a minibroker: it sent the AMQP protocol "
                       r"header b'AMQP\\x00\\x00\\t\\x01', so it is an AMQP 0-9-1 port"):
        codec.frames()


def test_a_minibroker_refusing_our_version_is_not_called_a_stranger() -> None:
    codec = _greeted(b"MBRK\x00\x02\x00\x00")
    with pytest.raises(FrameError, match="refused our protocol version"):
        codec.frames()


def test_four_bytes_that_may_begin_a_greeting_wait_for_more() -> None:
    server = NativeCodec(role="server")
    greeting = server.send(f.HelloOk("1.0", 131072, 2047, 60))
    codec = _greeted(greeting[:4])
    assert codec.frames() == []
    codec.receive_data(greeting[4:])
    assert codec.frames() == [f.HelloOk("1.0", 131072, 2047, 60)]


def test_after_the_greeting_large_frames_are_ordinary() -> None:
    server = NativeCodec(role="server")
    big = f.Deliver(1, "c", 1, False, "", "q", Properties(), b"x" * (2 * MIN_FRAME_SIZE))
    codec = _greeted(server.send(f.HelloOk("1.0", 131072, 2047, 60)))
    assert len(codec.frames()) == 1
    codec.receive_data(server.send(big))
    assert codec.frames() == [big]


def test_the_client_connection_expects_a_greeting_once_it_says_hello() -> None:
    out: list[bytes] = []
    connection = NativeConnection("client", out.append)
    assert not connection.codec.expect_greeting
    connection.start("app", None, None, {})
    connection.receive_data(HTTP, now=0.0)
    [closing] = list(connection.events())
    assert closing.reply_code == 501  # type: ignore[union-attr]
    assert "this is not a minibroker: it sent b'HTTP/1.1 400" in closing.reply_text  # type: ignore[union-attr]
