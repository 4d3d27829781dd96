"""The canary: a well-behaved client that publishes with confirms and consumes, round after
round, while an attacker misbehaves on another connection.

Rules:

1. Each round publishes ``size`` numbered messages, each awaited until confirmed, then
   consumes and acks exactly those, in order; a lost, duplicated or reordered message fails
   the round. Nothing is timed: a round is bounded by the scenario's timeout, and a test states
   how many rounds must complete while the attack is on.
2. The canary's queue is its own (exclusive), so the attacker cannot touch it.
"""

from __future__ import annotations

import struct

from minibroker.client import Channel, Connection, connect

__all__ = ["Canary"]


class Canary:
    def __init__(self, connection: Connection, channel: Channel, queue: str) -> None:
        self.connection = connection
        self.channel = channel
        self.queue = queue
        self.published = 0
        self.consumed = 0
        self.rounds = 0

    @classmethod
    async def start(cls, url: str) -> Canary:
        connection = await connect(url)
        channel = await connection.channel()
        await channel.confirm_select()
        queue = (await channel.declare_queue("", exclusive=True)).name
        return cls(connection, channel, queue)

    async def round(self, size: int = 20) -> None:
        """Rule 1: publish ``size`` confirmed messages, then consume and ack them in order."""
        first = self.published
        for number in range(first, first + size):
            await self.channel.publish("", self.queue, struct.pack(">Q", number) + b"canary")
            self.published += 1
        async with self.channel.consume(self.queue) as consumer:
            for number in range(first, first + size):
                delivery = await consumer.receive()
                got = struct.unpack(">Q", delivery.body[:8])[0]
                assert got == number, (got, number)
                await delivery.ack()
                self.consumed += 1
        self.rounds += 1

    async def rounds_while(self, count: int, size: int = 20) -> None:
        for _ in range(count):
            await self.round(size)

    async def close(self) -> None:
        assert self.published == self.consumed, (self.published, self.consumed)
        await self.connection.aclose()
