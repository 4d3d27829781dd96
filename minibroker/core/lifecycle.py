"""Queue lifecycle: what the broker does for queues with features — enqueue under limits,
dead-lettering, alternate exchanges, CC/BCC routing, and the timers (message TTL, queue expiry).

Rules:

1. Only queues with ``features`` (and messages with ``CC``/``BCC``/``expiration``) come here;
   a plain queue never does, so the hot path pays one attribute test per queue.
2. After any change to a queue with features, :meth:`QueueLifecycle._after_change` sweeps
   expired heads, applies ``drop-head``, dead-letters or drops what the queue put in ``dead``
   and re-arms the queue's TTL deadline. Every message that leaves is reported to the observer:
   "expired", "dropped" (with the reason), then "dead-lettered" (reason) when it is republished.
3. Dead-lettered copies are routed through the dead-letter exchange like a publish (CC keys,
   alternate exchange), minus the queues that would close an automatic cycle
   (``deadletter.is_cycle``). A missing dead-letter exchange drops the message (RabbitMQ).
4. Alternate exchange (RabbitMQ): "whenever an exchange with a configured AE cannot route a
   message to any queue, it publishes the message to the specified AE instead"; chains are
   followed, each exchange once.
5. Time: ``now`` of the current command (or timeout) is ``self.now``. The ``x-death`` ``time``
   needs wall-clock seconds: ``wall_time(now)`` is a pure function the shell supplies at
   construction (e.g. adding a fixed offset measured at start-up); by default ``now`` is taken
   to be seconds since the Unix epoch. The core never reads a clock.
6. ``x-expires``: a queue unused (no consumers, no ``basic.get``, no redeclare) for that long is
   deleted, its consumers — none, by definition — untouched and its messages dropped.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection, Sequence

from minibroker.core import deadletter
from minibroker.core.arguments import QueueLimits
from minibroker.core.delivery import dispatch
from minibroker.core.effects import Effect
from minibroker.core.exchanges import Exchange
from minibroker.core.fates import Fate
from minibroker.core.features import PLAIN_LIMITS, QueueFeatures
from minibroker.core.queues import Queue, QueueEntry
from minibroker.core.state import BrokerState
from minibroker.core.timers import EXPIRY, TTL, Timers
from minibroker.message import FieldTable, Message

__all__ = ["QueueLifecycle"]


def _epoch(now: float) -> float:
    return now


class QueueLifecycle(BrokerState):
    """Broker operations for queues with features, and the core's timers."""

    def __init__(
        self, *, make_name: Callable[[str], str] | None = None,
        wall_time: Callable[[float], float] | None = None,
    ) -> None:
        super().__init__(make_name=make_name)
        self.timers = Timers()
        #: ``now`` -> seconds since the Unix epoch (rule 5).
        self.wall_time: Callable[[float], float] = wall_time or _epoch

    # -- features on a queue -----------------------------------------------------------------

    def _give_features(self, queue: Queue, limits: QueueLimits = PLAIN_LIMITS) -> QueueFeatures:
        features = queue.features
        if features is None:
            features = queue.features = QueueFeatures(limits, self.now)
            # Existing ready messages count towards the byte limit from now on.
            features.ready_bytes = sum(len(entry.message.body) for entry in queue.ready)
            self._schedule_expiry(queue)
        return features

    def _queue_used(self, queue: Queue) -> None:
        """A declare, get, consume or cancel: restart the ``x-expires`` countdown (rule 6)."""
        features = queue.features
        if features is not None and features.expires is not None:
            features.last_used = self.now
            self._schedule_expiry(queue)

    def _schedule_expiry(self, queue: Queue) -> None:
        features = queue.features
        if features is None or features.expires is None or queue.consumers or queue.deleted:
            return
        deadline = features.last_used + features.expires
        if features.expiry_deadline != deadline:
            features.expiry_deadline = deadline
            self.timers.schedule(deadline, EXPIRY, queue)

    def _schedule_ttl(self, queue: Queue, features: QueueFeatures) -> None:
        deadline = features.head_deadline(queue)
        if deadline != features.ttl_deadline:
            features.ttl_deadline = deadline
            if deadline is not None:
                self.timers.schedule(deadline, TTL, queue)

    # -- enqueue ------------------------------------------------------------------------------

    def _enqueue_special(
        self, queue: Queue, message: Message, ttl: float | None, effects: list[Effect]
    ) -> bool:
        """Enqueue into a queue with features; False if ``reject-publish`` refused it."""
        features = queue.features or self._give_features(queue)
        if not features.accepts(queue, message):
            if features.limits.overflow == "reject-publish-dlx":
                self._settle_dead(queue, [(QueueEntry(0, message), "maxlen")], effects)
            elif self.observer is not None:
                self.observer(Fate("dropped", message, queue=queue.name, reason="maxlen"))
            return False
        features.enqueue(queue, message, self.now, ttl)
        self._dispatch_special(queue, effects)
        return True

    def _dispatch_special(self, queue: Queue, effects: list[Effect]) -> None:
        features = queue.features
        assert features is not None
        if queue.consumers and queue.ready:
            start = len(effects)
            self.delivered += dispatch(queue, self.now, effects)
            if self.observer is not None:
                self._observe_deliveries(queue, effects, start)
        self._after_change(queue, effects)

    def _after_change(self, queue: Queue, effects: list[Effect]) -> None:
        """Rule 2."""
        features = queue.features
        assert features is not None
        if queue.deleted:
            features.dead.clear()
            return
        features.sweep(queue, self.now)
        features.enforce_length(queue)
        if features.dead:
            dead, features.dead = features.dead, []
            self._settle_dead(queue, dead, effects)
        self._schedule_ttl(queue, features)

    # -- dead-lettering -----------------------------------------------------------------------

    def _settle_dead(
        self, queue: Queue, dead: list[tuple[QueueEntry, str]], effects: list[Effect]
    ) -> None:
        features = queue.features
        assert features is not None
        limits = features.limits
        observer = self.observer
        dlx_name = limits.dead_letter_exchange
        for entry, reason in dead:
            message = entry.message
            if observer is not None and reason != "rejected":  # "rejected" was reported
                kind = "expired" if reason == "expired" else "dropped"
                observer(Fate(kind, message, queue=queue.name, reason=reason))
            exchange = self.topology.exchanges.get(dlx_name) if dlx_name is not None else None
            if exchange is None:
                continue
            time = datetime.datetime.fromtimestamp(
                int(self.wall_time(self.now)), tz=datetime.UTC
            )
            copy, keys = deadletter.dead_letter(
                message, reason, queue.name, exchange.name, limits.dead_letter_routing_key, time,
            )
            if observer is not None:
                observer(Fate("dead-lettered", message, queue=queue.name, reason=reason))
            targets = [
                target for target in self._route_keys(exchange, keys, copy.properties.headers)
                if not deadletter.is_cycle(copy, target.name)
            ]
            self._enqueue_all(copy, targets, None, effects)

    # -- routing helpers ------------------------------------------------------------------------

    def _route_keys(
        self, exchange: Exchange, keys: Sequence[str], headers: FieldTable | None,
    ) -> Collection[Queue]:
        """The queues reached by publishing to ``exchange`` with any of ``keys`` (CC/BCC),
        falling back to alternate exchanges (rule 4)."""
        route = self.topology.route
        seen = {exchange.name}
        while True:
            if len(keys) == 1:
                queues = route(exchange, keys[0], headers)
            else:
                found: dict[str, Queue] = {}
                for key in keys:
                    found.update((queue.name, queue) for queue in route(exchange, key, headers))
                queues = found.values()
            if queues:
                return queues
            alternate = exchange.arguments.get("alternate-exchange")
            if not isinstance(alternate, str) or alternate in seen:
                return queues
            seen.add(alternate)
            following = self.topology.exchanges.get(alternate)
            if following is None:
                return queues
            exchange = following

    def _enqueue_all(
        self, message: Message, queues: Collection[Queue], ttl: float | None,
        effects: list[Effect],
    ) -> bool:
        """Enqueue ``message`` in each queue; False if one refused it (``reject-publish``)."""
        if self.observer is not None:
            self.observer(Fate("routed", message, queues=tuple(queue.name for queue in queues)))
        accepted = True
        for queue in queues:
            if queue.features is None and ttl is None:
                queue.enqueue(message)
                if queue.consumers:
                    self._dispatch(queue, effects)
            elif not self._enqueue_special(queue, message, ttl, effects):
                accepted = False
        return accepted

    # -- timers -------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`handle_timeout` has work to do."""
        return self.timers.next_deadline()

    def handle_timeout(self, *, now: float) -> list[Effect]:
        """Fire every timer due at ``now``: expire messages (dead-lettering them, which may
        deliver to consumers of other queues) and delete expired queues."""
        self.now = now
        effects: list[Effect] = []
        for kind, queue in self.timers.due(now):
            features = queue.features
            if queue.deleted or features is None:
                continue
            if kind == TTL:
                features.ttl_deadline = None
                self._after_change(queue, effects)
                continue
            features.expiry_deadline = None
            if not queue.consumers and features.expires is not None:
                if features.last_used + features.expires <= now:
                    self._remove_queue(queue, effects)
                else:
                    self._schedule_expiry(queue)
        return effects
