"""RabbitMQ's frame-error texts, octet for octet: every expected text below is what RabbitMQ
3.10.8 (Erlang/OTP 25) sent for the same frame, recorded with a raw socket."""

from __future__ import annotations

import pytest

from minibroker.protocols.amqp091.errortext import (
    cannot_decode,
    frame_error,
    print_binary,
    unexpected_frame,
    write_binary,
)

# (frame type, payload, error term, RabbitMQ's text after "FRAME_ERROR - ")
OBSERVED = [
    (9, b"hello world, this is a long payload of more than 16 bytes", "unknown_frame",
     'type 9, first 16 octets = <<"hello world, thi">>: unknown_frame'),
    (9, b"", "unknown_frame", "type 9, all octets = <<>>: unknown_frame"),
    (4, b"\x01\x02", "unknown_frame", "type 4, all octets = <<1,2>>: unknown_frame"),
    (8, b"abc", "unknown_frame", 'type 8, all octets = <<"abc">>: unknown_frame'),
    (1, b"\x00\x32", "unknown_frame", "type 1, all octets = <<0,50>>: unknown_frame"),
    (9, b"\t" * 16, "unknown_frame",
     'type 9, all octets = <<"\\t\\t\\t\\t\\t\\t\\t\\t\\t\\t\\t\\t\\t\\t\\t\\t">>: unknown_frame'),
    (9, b'a"b\\c\nd\te\x1b', "unknown_frame",
     'type 9, all octets = <<"a\\"b\\\\c\\nd\\te\\e">>: unknown_frame'),
    (9, b"abc\x00", "unknown_frame", "type 9, all octets = <<97,98,99,0>>: unknown_frame"),
    (9, b"abc\x7f", "unknown_frame", "type 9, all octets = <<97,98,99,127>>: unknown_frame"),
    (9, "héllo".encode(), "unknown_frame", 'type 9, all octets = <<"héllo">>: unknown_frame'),
    (9, bytes([255, 1]) * 8, "unknown_frame",
     "type 9, all octets = <<255,1,255,1,255,1,255,1,255,1,255,1,255,1,255,1>>: unknown_frame"),
    (9, bytes([128] * 13 + [20, 0]), "unknown_frame",
     "type 9, all octets = <<128,128,128,128,128,128,128,128,128,128,128,128,128,20,0>>: "
     "unknown_frame"),
    (9, bytes([128] * 13 + [20, 10]), "unknown_frame",
     "type 9, all octets = <<128,128,128,128,128,128,128,128,128,128,128,128,128,20,\n"
     + " " * 23 + "10>>: unknown_frame"),
    (9, bytes([128] * 16), "unknown_frame",
     "type 9, all octets = <<128,128,128,128,128,128,128,128,128,128,128,128,128,128,\n"
     + " " * 23 + "128,128>>: unknown_frame"),
    (9, bytes([128] * 20), "unknown_frame",
     "type 9, first 16 octets = <<128,128,128,128,128,128,128,128,128,128,128,128,\n"
     + " " * 28 + "128,128,128,128>>: unknown_frame"),
    (200, bytes([128] * 16), "unknown_frame",
     "type 200, all octets = <<128,128,128,128,128,128,128,128,128,128,128,128,128,\n"
     + " " * 25 + "128,128,128>>: unknown_frame"),
    (1, b"abc", ("invalid_frame_end_marker", 7),
     'type 1, all octets = <<"abc">>: {invalid_frame_end_marker,7}'),
    (1, b"abcdefghijklmnopq", ("invalid_frame_end_marker", 255),
     'type 1, first 16 octets = <<"abcdefghijklmnop">>: {invalid_frame_end_marker,\n'
     + " " * 51 + "255}"),
    (1, bytes([0, 50, 0, 10] + [0] * 26), ("invalid_frame_end_marker", 0),
     "type 1, first 16 octets = <<0,50,0,10,0,0,0,0,0,0,0,0,0,0,0,0>>: "
     "{invalid_frame_end_marker,\n" + " " * 66 + "0}"),
    (1, bytes([100, 0] * 8), ("invalid_frame_end_marker", 0),
     "type 1, all octets = <<100,0,100,0,100,0,100,0,100,0,100,0,100,0,100,0>>: "
     "{invalid_frame_end_marker,\n" + " " * 75 + "0}"),
    (1, bytes([0, 0] + [20] * 7), ("invalid_frame_end_marker", 0),
     "type 1, all octets = <<0,0,20,20,20,20,20,20,20>>: {invalid_frame_end_marker,\n"
     + " " * 52 + "0}"),
    (1, bytes([128] * 16), ("invalid_frame_end_marker", 0),
     "type 1, all octets = <<128,128,128,128,128,128,128,128,128,128,128,128,128,128,\n"
     + " " * 23 + "128,128>>: {invalid_frame_end_marker,0}"),
    (1, b"", ("frame_too_large", 10022, 4088),
     "type 1, all octets = <<>>: {frame_too_large,10022,4088}"),
    (3, b"", ("frame_too_large", 200022, 131064),
     "type 3, all octets = <<>>: {frame_too_large,200022,131064}"),
]


@pytest.mark.parametrize(("ftype", "payload", "error", "expected"), OBSERVED)
def test_frame_error_texts_are_rabbitmqs(
    ftype: int, payload: bytes, error: str | tuple[str | int, ...], expected: str
) -> None:
    assert frame_error(ftype, payload, error) == expected


def test_latin1_octets_that_are_not_utf8_print_as_latin1_characters() -> None:
    # RabbitMQ sends the raw octet (0xE9); the text here stays UTF-8 and shows the same letter.
    assert frame_error(9, b"ab\xe9cd", "unknown_frame") == (
        'type 9, all octets = <<"abécd">>: unknown_frame'
    )


@pytest.mark.parametrize(("payload", "expected"), [
    (b"", "type 8, all octets = <<>>"),
    (b"\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00",
     "type 8, all octets = <<0,60,0,0,0,0,0,0,0,0,0,5,0,0>>"),
    (b"hello", 'type 8, all octets = <<"hello">>'),
])
def test_unexpected_frame_texts_have_no_error_term(payload: bytes, expected: str) -> None:
    assert unexpected_frame(8, payload) == expected


def test_cannot_decode_quotes_every_argument_octet_as_integers() -> None:
    # ~w, not ~p: printable octets are not shown as text, and nothing is cut at 16.
    assert cannot_decode(b"\x00\x00\x06abcde") == "cannot decode <<0,0,6,97,98,99,100,101>>"
    assert cannot_decode(bytes(40)).count(",") == 39


def test_write_binary_and_print_binary_agree_on_short_binaries() -> None:
    assert write_binary(b"\x01\x02") == print_binary(b"\x01\x02", 0) == "<<1,2>>"
    assert print_binary(b"", 70) == "<<>>"
