"""The fate observer: every step of a message's life is reported, in order."""

from minibroker.core.fates import Fate
from tests.unit.core.helpers import Harness


def _recording(harness: Harness) -> list[Fate]:
    fates: list[Fate] = []
    harness.broker.observer = fates.append
    return fates


def _kinds(fates: list[Fate]) -> list[tuple[str, str | None]]:
    return [(fate.kind, fate.queue) for fate in fates]


def test_publish_deliver_nack_requeue_ack_is_reported_step_by_step() -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    fates = _recording(harness)
    ch.consume("q", consumer_tag="c1")
    ch.publish("", "q", b"m")
    ch.nack(1, requeue=True)
    ch.ack(2)
    assert _kinds(fates) == [
        ("routed", None), ("delivered", "q"), ("nacked", "q"), ("delivered", "q"), ("acked", "q"),
    ]
    routed, first, nacked, second, _ = fates
    assert routed.queues == ("q",)
    assert first.consumer_tag == "c1" and first.delivery_tag == 1 and not first.redelivered
    assert nacked.requeue
    assert second.redelivered and second.delivery_tag == 2
    assert len({id(fate.message) for fate in fates}) == 1  # one publish, followed by identity


def test_unroutable_mandatory_is_routed_nowhere_then_returned() -> None:
    harness = Harness()
    ch = harness.open()
    fates = _recording(harness)
    ch.publish("amq.direct", "nowhere", b"m", mandatory=True)
    assert _kinds(fates) == [("routed", None), ("returned", None)]
    assert fates[0].queues == ()


def test_get_reject_purge_delete_and_close_are_reported() -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    for body in (b"1", b"2", b"3", b"4"):
        ch.publish("", "q", body)
    fates = _recording(harness)
    ch.get_ok("q", no_ack=True)
    ch.get_ok("q")
    ch.reject(2, requeue=False)
    ch.get_ok("q")
    ch.purge("q")
    ch.close()
    assert [(fate.kind, fate.message.body) for fate in fates] == [
        ("delivered", b"1"), ("delivered", b"2"), ("rejected", b"2"), ("delivered", b"3"),
        ("purged", b"4"), ("requeued", b"3"),
    ]
    assert fates[0].no_ack and not fates[1].no_ack
    assert fates[-1].reason == "channel closed"
    ch2 = harness.open(channel=2)
    ch2.delete_queue("q")
    assert (fates[-1].kind, fates[-1].message.body) == ("deleted", b"3")


def test_without_an_observer_nothing_is_recorded_and_nothing_breaks() -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    ch.consume("q")
    ch.publish("", "q", b"m")
    ch.ack(1)
    assert harness.broker.observer is None
    assert harness.broker.statistics().acked == 1
