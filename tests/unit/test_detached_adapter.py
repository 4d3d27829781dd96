"""What a session holds once its socket is gone (``server/adapter.py``, ``DetachedAdapter``):
a connection that is closed and has no channel, so a late call — an effect routed to it, a
heartbeat tick, the flow controller's blocked notice, a close — does nothing and writes
nothing."""

from __future__ import annotations

import pytest

from minibroker.core.effects import ConsumerCancelled
from minibroker.errors import PreconditionFailed
from minibroker.server.adapter import DetachedAdapter


def test_a_detached_connection_answers_every_call_as_closed() -> None:
    adapter = DetachedAdapter("amqp")
    assert adapter.name == "amqp"  # the protocol's name stays, for logs
    assert adapter.heartbeat == 0
    adapter.receive(b"\x01\x00\x01")  # late bytes are dropped
    assert list(adapter.events()) == []
    assert adapter.command(object()) is None
    adapter.send_reply(object(), None)
    adapter.send_effect(ConsumerCancelled(1, 1, "ctag"))
    assert adapter.channel_is_open(1) is False
    assert adapter.close_channel(1, 406, "PRECONDITION_FAILED - x",
                                 error=PreconditionFailed("x")) is False
    assert adapter.close_connection(320, "CONNECTION_FORCED - x") is None
    assert adapter.tick(10.0, heard=False) is True  # never a missed heartbeat
    adapter.before_flush()
    adapter.flushed()
    assert adapter.set_blocked("memory") is False  # no peer to tell


def test_a_batch_cannot_reach_a_detached_connection() -> None:
    with pytest.raises(RuntimeError, match=r"^the connection is closed$"):
        DetachedAdapter("native").batch_command([object()])
