"""Thousands of consumers on one busy queue cost O(log n) each, not a walk over all of them.

Issue: adding a consumer to a busy queue walked every existing one (5,000 consumers: 3.7 s of
frozen broker). The ring with a turn heap (``core/consumers.py``) makes add, remove and
find-with-credit O(log n); the canary keeps flowing while 5,000 consumers come and go.
Algorithmic bounds are asserted by the core's unit tests; here, from the wire.
"""

from __future__ import annotations

from minibroker.message import EMPTY_PROPERTIES
from minibroker.protocols.native import frames as f
from minibroker.server import BrokerServer
from tests.adversarial.canary import Canary
from tests.integration.conftest import RunBroker
from tests.integration.rawclient import RawClient

CONSUMERS = 5_000


def test_five_thousand_consumers_on_a_busy_queue(run_broker: RunBroker) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        attacker = await RawClient.connect(server.port)
        await attacker.open_channel()
        await attacker.declare_queue("busy")
        await attacker.call(f.Qos(1, 1, False), f.QosOk)
        # Every consume pipelined, with messages published in between: each new consumer
        # lands on a queue that has work and thousands of consumers.
        for index in range(CONSUMERS):
            attacker.send(f.Consume(1, "busy", f"c{index}", False, False, {}))
            if index % 10 == 0:
                attacker.send(f.Publish(1, "", "busy", False, EMPTY_PROPERTIES, b"w"))
        await canary.rounds_while(3)
        answered = acked = 0
        while answered < CONSUMERS or acked < CONSUMERS // 10:
            frame = await attacker.recv()
            if isinstance(frame, f.Deliver):
                attacker.send(f.Ack(1, frame.delivery_tag, False))
                acked += 1
            else:
                assert isinstance(frame, f.ConsumeOk), frame
                answered += 1
        assert server.broker.queue_statistics("busy").consumers == CONSUMERS
        for index in range(CONSUMERS):
            attacker.send(f.Cancel(1, f"c{index}"))
        await canary.rounds_while(2)
        for _ in range(CONSUMERS):
            await attacker.expect(f.CancelOk)
        assert server.broker.queue_statistics("busy").consumers == 0
        await canary.close()
        attacker.abort()

    run_broker(scenario, timeout=60)
