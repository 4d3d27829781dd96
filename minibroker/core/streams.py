"""Stream queues (``x-queue-type: stream``): an append-only log that consumers read from offsets
of their choosing, without removing anything. No I/O.

Rules:

1. A :class:`StreamQueue` is a ``Queue`` whose messages live in a :class:`StreamLog`
   (``streamlog.py``) instead of a backing store: its ``ready`` deque stays empty, publishing
   appends (the message gets the next offset), and only retention removes messages. It lives in
   the topology like any queue, so routing, bindings, exclusivity checks and deletion need no
   special case. What is stored counts into the broker's ready meter (body bytes plus
   ``STORED_OVERHEAD`` a message), so the memory alarm also guards streams kept in memory; a
   log that keeps its messages on disk (not ``metered``, ``streamlog.py`` rule 7) does not.
   With a journal (a data directory), each append is numbered in it (``STREAM_APPEND``), so
   its publisher confirm waits for the disk, and the stream's declaration and deletion are
   recorded like a durable queue's.
2. Each consumer reads with its own cursor (:class:`StreamConsumer`): every consumer sees every
   message from where it attached (``x-stream-offset``), in offset order, round-robin plays no
   part. A consumer needs a window (``basic.qos`` prefetch before ``basic.consume``) and
   manual acknowledgements; an ack only gives its credit back, and nothing is ever redelivered
   (a closed channel's deliveries are simply forgotten). The channel-wide (``global``) prefetch
   is refused at consume and ignored afterwards, as RabbitMQ does.
3. Every delivery carries the ``x-stream-offset`` header, ``redelivered`` is always false. The
   stored message is neither changed nor copied: the ``Deliver`` effect names it and its
   offset (``effects.py`` rule 4), and the protocol adds the header as it encodes it. Only
   with an observer (``fates.py``) is the copy with the header made, for the fates.
4. RabbitMQ's answers, with its codes and texts, as the profile (``generations.py``) says:
   no prefetch → 406; auto-ack → 540; global qos → 540; ``basic.get`` and ``queue.purge`` →
   540; ``basic.nack``, ``basic.reject`` and ``basic.recover`` of a stream delivery → 540 under
   RabbitMQ 3.10 (which fails a recover with 541; a 540 names the same cause), credit back
   like an ack since 3.13. These checks run before anything changes. An ack after the
   consumer was cancelled is accepted, as RabbitMQ does.
5. ``queue.declare-ok`` reports the stored messages and 0 consumers (RabbitMQ's counts come
   from metrics; 3.10 reports 0 consumers for a stream, and its message count catches up with
   the stored count within seconds). ``queue.delete-ok`` reports 0; ``if-unused`` and
   ``if-empty`` are ignored.
6. Retention (``streamlog.py`` rule 5) runs when a segment closes and, for ``x-max-age``, at the
   deadline the queue keeps on the broker's timer heap (``timers.py``): a ``ManualClock``
   advancing past it removes the old segments.
7. A consumer's outstanding deliveries share one ``Unacked`` record (queue, consumer; no
   message: a stream's ack, nack or closed channel only counts them), so a delivery costs a
   dict entry, not two objects. With an observer each has its own, naming its message.
8. A consumer's deliveries count into its connection's delivery burst (``channels.py``
   rule 5), each with ``DELIVERY_WEIGHT`` beside its body, and stop at the burst until the
   shell reports a flush (``SetWritable(True)``): a window of small messages goes out in
   writes of 256 deliveries, so the client reads and acks the first while the broker encodes
   the next. In one write a window of 1,000 was one round trip between the two processes.
   Measured (AMQP replay of 16 B messages, 2-core VM shared with other work, alternating
   A/B): a gain on the median (485,000 against 366,000 msg/s at load 3.5; 252,000-335,000
   against 134,000-158,000 at load 6) but not in every run (``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from minibroker.core import commands as c
from minibroker.core.channels import DELIVERY_BURST, BrokerChannel, BrokerConsumer, Unacked
from minibroker.core.effects import (
    ConsumeOk,
    Deliver,
    Effect,
    Outcome,
    QueueDeclareOk,
    with_offset,
)
from minibroker.core.equivalence import check_arguments, check_flag
from minibroker.core.fates import Fate
from minibroker.core.flow import ReadyMeter
from minibroker.core.generations import (
    STREAM_AUTO_ACK_TEXT,
    STREAM_FILTERING,
    STREAM_PREFETCH_TEXT,
    STREAM_SETTLES_ANY_OUTCOME,
)
from minibroker.core.queues import Queue
from minibroker.core.state import BrokerState
from minibroker.core.stores import QueueEntry
from minibroker.core.streamargs import (
    ConsumerSpec,
    StreamLimits,
    consumer_spec,
    stream_limits,
)
from minibroker.core.streamlog import STORED_OVERHEAD, Cursor, Log, StreamLog
from minibroker.core.timers import RETENTION, Timers
from minibroker.core.topology import queue_text
from minibroker.errors import NotImplementedFeature, PreconditionFailed
from minibroker.message import FieldTable, Message
from minibroker.valueclass import frozen_builder

_body = attrgetter("body")

__all__ = ["StreamConsumer", "StreamQueue", "Streams", "with_offset"]

#: Arguments compared when a stream is declared again (RabbitMQ 3.10).
EQUIVALENCE_CHECKED = (
    "x-queue-type", "x-max-length-bytes", "x-max-age", "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size", "x-queue-leader-locator",
)


class StreamQueue(Queue):
    """A stream: a queue whose messages are a log (rule 1)."""

    __slots__ = ("committed", "stream")
    stream: Log

    def __init__(
        self, name: str, *, arguments: FieldTable, log: Log, meter: ReadyMeter, now: float,
    ) -> None:
        super().__init__(name, durable=True, arguments=arguments, meter=meter, now=now)
        self.stream = log
        #: Offsets named consumers stored (``streamreads.py``).
        self.committed: dict[str, int] = log.stored_offsets()

    @property
    def message_count(self) -> int:
        """Stored messages (rule 5)."""
        return len(self.stream)

    def declare_ok(self) -> QueueDeclareOk:
        """Stored messages and 0 consumers (rule 5)."""
        return QueueDeclareOk(self.name, len(self.stream), 0)

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Deliveries coming back (a closed channel) are forgotten: the log still has them."""
        self.unacked -= sum(1 for _ in entries)

    def discard(self, entry: QueueEntry) -> None:
        self.unacked -= 1

    def settle(self, entry: QueueEntry) -> None:
        """An ack only returns credit: the log keeps the message (nothing to record)."""
        self.unacked -= 1
        self.acked += 1

    def purge(self) -> int:
        raise AssertionError("streams refuse queue.purge before it reaches the queue")

    def delete(self) -> int:
        """The stream dies with everything it stored; RabbitMQ reports 0 (rule 5)."""
        self.deleted = True
        self.stream.clear()
        self.store.delete()  # its share of the meter, the stream's weight included
        if self.journal is not None:
            self.journal.delete_queue(self.name)
        return 0

    def __repr__(self) -> str:
        log = self.stream
        return f"StreamQueue({self.name!r}, offsets={log.first_offset}..{log.next_offset})"


class StreamConsumer(BrokerConsumer):
    """A consumer of a stream: a cursor and a window (rule 2)."""

    __slots__ = ("reader", "record")

    def __init__(
        self, channel: BrokerChannel, queue: StreamQueue, consumer_tag: str, *,
        prefetch_count: int, arguments: FieldTable, reader: Cursor,
    ) -> None:
        super().__init__(
            channel, queue, consumer_tag, no_ack=False, exclusive=False,
            prefetch_count=prefetch_count, arguments=arguments,
        )
        self.reader = reader
        #: The unacked record every delivery of this consumer shares (rule 7).
        self.record = Unacked(queue, _NO_ENTRY, self)

    def has_credit(self) -> bool:
        # Only the consumer's own window counts: streams ignore the global prefetch (rule 8:
        # and the connection's delivery burst).
        connection = self.channel.connection
        return (connection.writable and self.unacked < self.prefetch_count
                and connection.burst < DELIVERY_BURST)


#: Rule 8: what a stream delivery weighs in its connection's delivery burst besides its
#: body: at most ``DELIVERY_BURST // DELIVERY_WEIGHT`` (256) deliveries a write.
DELIVERY_WEIGHT = 512
#: Rule 7: what the shared record names instead of a message.
_NO_ENTRY = QueueEntry(0, Message("", "", b""))
#: ``Deliver(...)``, for values the core just made (``valueclass.py``: about a third of the
#: frozen ``__init__``'s cost).
_build_deliver = frozen_builder(Deliver)


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A text for what streams do not do (rule 4); the profile's where it changed."""

    code: type[PreconditionFailed] | type[NotImplementedFeature]
    template: str

    def __call__(self, queue: str) -> PreconditionFailed | NotImplementedFeature:
        return self.code(self.template.format(queue=queue_text(queue)))


NO_GLOBAL_QOS = _Refusal(NotImplementedFeature, "{queue} does not support global qos")
NO_GET = _Refusal(NotImplementedFeature, "basic.get not supported by stream queues {queue}")
NO_PURGE = _Refusal(NotImplementedFeature, "queue.purge not supported by stream queues {queue}")
NO_REQUEUE = _Refusal(
    NotImplementedFeature, "basic.nack and basic.reject not supported by stream queues {queue}")


class Streams:
    """The broker's stream queues: declaration, appends, consumers, refusals, retention."""

    def __init__(
        self, state: BrokerState, timers: Timers, wall_time: Callable[[float], float],
    ) -> None:
        self.state = state
        self.timers = timers
        #: ``now`` -> Unix seconds (``lifecycle.py`` rule 4), for chunk timestamps.
        self.wall_time = wall_time
        #: The shell's factory of durable logs (``streamlog.py`` rule 7): a broker with a
        #: data directory keeps its streams on disk; ``None`` keeps them in memory.
        self.make_log: Callable[[str, StreamLimits], Log] | None = None

    # -- declaration ---------------------------------------------------------------------

    def create(self, command: c.DeclareQueue, name: str, now: float) -> StreamQueue:
        arguments = command.arguments or {}
        limits = stream_limits(
            name, arguments, durable=command.durable, exclusive=command.exclusive,
            auto_delete=command.auto_delete, filtering=self.state.profile[STREAM_FILTERING],
        )
        log = StreamLog(limits) if self.make_log is None else self.make_log(name, limits)
        queue = StreamQueue(name, arguments=arguments, log=log, meter=self.state.meter,
                            now=now)
        self.state.topology.add_queue(queue)
        journal = self.state.journal
        if journal is not None:  # a stream is durable (``journal.py`` rule 1)
            queue.journal = journal
            journal.declare_queue(queue)
        return queue

    @staticmethod
    def check_equivalent(queue: Queue, command: c.DeclareQueue) -> None:
        """A redeclaration must match (``equivalence.py``, with a stream's arguments); the
        caller checked the exclusive flag (405)."""
        what = queue_text(queue.name)
        check_flag(what, "durable", command.durable, queue.durable)
        check_flag(what, "auto_delete", command.auto_delete, queue.auto_delete)
        check_arguments(what, EQUIVALENCE_CHECKED, command.arguments or {}, queue.arguments)

    # -- refusals (rule 4) ---------------------------------------------------------------

    @staticmethod
    def refuse_get(queue: Queue) -> None:
        if queue.stream is not None:
            raise NO_GET(queue.name)

    @staticmethod
    def refuse_purge(queue: Queue) -> None:
        if queue.stream is not None:
            raise NO_PURGE(queue.name)

    def refuse_requeue(self, channel: BrokerChannel, tags: list[int] | None) -> None:
        """Before a nack, reject or recover changes anything: refuse it if it names a stream
        delivery and the profile says so (rule 4; since 3.13 they return credit like an ack).
        ``tags``: the delivery tags named (unknown ones are left to the caller's 406);
        ``None`` for every outstanding delivery of the channel."""
        if self.state.profile[STREAM_SETTLES_ANY_OUTCOME]:
            return
        unacked = channel.unacked
        named = unacked.values() if tags is None else (
            unacked[tag] for tag in tags if tag in unacked)
        for delivery in named:
            if delivery.queue.stream is not None:
                raise NO_REQUEUE(delivery.queue.name)

    # -- consumers -----------------------------------------------------------------------

    def consume(
        self, channel: BrokerChannel, queue: StreamQueue, command: c.Consume, now: float,
    ) -> Outcome:
        """``basic.consume`` on a stream, checked in RabbitMQ's order (rule 4)."""
        profile = self.state.profile
        spec: ConsumerSpec = consumer_spec(
            queue.name, command.arguments, filtering=profile[STREAM_FILTERING])
        if channel.prefetch_count == 0:
            raise PreconditionFailed(profile[STREAM_PREFETCH_TEXT].format(
                queue=queue_text(queue.name)))
        if command.no_ack:
            raise NotImplementedFeature(profile[STREAM_AUTO_ACK_TEXT].format(
                queue=queue_text(queue.name)))
        if channel.global_prefetch:
            raise NO_GLOBAL_QOS(queue.name)
        tag = command.consumer_tag
        if not tag:
            tag = self.state.make_name("amq.ctag-")
            while tag in channel.consumers:
                tag = self.state.make_name("amq.ctag-")
        log = queue.stream
        start = log.seek(spec.offset, self.wall_time(now))
        consumer = StreamConsumer(
            channel, queue, tag, prefetch_count=channel.prefetch_count,
            arguments=dict(command.arguments or {}),
            reader=log.reader(start, spec.filter, spec.match_unfiltered),
        )
        channel.consumers[tag] = consumer
        queue.consumers.add(consumer)
        effects: list[Effect] = []
        self.state.delivered += self._deliver(queue, consumer, effects)
        return Outcome(ConsumeOk(tag), effects)

    # -- messages in and out -------------------------------------------------------------

    def append(self, queue: Queue, message: Message, now: float, effects: list[Effect]) -> None:
        """Store a routed message; deliver it to the consumers waiting for it."""
        log = queue.stream
        assert log is not None
        closed = log.append(message, now, self.wall_time, effects)
        queue.published += 1
        journal = self.state.journal
        if journal is not None:
            journal.stream_append(queue.name)  # its confirm waits for the disk
        if log.metered:
            queue.store._meter_in(len(message.body) + STORED_OVERHEAD)
        if closed:
            self.retain(queue, now)
        if queue.consumers.members:
            self.state.delivered += self.dispatch(queue, effects)

    def append_many(self, queue: Queue, messages: Sequence[Message], now: float,
                    effects: list[Effect]) -> None:
        """:meth:`append` of each of one input's routed messages, in one call to the log
        (``streamlog.py`` rule 9)."""
        log = queue.stream
        assert log is not None
        closed = log.append_many(messages, now, self.wall_time, effects)
        queue.published += len(messages)
        journal = self.state.journal
        if journal is not None:
            journal.stream_append(queue.name, len(messages))  # their confirm waits for the disk
        if log.metered:
            queue.store._meter_in(sum(map(len, map(_body, messages)))
                                  + STORED_OVERHEAD * len(messages))
        if closed:
            self.retain(queue, now)
        if queue.consumers.members:
            self.state.delivered += self.dispatch(queue, effects)

    def dispatch(self, queue: Queue, effects: list[Effect]) -> int:
        """Deliver to every consumer of ``queue`` what its cursor and window allow."""
        delivered = 0
        for consumer in queue.consumers:
            assert isinstance(consumer, StreamConsumer)
            delivered += self._deliver(queue, consumer, effects)
        return delivered

    def _deliver(self, queue: Queue, consumer: StreamConsumer, effects: list[Effect]) -> int:
        reader = consumer.reader
        log = queue.stream
        assert log is not None
        if reader.offset >= log.next_offset:
            return 0
        channel = consumer.channel
        connection = channel.connection
        unacked = channel.unacked
        prefetch = consumer.prefetch_count
        observer = self.state.observer
        connection_id, number, consumer_tag = connection.id, channel.number, consumer.consumer_tag
        count = 0
        while (connection.writable and consumer.unacked < prefetch
               and connection.burst < DELIVERY_BURST):  # rule 8
            if reader.values is None:
                offset, run = reader.take_run(min(
                    prefetch - consumer.unacked,
                    # what fills the burst, rounded up: the loop ends past it (rule 8)
                    (DELIVERY_BURST - connection.burst + DELIVERY_WEIGHT - 1) // DELIVERY_WEIGHT))
                if not run:
                    break
            else:
                item = reader.take()
                if item is None:
                    break
                offset, run = item[0], [item[1]]
            tag = channel.next_delivery_tag
            channel.next_delivery_tag = tag + len(run)
            consumer.unacked += len(run)
            channel.consumer_unacked += len(run)
            count += len(run)
            if observer is None:
                # Rule 3: the stored message and its offset, not a copy with the header; one
                # shared record for every delivery (rule 7); the builder, not Deliver's frozen
                # __init__. Together: 46,207 -> 30,877 instructions a replayed AMQP delivery
                # (bench/replay_instructions.sh, callgrind).
                unacked.update(dict.fromkeys(range(tag, tag + len(run)), consumer.record))
                connection.burst += (sum([len(stored.body) for stored in run])
                                     + DELIVERY_WEIGHT * len(run))
                effects += [
                    _build_deliver(connection_id, number, consumer_tag, delivery_tag, False,
                                   stored, at)
                    for delivery_tag, at, stored in zip(
                        range(tag, tag + len(run)), range(offset, offset + len(run)), run,
                        strict=True)
                ]
                continue
            for stored in run:
                message = with_offset(stored, offset)
                unacked[tag] = Unacked(queue, QueueEntry(offset, message, 1), consumer)
                connection.burst += len(stored.body) + DELIVERY_WEIGHT
                effects.append(Deliver(connection_id, number, consumer_tag, tag, False, stored,
                                       offset))
                observer(Fate(
                    "delivered", message, queue=queue.name, connection=connection_id,
                    channel=number, consumer_tag=consumer_tag, delivery_tag=tag,
                    redelivered=False, no_ack=False,
                ))
                tag += 1
                offset += 1
        queue.delivered += count
        queue.unacked += count
        return count

    # -- retention (rule 6) --------------------------------------------------------------

    def retain(self, queue: Queue, now: float) -> None:
        """Apply the stream's retention limits; re-arm its age deadline."""
        log = queue.stream
        assert log is not None
        removed = log.retain(now)
        if removed:
            queue.store._meter_out(removed)
        deadline = log.retention_deadline()
        if deadline != log.deadline:
            log.deadline = deadline
            if deadline is not None:
                self.timers.schedule(deadline, RETENTION, queue)


def named_tags(channel: BrokerChannel, delivery_tag: int, multiple: bool) -> list[int] | None:
    """The outstanding tags an ack/nack/reject names (``None``: all of them)."""
    if multiple and delivery_tag == 0:
        return None
    if not multiple:
        return [delivery_tag]
    return [tag for tag in channel.unacked if tag <= delivery_tag]
