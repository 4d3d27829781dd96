"""Oversized input is refused before it is buffered: frames above ``frame_max`` of every type
and messages above ``max_message_size``, in both protocols.

Issue: method and content-header frames up to 16 MiB were accepted (each 15 MiB header table
stalled the loop ~1.4 s to decode), and a 130 MiB message was accepted. Now: 501
``frame_too_large`` from the 7-octet frame header, and 406 ``message size N is larger than
configured max size M`` from the content header, before any body octet is kept. The codecs'
own tests are in ``tests/unit/protocols``; here, from the wire, with a canary.
"""

from __future__ import annotations

import struct
from dataclasses import replace

from minibroker.message import EMPTY_PROPERTIES
from minibroker.protocols.amqp091.frames import encode_method
from minibroker.protocols.amqp091.methods import BasicPublish, ChannelClose, ConnectionClose
from minibroker.protocols.native import frames as f
from minibroker.server import BrokerServer
from tests.adversarial.canary import Canary
from tests.integration.conftest import TEST_CONFIG, RunBroker
from tests.integration.rawclient import RawClient
from tests.integration.test_overload import AMQPClient

FRAME_MAX = 131072
SMALL_LIMIT = 1024 * 1024
DECLARED = 130 * 1024 * 1024  # above RabbitMQ's (and our) 128 MiB default


def test_a_header_frame_above_frame_max_closes_the_connection_before_it_is_buffered(
    run_broker: RunBroker,
) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        attacker = await AMQPClient.connect(server.port)
        attacker.writer.write(encode_method(1, BasicPublish(0, "", "q")))
        # A content header announcing 15 MiB of properties: only its 7-octet head is sent.
        attacker.writer.write(struct.pack(">BHI", 2, 1, 15 * 1024 * 1024))
        close = await attacker.method(ConnectionClose)
        assert isinstance(close, ConnectionClose) and close.reply_code == 501
        assert f"frame_too_large,{15 * 1024 * 1024},{FRAME_MAX - 8}" in close.reply_text
        await canary.rounds_while(2)
        await canary.close()
        attacker.writer.close()

    run_broker(scenario)


def test_a_message_above_max_message_size_is_refused_from_its_header(
    run_broker: RunBroker,
) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        attacker = await AMQPClient.connect(server.port)
        header = struct.pack(">HHQH", 60, 0, DECLARED, 0)
        attacker.writer.write(encode_method(1, BasicPublish(0, "", "q")))
        attacker.writer.write(struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce")
        close = await attacker.method(ChannelClose)
        assert isinstance(close, ChannelClose)
        limit = TEST_CONFIG.max_message_size
        assert (close.reply_code, close.reply_text) == (
            406, f"PRECONDITION_FAILED - message size {DECLARED} is larger than configured "
                 f"max size {limit}")
        await canary.rounds_while(2)
        await canary.close()
        attacker.writer.close()

    run_broker(scenario)


def test_a_native_frame_above_max_frame_size_is_refused_from_its_length(
    run_broker: RunBroker,
) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        attacker = await RawClient.connect(server.port)
        await attacker.open_channel()
        attacker.send_raw(struct.pack(">I", 64 * 1024 * 1024))  # a length, and nothing else
        close = await attacker.expect(f.ConnectionClose)
        assert close.reply_code == 501 and "exceeds max_frame_size" in close.reply_text
        await canary.rounds_while(2)
        await canary.close()
        attacker.abort()

    run_broker(scenario)


def test_a_native_publish_above_max_message_size_is_refused(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        attacker = await RawClient.connect(server.port)
        attacker.codec.max_frame_size = FRAME_MAX  # sent in parts, as the client library does
        await attacker.open_channel()
        await attacker.declare_queue("q")
        attacker.send(f.Publish(1, "", "q", False, EMPTY_PROPERTIES, b"x" * (SMALL_LIMIT + 1)))
        close = await attacker.expect(f.ChannelClose)
        assert close.reply_code == 406
        assert close.reply_text == (f"PRECONDITION_FAILED - message size {SMALL_LIMIT + 1} is "
                                    f"larger than configured max size {SMALL_LIMIT}")
        assert server.broker.queue_statistics("q").ready == 0
        await canary.rounds_while(2)
        await canary.close()
        attacker.abort()

    run_broker(scenario, config=replace(TEST_CONFIG, max_message_size=SMALL_LIMIT))
