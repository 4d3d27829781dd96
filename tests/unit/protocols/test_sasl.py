"""SASL responses read as RabbitMQ reads them (its answers: ``login_plain_*`` and
``login_amqplain*`` in ``tests/compat/access_scenarios.json``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibroker.errors import CommandInvalid, FrameSyntaxError
from minibroker.protocols.amqp091.fields import encode_table
from minibroker.protocols.amqp091.sasl import MECHANISMS, read_response


def test_plain() -> None:
    assert read_response("PLAIN", b"\x00guest\x00guest") == ("guest", "guest")
    assert read_response("PLAIN", "\x00ünï\x00pässwörd".encode()) == ("ünï", "pässwörd")
    assert read_response("PLAIN", b"\x00\x00") == ("", "")  # refused later, by the login


@pytest.mark.parametrize("response", [
    b"admin\x00guest\x00guest",  # another user's authorization identity
    b"guest\x00guest\x00guest",  # even the user's own: RabbitMQ wants it empty
    b"\x00guest\x00guest\x00extra",
    b"\x00guest",
    b"guest",
    b"",
    b"\x00gu\xffest\x00pw",
])
def test_plain_responses_rabbitmq_refuses(response: bytes) -> None:
    with pytest.raises(FrameSyntaxError, match="invalid") as refused:
        read_response("PLAIN", response)
    assert refused.value.reply_code == 502


def test_amqplain() -> None:
    table = encode_table({"LOGIN": "guest", "PASSWORD": "guest"})[4:]
    assert read_response("AMQPLAIN", table) == ("guest", "guest")


@pytest.mark.parametrize("response", [
    encode_table({"LOGIN": "guest"})[4:],
    encode_table({"LOGIN": "guest", "PASSWORD": 5})[4:],
    b"\x05LOGIN",
])
def test_amqplain_responses_rabbitmq_refuses(response: bytes) -> None:
    with pytest.raises(FrameSyntaxError):
        read_response("AMQPLAIN", response)


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "EXTERNAL", "plain", ""])
def test_other_mechanisms_are_unknown(mechanism: str) -> None:
    with pytest.raises(CommandInvalid) as refused:
        read_response(mechanism, b"\x00guest\x00guest")
    assert refused.value.text == f"unknown authentication mechanism '{mechanism}'"


@given(st.sampled_from(MECHANISMS), st.binary(max_size=64))
def test_any_response_gives_credentials_or_a_syntax_error(mechanism: str, response: bytes) -> None:
    try:
        user, password = read_response(mechanism, response)
    except FrameSyntaxError:
        return
    assert isinstance(user, str) and isinstance(password, str)
