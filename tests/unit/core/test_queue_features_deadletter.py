"""Dead-lettering: reasons, the x-death header, routing keys, cycles, fates."""

from __future__ import annotations

import datetime

import pytest

from minibroker.core.broker import Broker
from minibroker.core.fates import Fate
from minibroker.message import FieldTable, Message, Properties
from tests.unit.core.helpers import Chan, Harness

EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture
def harness() -> Harness:
    # The shell supplies now -> wall seconds; here now 0 is 2024-01-01.
    return Harness(Broker(wall_time=lambda now: EPOCH.timestamp() + now))


@pytest.fixture
def ch(harness: Harness) -> Chan:
    return harness.open()


def dlx_args(routing_key: str | None = None, extra: FieldTable | None = None) -> FieldTable:
    args: FieldTable = {"x-dead-letter-exchange": "dlx"}
    if routing_key is not None:
        args["x-dead-letter-routing-key"] = routing_key
    args.update(extra or {})
    return args


def setup_dlx(ch: Chan) -> None:
    ch.declare_exchange("dlx", "fanout")
    ch.declare_queue("dead")
    ch.bind("dead", "dlx")


def take(ch: Chan, queue: str) -> Message:
    return ch.get_ok(queue, no_ack=True).message


def test_reject_without_requeue_dead_letters_with_x_death(harness: Harness, ch: Chan) -> None:
    setup_dlx(ch)
    ch.declare_queue("q", arguments=dlx_args())
    ch.publish("", "q", b"m", properties=Properties(headers={"CC": ["cc-key"]},
                                                  expiration="60000"))
    harness.now = 2.0
    ch.reject(ch.get_ok("q").delivery_tag, requeue=False)
    message = take(ch, "dead")
    assert message.body == b"m" and message.exchange == "dlx" and message.routing_key == "q"
    headers = message.properties.headers
    assert headers is not None
    assert headers["x-death"] == [{
        "count": 1, "reason": "rejected", "queue": "q", "exchange": "",
        "time": EPOCH + datetime.timedelta(seconds=2), "routing-keys": ["q", "cc-key"],
        "original-expiration": "60000",
    }]
    assert (headers["x-first-death-reason"], headers["x-first-death-queue"],
            headers["x-first-death-exchange"]) == ("rejected", "q", "")
    assert headers["CC"] == ["cc-key"]  # no DLRK: the CC header stays
    assert message.properties.expiration is None


def test_the_body_is_reused_not_copied(harness: Harness, ch: Chan) -> None:
    setup_dlx(ch)
    ch.declare_queue("q", arguments=dlx_args())
    body = bytes(1000)
    ch.publish("", "q", body)
    ch.nack(ch.get_ok("q").delivery_tag, requeue=False)
    assert take(ch, "dead").body is body


def test_dead_letter_routing_key_replaces_keys_and_drops_cc(harness: Harness, ch: Chan) -> None:
    ch.declare_exchange("dlx", "direct")
    ch.declare_queue("by-key")
    ch.bind("by-key", "dlx", "dl-key")
    ch.declare_queue("q", arguments=dlx_args("dl-key"))
    ch.publish("", "q", b"m", properties=Properties(headers={"CC": ["x"]}))
    ch.nack(ch.get_ok("q").delivery_tag, requeue=False)
    message = take(ch, "by-key")
    assert message.routing_key == "dl-key"
    assert message.properties.headers is not None and "CC" not in message.properties.headers


def test_dead_letter_to_the_default_exchange(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("target")
    ch.declare_queue("q", arguments={"x-dead-letter-exchange": "",
                                      "x-dead-letter-routing-key": "target",
                                      "x-message-ttl": 10})
    ch.publish("", "q", b"m")
    harness.broker.handle_timeout(now=1.0)
    headers = take(ch, "target").properties.headers
    assert headers is not None
    death = headers["x-death"]
    assert isinstance(death, list) and isinstance(death[0], dict)
    assert death[0]["reason"] == "expired"


def test_repeated_death_increments_count_and_moves_to_front(
    harness: Harness, ch: Chan
) -> None:
    # a rejects to b; b expires back to a (RabbitMQ's observed x-death after two rounds).
    ch.declare_queue("a", arguments={"x-dead-letter-exchange": "",
                                      "x-dead-letter-routing-key": "b"})
    ch.declare_queue("b", arguments={"x-dead-letter-exchange": "",
                                      "x-dead-letter-routing-key": "a", "x-message-ttl": 50})
    ch.publish("", "a", b"m")
    for _ in range(2):
        ch.reject(ch.get_ok("a").delivery_tag, requeue=False)
        harness.now += 1.0
        harness.broker.handle_timeout(now=harness.now)
    headers = ch.get_ok("a").message.properties.headers
    assert headers is not None
    deaths = headers["x-death"]
    assert isinstance(deaths, list)
    assert [(d["queue"], d["reason"], d["count"]) for d in deaths if isinstance(d, dict)] == [
        ("b", "expired", 2), ("a", "rejected", 2)]


def test_fully_automatic_cycle_is_dropped(harness: Harness, ch: Chan) -> None:
    fates: list[Fate] = []
    harness.broker.observer = fates.append
    ch.declare_queue("self", arguments={"x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": "self",
                                         "x-message-ttl": 10})
    ch.publish("", "self", b"m")
    harness.broker.handle_timeout(now=1.0)
    assert ch.declare_queue("self", passive=True).message_count == 0
    assert harness.broker.next_deadline() is None
    assert [f.kind for f in fates][-3:] == ["expired", "dead-lettered", "routed"]
    assert fates[-1].queues == ()


def test_rejection_in_the_cycle_lets_it_go_round(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("self", arguments={"x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": "self"})
    ch.publish("", "self", b"m")
    for _ in range(3):
        ch.reject(ch.get_ok("self").delivery_tag, requeue=False)
    headers = ch.get_ok("self").message.properties.headers
    assert headers is not None
    deaths = headers["x-death"]
    assert isinstance(deaths, list) and isinstance(deaths[0], dict)
    assert deaths[0]["count"] == 3


def test_missing_dead_letter_exchange_drops(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-dead-letter-exchange": "nowhere"})
    ch.publish("", "q", b"m")
    fates: list[Fate] = []
    harness.broker.observer = fates.append
    ch.reject(ch.get_ok("q").delivery_tag, requeue=False)
    assert ch.declare_queue("q", passive=True).message_count == 0
    assert "dead-lettered" not in [fate.kind for fate in fates]  # dropped, not re-published


def test_requeue_does_not_dead_letter(harness: Harness, ch: Chan) -> None:
    setup_dlx(ch)
    ch.declare_queue("q", arguments=dlx_args())
    ch.publish("", "q", b"m")
    ch.reject(ch.get_ok("q").delivery_tag, requeue=True)
    assert ch.declare_queue("dead", passive=True).message_count == 0
    assert ch.get_ok("q").redelivered


def test_dead_lettered_message_is_delivered_to_a_consumer(harness: Harness, ch: Chan) -> None:
    setup_dlx(ch)
    ch.declare_queue("q", arguments=dlx_args(extra={"x-message-ttl": 100}))
    consumer = harness.open(2)
    consumer.consume("dead", "c", no_ack=True)
    ch.publish("", "q", b"m")
    effects = harness.broker.handle_timeout(now=0.1)
    assert [(e.consumer_tag, e.message.body) for e in effects] == [("c", b"m")]  # type: ignore[union-attr]


# -- length limits --------------------------------------------------------------------------------

def test_max_length_drop_head_keeps_the_newest(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-max-length": 2})
    for body in (b"1", b"2", b"3", b"4"):
        ch.publish("", "q", body)
    assert [take(ch, "q").body for _ in range(2)] == [b"3", b"4"]


def test_max_length_counts_ready_messages_only(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-max-length": 2})
    ch.publish("", "q", b"1")
    ch.get_ok("q")  # unacked: not counted (RabbitMQ)
    for body in (b"2", b"3", b"4"):
        ch.publish("", "q", body)
    assert [take(ch, "q").body for _ in range(2)] == [b"3", b"4"]


def test_max_length_drop_head_dead_letters_with_maxlen(harness: Harness, ch: Chan) -> None:
    setup_dlx(ch)
    ch.declare_queue("q", arguments=dlx_args(extra={"x-max-length": 1}))
    ch.publish("", "q", b"1")
    ch.publish("", "q", b"2")
    headers = take(ch, "dead").properties.headers
    assert headers is not None and headers["x-first-death-reason"] == "maxlen"


def test_max_length_bytes_counts_bodies(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-max-length-bytes": 10})
    for body in (b"aaaa", b"bbbb", b"cccc"):
        ch.publish("", "q", body)
    assert ch.declare_queue("q", passive=True).message_count == 2
    assert take(ch, "q").body == b"bbbb"


def test_reject_publish_nacks_the_newest(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    ch.confirm_select()
    confirms = []
    for body in (b"1", b"2", b"3", b"4"):
        (confirm,) = ch.publish("", "q", body).effects
        confirms.append("ack" if confirm.ack else "nack")  # type: ignore[union-attr]
    assert confirms == ["ack", "ack", "nack", "nack"]
    assert [take(ch, "q").body for _ in range(2)] == [b"1", b"2"]


def test_reject_publish_dlx_dead_letters_the_refused(harness: Harness, ch: Chan) -> None:
    setup_dlx(ch)
    ch.declare_queue("q", arguments=dlx_args(extra={"x-max-length": 1}) | {
        "x-overflow": "reject-publish-dlx"})
    ch.publish("", "q", b"1")
    ch.publish("", "q", b"2")
    message = take(ch, "dead")
    assert message.body == b"2"
    assert message.properties.headers is not None
    assert message.properties.headers["x-first-death-reason"] == "maxlen"


def test_dropped_fate_without_dead_letter_exchange(harness: Harness, ch: Chan) -> None:
    fates: list[Fate] = []
    harness.broker.observer = fates.append
    ch.declare_queue("q", arguments={"x-max-length": 1})
    ch.publish("", "q", b"1")
    ch.publish("", "q", b"2")
    assert [(f.kind, f.message.body, f.reason) for f in fates if f.kind == "dropped"] == [
        ("dropped", b"1", "maxlen")]


# -- priorities ----------------------------------------------------------------------

def test_priority_order_fifo_within_priority_and_max_caps(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-max-priority": 5})
    for body, priority in ((b"1", 1), (b"9", 9), (b"3", 3), (b"0", 0), (b"none", None),
                           (b"7", 7)):
        ch.publish("", "q", body, properties=Properties(priority=priority))
    # 9 and 7 are both treated as 5: FIFO between them.
    assert [take(ch, "q").body for _ in range(6)] == [b"9", b"7", b"3", b"1", b"0", b"none"]


def test_priority_requeue_returns_to_original_position(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q", arguments={"x-max-priority": 10})
    for body, priority in ((b"a5", 5), (b"b5", 5), (b"c1", 1)):
        ch.publish("", "q", body, properties=Properties(priority=priority))
    first = ch.get_ok("q")
    ch.publish("", "q", b"d5", properties=Properties(priority=5))
    ch.nack(first.delivery_tag, requeue=True)
    assert [take(ch, "q").body for _ in range(4)] == [b"a5", b"b5", b"d5", b"c1"]


def test_priority_ignored_without_max_priority(harness: Harness, ch: Chan) -> None:
    ch.declare_queue("q")
    ch.publish("", "q", b"low", properties=Properties(priority=1))
    ch.publish("", "q", b"high", properties=Properties(priority=9))
    assert take(ch, "q").body == b"low"
