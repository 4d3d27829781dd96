"""A connection reset in the middle of a message frees that message at once, without the
cyclic garbage collector.

Issue: session → adapter → bound ``session.write`` kept a reset connection's partial body
(hundreds of MB) alive until a cyclic collection. Now the session lets go of its adapter when
the socket is lost (``server/session.py`` rule 9), so reference counting frees it.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
import weakref
from functools import partial

from minibroker.protocols.amqp091.frames import encode_method
from minibroker.protocols.amqp091.methods import BasicPublish, QueueDeclare
from minibroker.server import BrokerServer
from minibroker.server.session import Session
from tests.adversarial.canary import Canary
from tests.integration.conftest import RunBroker
from tests.integration.test_overload import AMQPClient, session_of, wait_until

DECLARED = 64 * 1024 * 1024
SENT = 8 * 1024 * 1024
FRAME = 131072 - 8


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer would."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _lost(ref: weakref.ref[Session]) -> bool:
    session = ref()
    return session is None or session.closed


def test_a_reset_connection_frees_its_partial_message_without_the_cyclic_gc(
    run_broker: RunBroker,
) -> None:
    async def scenario(server: BrokerServer) -> None:
        canary = await Canary.start(server.url)
        for _ in range(3):
            before = set(server.sessions)
            attacker = await AMQPClient.connect(server.port)
            attacker.send(QueueDeclare(0, "partial"), channel=1)
            await attacker.recv()
            ref: weakref.ref[Session] = weakref.ref(session_of(server, before))
            header = struct.pack(">HHQH", 60, 0, DECLARED, 0)  # basic, no properties
            attacker.writer.write(encode_method(1, BasicPublish(0, "", "partial")))
            attacker.writer.write(struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce")
            chunk = struct.pack(">BHI", 3, 1, FRAME) + b"p" * FRAME + b"\xce"
            for _ in range(SENT // FRAME):
                attacker.writer.write(chunk)
            await attacker.writer.drain()
            await canary.round()  # the broker read the partial body meanwhile
            gc.disable()
            try:
                _reset(attacker.writer)
                await wait_until(server, partial(_lost, ref))
                await canary.round()
                assert ref() is None, gc.get_referrers(ref())
            finally:
                gc.enable()
        assert server.broker.queue_statistics("partial").ready == 0
        await canary.close()

    run_broker(scenario, timeout=60)
