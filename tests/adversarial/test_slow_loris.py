"""Slow-loris senders: a connection that began a frame and does not complete it within the
frame timeout is closed; one whose frames each complete in time stays, however slow overall.

Issue: any byte counted as alive, so a client trickling one byte of a frame at a time held its
connection (and the partial frame) forever. The server's clock decides (``ManualClock`` here),
so nothing waits in real time.
"""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from minibroker.cli import build_parser
from minibroker.config import ServerConfig
from minibroker.message import EMPTY_PROPERTIES
from minibroker.protocols.native import frames as f
from minibroker.server import BrokerServer
from minibroker.server.session import Session
from minibroker.testing import ManualClock
from tests.adversarial.canary import Canary
from tests.integration.conftest import RunBroker
from tests.integration.rawclient import RawClient
from tests.integration.test_overload import AMQPClient, session_of, wait_until

TIMEOUT = 60.0
CONFIG = ServerConfig(port=0, shutdown_grace=0.2, heartbeat=0, frame_timeout=TIMEOUT)


def _received(first: Session, first_bytes: int, second: Session, second_bytes: int) -> bool:
    return first.frames.received == first_bytes and second.frames.received == second_bytes


def test_a_frame_that_is_not_completed_in_time_closes_the_connection(
    run_broker: RunBroker,
) -> None:
    clock = ManualClock()

    async def scenario(server: BrokerServer) -> None:
        clock.attach(server)
        canary = await Canary.start(server.url)
        # The slow one (AMQP): half of a queue.declare frame, then a byte now and then.
        before = set(server.sessions)
        loris = await AMQPClient.connect(server.port)
        loris_session = session_of(server, before)
        # The patient one (native): slow too, but each frame it starts, it completes in time.
        before = set(server.sessions)
        patient = await RawClient.connect(server.port)
        patient_session = session_of(server, before)
        await patient.open_channel()
        publish = patient.codec.send(f.Publish(1, "", "nowhere", False, EMPTY_PROPERTIES, b"x"))

        frame = b"\x01\x00\x01\x00\x00\x00\x20" + b"\x00" * 20
        loris.writer.write(frame[:10])
        patient.send_raw(publish[:5])
        await wait_until(server, lambda: loris_session.frames.stalled_since is not None
                         and patient_session.frames.stalled_since is not None)
        loris_bytes, patient_bytes = loris_session.frames.received, patient_session.frames.received
        for step in range(1, 3):  # 2 x 40 s: the loris's frame is 80 s old by then
            loris.writer.write(frame[9 + step : 10 + step])  # a byte is not progress
            patient.send_raw(publish[5:] + publish[:5])  # one frame done, the next begun
            loris_bytes += 1
            patient_bytes += len(publish)
            await wait_until(server, partial(_received, loris_session, loris_bytes,
                                             patient_session, patient_bytes))
            clock.advance(TIMEOUT * 2 / 3)
            await canary.round()
        assert loris_session.closed
        assert await loris.reader.read() == b""  # closed, without an answer
        assert not patient_session.closed
        patient.send_raw(publish[5:])
        await patient.call(f.Qos(1, 1, False), f.QosOk)  # still served
        await canary.round()
        await canary.close()
        patient.abort()

    run_broker(scenario, config=CONFIG, clock=clock)


def test_a_connection_with_no_frame_begun_is_not_a_slow_sender(run_broker: RunBroker) -> None:
    clock = ManualClock()

    async def scenario(server: BrokerServer) -> None:
        clock.attach(server)
        before = set(server.sessions)
        idle = await RawClient.connect(server.port)
        session = session_of(server, before)
        clock.advance(10 * TIMEOUT)
        await asyncio.sleep(0)
        assert not session.closed and session.frames.stalled_since is None
        await idle.open_channel()
        idle.abort()

    run_broker(scenario, config=CONFIG, clock=clock)


def test_the_timeouts_come_from_the_command_line_and_are_validated() -> None:
    args = build_parser().parse_args(["--frame-timeout", "5", "--consumer-timeout", "0"])
    assert (args.frame_timeout, args.consumer_timeout) == (5.0, 0.0)
    assert build_parser().parse_args([]).frame_timeout == ServerConfig().frame_timeout == 60.0
    with pytest.raises(ValueError, match="frame_timeout must be at least 0"):
        ServerConfig(frame_timeout=-1)


def test_a_negative_timeout_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--frame-timeout", "-1"])
    assert "-1 is not a number of seconds" in capsys.readouterr().err
