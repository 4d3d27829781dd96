"""Queue lifecycle: a queue's life from creation to deletion — messages in (the one enqueue
loop), deliveries out, queue features, dead-lettering, and the timers (message TTL, x-expires).

Rules:

1. Every message enters queues through :meth:`QueueLifecycle.enqueue`, whether a client
   published it or a queue dead-lettered it. A queue with a plain store takes it on the hot
   path: straight to its consumer when it is empty and its one consumer has credit
   (``delivery.py`` rule 5), else enqueue, and dispatch only into a queue that was empty (a
   backlog means no consumer had credit at the end of the last dispatch, and everything that
   gives credit back dispatches itself). A queue with features, or a message that can
   expire, takes the feature path.
2. After any change to a queue with features, :meth:`QueueLifecycle.after_change` sweeps
   expired heads, applies ``drop-head``, dead-letters or drops what the store put in ``dead``
   and re-arms the queue's TTL deadline. A queue declared without features that took a store
   with features for an expiring message goes back to the plain store as soon as it holds no
   message that can expire (``features.py`` rule 6). Every message that leaves is reported to
   the observer: "expired", "dropped" (with the reason), then "dead-lettered" when it is
   republished.
3. Dead-lettered copies are routed through the dead-letter exchange like a publish (CC keys,
   alternate exchange), minus the queues that would close an automatic cycle
   (``deadletter.is_cycle``). A missing dead-letter exchange drops the message (RabbitMQ).
4. Time arrives as ``now`` with every call; nothing here remembers it. The ``x-death``
   ``time`` needs wall-clock seconds: ``wall_time(now)`` is a pure function the shell supplies
   at construction (e.g. adding a fixed offset measured at start-up); by default ``now`` is
   taken to be seconds since the Unix epoch.
5. ``x-expires``: a queue unused (no consumers, no ``basic.get``, no redeclare) for that long
   is deleted, its messages dropped. Each use renews its lease (:meth:`queue_used`).
6. Stream queues (``streams.py``) take their own path at the two doors: a routed message is
   appended to the stream's log, and dispatching a stream serves each consumer from its own
   cursor. ``streams`` owns them; their age retention fires from the same timer heap.
7. :meth:`QueueLifecycle.enqueue_run`, the one exception to rule 1: a publisher's run of new
   messages for one plain queue (``publishing.py`` rule 6), with no observer, no TTL and
   nothing for a journal, goes into the store with one ``extend`` and is dispatched once,
   if the queue was empty. That is rule 1's outcome message by message — the deliveries,
   their order and tags, the counters: a message delivered at once counts as enqueued and
   taken, as ``deliver_now`` counts it; and into a backlog rule 1 dispatches nothing either.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection, Iterable

from minibroker.core import deadletter, delivery
from minibroker.core.arguments import QueueLimits
from minibroker.core.channels import BrokerChannel
from minibroker.core.effects import ConsumerCancelled, Deliver, Effect, singles
from minibroker.core.fates import Fate
from minibroker.core.features import PLAIN_LIMITS, FeatureStore, needs_features
from minibroker.core.queues import Queue
from minibroker.core.state import BrokerState
from minibroker.core.stores import FifoStore, QueueEntry
from minibroker.core.streams import Streams
from minibroker.core.timers import EXPIRY, RETENTION, TTL, Timers
from minibroker.message import FieldTable, Message

__all__ = ["QueueLifecycle"]


def _epoch(now: float) -> float:
    return now


class QueueLifecycle:
    """Creation, enqueue, dispatch, features, dead-lettering, expiry and deletion of queues."""

    def __init__(
        self, state: BrokerState, *, wall_time: Callable[[float], float] | None = None
    ) -> None:
        self.state = state
        self.topology = state.topology
        self.timers = Timers()
        #: ``now`` -> seconds since the Unix epoch (rule 4).
        self.wall_time: Callable[[float], float] = wall_time or _epoch
        #: The stream queues' collaborator (rule 6).
        self.streams = Streams(state, self.timers, self.wall_time)

    # -- birth and death ---------------------------------------------------------------------

    def create_queue(
        self, name: str, *, durable: bool, exclusive_owner: int | None, auto_delete: bool,
        arguments: FieldTable, limits: QueueLimits | None, now: float,
    ) -> Queue:
        queue = Queue(
            name, durable=durable, exclusive_owner=exclusive_owner, auto_delete=auto_delete,
            arguments=arguments, limits=limits or PLAIN_LIMITS, meter=self.state.meter, now=now,
        )
        self.topology.add_queue(queue)
        journal = self.state.journal
        if journal is not None and durable and exclusive_owner is None:
            queue.journal = journal  # ``journal.py`` rule 1
            journal.declare_queue(queue)
        self._schedule_expiry(queue)
        return queue

    def remove_queue(self, queue: Queue, effects: list[Effect]) -> int:
        """Delete ``queue``, telling each of its consumers (RabbitMQ's consumer cancel notify);
        return how many ready messages died with it."""
        for consumer in queue.consumers:
            channel = consumer.channel
            del channel.consumers[consumer.consumer_tag]
            effects.append(
                ConsumerCancelled(channel.connection.id, channel.number, consumer.consumer_tag)
            )
        queue.consumers.clear()
        if queue.exclusive_owner is not None:
            owner = self.state.connections.get(queue.exclusive_owner)
            if owner is not None:
                owner.exclusive_queues.discard(queue.name)
        self.observe_ready(queue, "deleted")
        return self.topology.remove_queue(queue)

    def queue_used(self, queue: Queue, now: float) -> None:
        """A declare, get, consume or cancel: renew the ``x-expires`` lease (rule 5)."""
        lease = queue.lease
        if lease is not None:
            lease.last_used = now
            self._schedule_expiry(queue)

    def _schedule_expiry(self, queue: Queue) -> None:
        lease = queue.lease
        if lease is None or queue.consumers or queue.deleted:
            return
        deadline = lease.last_used + lease.expires
        if lease.deadline != deadline:
            lease.deadline = deadline
            self.timers.schedule(deadline, EXPIRY, queue)

    # -- messages in (rule 1) ----------------------------------------------------------------

    def enqueue(
        self, message: Message, queues: Collection[Queue], ttl: float | None, now: float,
        effects: list[Effect], channel: BrokerChannel | None = None,
    ) -> bool:
        """Enqueue a routed message in each of its queues and deliver what can be delivered;
        False if a queue refused it (``reject-publish``). ``ttl``: the message's own TTL;
        ``channel``: the publisher's, ``None`` for a dead-lettered copy."""
        state = self.state
        observer = state.observer
        if observer is not None:
            observer(Fate(
                "routed", message, queues=tuple(queue.name for queue in queues),
                connection=None if channel is None else channel.connection.id,
                channel=None if channel is None else channel.number,
            ))
        accepted = True
        for queue in queues:
            if queue.stream is not None:
                self.streams.append(queue, message, now, effects)  # rule 6
            elif queue.features is None and ttl is None:
                if observer is None and delivery.deliver_now(queue, message, now, effects):
                    state.delivered += 1  # an empty queue's consumer took it (rule 1)
                    continue
                queue.enqueue(message)
                # Under a publisher flood this saves one futile dispatch per publish (the
                # consumer's window is full; measured: 690,000 dispatches for 360,000
                # deliveries before).
                if len(queue.ready) == 1 and queue.consumers.members:
                    if observer is None:
                        state.delivered += delivery.dispatch(queue, now, effects)
                    else:
                        self.dispatch(queue, now, effects)
            elif not self._enqueue_featured(queue, message, ttl, now, effects):
                accepted = False
        return accepted

    def enqueue_run(
        self, queue: Queue, messages: list[Message], now: float, effects: list[Effect],
    ) -> None:
        """Rule 7: new ``messages`` into the plain ``queue``, dispatched once. Into an empty
        queue they first go straight to its consumer while it takes them (rule 1)."""
        if queue.ready:
            queue.enqueue_many(messages)  # a backlog: nobody has credit (rule 1)
            return
        taken = 0
        deliver_now = delivery.deliver_now
        for message in messages:
            if not deliver_now(queue, message, now, effects):
                break
            taken += 1
        if taken:
            self.state.delivered += taken
            if taken == len(messages):
                return
            messages = messages[taken:]
        queue.enqueue_many(messages)
        if queue.consumers.members:
            self.state.delivered += delivery.dispatch(queue, now, effects)

    def _enqueue_featured(
        self, queue: Queue, message: Message, ttl: float | None, now: float,
        effects: list[Effect],
    ) -> bool:
        """Enqueue on the feature path; False if ``reject-publish`` refused the message."""
        features = queue.features
        if features is None:
            # A plain queue takes its first message that can expire (rule 2).
            store = queue.store
            features = FeatureStore(queue, store.meter, queue.limits, store.ready, store.weight)
            queue.use_store(features)
        if not features.accepts(message):
            if features.limits.overflow == "reject-publish-dlx":
                self._dead_letter(queue, [(QueueEntry(0, message), "maxlen")], now, effects)
            elif self.state.observer is not None:
                self.state.observer(Fate("dropped", message, queue=queue.name, reason="maxlen"))
            return False
        queue.enqueue(message, now, ttl)
        self.dispatch(queue, now, effects)
        return True

    # -- deliveries out ----------------------------------------------------------------------

    def dispatch(self, queue: Queue, now: float, effects: list[Effect]) -> None:
        """Deliver what the queue's consumers can take; then, for a queue with features, apply
        its rules (rule 2)."""
        state = self.state
        if queue.stream is not None:
            state.delivered += self.streams.dispatch(queue, effects)  # rule 6
            return
        if state.observer is None:
            state.delivered += delivery.dispatch(queue, now, effects)
        else:
            start = len(effects)
            state.delivered += delivery.dispatch(queue, now, effects)
            self._observe_deliveries(queue, effects, start)
        if queue.features is not None:
            self.after_change(queue, now, effects)

    def dispatch_all(self, queues: Iterable[Queue], now: float, effects: list[Effect]) -> None:
        """Dispatch each live queue that may deliver: requeues, rejections and freed credit
        change a queue with features even without consumers (TTL head, dead-lettering)."""
        for queue in queues:
            if not queue.deleted and (queue.consumers.members or queue.features is not None):
                self.dispatch(queue, now, effects)

    def after_change(self, queue: Queue, now: float, effects: list[Effect]) -> None:
        """Rule 2."""
        features = queue.features
        assert features is not None
        if queue.deleted:
            features.dead.clear()
            return
        features.sweep(now)
        features.enforce_length()
        if features.dead:
            self._dead_letter(queue, features.take_dead(), now, effects)
        if not features.timed and not needs_features(queue.limits):
            features.ttl_deadline = None  # its timer entry goes stale (``timers.py`` rule 1)
            queue.use_store(FifoStore(queue, features.meter, features.ready, features.weight))
            return
        deadline = features.head_deadline()
        if deadline != features.ttl_deadline:
            features.ttl_deadline = deadline
            if deadline is not None:
                self.timers.schedule(deadline, TTL, queue)

    # -- dead-lettering (rule 3) --------------------------------------------------------------

    def _dead_letter(
        self, queue: Queue, dead: list[tuple[QueueEntry, str]], now: float,
        effects: list[Effect],
    ) -> None:
        limits = queue.limits
        observer = self.state.observer
        dlx_name = limits.dead_letter_exchange
        exchange = self.topology.exchanges.get(dlx_name) if dlx_name is not None else None
        journal = queue.journal
        for entry, reason in dead:
            message = entry.message
            # It leaves the queue for good ("rejected" was recorded by ``Queue.discard``; a
            # refused publish, msg_id 0, never entered).
            if (journal is not None and reason != "rejected" and entry.msg_id
                    and message.properties.delivery_mode == 2):
                journal.settle(queue.name, entry.msg_id)
            if observer is not None and reason != "rejected":  # "rejected" was reported
                kind = "expired" if reason == "expired" else "dropped"
                observer(Fate(kind, message, queue=queue.name, reason=reason))
            if exchange is None:
                continue
            time = datetime.datetime.fromtimestamp(int(self.wall_time(now)), tz=datetime.UTC)
            copy, keys = deadletter.dead_letter(
                message, reason, queue.name, exchange.name, limits.dead_letter_routing_key, time,
            )
            if observer is not None:
                observer(Fate("dead-lettered", message, queue=queue.name, reason=reason))
            targets = [
                target for target in
                self.topology.route_keys(exchange, keys, copy.properties.headers)
                if not deadletter.is_cycle(copy, target.name)
            ]
            self.enqueue(copy, targets, None, now, effects)

    # -- timers --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`handle_timeout` has work to do."""
        return self.timers.next_deadline()

    def handle_timeout(self, now: float) -> list[Effect]:
        """Fire every timer due at ``now``: expire messages (dead-lettering them, which may
        deliver to consumers of other queues) and delete expired queues."""
        effects: list[Effect] = []
        for kind, queue in self.timers.due(now):
            if kind == TTL:
                features = queue.features
                if features is not None:
                    features.ttl_deadline = None
                    self.after_change(queue, now, effects)
                continue
            if kind == RETENTION:
                if queue.stream is not None:
                    queue.stream.deadline = None
                    self.streams.retain(queue, now)
                continue
            lease = queue.lease
            if lease is None or queue.deleted:
                continue
            lease.deadline = None
            if not queue.consumers:
                if lease.last_used + lease.expires <= now:
                    self.remove_queue(queue, effects)
                else:
                    self._schedule_expiry(queue)
        return effects

    # -- the observer ----------------------------------------------------------------------------

    def observe_ready(self, queue: Queue, kind: str) -> None:
        """Report every ready message of ``queue`` as ``kind`` (before it is dropped)."""
        observer = self.state.observer
        if observer is not None:
            for entry in queue.entries():
                observer(Fate(kind, entry.message, queue=queue.name))

    def _observe_deliveries(self, queue: Queue, effects: list[Effect], start: int) -> None:
        observer = self.state.observer
        assert observer is not None
        connections = self.state.connections
        for effect in singles(effects[start:]):  # a run's deliveries one by one
            if isinstance(effect, Deliver):
                unacked = connections[effect.connection].channels[effect.channel].unacked
                observer(Fate(
                    "delivered", effect.message, queue=queue.name, connection=effect.connection,
                    channel=effect.channel, consumer_tag=effect.consumer_tag,
                    delivery_tag=effect.delivery_tag, redelivered=effect.redelivered,
                    no_ack=effect.delivery_tag not in unacked,
                ))
