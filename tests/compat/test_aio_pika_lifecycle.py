"""aio-pika's channel lifecycle: minibroker and RabbitMQ give aio-pika the same experience.

Two things were seen under aio-pika against minibroker and suspected to be the broker's doing:
channels left open when their connection closes staying referenced afterwards, and callback
errors logged when channels are created while a robust connection reconnects. Run side by side
(the same scenario, the same forced close, on both brokers) they turn out to be aio-pika's own:

- channels left open are released one event-loop turn after their connection's ``close()``
  returns (aio-pika drops its last references in a callback), on both brokers: looked at before
  that turn, some are still alive on either broker, more often on the faster one;
- a robust connection closed by the broker (320 CONNECTION_FORCED) fails the channels being
  opened at that moment (with ``ConnectionClosed`` or aio-pika's ``RuntimeError: ... closed``,
  a race inside the client) and logs, for channels it had open, ``Callback <OneShotCallback:
  cb=<bound method RobustChannel._on_close ...>> error: RuntimeError`` — against RabbitMQ 3.10
  exactly as against minibroker.

These tests pin both, so a broker change that makes the experiences diverge shows.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Iterator

import aio_pika
import pytest

from minibroker.testing import broker_in_thread
from tests.compat.conftest import TIMEOUT
from tests.compat.rabbitmqctl import rabbitmqctl, reference_broker

CONNECTION_NAME = "minibroker-lifecycle-test"
CLOSE_TEXT = "closed by the test"
Records = list[tuple[str, str, str]]
Closer = Callable[[], Awaitable[None]]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: Records = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname, record.name, _shape(record.getMessage())))


def _shape(message: str) -> str:
    """A log message without what differs from run to run: addresses, ports, the close text."""
    message = re.sub(r"0x[0-9a-f]+", "0x…", message)
    message = re.sub(r"@[^/\"]+/", "@HOST/", message)
    return message.split("\n", 1)[0]


@pytest.fixture
def captured() -> Iterator[_Capture]:
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def _run(scenario: Awaitable[object]) -> object:
    async def bounded() -> object:
        return await asyncio.wait_for(scenario, TIMEOUT * 4)
    return asyncio.run(bounded())


async def _unclosed_channels_are_released(url: str) -> tuple[int, int]:
    """Open three channels, close only the connection: how many channel objects stay alive."""
    connection = await aio_pika.connect(url, timeout=TIMEOUT)
    channels = [await connection.channel() for _ in range(3)]
    facades = [weakref.ref(channel) for channel in channels]
    inner = [weakref.ref(channel._channel) for channel in channels]  # aiormq's channel
    await connection.close()
    del channels
    await asyncio.sleep(0)  # the turn in which aio-pika's close callbacks run
    gc.collect()
    return (sum(ref() is not None for ref in facades), sum(ref() is not None for ref in inner))


async def _channels_opened_while_the_connection_is_forced_closed(
        url: str, force_close: Closer) -> list[str]:
    """A robust connection with three channels is closed by the broker; five channels are
    opened at once meanwhile. The exception type each opening ends with."""
    # No reconnection within the scenario: on a loaded machine ``rabbitmqctl`` can take longer
    # than aio-pika's default 5 s reconnect interval, and the openings would then land on the
    # reconnected connection instead of the closed one.
    connection = await aio_pika.connect_robust(
        url, timeout=TIMEOUT, reconnect_interval=TIMEOUT * 10,
        client_properties={"connection_name": CONNECTION_NAME})
    try:
        channels = [await connection.channel() for _ in range(3)]
        await channels[0].declare_queue("", exclusive=True)
        seen = asyncio.Event()
        connection.close_callbacks.add(lambda *_: seen.set())
        await force_close()
        # RabbitMQ's ``close_connection`` returns before its connection process has sent the
        # close; on a loaded machine the openings below would then win the race and open on
        # the old connection. Wait until the client has read the close, on both brokers.
        await asyncio.wait_for(seen.wait(), TIMEOUT)

        async def open_one() -> str:
            try:
                channel = await connection.channel()
                await channel.declare_queue("", exclusive=True)
            except Exception as exc:  # the outcome is what this test looks at
                return type(exc).__name__
            return "opened"
        return list(await asyncio.gather(*(open_one() for _ in range(5))))
    finally:
        await connection.close()


#: What aio-pika and aiormq log when the broker closes a robust connection: the close, the
#: reader's end, and one callback error per channel whose close callback ran on the dead
#: connection (how many depends on timing, on either broker).
EXPECTED_LOGS = {
    ("ERROR", "aiormq.connection", "Unexpected connection close from remote"),
    ("WARNING", "aiormq.connection", "Cancelling cause reader exited abnormally"),
    ("ERROR", "aio_pika.tools",
     "Callback <OneShotCallback: cb=<bound method RobustChannel._on_close"),
}


def _experience(url: str, force_close: Closer, captured: _Capture) -> None:
    """The user's experience of both scenarios on the broker at ``url``."""
    assert _run(_unclosed_channels_are_released(url)) == (0, 0)
    outcomes = _run(_channels_opened_while_the_connection_is_forced_closed(url, force_close))
    # The opening fails with the close (or, once aiormq has dropped the connection, with
    # aio-pika's "connection closed"): which one is a race inside the client, on both brokers.
    assert isinstance(outcomes, list)
    assert set(outcomes) <= {"ConnectionClosed", "RuntimeError"}, outcomes
    unexpected = [record for record in captured.records if not any(
        record[:2] == (level, name) and record[2].startswith(prefix)
        for level, name, prefix in EXPECTED_LOGS)]
    assert unexpected == []
    assert any(message.startswith("Unexpected connection close from remote")
               for _, _, message in captured.records), captured.records


def test_minibroker_releases_channels_and_fails_openings_during_a_forced_close(
        captured: _Capture) -> None:
    with broker_in_thread() as broker:
        async def force_close() -> None:
            closed = await asyncio.to_thread(
                broker.close_connection, name=CONNECTION_NAME,
                reply_text=f"CONNECTION_FORCED - {CLOSE_TEXT}")
            assert closed == 1
        _experience(broker.amqp_url, force_close, captured)


@pytest.mark.rabbitmq
def test_rabbitmq_gives_aio_pika_the_same_experience(captured: _Capture) -> None:
    host, port = reference_broker()

    async def force_close() -> None:
        def close() -> None:
            listing = rabbitmqctl("list_connections", "pid", "client_properties")
            pids = [line.split("\t", 1)[0] for line in listing.splitlines()
                    if CONNECTION_NAME in line]
            assert len(pids) == 1, listing
            rabbitmqctl("close_connection", pids[0], CLOSE_TEXT)
        await asyncio.to_thread(close)

    _experience(f"amqp://guest:guest@{host}:{port}/", force_close, captured)
