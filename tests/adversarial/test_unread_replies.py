"""A client that pipelines requests and never reads the replies costs a bounded buffer.

Issue: ``basic.get`` + ``basic.recover`` pipelined against a 120 KB message, never read, made
the broker buffer every ``get-ok`` (hundreds of MB). Now the connection is not read while its
output is past the transport's high-water mark, and a read whose replies pass the session's
output mark stops there (``server/session.py`` rule 8).
"""

from __future__ import annotations

from minibroker.protocols.amqp091.frames import ContentMethod
from minibroker.protocols.amqp091.methods import (
    BasicGet,
    BasicGetOk,
    BasicRecover,
    BasicRecoverOk,
    QueueDeclare,
)
from minibroker.server import BrokerServer
from minibroker.server.session import OUTPUT_MARK
from tests.adversarial.canary import Canary
from tests.integration.conftest import RunBroker
from tests.integration.test_overload import AMQPClient, on_every_input, session_of

BODY = 120 * 1024
PAIRS = 400  # 48 MB of get-ok replies if all were buffered
#: The transport's default high-water mark (asyncio: 64 KiB).
TRANSPORT_HIGH_WATER = 64 * 1024


def test_replies_to_a_client_that_does_not_read_stay_bounded(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        before = set(server.sessions)
        attacker = await AMQPClient.connect(server.port, receive_buffer=4096)
        session = session_of(server, before)
        attacker.codec.frame_max = 131072  # as tuned
        attacker.send(QueueDeclare(0, "big"), channel=1)
        await attacker.recv()
        attacker.publish(b"b" * BODY, routing_key="big")
        peak = [0]

        def probe() -> None:
            peak[0] = max(peak[0], session.out_size + session.transport.get_write_buffer_size())
        on_every_input(server, probe)
        # The attack: every request at once, nothing read.
        for _ in range(PAIRS):
            attacker.send(BasicGet(0, "big", False), channel=1)
            attacker.send(BasicRecover(True), channel=1)
        await attacker.writer.drain()

        await canary.rounds_while(5)  # the canary flows while the attacker's replies wait
        probe()
        # What the broker holds for the attacker: its transport's mark, one read's output mark
        # and one reply (a get-ok with its 120 KB body).
        bound = TRANSPORT_HIGH_WATER + OUTPUT_MARK + 2 * BODY
        assert peak[0] <= bound, (peak[0], bound)
        assert session.reading_held

        # Once the attacker reads, every reply arrives: nothing was dropped.
        gets = recovers = 0
        while recovers < PAIRS:
            frame = await attacker.recv()
            if isinstance(frame, ContentMethod) and isinstance(frame.method, BasicGetOk):
                assert len(frame.body) == BODY
                gets += 1
            elif isinstance(getattr(frame, "method", None), BasicRecoverOk):
                recovers += 1
        assert gets == PAIRS
        assert peak[0] <= bound, (peak[0], bound)
        await canary.rounds_while(1)
        await canary.close()
        attacker.writer.close()

    run_broker(scenario, timeout=60)
