"""Deliveries as runs (``core/effects.py`` rule 5, ``core/delivery.py`` rule 7): a dispatch to a
queue's only consumer is one ``DeliverRun``, exactly the single deliveries it stands for."""

from __future__ import annotations

import pytest

from minibroker.core.effects import Deliver, DeliverRun, singles
from minibroker.core.fates import Fate
from minibroker.message import Message
from tests.unit.core.helpers import Harness, delivered


def _backlog(harness: Harness, count: int) -> None:
    ch = harness.open()
    ch.declare_queue("q")
    for number in range(count):
        ch.publish("", "q", b"m%d" % number)


def test_a_dispatch_of_n_messages_to_one_consumer_is_one_run_of_n_deliveries() -> None:
    harness = Harness()
    _backlog(harness, 5)
    consumer = harness.open(2)
    consumer.qos(4)
    outcome = consumer.consume("q", consumer_tag="c")
    [run] = outcome.effects
    assert type(run) is DeliverRun
    assert (run.connection, run.channel, run.consumer_tag, run.first_tag) == (2, 1, "c", 1)
    assert run.redelivered == frozenset()
    assert run.deliveries() == [
        Deliver(2, 1, "c", tag, False, Message("", "q", b"m%d" % (tag - 1)))
        for tag in (1, 2, 3, 4)
    ]
    assert singles(outcome.effects) == run.deliveries()
    # An ack frees one delivery: a run of one is a single Deliver.
    assert consumer.ack(2).effects == [Deliver(2, 1, "c", 5, False, Message("", "q", b"m4"))]
    assert harness.broker.queue_statistics("q").unacked == 4


def test_an_observer_hears_of_every_delivery_of_a_run() -> None:
    """A fate observer changes nothing of the runs, and hears a "delivered" fate for each
    delivery of a run, with its tag and redelivered flag (``QueueLifecycle`` reads
    ``effects.singles``)."""
    plain, observed = Harness(), Harness()
    fates: list[Fate] = []
    observed.broker.observer = fates.append
    outcomes = []
    for harness in (plain, observed):
        _backlog(harness, 6)
        consumer = harness.open(2)
        consumer.qos(3)
        outcomes.append([
            consumer.consume("q", consumer_tag="c").effects,
            consumer.recover().effects,  # every one back, redelivered, and out again
            consumer.ack(0, multiple=True).effects,  # the rest
        ])
    runs, observed_runs = outcomes
    assert [[type(effect) for effect in effects] for effects in runs] == [[DeliverRun]] * 3
    assert observed_runs == runs
    assert [(fate.delivery_tag, fate.redelivered, fate.message.body) for fate in fates
            if fate.kind == "delivered"] == [
        (effect.delivery_tag, effect.redelivered, effect.message.body) for effects in runs
        for effect in delivered(effects)
    ]
    assert len([fate for fate in fates if fate.kind == "delivered"]) == 9
    stats = [h.broker.queue_statistics("q") for h in (plain, observed)]
    assert stats[0] == stats[1]


@pytest.mark.parametrize("prefetch", [0, 10])  # the run's two loops (rule 8)
def test_redelivered_messages_of_a_run_carry_their_flag(prefetch: int) -> None:
    harness = Harness()
    _backlog(harness, 2)
    first = harness.open(2)
    first.consume("q", consumer_tag="a")  # m0, m1 out, unacked
    first.cancel("a")
    ch = harness.open(1, 2)
    ch.publish("", "q", b"m2")
    ch.publish("", "q", b"m3")
    first.close()  # m0, m1 back at the head, redelivered
    consumer = harness.open(3)
    consumer.qos(prefetch)
    [run] = consumer.consume("q", consumer_tag="b").effects
    assert type(run) is DeliverRun and run.redelivered == {1, 2}
    assert [(d.delivery_tag, d.redelivered, d.message.body) for d in run.deliveries()] == [
        (1, True, b"m0"), (2, True, b"m1"), (3, False, b"m2"), (4, False, b"m3"),
    ]


def test_a_queue_with_several_consumers_delivers_singly() -> None:
    """One dispatch of three messages, all to ``b`` (``a``'s window is full), is still three
    single deliveries: with two consumers the turns decide, delivery by delivery."""
    harness = Harness()
    _backlog(harness, 4)
    first, second = harness.open(2), harness.open(3)
    first.qos(1)
    first.consume("q", consumer_tag="a")  # m0
    second.qos(5)
    effects = second.consume("q", consumer_tag="b").effects
    assert [type(effect) for effect in effects] == [Deliver] * 3
    assert [(e.consumer_tag, e.delivery_tag, e.message.body) for e in delivered(effects)] == [
        ("b", 1, b"m1"), ("b", 2, b"m2"), ("b", 3, b"m3"),
    ]


def test_a_no_ack_consumer_gets_its_backlog_as_one_run_and_nothing_stays_unacked() -> None:
    harness = Harness()
    _backlog(harness, 3)
    outcome = harness.open(2).consume("q", consumer_tag="c", no_ack=True)
    [run] = outcome.effects
    assert type(run) is DeliverRun and len(run.messages) == 3
    stats = harness.broker.queue_statistics("q")
    assert (stats.ready, stats.unacked) == (0, 0)


@pytest.mark.parametrize("prefetch", [0, 10])  # the run's two loops (rule 8)
def test_a_run_ends_where_the_rest_of_the_queue_has_expired(prefetch: int) -> None:
    """A run takes the live messages ahead of expired ones and stops there: those it took are
    delivered under their tags, the expired one is dropped, and tags go on after the run."""
    from minibroker.message import Properties

    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    for body, expiration in ((b"a", "100000"), (b"b", "100000"), (b"c", "1000")):
        ch.publish("", "q", body, properties=Properties(expiration=expiration))
    harness.now = 2.0  # c has expired; a and b have not
    consumer = harness.open(2)
    consumer.qos(prefetch)
    assert [(d.delivery_tag, d.message.body) for d in delivered(
        consumer.consume("q", consumer_tag="c"))] == [(1, b"a"), (2, b"b")]
    stats = harness.broker.queue_statistics("q")
    assert (stats.ready, stats.unacked) == (0, 2)
    assert [(d.delivery_tag, d.message.body) for d in delivered(ch.publish("", "q", b"d"))] == [
        (3, b"d")]


def test_acks_of_two_queues_in_one_batch_are_counted_in_each() -> None:
    """Acks that settle deliveries of several queues (one channel consuming two) take the
    settlement a delivery at a time (delivery.py rule 9 is for one queue and one consumer):
    each queue counts its acks, each consumer its credit back."""
    from minibroker.core import commands as c

    harness = Harness()
    ch = harness.open()
    for queue in ("q", "r"):
        ch.declare_queue(queue)
        ch.publish("", queue, queue.encode())
    ch.qos(5)
    tags = [d.delivery_tag for name in ("q", "r")
            for d in delivered(ch.consume(name, consumer_tag=name))]
    harness.handle(c.AckMany(1, 1, tuple(tags)))
    for name in ("q", "r"):
        stats = harness.broker.queue_statistics(name)
        assert (stats.unacked, stats.acked) == (0, 1)
    channel = harness.broker.connections[1].channels[1]
    assert channel.consumer_unacked == 0
    assert [consumer.unacked for consumer in channel.consumers.values()] == [0, 0]


@pytest.mark.parametrize("prefetch", [0, 10])  # the run's two loops (rule 8)
def test_a_quorum_queues_run_carries_each_redelivery_count(prefetch: int) -> None:
    """A run from a quorum queue carries ``x-delivery-count`` on the messages delivered
    before, as single deliveries do (``consumers.with_delivery_count``)."""
    from minibroker.core.broker import Broker

    harness = Harness(Broker(rabbitmq="4.2"))
    ch = harness.open()
    ch.declare_queue("qq", durable=True, arguments={"x-queue-type": "quorum"})
    for body in (b"a", b"b", b"c"):
        ch.publish("", "qq", body)
    got = ch.get_ok("qq")
    ch.nack(got.delivery_tag, requeue=True)  # a is back at the head, returned once
    ch.qos(prefetch)
    [run] = ch.consume("qq", consumer_tag="c").effects
    assert type(run) is DeliverRun
    assert [((d.message.properties.headers or {}).get("x-delivery-count"), d.message.body)
            for d in run.deliveries()] == [(1, b"a"), (None, b"b"), (None, b"c")]


@pytest.mark.parametrize("prefetch", [0, 10])  # the run's two loops (rule 8)
def test_a_runs_deliveries_are_timed_from_when_they_were_made(prefetch: int) -> None:
    """The consumer timeout counts from each delivery of a run (``timers.py`` rule 4)."""
    from minibroker.core.timers import overdue_channels

    harness = Harness()
    _backlog(harness, 3)
    harness.now = 100.0
    consumer = harness.open(2)
    consumer.qos(prefetch)
    assert type(consumer.consume("q", consumer_tag="c").effects[0]) is DeliverRun
    connections = harness.broker.connections.values()
    assert overdue_channels(connections, 129.0, 30.0) == []
    assert [ch.number for ch in overdue_channels(connections, 131.0, 30.0)] == [1]


def test_singles_keeps_every_delivery_of_several_runs_and_the_rest() -> None:
    from minibroker.core.effects import Confirm

    one = Deliver(1, 1, "c", 1, False, Message("", "q", b"a"))
    run = DeliverRun(1, 1, "c", 2, (Message("", "q", b"b"), Message("", "q", b"c")),
                     frozenset({3}))
    other = DeliverRun(2, 1, "d", 7, (Message("", "q", b"d"), Message("", "q", b"e")))
    confirm = Confirm(1, 1, 4)
    assert singles([one, run, confirm, other]) == [
        one, *run.deliveries(), confirm, *other.deliveries()]
    assert [d.redelivered for d in run.deliveries()] == [False, True]


@pytest.mark.parametrize("consumers", [1, 2])  # straight to the one; dispatched to the two
def test_a_publishers_runs_deliveries_are_timed_from_the_publish(consumers: int) -> None:
    """A native publisher's run into an empty queue goes to its consumers at once
    (``lifecycle.py`` rule 7); the consumer timeout counts from then."""
    from minibroker.core import commands as c
    from minibroker.core.timers import overdue_channels

    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    for number in range(consumers):
        consumer = harness.open(2, 1 + number)
        consumer.qos(10)
        consumer.consume("q", consumer_tag=f"c{number}")
    harness.now = 100.0
    messages = tuple((Message("", "q", b"m"), False) for _ in range(4))
    assert len(delivered(harness.handle(c.PublishMany(1, 1, messages)))) == 4
    connections = harness.broker.connections.values()
    assert overdue_channels(connections, 129.0, 30.0) == []
    assert len(overdue_channels(connections, 131.0, 30.0)) == consumers
