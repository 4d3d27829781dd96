"""The toolkit and streams: reading a stream without consuming it, ``x-max-age`` retention
driven by a ``ManualClock``, and a real AMQP client consuming from an offset."""

from __future__ import annotations

import asyncio
import datetime

import pika
import pytest

from minibroker.testing import ManualClock, broker_in_thread, running_broker

STREAM = {"x-queue-type": "stream"}


def test_messages_reads_a_stream_from_any_offset_without_consuming() -> None:
    async def main() -> None:
        async with running_broker() as broker:
            broker.declare_queue("events", durable=True, arguments=STREAM)
            for n in range(5):
                broker.publish("", "events", f"e{n}", headers={"n": n})
            assert [(m.msg_id, m.body) for m in broker.messages("events")] == [
                (n, f"e{n}".encode()) for n in range(5)]
            assert [m.msg_id for m in broker.messages("events", offset=3)] == [3, 4]
            assert [m.msg_id for m in broker.messages("events", offset="last")] == [4]
            assert broker.messages("events", offset="next") == ()
            assert [m.msg_id for m in broker.messages("events", offset="1h",
                                                      max_messages=2)] == [0, 1]
            assert broker.messages("events", offset=2)[0].properties.headers == {"n": 2}
            # Nothing was consumed: the stream still holds all five.
            assert broker.queue("events").ready == 5
            broker.declare_queue("classic")
            with pytest.raises(ValueError, match="not a stream"):
                broker.messages("classic", offset="first")

    asyncio.run(main())


def test_a_manual_clock_drives_max_age_retention() -> None:
    async def main() -> None:
        clock = ManualClock()
        async with running_broker(clock=clock) as broker:
            broker.declare_queue("events", durable=True, arguments={
                **STREAM, "x-max-age": "1m", "x-stream-max-segment-size-bytes": 1})
            for n in range(3):  # at t = 0, 20, 40; every chunk closes the segment before it
                broker.publish("", "events", f"e{n}")
                clock.advance(20 if n < 2 else 19)
            assert [m.body for m in broker.messages("events")] == [b"e0", b"e1", b"e2"]
            clock.advance(1)  # t = 60: e0's segment is a minute old
            assert [m.body for m in broker.messages("events")] == [b"e1", b"e2"]
            clock.advance(20)
            assert [m.body for m in broker.messages("events")] == [b"e2"]
            clock.advance(3600)  # the open segment is never removed, however old
            assert [m.body for m in broker.messages("events")] == [b"e2"]

    asyncio.run(main())


def test_pika_consumes_a_stream_from_a_timestamp() -> None:
    with broker_in_thread() as broker:
        broker.declare_queue("events", durable=True, arguments=STREAM)
        broker.publish("", "events", "old")
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=10)
            since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
            got = []
            for method, properties, body in channel.consume(
                    "events", arguments={"x-stream-offset": since}, inactivity_timeout=5):
                assert method is not None, "no delivery"
                got.append((body, properties.headers["x-stream-offset"]))
                channel.basic_ack(method.delivery_tag)
                if len(got) == 1:
                    broker.publish("", "events", "new")
                if len(got) == 2:
                    break
            assert got == [(b"old", 0), (b"new", 1)]
        finally:
            connection.close()
