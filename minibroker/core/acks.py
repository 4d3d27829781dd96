"""Acknowledgements: ``basic.get``, ``ack``, ``nack``, ``reject`` and ``recover`` — the hot
path's second half.

Rules:

1. An ack, nack or reject names deliveries of its own channel; every tag is checked before any
   is taken (``delivery.take_unacked``), so a refused command — or a refused ``AckMany`` batch —
   leaves every delivery unacked (the adapter then replays a batch one ack at a time).
2. Settling frees the consumer's credit and dispatches again in the same outcome: the next
   message is already on its way with the ack's answer.
3. On a transactional channel settlements wait for ``tx.commit``; credit stays taken until then
   (RabbitMQ). ``transactions.py`` applies them.
4. ``basic.get`` is a delivery without a consumer: the channel's next delivery tag, unacked
   unless ``no_ack``, and a use of the queue (its ``x-expires`` lease is renewed).
5. Streams (``streams.py`` rule 4): ``basic.get`` of a stream is refused (540); a nack,
   reject or recover of a stream delivery is refused (540) under RabbitMQ 3.10's profile and
   gives the credit back like an ack since 3.13 — checked before anything changes. An ack only
   gives credit back.
"""

from __future__ import annotations

from minibroker.core import commands as c
from minibroker.core import delivery
from minibroker.core.channels import BrokerChannel, Settlement, Unacked
from minibroker.core.consumers import with_delivery_count
from minibroker.core.effects import GET_EMPTY, Effect, GetOk, Outcome
from minibroker.core.fates import Fate
from minibroker.core.lifecycle import QueueLifecycle
from minibroker.core.state import BrokerState
from minibroker.core.streams import named_tags
from minibroker.errors import NotImplementedFeature, PreconditionFailed

__all__ = ["Acknowledgements"]


class Acknowledgements:
    """``basic.get``/``ack``/``nack``/``reject``/``recover``, and settlement for tx commit."""

    def __init__(self, state: BrokerState, lifecycle: QueueLifecycle) -> None:
        self.state = state
        self.lifecycle = lifecycle

    def get(self, command: c.Get, now: float) -> Outcome:
        state = self.state
        channel = state.channel(command)
        queue = state.usable_queue(channel, command.queue)
        self.lifecycle.streams.refuse_get(queue)
        self.lifecycle.queue_used(queue, now)
        effects: list[Effect] = []
        entry = queue.checkout(now)
        if entry is not None:
            tag = channel.take_delivery_tag()
            if command.no_ack:
                queue.settle(entry)
            else:
                channel.unacked[tag] = Unacked(queue, entry, None, now)
        if queue.features is not None:
            self.lifecycle.after_change(queue, now, effects)
        if entry is None:
            return Outcome(GET_EMPTY, effects)
        state.delivered += 1
        limits = queue.limits
        message = (with_delivery_count(entry, first=limits.count_first_get) if limits.quorum
                   else entry.message)
        if state.observer is not None:
            state.observer(Fate(
                "delivered", message, queue=queue.name, connection=channel.connection.id,
                channel=channel.number, delivery_tag=tag, redelivered=entry.redelivered,
                no_ack=command.no_ack,
            ))
        return Outcome(
            GetOk(tag, entry.redelivered, message.exchange, message.routing_key,
                  len(queue.ready), message), effects,
        )

    def ack(self, command: c.Ack, now: float) -> Outcome:
        """``basic.ack``: settle, free credit, deliver more."""
        channel = self.state.channel(command)
        taken = delivery.take_unacked(channel, command.delivery_tag, command.multiple)
        return self._settle(channel, taken, delivery.ACK, "acked", now)

    def ack_many(self, command: c.AckMany, now: float) -> Outcome:
        """Several single acks on one channel as one input, settled together and followed by
        one dispatch (rule 1)."""
        channel = self.state.channel(command)
        unacked = channel.unacked
        tags = command.delivery_tags
        distinct = set(tags)
        # Every tag known and none twice, checked in C; the loops below only name the culprit.
        if len(distinct) != len(tags) or not unacked.keys() >= distinct:
            for tag in tags:
                if tag not in unacked:
                    raise PreconditionFailed(f"unknown delivery tag {tag}")
            seen: set[int] = set()
            for tag in tags:  # the second ack of the same tag is the unknown one
                if tag in seen:
                    raise PreconditionFailed(f"unknown delivery tag {tag}")
                seen.add(tag)
        pop = unacked.pop
        if channel.tx is not None:
            return self._settle(channel, [(tag, pop(tag)) for tag in tags], delivery.ACK,
                                "acked", now)
        # No (tag, delivery) pairs to take apart again: the settlements straight away. With
        # the check above, bench/instructions.py native (callgrind): 101,047 -> 100,678
        # instructions a message.
        effects: list[Effect] = []
        self.apply(channel, list(map(pop, tags)), delivery.ACK, now, effects, "acked")
        return Outcome(None, effects)

    def nack(self, command: c.Nack, now: float) -> Outcome:
        channel = self.state.channel(command)
        self.lifecycle.streams.refuse_requeue(
            channel, named_tags(channel, command.delivery_tag, command.multiple))
        taken = delivery.take_unacked(channel, command.delivery_tag, command.multiple)
        return self._settle(channel, taken, _requeue_or_discard(command.requeue), "nacked", now)

    def reject(self, command: c.Reject, now: float) -> Outcome:
        channel = self.state.channel(command)
        self.lifecycle.streams.refuse_requeue(channel, [command.delivery_tag])
        taken = delivery.take_unacked(channel, command.delivery_tag, False)
        return self._settle(channel, taken, _requeue_or_discard(command.requeue), "rejected",
                            now)

    def recover(self, command: c.Recover, now: float) -> Outcome:
        channel = self.state.channel(command)
        if not command.requeue:
            # RabbitMQ does not implement redelivery to the original recipient.
            raise NotImplementedFeature("requeue=false")
        self.lifecycle.streams.refuse_requeue(channel, None)
        pending = list(channel.unacked.values())
        channel.unacked.clear()
        effects: list[Effect] = []
        self.apply(channel, pending, delivery.REQUEUE, now, effects, "requeued")
        return Outcome(None, effects)

    def _settle(
        self, channel: BrokerChannel, taken: list[tuple[int, Unacked]], action: Settlement,
        verb: str, now: float,
    ) -> Outcome:
        if channel.tx is not None:
            # Rule 3.
            channel.tx.settlements.extend((tag, unacked, action) for tag, unacked in taken)
            return Outcome()
        effects: list[Effect] = []
        self.apply(channel, [unacked for _, unacked in taken], action, now, effects, verb)
        return Outcome(None, effects)

    def apply(
        self, channel: BrokerChannel, settled: list[Unacked], action: Settlement, now: float,
        effects: list[Effect], verb: str = "",
    ) -> None:
        """Carry out settlements of ``channel``'s deliveries, then dispatch what freed credit
        or returned messages allow (rule 2)."""
        if self.state.observer is not None:
            self._observe(channel, settled, action, verb)
        touched, acked = delivery.settle(channel, settled, action)
        self.state.acked += acked
        self.lifecycle.dispatch_all(touched, now, effects)

    def _observe(
        self, channel: BrokerChannel, settled: list[Unacked], action: Settlement, verb: str
    ) -> None:
        observer = self.state.observer
        assert observer is not None
        kind = verb or {delivery.ACK: "acked", delivery.REQUEUE: "requeued"}.get(action, "rejected")
        for unacked in settled:
            observer(Fate(
                kind, unacked.entry.message, queue=unacked.queue.name,
                connection=channel.connection.id, channel=channel.number,
                requeue=action == delivery.REQUEUE,
            ))


def _requeue_or_discard(requeue: bool) -> Settlement:
    return delivery.REQUEUE if requeue else delivery.DISCARD
