"""A hypothesis state machine over stream queues in the core: publishes (alone and in batches),
consumers attaching at every kind of offset, acks, cancels, closed channels, retention by size
and age with time moving on.

Invariants, after every step:

1. Every consumer receives offsets in increasing order; between two consecutive deliveries it
   skips only offsets that retention had removed before it got there.
2. A consumer never holds more unacked deliveries than its window, and the stream's ``unacked``
   count is the sum of what its consumers' channels hold for it.
3. A consumer with credit is never left behind: if it has room in its window, it has read up
   to the end of the log.
4. Retention never removes the open segment, and the ready meter weighs exactly what is stored.
5. Every delivery's ``x-stream-offset`` header names the stored message it came from.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import Deliver, Outcome, singles
from minibroker.core.streams import StreamConsumer, StreamQueue
from minibroker.message import Message

OFFSETS = st.one_of(st.sampled_from(["first", "last", "next", "10s"]), st.integers(-2, 40))


class StreamMachine(RuleBasedStateMachine):
    @initialize(segment=st.integers(0, 40), max_bytes=st.one_of(st.none(), st.integers(0, 80)),
                max_age=st.sampled_from([None, "5s", "30s"]))
    def start(self, segment: int, max_bytes: int | None, max_age: str | None) -> None:
        self.broker = Broker()
        self.now = 0.0
        self.broker.handle(c.OpenConnection(1), now=0.0)
        self.broker.handle(c.OpenChannel(1, 1), now=0.0)
        arguments: dict[str, object] = {"x-queue-type": "stream",
                                        "x-stream-max-segment-size-bytes": segment}
        if max_bytes is not None:
            arguments["x-max-length-bytes"] = max_bytes
        if max_age is not None:
            arguments["x-max-age"] = max_age
        self.broker.handle(c.DeclareQueue(1, 1, "s", durable=True, arguments=arguments),  # type: ignore[arg-type]
                           now=0.0)
        queue = self.broker.topology.queues["s"]
        assert isinstance(queue, StreamQueue)
        self.queue = queue
        self.next_channel = 2
        #: (channel, tag) -> offsets delivered, and the delivery tags still unacked
        self.seen: dict[tuple[int, str], list[int]] = {}
        self.outstanding: dict[int, list[int]] = {}
        #: offsets that retention removed, in order
        self.removed_below = 0

    def handle(self, command: c.Command) -> Outcome:
        outcome = self.broker.handle(command, now=self.now)
        self.record(outcome.effects)
        return outcome

    def record(self, effects: list) -> None:  # type: ignore[type-arg]
        log = self.queue.stream
        for effect in singles(effects):
            if isinstance(effect, Deliver):
                headers = effect.wire_message.properties.headers
                assert headers is not None
                offset = headers["x-stream-offset"]
                assert isinstance(offset, int) and effect.offset == offset
                self.seen[(effect.channel, effect.consumer_tag)].append(offset)
                self.outstanding[effect.channel].append(effect.delivery_tag)
                stored = dict(log.read(offset))[offset] if offset >= log.first_offset else None
                if stored is not None:
                    assert stored.body == effect.message.body  # rule 5
        self.removed_below = max(self.removed_below, log.first_offset)

    # -- rules ----------------------------------------------------------------------------

    @rule(size=st.integers(1, 12), count=st.integers(1, 4))
    def publish(self, size: int, count: int) -> None:
        body = bytes([self.queue.stream.next_offset % 256]) * size
        if count == 1:
            self.handle(c.Publish(1, 1, Message("", "s", body)))
        else:
            self.handle(c.PublishMany(1, 1, tuple(
                (Message("", "s", body), False) for _ in range(count))))

    @rule(offset=OFFSETS, prefetch=st.integers(1, 5))
    def consume(self, offset: object, prefetch: int) -> None:
        channel = self.next_channel
        self.next_channel += 1
        self.handle(c.OpenChannel(1, channel))
        self.handle(c.Qos(1, channel, prefetch))
        self.seen[(channel, "t")] = []
        self.outstanding[channel] = []
        self.handle(c.Consume(1, channel, "s", "t",
                              arguments={"x-stream-offset": offset}))  # type: ignore[dict-item]

    @precondition(lambda self: any(self.outstanding.values()))
    @rule(data=st.data(), multiple=st.booleans())
    def ack(self, data: st.DataObject, multiple: bool) -> None:
        channel = data.draw(st.sampled_from(sorted(ch for ch, tags in self.outstanding.items()
                                                   if tags)))
        tags = self.outstanding[channel]
        tag = data.draw(st.sampled_from(tags))
        if multiple:
            self.outstanding[channel] = [t for t in tags if t > tag]
        else:
            tags.remove(tag)
        self.handle(c.Ack(1, channel, tag, multiple))

    @precondition(lambda self: self.outstanding)
    @rule(data=st.data(), close=st.booleans())
    def leave(self, data: st.DataObject, close: bool) -> None:
        channel = data.draw(st.sampled_from(sorted(self.outstanding)))
        if close:
            self.handle(c.CloseChannel(1, channel))
            del self.outstanding[channel]
        else:
            self.handle(c.Cancel(1, channel, "t"))  # its deliveries stay unacked
        self.seen.pop((channel, "t"), None)

    @rule(seconds=st.sampled_from([1.0, 4.0, 30.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self.record(self.broker.handle_timeout(now=self.now))

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def consumers_read_in_order_without_gaps(self) -> None:
        for offsets in self.seen.values():
            for before, after in pairwise(offsets):
                assert after > before
                assert after == before + 1 or after <= self.removed_below  # rule 1

    @invariant()
    def windows_and_counts(self) -> None:
        total = 0
        log = self.queue.stream
        for consumer in self.queue.consumers:
            assert isinstance(consumer, StreamConsumer)
            assert consumer.unacked <= consumer.prefetch_count  # rule 2
            if consumer.unacked < consumer.prefetch_count:
                assert consumer.reader.offset >= log.next_offset  # rule 3
        for channel in self.broker.connections[1].channels.values():
            total += sum(1 for unacked in channel.unacked.values() if unacked.queue is self.queue)
        assert self.queue.unacked == total

    @invariant()
    def retention_and_meter(self) -> None:
        log = self.queue.stream
        assert log.segments and log.segments[-1].first <= log.next_offset  # rule 4
        assert log.first_offset == log.segments[0].first
        assert self.broker.meter.weight == log.weight
        assert self.queue.message_count == log.next_offset - log.first_offset


StreamMachine.TestCase.settings = settings(max_examples=120, stateful_step_count=40,
                                           deadline=None)
TestStreamMachine = StreamMachine.TestCase
