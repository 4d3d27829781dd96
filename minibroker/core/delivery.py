"""Delivery and settlement: how ready messages reach consumers and how acks bring them back.

Rules:

1. :func:`dispatch` pushes a queue's ready messages to its consumers, each time to the consumer
   whose turn it is and that has credit (``consumers.py``), and stops when none has any. A
   delivery that needs an ack is recorded on its channel under the next delivery tag; a no-ack
   delivery is settled at once.
2. :func:`take_unacked` validates before it removes anything: an unknown tag raises 406 and the
   channel keeps every delivery (``errors.py`` rule 5).
3. Credit is released exactly once per delivery: by :func:`settle` for ack/discard, by
   :func:`requeue` for requeue. Releasing it twice would let a consumer exceed its prefetch.
   Whoever releases credit wakes the consumer it belongs to (``consumers.py`` rule 4).
4. Requeued deliveries go back to their queues at their original positions, redelivered.
5. :func:`deliver_now`: a message for an *empty* plain queue whose one consumer has credit
   goes straight to that consumer, never entering the store (RabbitMQ's queue does the same:
   ``deliver_or_enqueue`` tries the consumers before the backing queue). The queue counts it
   exactly as enqueue + checkout (+ settle for no-ack) would. This is the no-ack case's whole
   path (a no-ack consumer keeps its queue empty) and every ack consumer's that keeps up.
6. The hot paths ask ``BrokerConsumer.has_credit()`` only when its commonest yes does not
   hold: a consumer that acknowledges, below its prefetch, on a channel without a global
   prefetch, its connection writable (that alone implies credit; a call a delivery less).
   :func:`deliver_now` also answers a no-ack consumer as ``has_credit`` does (writable, under
   its connection's ``DELIVERY_BURST``): the no-ack case's one call a message (callgrind
   native no-ack 55,058 -> 54,422, AMQP no-ack 95,230 -> 94,626 instructions a message).
7. A dispatch to a queue's only consumer emits its deliveries as one ``DeliverRun``
   (``effects.py`` rule 5) when there are several, a ``Deliver`` for one: the same tags, in
   the same order, as single deliveries would have. With several consumers every delivery
   stays a single ``Deliver`` (the turns interleave them). A fate observer hears of each
   delivery of a run (the lifecycle's "delivered" fates read ``effects.singles``).
   The run's tags are counted in a local and stored once: nothing the loop calls reads
   the channel's next tag. With the adapters' one codec call and one write a run, callgrind
   native --backlog (the suite's shape: every delivery dispatched from a backlog when acks
   free credit) 85,517 -> 77,719 instructions a message; the default shape, whose deliveries
   skip the queue (rule 5), builds no run (79,838 -> 79,877).
8. In a run to a consumer that acknowledges, with a prefetch window, no global prefetch and
   a writable connection, the window is the whole credit (``has_credit``'s answer cannot
   change while the run is dispatched): the run takes at most what the window has left,
   counted in a local, and the consumer's and channel's unacked counts grow once per run
   (callgrind native --backlog 77,719 -> 77,062 instructions a message).
9. :func:`settle` acks deliveries that all came from one queue to one consumer — a
   consumer's batch of acks, the usual case — with one count each (``Queue.settle_many``),
   not a step a delivery; the same counts, the same wake-up, the same queue to dispatch.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

from minibroker.core.channels import (
    DELIVERY_BURST,
    BrokerChannel,
    BrokerConsumer,
    Settlement,
    Unacked,
)
from minibroker.core.consumers import with_delivery_count
from minibroker.core.effects import Deliver, DeliverRun, Effect
from minibroker.core.queues import Queue
from minibroker.core.stores import REDELIVERED, QueueEntry
from minibroker.errors import PreconditionFailed
from minibroker.message import Message
from minibroker.valueclass import frozen_builder

__all__ = [
    "ACK", "DISCARD", "REQUEUE", "deliver_now", "dispatch", "requeue", "settle", "take_unacked",
    "wake_consumers",
]

_queue = attrgetter("queue")
_consumer = attrgetter("consumer")
_entry = attrgetter("entry")

ACK: Settlement = "ack"
REQUEUE: Settlement = "requeue"
DISCARD: Settlement = "discard"

#: ``Deliver(...)`` without the frozen ``__init__``'s checked stores (``valueclass.py``): one
#: per delivery. bench/instructions.py (callgrind, instructions a message), together with the
#: native adapter's ``build_message``: native ack 92,377 -> 84,181, no-ack 64,845 -> 56,646;
#: this alone, AMQP ack 128,512 -> 123,289, no-ack 100,703 -> 95,291.
_deliver = frozen_builder(Deliver)
#: A run's redelivered tags when none is (``DeliverRun.redelivered``), shared.
_NO_TAGS: frozenset[int] = frozenset()
#: ``DeliverRun(...)`` likewise: one per run (rule 7).
_deliver_run = frozen_builder(DeliverRun)


def dispatch(queue: Queue, now: float, effects: list[Effect]) -> int:
    """Deliver while the queue has ready messages and a consumer with credit; return how many.

    The delivery itself — the next delivery tag of the consumer's channel, recorded as unacked
    unless the consumer acknowledges on receipt — is written out in the loop: it runs once per
    message, and a call per message was measurable (``bench/core_hotpath.py``). A queue's only
    consumer gets its deliveries as one run (rule 7)."""
    ready = queue.ready
    if not ready:
        # Most dispatches after an ack of a consumer that keeps up: no call to the run's
        # function (callgrind native default shape 79,996 -> 79,932 instructions a message).
        return 0
    consumer = queue.consumers.single
    if consumer is not None:
        return _dispatch_run(queue, consumer, now, effects)
    ring = queue.consumers
    features = queue.features
    quorum = features is not None and features.limits.quorum
    delivered = 0
    while ready:
        consumer = ring.single
        if consumer is None:
            consumer = ring.next_turn()
            if consumer is None:
                break
        elif not (not consumer.no_ack and consumer.unacked < consumer.prefetch_count  # rule 6
                  and consumer.channel.connection.writable
                  and not consumer.channel.global_prefetch) and not consumer.has_credit():
            break  # the common case, one consumer, without the ring's heap
        entry = queue.checkout(now)
        if entry is None:
            break  # everything left had expired
        message = with_delivery_count(entry) if quorum else entry.message
        channel = consumer.channel
        connection = channel.connection
        connection.burst += len(message.body)
        tag = channel.next_delivery_tag
        channel.next_delivery_tag = tag + 1
        if consumer.no_ack:
            queue.settle(entry)
        else:
            channel.unacked[tag] = Unacked(queue, entry, consumer, now)
            consumer.unacked += 1
            channel.consumer_unacked += 1
        effects.append(_deliver(
            connection.id, channel.number, consumer.consumer_tag, tag,
            entry.state & REDELIVERED == REDELIVERED, message,  # redelivered, without a call
        ))
        delivered += 1
    return delivered


def _dispatch_run(
    queue: Queue, consumer: BrokerConsumer, now: float, effects: list[Effect]
) -> int:
    """Rule 7: :func:`dispatch` to the queue's only consumer, its deliveries as one run."""
    ready = queue.ready
    features = queue.features
    quorum = features is not None and features.limits.quorum
    channel = consumer.channel
    connection = channel.connection
    unacked = channel.unacked
    first = tag = channel.next_delivery_tag
    messages: list[Message] = []
    redelivered: list[int] = []
    if (not consumer.no_ack and consumer.prefetch_count and connection.writable
            and not channel.global_prefetch):
        # Rule 8: the consumer's window is its whole credit, counted down in a local.
        end = first + consumer.prefetch_count - consumer.unacked
        while ready and tag < end:
            entry = queue.checkout(now)
            if entry is None:
                break  # everything left had expired
            message = with_delivery_count(entry) if quorum else entry.message
            connection.burst += len(message.body)
            unacked[tag] = Unacked(queue, entry, consumer, now)
            if entry.state & REDELIVERED == REDELIVERED:
                redelivered.append(tag)
            messages.append(message)
            tag += 1
        consumer.unacked += tag - first
        channel.consumer_unacked += tag - first
    else:
        no_ack = consumer.no_ack
        while ready and consumer.has_credit():
            entry = queue.checkout(now)
            if entry is None:
                break
            message = with_delivery_count(entry) if quorum else entry.message
            connection.burst += len(message.body)
            if no_ack:
                queue.settle(entry)
            else:
                unacked[tag] = Unacked(queue, entry, consumer, now)
                consumer.unacked += 1
                channel.consumer_unacked += 1
            if entry.state & REDELIVERED == REDELIVERED:
                redelivered.append(tag)
            messages.append(message)
            tag += 1
    channel.next_delivery_tag = tag
    count = tag - first
    if count == 1:
        effects.append(_deliver(connection.id, channel.number, consumer.consumer_tag, first,
                                bool(redelivered), messages[0]))
    elif count:
        effects.append(_deliver_run(connection.id, channel.number, consumer.consumer_tag,
                                    first, tuple(messages),
                                    frozenset(redelivered) if redelivered else _NO_TAGS))
    return count


def deliver_now(queue: Queue, message: Message, now: float, effects: list[Effect]) -> bool:
    """Rule 5: deliver a new ``message`` to the queue's one consumer without storing it; False
    (nothing changed) unless the queue is plain, not durable, empty and its one consumer has
    credit. The caller counts the delivery (``BrokerState.delivered``).

    Measured with bench/instructions.py (callgrind, instructions a message, broker and driver
    together): native ack 106,590 -> 101,073; with the AMQP publish cache (``frames.py``),
    AMQP no-ack 141,982 -> 126,202 and ack 169,008 -> 156,556."""
    consumer = queue.consumers.single
    if consumer is None or queue.ready or not queue.plain or queue.journal is not None:
        return False
    channel = consumer.channel
    connection = channel.connection
    # Rule 6: has_credit()'s commonest answers without the call.
    if consumer.no_ack:
        if not (connection.writable and connection.burst < DELIVERY_BURST):
            return False
    elif not (consumer.unacked < consumer.prefetch_count and connection.writable
              and not channel.global_prefetch) and not consumer.has_credit():
        return False
    msg_id = queue.next_msg_id
    queue.next_msg_id = msg_id + 1
    queue.published += 1
    queue.delivered += 1
    connection.burst += len(message.body)
    tag = channel.next_delivery_tag
    channel.next_delivery_tag = tag + 1
    if consumer.no_ack:
        queue.acked += 1  # enqueue, checkout and settle at once: nothing is left unacked
    else:
        entry = QueueEntry(msg_id, message, 1)
        queue.unacked += 1
        channel.unacked[tag] = Unacked(queue, entry, consumer, now)
        consumer.unacked += 1
        channel.consumer_unacked += 1
    effects.append(_deliver(
        connection.id, channel.number, consumer.consumer_tag, tag, False, message,
    ))
    return True


def take_unacked(
    channel: BrokerChannel, delivery_tag: int, multiple: bool
) -> list[tuple[int, Unacked]]:
    """Remove and return the deliveries an ack/nack/reject names, validating first."""
    unacked = channel.unacked
    if multiple and delivery_tag == 0:
        # "If the multiple field is 1, and the delivery tag is zero, this indicates
        # acknowledgement of all outstanding messages."
        taken = list(unacked.items())
        unacked.clear()
        return taken
    if delivery_tag not in unacked:
        # RabbitMQ: also for multiple=true when the named tag itself is not outstanding.
        raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
    if not multiple:
        return [(delivery_tag, unacked.pop(delivery_tag))]
    tags = []
    for tag in unacked:  # insertion order is tag order
        if tag > delivery_tag:
            break
        tags.append(tag)
    return [(tag, unacked.pop(tag)) for tag in tags]


def settle(
    channel: BrokerChannel, settled: list[Unacked], action: Settlement
) -> tuple[list[Queue], int]:
    """Ack, discard or requeue deliveries of ``channel``; return the queues that may now
    deliver more (credit was freed) and how many deliveries were acked."""
    acked = 0
    if action == REQUEUE:
        touched = dict.fromkeys(requeue(settled))
    else:
        touched = {}
        if action == ACK and _one_source(settled):  # rule 9
            first = settled[0]
            consumer, queue = first.consumer, first.queue
            count = len(settled)
            if consumer is not None:
                consumer.unacked -= count
                channel.consumer_unacked -= count
                if consumer.turn is None:
                    queue.consumers.wake(consumer)
            queue.settle_many(list(map(_entry, settled)))
            if channel.global_prefetch:
                return list(dict.fromkeys([queue, *wake_consumers(channel)])), count
            return [queue], count
        # The verb chosen once, not per delivery (with rule 6 in deliver_now and dispatch:
        # callgrind native ack 81,278 -> 80,413 instructions a message; no-ack unchanged).
        finish = Queue.settle if action == ACK else Queue.discard
        for unacked in settled:
            consumer = unacked.consumer
            queue = unacked.queue
            if consumer is not None:
                consumer.unacked -= 1
                channel.consumer_unacked -= 1
                if consumer.turn is None:
                    queue.consumers.wake(consumer)
            finish(queue, unacked.entry)
            touched[queue] = None
        if action == ACK:
            acked = len(settled)
    if channel.global_prefetch:
        # Channel-wide credit was freed: every queue this channel consumes may go on.
        touched.update(dict.fromkeys(wake_consumers(channel)))
    return list(touched), acked


def _one_source(settled: list[Unacked]) -> bool:
    """Rule 9: every delivery of ``settled`` came from one queue to one consumer (C loops)."""
    return bool(settled) and (len(set(map(_queue, settled))) == 1
                              and len(set(map(_consumer, settled))) == 1)


def requeue(pending: Iterable[Unacked]) -> list[Queue]:
    """Return deliveries to their queues (original positions), releasing their credit; return
    the queues touched."""
    by_queue: dict[Queue, list[Unacked]] = {}
    for unacked in pending:
        by_queue.setdefault(unacked.queue, []).append(unacked)
    for queue, group in by_queue.items():
        for unacked in group:
            consumer = unacked.consumer
            if consumer is not None:
                consumer.unacked -= 1
                consumer.channel.consumer_unacked -= 1
                if consumer.turn is None:
                    queue.consumers.wake(consumer)
        queue.requeue(unacked.entry for unacked in group)
    return list(by_queue)


def wake_consumers(channel: BrokerChannel) -> list[Queue]:
    """Channel- or connection-wide credit may have come back (a settlement under a global
    prefetch, ``basic.qos``, a writable socket): wake every parked consumer of ``channel``
    (``consumers.py`` rule 4); return the queues they consume, each once."""
    queues: dict[Queue, None] = {}
    for consumer in channel.consumers.values():
        if consumer.turn is None:
            consumer.queue.consumers.wake(consumer)
        queues[consumer.queue] = None
    return list(queues)
