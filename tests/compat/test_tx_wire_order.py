"""Raw-frame check of what ``tx.commit`` sends and in which order: a mandatory publish that
reached no queue comes back as ``basic.return`` when the transaction commits.

RabbitMQ writes the ``basic.return`` *before* ``tx.commit-ok`` (``rabbit_channel``: the
deliveries, and their returns, happen in the commit; ``commit-ok`` is sent once they are
done). minibroker's shell writes a command's reply before its effects (``effects.py`` rule 1),
so its ``commit-ok`` comes first. pika and kombu cannot tell (they hand returns to callbacks
later anyway); a client that reads frames in order can. Documented in
``docs/compatibility.md``; the minibroker case is a strict xfail so that it fails loudly
once the shell sends a commit's returns first.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

from minibroker.message import Properties
from minibroker.protocols.amqp091.content import encode_content
from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame, encode_method
from minibroker.protocols.amqp091.methods import (
    BasicPublish,
    ChannelOpen,
    TxCommit,
    TxSelect,
)
from tests.compat.conftest import ServerThread
from tests.compat.test_wire import RawClient


def commit_frames(port: int) -> list[str]:
    """The frames a commit of one unroutable mandatory publish brings, by method name (the
    raw client speaks to 127.0.0.1 as guest/guest)."""
    client = RawClient(port)
    try:
        client.open(heartbeat=0)
        client.sock.sendall(encode_method(1, ChannelOpen()))
        client.next_frame()  # channel.open-ok
        client.sock.sendall(encode_method(1, TxSelect()))
        client.next_frame()  # tx.select-ok
        publish = BasicPublish(0, "amq.direct", f"mbdiff-nowhere-{uuid.uuid4().hex}", True)
        client.sock.sendall(encode_content(1, publish, Properties(), b"m", 131072))
        client.sock.sendall(encode_method(1, TxCommit()))
        names = []
        while len(names) < 2:  # the return and the commit-ok, whatever their order
            frame = client.next_frame()
            assert isinstance(frame, MethodFrame | ContentMethod), frame
            names.append(frame.method.NAME)
        return names
    finally:
        client.close()


RABBITMQ_ORDER = ["basic.return", "tx.commit-ok"]


@pytest.mark.xfail(strict=True, reason="the shell writes tx.commit-ok before the commit's "
                   "basic.return (a reply goes before its effects)")
def test_minibroker_returns_before_commit_ok(broker: ServerThread) -> None:
    assert commit_frames(broker.port) == RABBITMQ_ORDER


def test_minibroker_returns_at_commit(broker: ServerThread) -> None:
    assert sorted(commit_frames(broker.port)) == sorted(RABBITMQ_ORDER)


@pytest.mark.rabbitmq
def test_rabbitmq_returns_before_commit_ok(rabbitmq: tuple[str, str]) -> None:
    url = urlsplit(rabbitmq[0])
    if url.hostname not in ("127.0.0.1", "localhost") or (url.username, url.password) != (
            "guest", "guest"):
        pytest.skip("the raw client speaks to 127.0.0.1 as guest/guest only")
    assert commit_frames(url.port or 5672) == RABBITMQ_ORDER
