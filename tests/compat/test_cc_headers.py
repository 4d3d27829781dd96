"""Sender-selected distribution (``CC``/``BCC`` headers) with values of every type, on both brokers.

RabbitMQ takes the routing keys of a ``CC`` or ``BCC`` header only from an array, and from the
array only its ``longstr`` entries; any other type for the header itself refuses the message with
406 ``invalid message: {unacceptable_type_in_header,"CC",longstr}`` (the channel closes). pika
sends ``str`` as ``longstr`` and ``bytes`` as ``binary``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from tests.compat.conftest import ServerThread

Headers = Callable[[str], dict[str, Any]]

#: (scenario, headers given the second queue's name, what a client sees)
CASES: list[tuple[str, Headers, str]] = [
    ("cc-array-of-longstr", lambda q: {"CC": [q]}, "copied"),
    ("cc-array-with-a-number-first", lambda q: {"CC": [1, q]}, "copied"),
    ("bcc-array-of-longstr", lambda q: {"BCC": [q]}, "copied"),
    ("cc-array-of-binary", lambda q: {"CC": [q.encode()]}, "not copied"),
    ("cc-longstr", lambda q: {"CC": q},
     '406 PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",longstr}'),
    ("bcc-number", lambda q: {"BCC": 5},
     '406 PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"BCC",signedint}'),
    ("cc-table", lambda q: {"CC": {"a": q}},
     '406 PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",table}'),
]


def observe(url: str, headers: Headers) -> str:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        tag = uuid.uuid4().hex[:8]
        first = channel.queue_declare(f"cc-first-{tag}", exclusive=True).method.queue
        second = channel.queue_declare(f"cc-second-{tag}", exclusive=True).method.queue
        try:
            channel.basic_publish("", first, b"body",
                                  pika.BasicProperties(headers=headers(second)))
            # A round trip, so that a refused publish has closed the channel by now.
            method, _, _ = channel.basic_get(second, auto_ack=True)
        except ChannelClosedByBroker as err:
            return f"{err.reply_code} {err.reply_text}"
        return "copied" if method is not None else "not copied"
    finally:
        if connection.is_open:
            connection.close()


@pytest.mark.parametrize(("scenario", "headers", "expected"), CASES, ids=[c[0] for c in CASES])
def test_minibroker(module_broker: ServerThread, scenario: str, headers: Headers,
                    expected: str) -> None:
    assert observe(module_broker.url, headers) == expected


@pytest.mark.parametrize(("scenario", "headers", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rabbitmq(rabbitmq: tuple[str, str], scenario: str, headers: Headers,
                  expected: str) -> None:
    assert observe(rabbitmq[0], headers) == expected
