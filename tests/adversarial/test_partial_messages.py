"""Messages still arriving count against the memory alarm.

A connection streaming the body of a large message holds it in its codec until the last byte;
many such connections held gigabytes with no alarm, since only ready messages were metered.
Now the bytes every codec holds for incomplete frames and messages are added to the ready
weight (``server/flow.py`` rule 7): past the memory mark the alarm goes on, the sender stops
being read, and its bytes are forgotten when it goes away.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import replace

from minibroker.protocols.amqp091.frames import encode_method
from minibroker.protocols.amqp091.methods import BasicPublish
from minibroker.server import BrokerServer
from minibroker.testing import ManualClock
from tests.adversarial.canary import Canary
from tests.integration.conftest import TEST_CONFIG, RunBroker
from tests.integration.test_overload import AMQPClient, session_of, wait_until

MARK = 8 * 1024 * 1024
CONFIG = replace(TEST_CONFIG, memory_high_water=MARK)
FRAME = 131072 - 8
#: What one socket read may add after the alarm went on (asyncio reads 256 KiB at most).
READ_SIZE = 256 * 1024


def test_a_slow_large_message_raises_the_alarm_and_is_forgotten_when_its_sender_goes(
    run_broker: RunBroker,
) -> None:
    clock = ManualClock()

    async def scenario(server: BrokerServer) -> None:
        clock.attach(server)
        canary = await Canary.start(server.url)
        await canary.round()
        senders = []
        for _ in range(2):  # two connections, each streaming half of the mark and more
            before = set(server.sessions)
            sender = await AMQPClient.connect(server.port)
            senders.append((sender, session_of(server, before)))
            header = struct.pack(">HHQH", 60, 0, 100 * 1024 * 1024, 0)
            sender.writer.write(encode_method(1, BasicPublish(0, "", "big")))
            sender.writer.write(struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce")
        chunk = struct.pack(">BHI", 3, 1, FRAME) + b"p" * FRAME + b"\xce"
        for _ in range(MARK // FRAME):  # together: twice the mark, if nothing stopped them
            for sender, _session in senders:
                sender.writer.write(chunk)
        await wait_until(server, lambda: server.flow.alarm is not None)
        assert "still arriving" in server.flow.alarm  # type: ignore[operator]
        await wait_until(server, lambda: all(s in server.flow.blocked for _, s in senders))
        held = server.flow.partial
        assert MARK < held <= MARK + 2 * READ_SIZE + 2 * FRAME, held
        for sender, session in senders:
            assert not session.transport.is_reading()
            sock = sender.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sender.writer.transport.abort()
        # The event loop does not watch sockets it does not read: the server's sweep asks them.
        clock.advance(0)
        await wait_until(server, lambda: server.flow.alarm is None)
        assert server.flow.partial == 0
        await canary.rounds_while(2)  # the canary publishes again, and loses nothing
        await canary.close()

    run_broker(scenario, config=CONFIG, clock=clock, timeout=30)
