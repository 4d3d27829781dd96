"""Consumer selection for queues with features: consumer priorities, single active consumer,
expiry-aware checkout and the quorum ``x-delivery-count`` header.

Rules:

1. Consumer priorities (RabbitMQ): "active consumers with the highest priority receive messages
   first [...] messages will be delivered round-robin among consumers of the same priority"; a
   consumer without credit (prefetch reached, connection blocked) is skipped, so a lower
   priority consumer gets the message when every higher one is full.
2. Single active consumer (``x-single-active-consumer``): only the first consumer subscribed
   receives; when it is cancelled the next one in subscription order takes over.
3. Delivery itself is the same as ``delivery.dispatch`` (tags, unacked, credit); only the choice
   of consumer and the checkout (``QueueFeatures.checkout`` skips expired heads) differ.
4. Quorum queues carry ``x-delivery-count`` (the number of earlier, returned deliveries) on
   every delivery (RabbitMQ 3.10 sends 0 on the first one); the stored message is not changed.
"""

from __future__ import annotations

from dataclasses import replace

from minibroker.core.channels import Consumer
from minibroker.core.delivery import hand_out
from minibroker.core.effects import Effect
from minibroker.core.features import QueueFeatures
from minibroker.core.queues import Queue, QueueEntry
from minibroker.message import Message

__all__ = ["dispatch_features", "pick_consumer", "with_delivery_count"]


def pick_consumer(queue: Queue, features: QueueFeatures) -> Consumer | None:
    """The consumer that takes the next delivery, or ``None`` if none can (rules 1-2)."""
    consumers = queue.consumers
    if not consumers:
        return None
    if features.limits.single_active_consumer:
        active = consumers[0]
        return active if active.has_credit() else None
    for priority in sorted({consumer.priority for consumer in consumers}, reverse=True):
        level = [consumer for consumer in consumers if consumer.priority == priority]
        start = features.round_robin.get(priority, 0)
        for step in range(len(level)):
            index = (start + step) % len(level)
            if level[index].has_credit():
                features.round_robin[priority] = index + 1
                return level[index]
    return None


def with_delivery_count(entry: QueueEntry) -> Message:
    """The message with ``x-delivery-count`` set to its earlier deliveries (rule 4)."""
    message = entry.message
    headers = dict(message.properties.headers or {})
    headers["x-delivery-count"] = entry.delivery_count - 1
    return replace(message, properties=replace(message.properties, headers=headers))


def dispatch_features(
    queue: Queue, features: QueueFeatures, now: float, effects: list[Effect]
) -> int:
    """Deliver while a consumer can take the head; return how many were delivered."""
    delivered = 0
    quorum = features.limits.quorum
    while queue.ready:
        consumer = pick_consumer(queue, features)
        if consumer is None:
            break
        entry = features.checkout(queue, now)
        if entry is None:
            break
        hand_out(queue, consumer, entry, with_delivery_count(entry) if quorum else entry.message,
                 effects)
        delivered += 1
    return delivered
