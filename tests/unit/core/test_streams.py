"""Stream queues in the core: declaration, offsets, windows, refusals, chunks, retention and
filtering, through ``Broker.handle`` only (``helpers.py`` rule 1)."""

from __future__ import annotations

import datetime
import decimal

import pytest

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import (
    ConsumerCancelled,
    Deliver,
    OffsetOk,
    QueueDeleteOk,
    StreamReadOk,
)
from minibroker.core.fates import Fate
from minibroker.core.streamreads import MAX_NAMES
from minibroker.errors import NotImplementedFeature, PreconditionFailed
from minibroker.message import FieldTable, Message, Properties
from tests.unit.core.helpers import Chan, Harness, bodies, delivered, fingerprint

STREAM: FieldTable = {"x-queue-type": "stream"}


def declare(ch: Chan, name: str = "s", **arguments: object) -> None:
    ch.declare_queue(name, durable=True, arguments={**STREAM, **arguments})  # type: ignore[dict-item]


def publish(ch: Chan, *texts: str, queue: str = "s", headers: FieldTable | None = None) -> None:
    """Each text in its own publish command (so each is a chunk of its own)."""
    for text in texts:
        ch.publish("", queue, text.encode(), properties=Properties(headers=headers))


def publish_batch(ch: Chan, *texts: str, queue: str = "s") -> None:
    """The texts as one input (one chunk)."""
    ch.harness.handle(c.PublishMany(ch.connection, ch.channel, tuple(
        (Message("", queue, text.encode()), False) for text in texts)))


def offsets(deliveries: list[Deliver]) -> list[object]:
    return [(d.wire_message.properties.headers or {}).get("x-stream-offset") for d in deliveries]


def consume(ch: Chan, offset: object = None, *, prefetch: int = 100, tag: str = "",
            arguments: FieldTable | None = None) -> list[Deliver]:
    ch.qos(prefetch)
    args: FieldTable = dict(arguments or {})
    if offset is not None:
        args["x-stream-offset"] = offset  # type: ignore[assignment]
    return delivered(ch.consume("s", tag, arguments=args))


# -- declaration --------------------------------------------------------------------------------


def test_declare_ok_counts_stored_messages_and_never_consumers(ch: Chan) -> None:
    declare(ch)
    publish(ch, "a", "b")
    consume(ch, "first")
    ok = ch.declare_queue("s", durable=True, arguments=STREAM)
    assert (ok.message_count, ok.consumer_count) == (2, 0)
    stats = ch.harness.broker.queue_statistics("s")
    assert (stats.ready, stats.unacked, stats.consumers, stats.backing_store) == (
        2, 2, 1, "stream")


@pytest.mark.parametrize("age", ["-1D", "", "D", "first", " 1h"])
def test_a_max_age_rabbitmq_310_crashes_on_is_refused_with_406(ch: Chan, age: str) -> None:
    # RabbitMQ 3.10 answers these with 541 INTERNAL_ERROR; the same 406 as any bad age here.
    with pytest.raises(PreconditionFailed) as info:
        declare(ch, **{"x-max-age": age})
    assert info.value.text == "invalid arg 'x-max-age' for queue 's' in vhost '/': invalid_max_age"


@pytest.mark.parametrize(("size", "ok"), [
    (16, True), (255, True), (10, False), (256, False), ("a", False), (True, False),
])
def test_filter_size_bytes_follows_rabbitmq_313(ch: Chan, size: object, ok: bool) -> None:
    if ok:
        declare(ch, **{"x-stream-filter-size-bytes": size})
        return
    with pytest.raises(PreconditionFailed) as info:
        declare(ch, **{"x-stream-filter-size-bytes": size})
    assert info.value.text == "Invalid value for  x-stream-filter-size-bytes"


def test_a_segment_size_over_rabbitmqs_maximum_is_refused(ch: Chan) -> None:
    declare(ch, "big", **{"x-stream-max-segment-size-bytes": 3_000_000_000})
    with pytest.raises(PreconditionFailed, match="Exceeded max value"):
        declare(ch, "bigger", **{"x-stream-max-segment-size-bytes": 3_000_000_001})


def test_a_server_named_stream_and_the_last_declared_queue(ch: Chan) -> None:
    ok = ch.declare_queue("", durable=True, arguments=STREAM)
    assert ok.queue.startswith("amq.gen-")
    ch.publish("", ok.queue, b"x")
    ch.qos(1)
    assert bodies(ch.consume("", arguments={"x-stream-offset": "first"})) == [b"x"]


# -- offsets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "expected"), [
    (None, []), ("first", [0, 1, 2, 3]), ("last", [3]), ("next", []), (b"first", [0, 1, 2, 3]),
    (0, [0, 1, 2, 3]), (2, [2, 3]), (-5, [0, 1, 2, 3]), (4, []), (100, []),
])
def test_where_a_consumer_starts(ch: Chan, offset: object, expected: list[int]) -> None:
    declare(ch)
    publish(ch, "a", "b", "c", "d")
    assert offsets(consume(ch, offset)) == expected


def test_a_consumer_past_the_end_waits_for_its_offset(ch: Chan) -> None:
    declare(ch)
    publish(ch, "a")
    assert consume(ch, 3) == []
    got = [delivered(ch.publish("", "s", text.encode())) for text in "bcde"]
    assert [offsets(d) for d in got] == [[], [], [3], [4]]


def test_last_is_the_last_chunk_one_input_is_one_chunk(ch: Chan) -> None:
    declare(ch)
    publish(ch, "a")
    publish_batch(ch, "b", "c", "d")
    assert offsets(consume(ch, "last")) == [1, 2, 3]


def test_a_transaction_commit_is_one_chunk(harness: Harness, ch: Chan) -> None:
    declare(ch)
    publish(ch, "a")
    ch.tx_select()
    publish(ch, "b", "c")
    ch.tx_commit()
    reader = harness.open(1, 2)
    assert offsets(consume(reader, "last")) == [1, 2]


@pytest.mark.parametrize("value", [
    ("xyz", '{longstr,<<"xyz">>}'), ("", '{longstr,<<"">>}'), (True, "{bool,true}"),
    (decimal.Decimal("1.5"), "{decimal,1.5}"), ([1], "{array,[1]}"),
])
def test_an_offset_rabbitmq_310_crashes_on_is_refused_with_406(
        ch: Chan, value: tuple[object, str]) -> None:
    declare(ch)
    ch.qos(5)
    before = fingerprint(ch.harness.broker)
    with pytest.raises(PreconditionFailed) as info:
        ch.consume("s", arguments={"x-stream-offset": value[0]})  # type: ignore[dict-item]
    assert info.value.text == (
        f"invalid arg 'x-stream-offset' for queue 's' in vhost '/': "
        f"{{invalid_stream_offset_arg,{value[1]}}}"
    )
    assert fingerprint(ch.harness.broker) == before


def test_timestamps_and_intervals_start_at_a_chunk() -> None:
    harness = Harness(Broker(wall_time=lambda now: 1_000_000 + now))
    ch = harness.open()
    declare(ch)
    for now, text in ((0.0, "a"), (10.0, "b"), (20.0, "c")):
        harness.now = now
        publish(ch, text)
    harness.now = 30.0
    at = datetime.datetime.fromtimestamp(1_000_015, tz=datetime.UTC)
    assert bodies(consume(ch, at)) == [b"c"]
    assert bodies(consume(harness.open(1, 2), "25s")) == [b"b", b"c"]
    assert bodies(consume(harness.open(1, 3), "1m")) == [b"a", b"b", b"c"]
    ahead = datetime.datetime.fromtimestamp(1_000_100, tz=datetime.UTC)
    late = harness.open(1, 4)
    assert consume(late, ahead) == []
    got = delivered(late.publish("", "s", b"d"))
    assert [d.channel for d in got if d.message.body == b"d"] == [1, 2, 3, 4]  # 4: at next


# -- delivering ---------------------------------------------------------------------------------


def test_every_consumer_reads_every_message_with_its_own_window(harness: Harness) -> None:
    one, two = harness.open(1, 1), harness.open(2, 1)
    declare(one)
    publish(one, "a", "b", "c")
    assert bodies(consume(one, "first", prefetch=2)) == [b"a", b"b"]
    assert bodies(consume(two, "next", prefetch=5)) == []
    outcome = one.publish("", "s", b"d")
    assert [(d.connection, d.message.body) for d in delivered(outcome)] == [(2, b"d")]
    assert bodies(one.ack(1)) == [b"c"]
    assert bodies(one.ack(3, multiple=True)) == [b"d"]


def test_deliveries_carry_the_offset_and_keep_the_stored_message(ch: Chan) -> None:
    declare(ch)
    publish(ch, "a", headers={"x-stream-offset": 99, "h": 1})
    (deliver,) = consume(ch, "first")
    assert deliver.wire_message.properties.headers == {"h": 1, "x-stream-offset": 0}
    assert deliver.redelivered is False
    stored = ch.harness.broker.topology.queues["s"].stream
    assert stored is not None
    (item,) = stored.read(0)
    assert item[1].properties.headers == {"x-stream-offset": 99, "h": 1}
    # The effect names the stored message itself and its offset: nothing is copied.
    assert deliver.message is item[1]
    assert deliver.offset == 0


def test_an_observer_sees_each_message_with_its_offset_and_changes_nothing() -> None:
    # Without an observer a consumer's deliveries share one record (rule 7); with one, each
    # has its own, naming its message with the header: the effects and counts are the same.
    fates: list[Fate] = []
    runs = []
    for observer in (None, fates.append):
        harness = Harness()
        harness.broker.observer = observer
        ch = harness.open(1, 1)
        declare(ch)
        publish(ch, "a", "b", "c", "d")
        got = [consume(ch, "first", prefetch=3)]
        got.append(delivered(ch.ack(2, multiple=True)))
        got.append(delivered(ch.nack(3)))  # since 3.13: credit back, like an ack
        ch.close()
        stats = harness.broker.queue_statistics("s")
        runs.append((got, stats.unacked, stats.acked))
    assert runs[0] == runs[1]
    assert [[d.offset for d in deliveries] for deliveries in runs[0][0]] == [[0, 1, 2], [3], []]
    assert runs[0][1:] == (0, 2)
    seen = [(f.kind, f.delivery_tag, (f.message.properties.headers or {}).get("x-stream-offset"))
            for f in fates if f.kind in ("delivered", "acked")]
    assert seen == [("delivered", 1, 0), ("delivered", 2, 1), ("delivered", 3, 2),
                    ("acked", None, 0), ("acked", None, 1), ("delivered", 4, 3)]


def test_a_window_goes_out_a_burst_at_a_time(harness: Harness) -> None:
    # Rule 8: at most 256 small deliveries until the shell reports a flush, so a big window
    # is written in pieces; a flush (SetWritable) lets the next piece go.
    ch = harness.open(1, 1)
    declare(ch)
    publish_batch(ch, *(str(i) for i in range(600)))
    first = consume(ch, "first", prefetch=1000)
    assert offsets(first) == list(range(256))
    second = delivered(harness.handle(c.SetWritable(1, writable=True)))
    assert offsets(second) == list(range(256, 512))
    assert [d.delivery_tag for d in second] == list(range(257, 513))
    assert offsets(delivered(harness.handle(c.SetWritable(1, writable=True)))) == list(
        range(512, 600))
    assert delivered(harness.handle(c.SetWritable(1, writable=True))) == []
    assert harness.broker.queue_statistics("s").unacked == 600


def test_the_window_is_fixed_at_consume_and_global_qos_is_ignored_later(ch: Chan) -> None:
    declare(ch)
    publish(ch, "a", "b", "c", "d")
    assert bodies(consume(ch, "first", prefetch=1)) == [b"a"]
    ch.qos(10)
    assert ch.qos(1, global_=True).effects == []
    assert bodies(ch.ack(1)) == [b"b"]


def test_a_closed_channel_forgets_its_deliveries(harness: Harness) -> None:
    ch = harness.open(1, 1)
    declare(ch)
    publish(ch, "a", "b")
    consume(ch, "first")
    ch.close()
    stats = harness.broker.queue_statistics("s")
    assert (stats.ready, stats.unacked, stats.redelivered) == (2, 0, 0)
    assert bodies(consume(harness.open(1, 2), "first")) == [b"a", b"b"]


def test_an_ack_after_cancel_only_settles(ch: Chan) -> None:
    declare(ch)
    publish(ch, "a", "b", "c")
    consume(ch, "first", prefetch=2, tag="t")
    ch.cancel("t")
    assert ch.ack(2, multiple=True).effects == []
    assert ch.harness.broker.queue_statistics("s").unacked == 0


def test_deleting_a_stream_cancels_its_consumers_and_reports_zero(ch: Chan) -> None:
    declare(ch)
    publish(ch, "a")
    consume(ch, "first", tag="t")
    outcome = ch.delete_queue("s", if_unused=True, if_empty=True)
    assert outcome.reply == QueueDeleteOk(0)
    assert outcome.effects == [ConsumerCancelled(1, 1, "t")]
    assert ch.harness.broker.meter.weight == 0
    assert ch.ack(1).effects == []  # the delivery outlived its stream


def test_a_stream_takes_dead_letters_and_exchange_routes(ch: Chan) -> None:
    declare(ch)
    ch.declare_exchange("fan", "fanout")
    ch.bind("s", "fan")
    ch.declare_queue("dl", arguments={"x-dead-letter-exchange": "fan"})
    ch.publish("fan", "k", b"routed")
    ch.publish("", "dl", b"dead")
    ch.get_ok("dl")
    ch.reject(1, requeue=False)
    got = consume(ch, "first")
    assert [(d.message.body, d.message.exchange) for d in got] == [
        (b"routed", "fan"), (b"dead", "fan")]


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("settle", "text"), [
    (lambda ch: ch.nack(2), "basic.nack and basic.reject"),
    (lambda ch: ch.nack(0, multiple=True, requeue=False), "basic.nack and basic.reject"),
    (lambda ch: ch.reject(2, requeue=False), "basic.nack and basic.reject"),
    (lambda ch: ch.recover(), "basic.nack and basic.reject"),
    (lambda ch: ch.get("s"), "basic.get"),
    (lambda ch: ch.purge("s"), "queue.purge"),
])
def test_what_streams_refuse_changes_nothing(settle: object, text: str) -> None:
    ch = Harness(Broker(rabbitmq="3.10")).open()  # nack and reject: refused by 3.10 only
    declare(ch)
    ch.declare_queue("classic")
    publish(ch, "a", "b")
    ch.publish("", "classic", b"c")
    ch.get_ok("classic")  # a classic delivery in the same channel stays unacked
    consume(ch, "first")
    before = fingerprint(ch.harness.broker)
    with pytest.raises(NotImplementedFeature) as info:
        settle(ch)  # type: ignore[operator]
    assert info.value.text.startswith(text)
    assert info.value.text.endswith("not supported by stream queues queue 's' in vhost '/'")
    assert fingerprint(ch.harness.broker) == before


@pytest.mark.parametrize(("version", "prefetch_text", "auto_ack_text"), [
    ("3.10", "consumer prefetch count is not set for 'queue 's' in vhost '/''",
     "automatic acknowledgement not supported by stream queues queue 's' in vhost '/'"),
    ("4.2", "consumer prefetch count is not set for stream queue 's' in vhost '/'",
     "automatic acknowledgement not supported by stream queue 's' in vhost '/'"),
])
def test_consume_refusals_in_rabbitmqs_order(
        version: str, prefetch_text: str, auto_ack_text: str) -> None:
    ch = Harness(Broker(rabbitmq=version)).open()
    declare(ch)
    with pytest.raises(PreconditionFailed, match="x-stream-offset"):
        ch.consume("s", no_ack=True, arguments={"x-stream-offset": "0s", "x-priority": 1})
    with pytest.raises(PreconditionFailed, match="x-priority"):
        ch.consume("s", no_ack=True, arguments={"x-priority": 1})
    with pytest.raises(PreconditionFailed) as prefetch:
        ch.consume("s", no_ack=True)
    assert prefetch.value.text == prefetch_text
    ch.qos(5)
    with pytest.raises(NotImplementedFeature) as auto_ack:
        ch.consume("s", no_ack=True)
    assert auto_ack.value.text == auto_ack_text
    ch.qos(5, global_=True)
    with pytest.raises(NotImplementedFeature) as qos:
        ch.consume("s")
    assert qos.value.text == "queue 's' in vhost '/' does not support global qos"


@pytest.mark.parametrize("settle", [
    lambda ch: ch.nack(1), lambda ch: ch.nack(0, multiple=True, requeue=False),
    lambda ch: ch.reject(1, requeue=False), lambda ch: ch.recover(),
])
def test_since_313_a_nack_or_reject_gives_credit_like_an_ack(ch: Chan, settle: object) -> None:
    declare(ch)
    publish(ch, "a", "b", "c")
    assert bodies(consume(ch, "first", prefetch=1)) == [b"a"]
    outcome = settle(ch)  # type: ignore[operator]
    assert bodies(outcome) == [b"b"]  # the next message, not "a" again
    stats = ch.harness.broker.queue_statistics("s")
    assert (stats.unacked, stats.redelivered) == (1, 0)


def test_a_nack_of_a_classic_delivery_is_not_refused() -> None:
    ch = Harness(Broker(rabbitmq="3.10")).open()
    declare(ch)
    ch.declare_queue("classic")
    ch.publish("", "classic", b"c")
    publish(ch, "a")
    ch.get_ok("classic")
    consume(ch, "first")
    ch.nack(1)
    assert ch.harness.broker.queue_statistics("classic").ready == 1


# -- filtering (RabbitMQ 3.13) --------------------------------------------------------------------


def filtered(harness: Harness) -> Chan:
    ch = harness.open()
    declare(ch)
    for value in ("eu", "us", None, "eu", "apac"):
        publish(ch, value or "none", headers=None if value is None else
                {"x-stream-filter-value": value})
    publish_batch(ch, "batch")
    return ch


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"x-stream-filter": "eu"}, [b"eu", b"eu"]),
    ({"x-stream-filter": ["eu", "us", 7]}, [b"eu", b"us", b"eu"]),
    ({"x-stream-filter": "eu", "x-stream-match-unfiltered": True},
     [b"eu", b"none", b"eu", b"batch"]),
    ({"x-stream-match-unfiltered": True}, [b"eu", b"us", b"none", b"eu", b"apac", b"batch"]),
    ({"x-stream-filter": "nowhere"}, []),
])
def test_filters_deliver_exactly_the_matching_messages(
        harness: Harness, arguments: FieldTable, expected: list[bytes]) -> None:
    ch = filtered(harness)
    assert bodies(consume(ch, "first", arguments=arguments)) == expected


def test_rabbitmq_310_ignores_the_filter_arguments() -> None:
    harness = Harness(Broker(rabbitmq="3.10"))
    ch = filtered(harness)
    declare(ch, "small", **{"x-stream-filter-size-bytes": 10})
    assert bodies(consume(ch, "first", arguments={"x-stream-filter": "eu"})) == [
        b"eu", b"us", b"none", b"eu", b"apac", b"batch"]


def test_a_filtered_consumer_gets_matches_published_later(harness: Harness) -> None:
    ch = filtered(harness)
    assert bodies(consume(ch, "next", arguments={"x-stream-filter": "us"})) == []
    got = [bodies(ch.publish("", "s", value.encode(), properties=Properties(
        headers={"x-stream-filter-value": value}))) for value in ("eu", "us", "us")]
    assert got == [[], [b"us"], [b"us"]]


# -- retention ----------------------------------------------------------------------------------


def test_size_retention_removes_whole_closed_segments(ch: Chan) -> None:
    declare(ch, **{"x-max-length-bytes": 250, "x-stream-max-segment-size-bytes": 100})
    early = ch.harness.open(1, 2)
    assert consume(early, "first", prefetch=1) == []
    for i in range(10):
        publish(ch, f"{i:050d}")  # 50 bytes each: segments of two messages
    # ``early`` took offset 0 and holds it (window of one) while retention runs.
    log = ch.harness.broker.topology.queues["s"].stream
    assert log is not None
    # Closed segments hold 100 bytes. Retention ran when offset 8 closed [6, 7]: 400 bytes,
    # so [0, 1] and [2, 3] went; 9 joined the open segment, which is never removed, and the
    # next check comes with the next close (RabbitMQ evaluates retention at a segment roll).
    assert [segment.first for segment in log.segments] == [4, 6, 8]
    assert (log.first_offset, log.next_offset, log.bytes) == (4, 10, 300)
    # The early consumer stood in a removed segment: it goes on from the first retained offset.
    assert offsets(delivered(early.ack(1))) == [4]
    stats = ch.harness.broker.queue_statistics("s")
    assert stats.ready == 6
    assert ch.harness.broker.meter.weight == log.weight


def test_age_retention_runs_on_the_timer_heap(harness: Harness) -> None:
    ch = harness.open()
    declare(ch, **{"x-max-age": "10s", "x-stream-max-segment-size-bytes": 1})
    broker = harness.broker
    for now in (0.0, 1.0, 2.0):
        harness.now = now
        publish(ch, "x")
    # Segments close at each new chunk: the first two are closed, the third open.
    assert broker.next_deadline() == 10.0
    broker.handle_timeout(now=10.0)
    log = broker.topology.queues["s"].stream
    assert log is not None
    assert log.first_offset == 1
    assert broker.next_deadline() == 11.0
    broker.handle_timeout(now=50.0)
    assert (log.first_offset, len(log), broker.next_deadline()) == (2, 1, None)


def test_memory_meter_follows_the_stream(ch: Chan) -> None:
    declare(ch)
    meter = ch.harness.broker.meter
    publish(ch, "12345")
    assert meter.weight > 5
    ch.delete_queue("s")
    assert meter.weight == 0


# -- the pull model and stored offsets -------------------------------------------------------------


def read(ch: Chan, queue: str = "s", **kwargs: object) -> tuple[int, list[tuple[int, bytes]]]:
    arguments = kwargs.pop("arguments", None)
    reply = ch.harness.handle(c.ReadStream(ch.connection, ch.channel, queue,
                                           arguments, **kwargs)).reply  # type: ignore[arg-type]
    assert isinstance(reply, StreamReadOk)
    return reply.next_offset, [(offset, message.body) for offset, message in reply.messages]


def test_a_read_returns_a_batch_and_where_to_go_on(ch: Chan) -> None:
    declare(ch)
    publish(ch, "a", "bb", "ccc", "dddd")
    assert read(ch, arguments={"x-stream-offset": "first"}, max_messages=2) == (
        2, [(0, b"a"), (1, b"bb")])
    assert read(ch, arguments={"x-stream-offset": 2}, max_bytes=3) == (3, [(2, b"ccc")])
    assert read(ch, arguments={"x-stream-offset": 3}) == (4, [(3, b"dddd")])
    assert read(ch, arguments={"x-stream-offset": 4}) == (4, [])
    assert read(ch) == (4, [])  # "next" by default: nothing yet
    assert read(ch, arguments={"x-stream-offset": "first", "x-stream-filter": "x"}) == (4, [])
    stats = ch.harness.broker.queue_statistics("s")
    assert (stats.delivered, stats.unacked, stats.consumers) == (4, 0, 0)


def test_a_read_stops_before_its_reply_budget(ch: Chan) -> None:
    # each message costs its body, exchange ("") and routing key ("s") plus record_bytes
    declare(ch)
    publish_batch(ch, "aaaa", "bbbb", "cccc")
    first = {"x-stream-offset": "first"}
    assert read(ch, arguments=first, reply_bytes=20, record_bytes=5) == (
        2, [(0, b"aaaa"), (1, b"bbbb")])
    # the first message is always read, so a read moves on
    assert read(ch, arguments={"x-stream-offset": 1}, reply_bytes=1) == (2, [(1, b"bbbb")])
    assert read(ch, arguments=first, reply_bytes=0) == (3, [(0, b"aaaa"), (1, b"bbbb"),
                                                            (2, b"cccc")])
    # the filtered path leaves the message over the budget for the next read
    publish(ch, "eu-1", "eu-2", headers={"x-stream-filter-value": "eu"})
    eu = {**first, "x-stream-filter": "eu"}
    assert read(ch, arguments=eu, reply_bytes=9) == (4, [(3, b"eu-1")])
    assert read(ch, arguments={**eu, "x-stream-offset": 4}, reply_bytes=9) == (
        5, [(4, b"eu-2")])


def test_named_offsets_are_stored_per_stream(ch: Chan) -> None:
    declare(ch)
    declare(ch, "other")

    def query(queue: str, name: str) -> int | None:
        reply = ch.harness.handle(c.QueryOffset(1, 1, queue, name)).reply
        assert isinstance(reply, OffsetOk)
        return reply.offset

    assert query("s", "billing") is None
    ch.harness.handle(c.CommitOffset(1, 1, "s", "billing", 41))
    ch.harness.handle(c.CommitOffset(1, 1, "s", "billing", 42))
    assert (query("s", "billing"), query("other", "billing")) == (42, None)
    ch.delete_queue("s")
    declare(ch)
    assert query("s", "billing") is None  # the offsets died with the stream


def test_only_streams_are_read(ch: Chan) -> None:
    ch.declare_queue("classic")
    with pytest.raises(PreconditionFailed) as info:
        read(ch, "classic")
    assert info.value.text == "queue 'classic' in vhost '/' is not a stream"


def test_a_stream_keeps_a_bounded_number_of_names(ch: Chan) -> None:
    declare(ch)
    for n in range(MAX_NAMES):
        ch.harness.handle(c.CommitOffset(1, 1, "s", f"n{n}", n))
    ch.harness.handle(c.CommitOffset(1, 1, "s", "n0", 7))  # replacing is always allowed
    with pytest.raises(PreconditionFailed, match="at most"):
        ch.harness.handle(c.CommitOffset(1, 1, "s", "one more", 0))
