"""Hostile bytes are protocol errors, never internal errors.

Issue: a native decimal of 4,301 digits hit Python's int-string limit, and the ``ValueError``
escaped the codec: 541 INTERNAL_ERROR and two tracebacks per attempt. Decoders now raise only
protocol errors (hypothesis-fuzzed in ``tests/property/test_*_codec_property.py``); here the same
inputs come over real sockets, and ``run_broker`` fails the test if the broker logged an
internal error.
"""

from __future__ import annotations

import random

import msgpack

from minibroker.protocols.amqp091.frames import ContentMethod, MethodFrame
from minibroker.protocols.amqp091.methods import ConnectionClose
from minibroker.protocols.native import frames as f
from minibroker.server import BrokerServer
from tests.adversarial.canary import Canary
from tests.integration.conftest import RunBroker
from tests.integration.rawclient import RawClient
from tests.integration.test_overload import AMQPClient

#: Codes a connection may be closed with for bad input: frame, syntax, command, channel
#: errors, never 541.
PROTOCOL_CODES = {501, 502, 503, 504, 505, 530}
ATTEMPTS = 40


def _publish_with_headers(headers: dict[str, object]) -> bytes:
    payload: bytes = msgpack.packb([0x50, 1, "", "q", False, ["", "", headers], b""],
                                   use_bin_type=True)
    return len(payload).to_bytes(4, "big") + payload


def test_a_4301_digit_decimal_is_a_syntax_error_not_an_internal_error(
    run_broker: RunBroker,
) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        for _ in range(3):
            attacker = await RawClient.connect(server.port)
            await attacker.open_channel()
            attacker.send_raw(_publish_with_headers({"d": msgpack.ExtType(1, b"1" * 4301)}))
            close = await attacker.expect(f.ConnectionClose)
            assert close.reply_code == 502, close
            attacker.abort()
            await canary.round()
        assert server.internal_errors == 0
        await canary.close()

    run_broker(scenario)


def test_random_bytes_after_a_handshake_close_with_protocol_errors(run_broker: RunBroker) -> None:
    rng = random.Random(13)

    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        for attempt in range(ATTEMPTS):
            garbage = rng.randbytes(rng.randrange(1, 300))
            if attempt % 2:
                native = await RawClient.connect(server.port)
                await native.open_channel()
                native.send_raw(garbage)
                native.send(f.ConnectionClose(200, "done"))
                frame = await native.recv()
                while not isinstance(frame, f.ConnectionClose | f.ConnectionCloseOk):
                    frame = await native.recv()
                if isinstance(frame, f.ConnectionClose):
                    assert frame.reply_code in PROTOCOL_CODES, frame
                native.abort()
            else:
                amqp = await AMQPClient.connect(server.port)
                amqp.writer.write(garbage)
                amqp.writer.write(b"\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x32\xce")  # close
                try:
                    answer = await amqp.recv()
                    while (not isinstance(answer, MethodFrame | ContentMethod)
                           or answer.channel != 0):
                        answer = await amqp.recv()
                except EOFError:
                    pass  # garbage that reads as a frame error may close at once
                else:
                    if isinstance(answer.method, ConnectionClose):
                        assert answer.method.reply_code in PROTOCOL_CODES, answer
                amqp.writer.close()
            if attempt % 10 == 9:
                await canary.round()
        assert server.internal_errors == 0
        await canary.close()

    run_broker(scenario, timeout=60)
