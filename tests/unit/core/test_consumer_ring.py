"""Consumer dispatch: round-robin order, priorities and the cost of adding, removing and finding
a consumer with credit (``core/consumers.py``).

Costs are asserted as operation counts (``has_credit`` calls per consumer), never as time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibroker.core import commands as c
from minibroker.core.channels import BrokerConsumer
from minibroker.core.effects import Outcome
from tests.unit.core.helpers import Chan, Harness, delivered


@pytest.fixture
def credit_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts ``has_credit`` calls per consumer tag."""
    calls: Counter[str] = Counter()
    original = BrokerConsumer.has_credit

    def counting(self: BrokerConsumer) -> bool:
        calls[self.consumer_tag] += 1
        return original(self)

    monkeypatch.setattr(BrokerConsumer, "has_credit", counting)
    yield calls


def subscribe(ch: Chan, *tags: str) -> None:
    """Declare queue "q" and subscribe no-ack consumers ``tags`` to it, in that order."""
    ch.declare_queue("q")
    for tag in tags:
        ch.consume("q", tag, no_ack=True)


def turns(ch: Chan, publishes: int) -> list[str]:
    """The consumers that get ``publishes`` messages published one at a time to "q"."""
    return [d.consumer_tag for _ in range(publishes)
            for d in delivered(ch.publish("", "q", b"m"))]


def busy_queue(consumers: int) -> tuple[Harness, Chan]:
    """A queue with ``consumers`` consumers of prefetch 1, each holding one delivery, and a
    backlog of messages waiting."""
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    ch.qos(1)
    for number in range(consumers):
        ch.consume("q", f"c{number}")
    for _ in range(consumers + 10):
        ch.publish("", "q", b"m")
    assert harness.broker.queue_statistics("q").ready == 10
    return harness, ch


@pytest.mark.parametrize("existing", [10, 1000])
def test_adding_a_consumer_to_a_busy_queue_looks_at_no_other_consumer(
    existing: int, credit_checks: Counter[str]
) -> None:
    _, ch = busy_queue(existing)
    credit_checks.clear()
    out = ch.consume("q", "new")
    assert [d.consumer_tag for d in delivered(out)] == ["new"]
    # The newcomer is asked twice (it takes one message, then is found full); nobody else is.
    assert credit_checks == Counter({"new": 2})


@pytest.mark.parametrize("existing", [10, 1000])
def test_cancelling_and_acking_look_at_one_consumer(
    existing: int, credit_checks: Counter[str]
) -> None:
    _, ch = busy_queue(existing)
    ch.cancel("c5")
    ch.cancel(f"c{existing - 1}")
    credit_checks.clear()
    out = ch.ack(7)  # c6's delivery: c6 takes the next message
    assert [d.consumer_tag for d in delivered(out)] == ["c6"]
    assert credit_checks == Counter({"c6": 2})


def test_the_turn_passes_to_the_next_consumer_when_its_owner_cancels(ch: Chan) -> None:
    """The consumer whose turn it was unsubscribes: the one after it is next, not the one after
    that (nor the first)."""
    subscribe(ch, "a", "b", "c", "d")
    assert turns(ch, 1) == ["a"]
    ch.cancel("b")  # its turn
    assert turns(ch, 4) == ["c", "d", "a", "c"]


def test_cancelling_a_consumer_before_the_turn_keeps_the_turn(ch: Chan) -> None:
    subscribe(ch, "a", "b", "c")
    assert turns(ch, 1) == ["a"]
    ch.cancel("a")  # the turn is b's, and stays b's
    assert turns(ch, 3) == ["b", "c", "b"]


def test_the_last_consumer_served_wraps_the_turn_before_a_newcomer(ch: Chan) -> None:
    subscribe(ch, "a", "b")
    assert turns(ch, 2) == ["a", "b"]
    ch.consume("q", "c", no_ack=True)  # joins at the end: a's turn first
    assert turns(ch, 4) == ["a", "b", "c", "a"]


def test_a_turn_past_the_last_consumer_wraps_before_a_newcomer_joins(ch: Chan) -> None:
    subscribe(ch, "a", "b", "c")
    assert turns(ch, 2) == ["a", "b"]
    ch.cancel("c")  # its turn, and the last: the turn wraps to a
    ch.consume("q", "d", no_ack=True)
    assert turns(ch, 4) == ["a", "b", "d", "a"]


def test_consumer_churn_on_an_idle_queue_keeps_the_ring_bounded(
    harness: Harness, ch: Chan
) -> None:
    ch.declare_queue("q")
    ch.consume("q", "stays")
    for number in range(5000):
        ch.consume("q", f"c{number}")
        ch.cancel(f"c{number}")
    ring = harness.broker.topology.queues["q"].consumers
    assert len(ring) == 1 and ring.waiting <= 64


# -- the order, against a reference ------------------------------------------------------------


@dataclass
class ReferenceLevel:
    """Round-robin as a list and an index, the way the broker did it before the ring."""

    tags: list[str] = field(default_factory=list)
    index: int = 0


@dataclass
class Reference:
    """Expected deliveries: priorities high to low, round-robin within a priority, skipping
    consumers without credit; the index moves down when a consumer before it leaves."""

    levels: dict[int, ReferenceLevel] = field(default_factory=dict)
    priority: dict[str, int] = field(default_factory=dict)
    prefetch: dict[str, int] = field(default_factory=dict)
    held: Counter[str] = field(default_factory=Counter)
    ready: int = 0

    def add(self, tag: str, priority: int, prefetch: int) -> None:
        self.levels.setdefault(priority, ReferenceLevel()).tags.append(tag)
        self.priority[tag], self.prefetch[tag] = priority, prefetch

    def remove(self, tag: str) -> None:
        level = self.levels[self.priority.pop(tag)]
        index = level.tags.index(tag)
        del level.tags[index]
        if index < level.index:
            level.index -= 1
        if level.index >= len(level.tags):
            level.index = 0

    def dispatch(self) -> list[str]:
        out: list[str] = []
        while self.ready:
            tag = self._pick()
            if tag is None:
                break
            self.ready -= 1
            self.held[tag] += 1
            out.append(tag)
        return out

    def _pick(self) -> str | None:
        for priority in sorted(self.levels, reverse=True):
            level = self.levels[priority]
            count = len(level.tags)
            for step in range(count):
                index = (level.index + step) % count
                tag = level.tags[index]
                if self.held[tag] < self.prefetch[tag]:
                    level.index = (index + 1) % count
                    return tag
        return None


#: A no-ack consumer's window, as far as the reference is concerned.
NO_ACK = 1_000_000

#: ("consume", priority, prefetch; 0 = no-ack), ("cancel", which, _), ("publish", how many, _),
#: ("ack", which, _).
operations = st.lists(st.one_of(
    st.tuples(st.just("consume"), st.sampled_from([0, 0, 0, 5, 9]), st.integers(0, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 30), st.just(0)),
    st.tuples(st.just("publish"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("ack"), st.integers(0, 30), st.just(0)),
), max_size=60)


@given(operations)
def test_dispatch_order_matches_the_reference_round_robin(
    steps: list[tuple[str, int, int]]
) -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    reference = Reference()
    live: list[str] = []
    # Deliveries not yet acked, oldest first: (delivery tag, consumer tag).
    unacked: list[tuple[int, str]] = []
    created = 0

    def check(out_tags: list[tuple[int, str]], expected: list[str]) -> None:
        assert [tag for _, tag in out_tags] == expected
        for delivery_tag, tag in out_tags:
            if reference.prefetch[tag] == NO_ACK:
                reference.held[tag] -= 1  # acknowledged on sending
            else:
                unacked.append((delivery_tag, tag))

    for kind, a, b in steps:
        if kind == "consume":
            tag = f"c{created}"
            created += 1
            ch.qos(b)
            out = ch.consume("q", tag, no_ack=not b, arguments={"x-priority": a} if a else None)
            reference.add(tag, a, b or NO_ACK)
            live.append(tag)
        elif kind == "cancel":
            if not live:
                continue
            tag = live.pop(a % len(live))
            out = ch.cancel(tag)
            reference.remove(tag)
        elif kind == "publish":
            expected: list[str] = []
            for _ in range(a):
                out = ch.publish("", "q", b"m")
                reference.ready += 1
                got = [(d.delivery_tag, d.consumer_tag) for d in delivered(out)]
                want = reference.dispatch()
                check(got, want)
                expected.extend(want)
            continue
        else:
            if not unacked:
                continue
            delivery_tag, tag = unacked.pop(a % len(unacked))
            out = ch.ack(delivery_tag)
            reference.held[tag] -= 1
        check([(d.delivery_tag, d.consumer_tag) for d in delivered(out)], reference.dispatch())
    assert harness.broker.queue_statistics("q").ready == reference.ready


# -- a parked consumer is woken by whatever gives its credit back ------------------------------


def tags_of(outcome: Outcome) -> list[str]:
    return [d.consumer_tag for d in delivered(outcome)]


def test_a_consumer_parked_on_a_full_socket_is_woken_when_it_drains(harness: Harness) -> None:
    first, second = harness.open(1, 1), harness.open(2, 1)
    subscribe(first, "a")
    second.consume("q", "b", no_ack=True)
    harness.handle(c.SetWritable(1, False))
    assert turns(first, 3) == ["b", "b", "b"]  # a is parked
    harness.handle(c.SetWritable(2, False))
    assert turns(first, 2) == []
    assert tags_of(harness.handle(c.SetWritable(1, True))) == ["a", "a"]


def test_consumers_parked_on_a_channel_prefetch_are_woken_by_any_ack_of_the_channel(
    ch: Chan
) -> None:
    ch.declare_queue("q1")
    ch.declare_queue("q2")
    ch.qos(1, global_=True)
    ch.consume("q1", "one")
    ch.consume("q2", "two")
    assert tags_of(ch.publish("", "q1", b"m")) == ["one"]
    assert tags_of(ch.publish("", "q2", b"m")) == []  # "two" is parked: the channel is full
    assert tags_of(ch.ack(1)) == ["two"]


def test_consumers_parked_on_a_channel_prefetch_are_woken_by_a_larger_prefetch(
    ch: Chan
) -> None:
    ch.declare_queue("q")
    ch.qos(1, global_=True)
    ch.consume("q", "a")
    ch.consume("q", "b")
    assert turns(ch, 3) == ["a"]
    assert tags_of(ch.qos(3, global_=True)) == ["b", "a"]


def test_a_consumer_parked_on_its_prefetch_is_woken_by_a_requeue(ch: Chan) -> None:
    ch.declare_queue("q")
    ch.qos(1)
    ch.consume("q", "a")
    ch.consume("q", "b")
    assert turns(ch, 3) == ["a", "b"]
    out = ch.nack(1, requeue=True)  # a's message goes back, ahead of the waiting one
    assert [(d.consumer_tag, d.redelivered) for d in delivered(out)] == [("a", True)]


def test_a_consumer_woken_behind_the_turn_waits_for_the_next_round(ch: Chan) -> None:
    ch.declare_queue("q")
    for tag, prefetch in (("a", 1), ("b", 2), ("c", 1)):
        ch.qos(prefetch)
        ch.consume("q", tag)
    assert turns(ch, 5) == ["a", "b", "c", "b"]  # then everyone is full; the turn is c's
    assert tags_of(ch.ack(3, multiple=True)) == ["c"]  # a, b and c have credit again
    assert turns(ch, 2) == ["a", "b"]
