"""Streams with a data directory, over real sockets: what was confirmed survives a crash and a
restart, in order and with its offsets; retention still removes whole segments afterwards;
deleting a stream deletes its files."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pika
import pytest

from minibroker import blocking
from minibroker.message import Properties
from minibroker.protocols.native import streamframes as sf
from minibroker.testing import ManualClock, broker_in_thread, running_broker
from tests.integration.test_cli_storage import Broker, brokers  # noqa: F401

STREAM = {"x-queue-type": "stream"}


def _publish(url: str, name: str, bodies: list[bytes], arguments: dict[str, object]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(name, durable=True, arguments=arguments)
    for body in bodies:
        channel.basic_publish("", name, body)  # pika waits for each confirm
    connection.close()


def consume_stream(url: str, name: str, count: int,
             offset: object = "first") -> list[tuple[int, bytes]]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=100)
    got: list[tuple[int, bytes]] = []
    for method, properties, body in channel.consume(
            name, arguments={"x-stream-offset": offset}, inactivity_timeout=30):
        assert method is not None, "the stream stopped delivering"
        got.append((properties.headers["x-stream-offset"], body))
        channel.basic_ack(method.delivery_tag)
        if len(got) == count:
            break
    channel.cancel()
    connection.close()
    return got


def _segments(root: Path) -> list[Path]:
    return sorted((root / "streams").glob("*/*.seg"))


@pytest.mark.parametrize("stop", ["crash", "restart"])
def test_confirmed_appends_come_back_in_order_with_their_offsets(tmp_path: Path,
                                                                  stop: str) -> None:
    bodies = [f"event {n}".encode() for n in range(300)]
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _publish(broker.amqp_url, "events", bodies, STREAM)
        getattr(broker, stop)()
        assert broker.queue("events").ready == 300
        assert consume_stream(broker.amqp_url, "events", 300) == list(enumerate(bodies))
        # Appends go on after the recovered offsets, and a restart keeps them too.
        _publish(broker.amqp_url, "events", [b"after"], STREAM)
        broker.crash()
        stored = broker.messages("events", offset=299)
        assert [(m.msg_id, m.body) for m in stored] == [(299, b"event 299"), (300, b"after")]
        assert consume_stream(broker.amqp_url, "events", 1, offset="last") == [(300, b"after")]


def test_last_and_an_offset_after_a_restart(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _publish(broker.amqp_url, "events", [b"a", b"b", b"c"], STREAM)
        broker.crash()
        assert consume_stream(broker.amqp_url, "events", 1, offset="last") == [(2, b"c")]
        assert consume_stream(broker.amqp_url, "events", 2, offset=1) == [(1, b"b"), (2, b"c")]


def test_retention_by_length_removes_whole_segments_after_a_restart(tmp_path: Path) -> None:
    arguments = {**STREAM, "x-max-length-bytes": 2000, "x-stream-max-segment-size-bytes": 500}
    body = b"x" * 100
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _publish(broker.amqp_url, "small", [body] * 10, arguments)
        broker.crash()
        before = _segments(tmp_path)
        assert broker.queue("small").ready == 10
        _publish(broker.amqp_url, "small", [body] * 60, arguments)
        after = _segments(tmp_path)
        assert len(after) < len(before) + 60 // 4  # whole files went
        stored = broker.messages("small", offset="first")
        first = stored[0].msg_id
        assert first > 0 and [m.msg_id for m in stored] == list(range(first, 70))
        # Whole segments: what is kept starts where a file starts.
        assert any(path.name == f"{first:020d}.seg" for path in after)
        assert sum(len(m.body) for m in stored) <= 2000 + 600


def test_deleting_a_stream_deletes_its_files_and_a_new_one_starts_empty(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _publish(broker.amqp_url, "events", [b"old"] * 5, STREAM)
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        connection.channel().queue_delete("events")
        connection.close()
        _publish(broker.amqp_url, "events", [b"new"], STREAM)
        broker.crash()
        assert [(m.msg_id, m.body) for m in broker.messages("events", offset="first")] == [
            (0, b"new")]


def test_a_stream_survives_kill_9_of_the_process(
        tmp_path: Path, brokers: list[Broker],  # noqa: F811 (the fixture)
) -> None:
    data = str(tmp_path / "data")
    brokers.append(first := Broker("--data-dir", data))
    url = f"amqp://guest:guest@127.0.0.1:{first.port}/"
    bodies = [f"m{n}".encode() for n in range(500)]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("events", durable=True, arguments=STREAM)
    for body in bodies:
        channel.basic_publish("", "events", body)  # each confirmed before the next
    first.stop(signal.SIGKILL)
    brokers.append(second := Broker("--data-dir", data))
    url = f"amqp://guest:guest@127.0.0.1:{second.port}/"
    assert consume_stream(url, "events", 500) == list(enumerate(bodies))


def test_stored_consumer_offsets_and_pull_reads_survive_a_crash(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        with blocking.connect(broker.url) as conn:
            ch = conn.channel()
            ch.declare_queue("events", durable=True, arguments=STREAM)
            ch.confirm_select()
            ch.publish_batch("", "events", [f"e{n}".encode() for n in range(10)])
            batch = ch.read("events", 0, max_messages=4)
            ch.commit_offset("events", "billing", batch.next_offset)
            ch.commit_offset("events", "audit", 7)
        broker.crash()
        with blocking.connect(broker.url) as conn:
            ch = conn.channel()
            resume = ch.committed_offset("events", "billing")
            assert resume == 4
            assert ch.committed_offset("events", "audit") == 7
            batch = ch.read("events", resume, max_messages=100)
            assert [(m.offset, m.body) for m in batch.messages] == [
                (n, f"e{n}".encode()) for n in range(4, 10)]
            assert batch.next_offset == 10
            # Deleted with the stream: a new one under the name knows none.
            ch.delete_queue("events")
            ch.declare_queue("events", durable=True, arguments=STREAM)
            assert ch.committed_offset("events", "billing") is None
        broker.crash()
        with blocking.connect(broker.url) as conn:
            assert conn.channel().committed_offset("events", "billing") is None


def test_the_files_of_a_stream_whose_definition_is_gone_are_removed_at_start(
        tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _publish(broker.amqp_url, "events", [b"a", b"b"], STREAM)
        broker.crash()
        orphan = tmp_path / "streams" / ("0" * 64)
        orphan.mkdir()
        (orphan / f"{0:020d}.seg").write_bytes(b"left behind")
        broker.restart()
        assert [m.body for m in broker.messages("events", offset="first")] == [b"a", b"b"]
        assert not list(orphan.glob("*.seg"))


def test_a_manual_clock_drives_max_age_retention_of_a_durable_stream(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock()
        async with running_broker(clock=clock, data_dir=str(tmp_path)) as broker:
            broker.declare_queue("events", durable=True, arguments={
                **STREAM, "x-max-age": "1m", "x-stream-max-segment-size-bytes": 1})
            for n in range(3):  # at t = 0, 20, 40; every chunk closes the segment before it
                broker.publish("", "events", f"e{n}")
                await broker.wait_for_queue("events", ready=n + 1)
                clock.advance(20 if n < 2 else 19)
            assert [m.body for m in broker.messages("events")] == [b"e0", b"e1", b"e2"]
            clock.advance(1)  # t = 60: e0's segment is a minute old
            assert [m.body for m in broker.messages("events")] == [b"e1", b"e2"]
            await broker.crash()  # the segment's file went with it
            assert [m.body for m in broker.messages("events")] == [b"e1", b"e2"]

    asyncio.run(main())


def test_kill_9_with_appends_in_flight_keeps_a_prefix_holding_every_confirmed_one(
        tmp_path: Path, brokers: list[Broker],  # noqa: F811 (the fixture)
) -> None:
    data = str(tmp_path / "data")
    brokers.append(first := Broker("--data-dir", data))
    url = f"amqp://guest:guest@127.0.0.1:{first.port}/"
    confirmed = [f"c{n}".encode() for n in range(200)]
    unconfirmed = [f"u{n}".encode() for n in range(2000)]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("events", durable=True, arguments=STREAM)
    for body in confirmed:
        channel.basic_publish("", "events", body)
    other = pika.BlockingConnection(pika.URLParameters(url)).channel()  # no confirms
    for body in unconfirmed:
        other.basic_publish("", "events", body)
    first.stop(signal.SIGKILL)  # some of these may be written, some not
    brokers.append(second := Broker("--data-dir", data))
    url = f"amqp://guest:guest@127.0.0.1:{second.port}/"
    probe = pika.BlockingConnection(pika.URLParameters(url))
    stored = probe.channel().queue_declare("events", durable=True, arguments=STREAM)
    count = stored.method.message_count
    probe.close()
    published = confirmed + unconfirmed
    assert 200 <= count <= len(published)
    assert consume_stream(url, "events", count) == list(enumerate(published[:count]))


def test_a_filtered_consumer_reads_the_files_then_what_is_appended(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("events", durable=True, arguments=STREAM)
        for n in range(30):
            region = ("eu", "us", None)[n % 3]
            headers = {} if region is None else {"x-stream-filter-value": region}
            channel.basic_publish("", "events", f"{region}-{n}".encode(),
                                  pika.BasicProperties(headers=headers))
        connection.close()
        broker.crash()
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = connection.channel()
        channel.basic_qos(prefetch_count=5)
        got: list[tuple[int, bytes]] = []
        arguments = {"x-stream-offset": "first", "x-stream-filter": "eu"}
        for method, properties, body in channel.consume("events", arguments=arguments,
                                                        inactivity_timeout=30):
            assert method is not None, "the stream stopped delivering"
            got.append((properties.headers["x-stream-offset"], body))
            channel.basic_ack(method.delivery_tag)
            if len(got) == 10:  # everything stored: append one more of each
                publisher = connection.channel()
                for region in ("us", "eu"):
                    publisher.basic_publish("", "events", f"{region}-new".encode(),
                                            pika.BasicProperties(
                                                headers={"x-stream-filter-value": region}))
            if len(got) == 11:
                break
        connection.close()
        assert got == [(n, f"eu-{n}".encode()) for n in range(0, 30, 3)] + [(31, b"eu-new")]


def test_reset_empties_durable_streams_and_they_work_afterwards(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _publish(broker.amqp_url, "events", [b"a", b"b"], STREAM)
        broker.reset()
        assert not broker.has_queue("events")
        assert not _segments(tmp_path)
        _publish(broker.amqp_url, "events", [b"c"], STREAM)
        broker.crash()
        assert [(m.msg_id, m.body) for m in broker.messages("events")] == [(0, b"c")]


def test_pull_reads_of_the_files_return_every_message_with_its_properties(
        tmp_path: Path) -> None:
    """Reads of a durable stream travel as its stored chunks (``StreamFetch``): reads that
    begin and end inside chunks, a byte limit, a filter, and
    the older ``StreamRead`` frame all give each message once with its properties."""
    tagged = Properties(content_type="text/plain", headers={"x-stream-filter-value": "eu"})
    with broker_in_thread(data_dir=str(tmp_path)) as broker, \
            blocking.connect(broker.url) as conn:
        ch = conn.channel()
        ch.declare_queue("events", durable=True, arguments=STREAM)
        ch.confirm_select()
        for batch in range(3):
            ch.publish_batch("", "events", [
                (f"m{batch * 1500 + n}".encode(), tagged if n % 3 == 0 else Properties())
                for n in range(1500)])
        got = []
        offset = 0
        while batch_read := ch.read("events", offset, max_messages=700).messages:
            got += batch_read
            offset = got[-1].offset + 1
        assert [(m.offset, m.body) for m in got] == [
            (n, f"m{n}".encode()) for n in range(4500)]
        assert [m.properties for m in got[:3]] == [tagged, Properties(), Properties()]
        assert got[3].headers == {"x-stream-filter-value": "eu"}
        assert len(ch.read("events", 10, max_bytes=6).messages) == 2  # m10, m11: 6 bytes
        eu = ch.read("events", "first", max_messages=5000, filter="eu").messages
        assert [m.offset for m in eu] == list(range(0, 4500, 3))

        async def read_the_old_way() -> sf.StreamReadOk:
            return await ch.channel._call(sf.StreamRead(ch.number, "events", {
                "x-stream-offset": 4498}, 10, 1 << 20), (sf.StreamReadOk,))

        old = ch._run(read_the_old_way())
        assert [(offset, body) for offset, _, _, _, body in old.messages] == [
            (4498, b"m4498"), (4499, b"m4499")]
