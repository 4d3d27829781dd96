"""Logins over real sockets: AMQP 0-9-1 (pika and raw SASL responses) and the native client,
refused with RabbitMQ's answers."""

from __future__ import annotations

import asyncio
import socket

import pika
import pytest
from pika.exceptions import ProbableAuthenticationError

from minibroker.accounts import Login, build_access
from minibroker.client import connect
from minibroker.core.access import LoginRefused
from minibroker.errors import ConnectionClosed
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.frames import MethodFrame
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER
from minibroker.testing import broker_in_thread, running_broker

LOGIN_REFUSED = ("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                 "For details see the broker logfile.")
TIMEOUT = 10.0


def _params(port: int, user: str, password: str) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        "127.0.0.1", port, credentials=pika.PlainCredentials(user, password),
        connection_attempts=1, socket_timeout=TIMEOUT, stack_timeout=TIMEOUT)


def _raw_start_ok(port: int, mechanism: str, response: bytes) -> list[object]:
    """Send a start-ok with ``response``; the methods the broker answers until EOF (or
    until its connection.tune)."""
    codec = AMQPCodec("client")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(PROTOCOL_HEADER)
        answers: list[object] = []
        sent = False
        while True:
            data = sock.recv(65536)
            codec.receive_data(data)
            while (frame := codec.next_frame()) is not None:
                if isinstance(frame, MethodFrame):
                    answers.append(frame.method)
                    if isinstance(frame.method, m.ConnectionTune):
                        return answers[1:]  # logged in: the broker waits for tune-ok
                    if isinstance(frame.method, m.ConnectionStart) and not sent:
                        sent = True
                        capabilities = {"authentication_failure_close": True}
                        sock.sendall(codec.send(MethodFrame(0, m.ConnectionStartOk(
                            {"capabilities": capabilities}, mechanism, response, "en_US"))))
            if not data:
                return answers[1:]  # after connection.start


@pytest.mark.parametrize(("user", "password"), [("guest", "wrong"), ("nobody", "guest"),
                                                ("guest", "")])
def test_a_bad_login_is_refused_with_rabbitmqs_text(user: str, password: str) -> None:
    with broker_in_thread(heartbeat=0) as broker:
        with pytest.raises(ProbableAuthenticationError) as refused:
            pika.BlockingConnection(_params(broker.port, user, password))
        assert LOGIN_REFUSED in str(refused.value)


@pytest.mark.parametrize("response", [b"admin\x00guest\x00guest", b"guest\x00guest\x00guest",
                                      b"\x00guest\x00guest\x00", b"\x00guest"])
def test_a_plain_authorization_identity_closes_the_socket_without_a_word(
    response: bytes,
) -> None:
    """rabbit_auth_mechanism_plain accepts ``NUL user NUL password`` only: RabbitMQ logs the
    response as invalid and closes the socket, whichever user the authzid names."""
    with broker_in_thread(heartbeat=0, users={"guest": "guest", "admin": "admin"}) as broker:
        assert _raw_start_ok(broker.port, "PLAIN", response) == []
        assert broker.statistics().connections == 0


def test_a_good_plain_response_logs_in() -> None:
    with broker_in_thread(heartbeat=0) as broker:
        answers = _raw_start_ok(broker.port, "PLAIN", b"\x00guest\x00guest")
        assert [type(answer) for answer in answers] == [m.ConnectionTune]


def test_a_configured_user_logs_in_with_its_password_only() -> None:
    with broker_in_thread(heartbeat=0, users={"ann": "s3cret"}) as broker:
        pika.BlockingConnection(_params(broker.port, "ann", "s3cret")).close()
        with pytest.raises(ProbableAuthenticationError):
            pika.BlockingConnection(_params(broker.port, "guest", "guest"))


def test_the_native_client_without_credentials_logs_in_as_guest() -> None:
    async def main() -> None:
        async with running_broker(heartbeat=0) as broker:
            async with connect(f"minibroker://127.0.0.1:{broker.port}") as conn:
                await conn.channel()
            with pytest.raises(ConnectionClosed, match="403 ACCESS_REFUSED - Login was refused"):
                await connect(f"minibroker://guest:wrong@127.0.0.1:{broker.port}")

    asyncio.run(main())


def test_guest_logs_in_from_loopback_only_unless_configured() -> None:
    access = build_access(None)
    assert Login(access, "127.0.0.1")("guest", "guest", "PLAIN") == "guest"
    assert Login(access, "::ffff:127.0.0.1")("guest", "guest", "PLAIN") == "guest"
    with pytest.raises(LoginRefused) as refused:
        Login(access, "192.0.2.7")("guest", "guest", "AMQPLAIN")
    assert refused.value.reply_text == LOGIN_REFUSED.replace("PLAIN", "AMQPLAIN")
    assert refused.value.reason == "user 'guest' can only connect via localhost"
    anywhere = build_access(None, loopback_users=frozenset())
    assert Login(anywhere, "192.0.2.7")("guest", "guest", "PLAIN") == "guest"
