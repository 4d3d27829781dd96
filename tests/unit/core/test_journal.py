"""The durable journal: which facts a broker with a journal records, and how confirms and
``tx.commit-ok`` wait for ``Synced`` (``core/journal.py``)."""

from __future__ import annotations

import pytest

from minibroker.core import commands as c
from minibroker.core import journal as j
from minibroker.core.broker import Broker
from minibroker.core.effects import Confirm, Effect
from minibroker.core.journal import Journal
from minibroker.message import Message, Properties
from tests.unit.core.helpers import Chan, Harness

PERSISTENT = Properties(delivery_mode=2)


@pytest.fixture
def harness() -> Harness:
    return Harness(Broker(journal=Journal()))


def journal_of(harness: Harness) -> Journal:
    journal = harness.broker.journal
    assert journal is not None
    return journal


def ops(harness: Harness) -> list[tuple[object, ...]]:
    """The intents recorded since the last call, without the message objects."""
    return [tuple(item for item in intent if not isinstance(item, Message))
            for intent in journal_of(harness).drain()]


def confirms(effects: list[Effect]) -> list[tuple[int, bool, bool]]:
    return [(e.delivery_tag, e.multiple, e.ack) for e in effects if isinstance(e, Confirm)]


def synced(harness: Harness) -> list[Effect]:
    return harness.handle(c.Synced(journal_of(harness).count)).effects


# -- what is recorded ---------------------------------------------------------------------------

def test_persistent_messages_in_durable_queues_and_their_fate_are_recorded(
        harness: Harness, ch: Chan) -> None:
    ch.declare_queue("d", durable=True)
    ch.declare_queue("t")  # not durable
    ch.declare_queue("x", durable=True, exclusive=True)
    ch.declare_exchange("fan", "fanout", durable=True)
    for queue in ("d", "t", "x"):
        ch.bind(queue, "fan")
    assert ops(harness)[0][0] == j.DECLARE_QUEUE
    ch.publish("fan", "", b"p", properties=PERSISTENT)
    ch.publish("fan", "", b"transient")
    assert ops(harness) == [(j.PUBLISH, "d", 1, None)]
    got = ch.get_ok("d")
    ch.reject(got.delivery_tag, requeue=True)
    got = ch.get_ok("d")
    ch.ack(got.delivery_tag)
    assert ops(harness) == [(j.REQUEUE, "d", 1, 1), (j.SETTLE, "d", 1)]
    ch.publish("", "d", b"a", properties=PERSISTENT)
    ch.publish("", "d", b"b", properties=PERSISTENT)
    assert ch.purge("d") == 3  # the transient one is not recorded
    assert [op for op in ops(harness) if op[0] == j.SETTLE] == [
        (j.SETTLE, "d", 3), (j.SETTLE, "d", 4)]
    ch.delete_queue("d")
    ch.delete_exchange("fan")
    assert ops(harness) == [(j.DELETE_QUEUE, "d"), (j.DELETE_EXCHANGE, "fan")]


def test_only_bindings_between_durable_objects_are_recorded(harness: Harness, ch: Chan) -> None:
    ch.declare_exchange("dx", "direct", durable=True)
    ch.declare_exchange("tx", "direct")
    ch.declare_queue("dq", durable=True)
    ch.declare_queue("tq")
    journal_of(harness).drain()
    ch.bind("dq", "dx", "k")
    ch.bind("tq", "dx", "k")
    ch.bind("dq", "tx", "k")
    ch.bind("dq", "amq.topic", "a.#")
    ch.bind_exchange("dx", "amq.direct", "r")
    assert ops(harness) == [
        (j.BIND, "dx", "queue", "dq", "k", {}),
        (j.BIND, "amq.topic", "queue", "dq", "a.#", {}),
        (j.BIND, "amq.direct", "exchange", "dx", "r", {}),
    ]
    ch.unbind("dq", "dx", "k")
    assert ops(harness) == [(j.UNBIND, "dx", "queue", "dq", "k", {})]


def test_expired_and_dead_lettered_messages_are_settled_where_they_leave(
        harness: Harness, ch: Chan) -> None:
    ch.declare_queue("dlq", durable=True)
    ch.declare_queue("q", durable=True, arguments={
        "x-message-ttl": 100, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"})
    journal_of(harness).drain()
    ch.publish("", "q", b"m", properties=PERSISTENT)
    intents = journal_of(harness).drain()
    assert intents[0][:3] == (j.PUBLISH, "q", 1) and intents[0][4] == pytest.approx(0.1)
    harness.now = 0.2
    harness.broker.handle_timeout(now=0.2)
    assert ops(harness) == [(j.SETTLE, "q", 1), (j.PUBLISH, "dlq", 1, None)]


def test_a_broker_without_a_journal_records_nothing_and_confirms_at_once() -> None:
    harness = Harness()
    ch = harness.open()
    ch.confirm_select()
    ch.declare_queue("d", durable=True)
    outcome = ch.publish("", "d", b"p", properties=PERSISTENT)
    assert harness.broker.journal is None
    assert confirms(outcome.effects) == [(1, False, True)]


# -- confirms wait for the disk, in order -------------------------------------------------------

def test_a_persistent_publish_is_confirmed_only_once_synced(harness: Harness, ch: Chan) -> None:
    ch.confirm_select()
    ch.declare_queue("d", durable=True)
    ch.declare_queue("t")
    assert confirms(ch.publish("", "t", b"transient").effects) == [(1, False, True)]
    assert confirms(ch.publish("", "d", b"p", properties=PERSISTENT).effects) == []
    # A later transient publish waits behind it: a confirm never overtakes an earlier one.
    assert confirms(ch.publish("", "t", b"after").effects) == []
    assert confirms(ch.publish("", "d", b"p2", properties=PERSISTENT).effects) == []
    partial = harness.handle(c.Synced(journal_of(harness).count - 1)).effects
    assert confirms(partial) == [(3, True, True)]  # 2 and 3, as one multiple ack
    assert confirms(synced(harness)) == [(4, True, True)]
    assert confirms(synced(harness)) == []  # nothing twice
    assert confirms(ch.publish("", "t", b"free again").effects) == [(5, False, True)]


def test_a_nack_keeps_its_place_among_released_acks(harness: Harness, ch: Chan) -> None:
    ch.confirm_select()
    ch.declare_queue("d", durable=True, arguments={"x-max-length": 1,
                                                    "x-overflow": "reject-publish"})
    ch.publish("", "d", b"1", properties=PERSISTENT)
    outcome = ch.publish("", "d", b"2", properties=PERSISTENT)  # refused: a nack, held
    assert confirms(outcome.effects) == []
    ch.get_ok("d", no_ack=True)
    ch.publish("", "d", b"3", properties=PERSISTENT)
    assert confirms(synced(harness)) == [(1, True, True), (2, False, False), (3, True, True)]


def test_a_batch_is_one_multiple_ack_and_a_closed_channel_loses_its_held_confirms(
        harness: Harness, ch: Chan) -> None:
    ch.confirm_select()
    ch.declare_queue("d", durable=True)
    message = Message("", "d", b"x", PERSISTENT)
    outcome = harness.handle(c.PublishMany(1, 1, ((message, False),) * 3))
    assert confirms(outcome.effects) == []
    other = harness.open(1, 2)
    other.confirm_select()
    other.publish("", "d", b"y", properties=PERSISTENT)
    ch.close()
    assert [(e.channel, e.delivery_tag, e.multiple) for e in synced(harness)] == [(2, 1, True)]


def test_tx_commit_waits_for_what_it_recorded(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("d", durable=True)
    ch.declare_queue("t")
    ch.tx_select()
    ch.publish("", "t", b"transient")
    assert ch.tx_commit().durable_at == 0
    ch.publish("", "d", b"p", properties=PERSISTENT)
    outcome = ch.tx_commit()
    assert outcome.durable_at == journal_of(harness).count > 0
