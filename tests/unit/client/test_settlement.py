"""The channel's ledger of unsettled deliveries matches the broker's, so the client refuses,
locally and with a clear error, every settlement the broker would answer with 406 "unknown
delivery tag" (closing the channel), and lets through every one it would accept."""

from __future__ import annotations

import pytest

from minibroker.client import Channel, Delivery
from minibroker.errors import ClientError
from minibroker.server import BrokerServer
from tests.unit.client.conftest import Run
from tests.unit.client.link import linked


async def _three(ch: Channel, server: BrokerServer) -> tuple[str, list[Delivery]]:
    name = (await ch.declare_queue("", exclusive=True)).name
    for body in (b"1", b"2", b"3"):
        await ch.publish("", name, body)
    got = [await ch.get(name) for _ in range(3)]
    assert all(d is not None for d in got)
    assert server.broker.queue_statistics(name).unacked == 3
    return name, [d for d in got if d is not None]


def test_ack_multiple_settles_every_earlier_delivery(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name, (first, second, third) = await _three(ch, link.server)
            await third.ack(multiple=True)
            assert first.settled and second.settled and third.settled
            assert ch.unacked_count == 0
            with pytest.raises(ClientError, match=r"cannot ack delivery 1: it was acked by "
                               r"ack\(multiple=True\) of delivery 3 .*406 PRECONDITION_FAILED"):
                await first.ack()
            with pytest.raises(ClientError, match="cannot nack delivery 2"):
                await second.nack()
            with pytest.raises(ClientError, match="cannot reject delivery 2"):
                await second.reject()
            # Nothing was sent: the channel lives, and the broker settled exactly three.
            stats = await _stats_after_round_trip(ch, link.server, name)
            assert (stats.ready, stats.unacked, stats.acked) == (0, 0, 3)

    run(scenario)


def test_nack_multiple_settles_every_earlier_delivery(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name, (first, second, third) = await _three(ch, link.server)
            await second.nack(multiple=True, requeue=True)
            assert first.settled and second.settled and not third.settled
            with pytest.raises(ClientError, match=r"nacked by nack\(multiple=True\) of delivery 2"):
                await first.ack()
            await third.ack()
            stats = await _stats_after_round_trip(ch, link.server, name)
            assert (stats.ready, stats.unacked) == (2, 0)

    run(scenario)


def test_a_multiple_ack_whose_own_tag_is_settled_is_refused_like_the_broker_does(run: Run) -> None:
    """RabbitMQ closes the channel for ``ack(2, multiple=True)`` once 2 is acked, even with 1
    outstanding (checked against RabbitMQ 3.10); the client refuses it before sending."""

    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name, (first, second, _) = await _three(ch, link.server)
            await second.ack()
            with pytest.raises(ClientError, match="cannot ack delivery 2: it was acked"):
                await second.ack(multiple=True)
            with pytest.raises(ClientError, match="no delivery with that tag awaits"):
                await ch.ack(2, multiple=True)
            assert not first.settled  # nothing was taken by the refused call
            await first.ack()
            stats = await _stats_after_round_trip(ch, link.server, name)
            assert (stats.unacked, stats.acked) == (1, 2)

    run(scenario)


def test_tag_zero_with_multiple_settles_all_and_is_always_accepted(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name, deliveries = await _three(ch, link.server)
            await ch.ack(0, multiple=True)
            assert all(d.settled for d in deliveries)
            await ch.nack(0, multiple=True)  # nothing outstanding: the broker accepts it too
            stats = await _stats_after_round_trip(ch, link.server, name)
            assert (stats.ready, stats.unacked, stats.acked) == (0, 0, 3)

    run(scenario)


def test_a_tag_never_delivered_is_refused_locally(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name, [delivery, *_] = await _three(ch, link.server)
            with pytest.raises(ClientError, match="cannot ack delivery tag 999: no delivery "
                               "with that tag awaits settlement on channel 1"):
                await ch.ack(999)
            other = await conn.channel()  # tags belong to their channel
            with pytest.raises(ClientError, match="cannot reject delivery tag 1"):
                await other.reject(delivery.delivery_tag)
            await delivery.ack()
            assert not ch.is_closed and not other.is_closed
            stats = await _stats_after_round_trip(ch, link.server, name)
            assert stats.acked == 1

    run(scenario)


def test_reject_settles_only_its_own_delivery(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            name, (first, second, third) = await _three(ch, link.server)
            await second.reject(requeue=False)
            assert (first.settled, second.settled, third.settled) == (False, True, False)
            await third.ack(multiple=True)
            stats = await _stats_after_round_trip(ch, link.server, name)
            assert (stats.ready, stats.unacked, stats.acked) == (0, 0, 2)

    run(scenario)


def test_recover_voids_the_old_deliveries_and_drops_their_buffered_copies(run: Run) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            await ch.qos(2)
            name = (await ch.declare_queue("", exclusive=True)).name
            for body in (b"1", b"2"):
                await ch.publish("", name, body)
            async with ch.consume(name) as consumer:
                taken = await consumer.receive()
                await link.settle()  # the second one is buffered, not taken
                assert consumer.statistics().buffered == 1
                await ch.recover()
                with pytest.raises(ClientError, match=r"requeued by basic\.recover"):
                    await taken.ack()
                # The buffered copy is gone; the broker delivers both again, with new tags.
                again = [await consumer.receive(), await consumer.receive()]
                assert [d.redelivered for d in again] == [True, True]
                assert sorted(d.body for d in again) == [b"1", b"2"]
                assert min(d.delivery_tag for d in again) > 2
                await again[1].ack(multiple=True)
            stats = await _stats_after_round_trip(ch, link.server, name)
            assert (stats.ready, stats.unacked) == (0, 0)

    run(scenario)


async def _stats_after_round_trip(ch: Channel, server: BrokerServer, name: str):  # type: ignore[no-untyped-def]
    """The queue's statistics once the broker handled everything this channel sent (a
    synchronous request is answered after every earlier frame of the channel)."""
    await ch.qos(0)
    return server.broker.queue_statistics(name)
