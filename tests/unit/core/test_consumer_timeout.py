"""Consumer timeout in the core (``core/timers.py`` rule 4): which channels are overdue is a
pure function of the broker's state and ``now``."""

from __future__ import annotations

from minibroker.core.timers import overdue_channels

from .helpers import Chan, Harness

TIMEOUT = 30.0


def overdue(harness: Harness) -> list[tuple[int, int]]:
    return [(channel.connection.id, channel.number) for channel in
            overdue_channels(harness.broker.connections.values(), harness.now, TIMEOUT)]


def test_the_oldest_unacked_delivery_decides() -> None:
    harness = Harness()
    ch: Chan = harness.open()
    ch.declare_queue("q")
    for body in (b"1", b"2"):
        ch.publish("", "q", body)
    first = ch.get_ok("q").delivery_tag  # at 0 s
    harness.now = 20.0
    ch.consume("q")  # the second one, at 20 s
    harness.now = 30.0
    assert overdue(harness) == []  # exactly the timeout is not over it
    harness.now = 30.5
    assert overdue(harness) == [(1, 1)]
    ch.ack(first)  # now the oldest is 20 s old
    assert overdue(harness) == []
    harness.now = 50.5
    assert overdue(harness) == [(1, 1)]


def test_no_ack_deliveries_and_idle_channels_never_time_out() -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    ch.publish("", "q", b"x")
    ch.consume("q", no_ack=True)
    harness.open(connection=2)
    harness.now = 10 * TIMEOUT
    assert overdue(harness) == []


def test_a_requeued_message_delivered_again_starts_a_new_wait() -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    ch.publish("", "q", b"x")
    tag = ch.get_ok("q").delivery_tag
    harness.now = 25.0
    ch.nack(tag)  # back to the queue
    ch.get_ok("q")  # delivered again at 25 s
    harness.now = 40.0
    assert overdue(harness) == []
    harness.now = 56.0
    assert overdue(harness) == [(1, 1)]
