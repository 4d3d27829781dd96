"""The async client's channel surface around publishing without waiting
(``client/channel.py``): ``publish_nowait`` and ``write_publish`` (frames made ahead, e.g. in
another thread) reach the queue, both refuse a confirm channel as their docstrings say, and a
closed channel refuses calls with its reason; ``async with`` closes a channel."""

from __future__ import annotations

import pytest

from minibroker import connect
from minibroker.client.publish import encode_publish
from minibroker.errors import ChannelClosed, ClientError
from minibroker.message import EMPTY_PROPERTIES
from minibroker.protocols.native.codec import NativeCodec
from tests.integration.test_client import run, server, url

__all__ = ["server", "url"]


def test_publishing_without_waiting_reaches_the_queue(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            async with await conn.channel() as ch:
                assert repr(ch) == f"<Channel {ch.number} open>"
                info = await ch.declare_queue("fast")
                assert repr(info) == "QueueInfo(name='fast', message_count=0, consumer_count=0)"
                ch.publish_nowait("", "fast", b"one")
                made_ahead, _ = encode_publish(NativeCodec(role="client"), ch.number, "",
                                               "fast", b"two", False, EMPTY_PROPERTIES)
                assert ch.write_publish(made_ahead) is True
                got = [await ch.get("fast", no_ack=True) for _ in range(2)]
                assert [delivery.body for delivery in got if delivery] == [b"one", b"two"]
                await ch.cancel("no-such-consumer")  # unknown tags are not an error
            assert ch.is_closed and repr(ch) == f"<Channel {ch.number} closed>"
            assert ch.write_publish(made_ahead) is False  # nothing written
            with pytest.raises(ChannelClosed, match=rf"^channel {ch.number} is closed$"):
                ch.publish_nowait("", "fast", b"late")

    run(scenario())


def test_a_confirm_channel_refuses_publishing_without_waiting(url: str) -> None:
    async def scenario() -> None:
        async with connect(url) as conn:
            ch = await conn.channel()
            await ch.confirm_select()
            with pytest.raises(ClientError, match=r"^publish_nowait cannot wait for a "
                               r"confirm: use publish\(\)$"):
                ch.publish_nowait("", "q", b"x")
            made_ahead, _ = encode_publish(NativeCodec(role="client"), ch.number, "", "q",
                                           b"x", False, EMPTY_PROPERTIES)
            assert ch.write_publish(made_ahead) is False

    run(scenario())
