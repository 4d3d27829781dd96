"""Streams in a broker with a journal (a data directory): appends are numbered so their
confirms wait for ``Synced``, the stream's definition is recorded, and a log the shell injects
(``Streams.make_log``) holds the messages (``core/streamlog.py`` rule 7)."""

from __future__ import annotations

from minibroker.core import commands as c
from minibroker.core import journal as j
from minibroker.core.broker import Broker
from minibroker.core.effects import Confirm, Deliver, Effect
from minibroker.core.journal import Journal
from minibroker.core.streamargs import StreamLimits
from minibroker.core.streamlog import Log, StreamLog
from tests.unit.core.helpers import Harness

STREAM = {"x-queue-type": "stream"}


def confirms(effects: list[Effect]) -> list[tuple[int, bool, bool]]:
    return [(e.delivery_tag, e.multiple, e.ack) for e in effects if isinstance(e, Confirm)]


def test_a_stream_append_is_confirmed_only_once_synced() -> None:
    journal = Journal()
    harness = Harness(Broker(journal=journal))
    ch = harness.open()
    ch.confirm_select()
    ch.declare_queue("events", durable=True, arguments=STREAM)
    declared = journal.drain()
    assert [op[0] for op in declared] == [j.DECLARE_QUEUE]
    assert confirms(ch.publish("", "events", b"a").effects) == []
    assert confirms(ch.publish("", "events", b"b").effects) == []
    assert journal.drain() == [(j.STREAM_APPEND, "events")]  # two appends, one intent
    assert confirms(harness.handle(c.Synced(journal.count - 1)).effects) == [(1, True, True)]
    assert confirms(harness.handle(c.Synced(journal.count)).effects) == [(2, True, True)]
    ch.delete_queue("events")
    assert journal.drain() == [(j.DELETE_QUEUE, "events")]


def test_without_a_journal_a_stream_append_is_confirmed_at_once() -> None:
    harness = Harness(Broker())
    ch = harness.open()
    ch.confirm_select()
    ch.declare_queue("events", durable=True, arguments=STREAM)
    assert confirms(ch.publish("", "events", b"a").effects) == [(1, False, True)]


class Unmetered(StreamLog):
    """An injected log: the in-memory one, saying its messages are kept elsewhere."""

    metered = False


def test_the_injected_factory_makes_the_logs_and_an_unmetered_log_leaves_the_meter() -> None:
    broker = Broker()
    made: list[str] = []

    def make_log(name: str, limits: StreamLimits) -> Log:
        made.append(name)
        return Unmetered(limits)

    broker.lifecycle.streams.make_log = make_log
    harness = Harness(broker)
    ch = harness.open()
    ch.declare_queue("events", durable=True, arguments=STREAM)
    before = broker.state.meter.weight
    ch.publish("", "events", b"x" * 1000)
    assert made == ["events"]
    assert broker.state.meter.weight == before  # the messages are not in memory
    ch.qos(10)
    outcome = ch.consume("events", arguments={"x-stream-offset": "first"})
    assert [e.message.body for e in outcome.effects if isinstance(e, Deliver)] == [b"x" * 1000]
