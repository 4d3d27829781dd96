"""``--trace`` over real sockets: every frame, both directions, decoded, one line each, tagged
with the peer's address, the connection and the channel (``protocols/tracing.py``)."""

from __future__ import annotations

import asyncio
import logging
import re

import pika
import pytest

from minibroker.config import ServerConfig
from minibroker.server import BrokerServer
from tests.integration.conftest import RunBroker
from tests.integration.rawclient import RawClient

LINE = re.compile(r"^(?P<peer>127\.0\.0\.1:\d+) #(?P<id>\d+) (?P<arrow><-|->) "
                  r"ch(?P<channel>\d+) (?P<frame>\S.*)$")


def _trace_lines(caplog: pytest.LogCaptureFixture) -> list[re.Match[str]]:
    lines = [r.getMessage() for r in caplog.records if r.name == "minibroker.trace"]
    matches = [LINE.match(line) for line in lines]
    assert all(matches), [line for line, ok in zip(lines, matches, strict=True) if not ok]
    return [match for match in matches if match is not None]


def test_amqp_frames_are_traced_by_their_wire_names(
    run_broker: RunBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    local: list[str] = []

    def pika_client(url: str) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        address = connection._impl._transport._sock.getsockname()  # type: ignore[attr-defined]
        local.append(f"{address[0]}:{address[1]}")
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("traced", exclusive=True)
        channel.basic_publish("", "traced", b"hello", pika.BasicProperties(delivery_mode=2))
        method, _, body = channel.basic_get("traced")
        assert body == b"hello"
        channel.basic_ack(method.delivery_tag)
        connection.close()

    async def scenario(server: BrokerServer) -> None:
        await asyncio.to_thread(pika_client, server.amqp_url)

    with caplog.at_level(logging.INFO, logger="minibroker.trace"):
        run_broker(scenario, config=ServerConfig(port=0, trace=True, heartbeat=0))
    lines = _trace_lines(caplog)
    assert {line["peer"] for line in lines} == set(local)  # the client's own address
    assert len({line["id"] for line in lines}) == 1
    seen = [(line["arrow"], line["channel"], line["frame"]) for line in lines]
    assert seen[0] == ("<-", "0", "protocol header AMQP 0-9-1")
    assert ("->", "1", "confirm.select-ok()") in seen
    assert ("<-", "1", "basic.publish(exchange='', routing_key='traced', mandatory=False, "
            "immediate=False, properties=(delivery_mode=2), body=<5 bytes b'hello'>)") in seen
    assert ("->", "1", "basic.ack(delivery_tag=1, multiple=False)") in seen  # the confirm
    assert ("->", "1", "basic.get-ok(delivery_tag=1, redelivered=False, exchange='', "
            "routing_key='traced', message_count=0, properties=(delivery_mode=2), "
            "body=<5 bytes b'hello'>)") in seen
    assert ("<-", "1", "basic.ack(delivery_tag=1, multiple=False)") in seen
    assert seen[-1] == ("->", "0", "connection.close-ok()")
    # Frames only, never the core's replies or effects.
    assert not [frame for _, _, frame in seen if "None" in frame or "Reply" in frame]


def test_native_frames_are_traced_in_the_same_style(
    run_broker: RunBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.open_channel()
        client.publish(b"traced body", "nowhere")
        await client.close()

    with caplog.at_level(logging.INFO, logger="minibroker.trace"):
        run_broker(scenario, config=ServerConfig(port=0, trace=True))
    seen = [(line["arrow"], line["channel"], line["frame"]) for line in _trace_lines(caplog)]
    assert ("->", "1", "ChannelOpenOk()") in seen
    assert ("<-", "1", "Publish(exchange='', routing_key='nowhere', mandatory=False, "
            "body=<11 bytes b'traced body'>)") in seen
    assert ("<-", "0", "Hello(client_name='rawclient', username='guest', password='***', "
            "client_properties={}, vhost='/')") in seen
