"""Per-queue credit flow: a publisher feeding a queue whose consumers lag is paused alone.

RabbitMQ's ``credit_flow`` gives every publishing connection credit towards each queue it
publishes to; a connection that used up its credit on a queue that cannot keep up stops being
read until that queue grants more, while every other connection goes on. The global resource
alarm (``flow.py``) is the last line of defence; credit flow keeps a single slow queue's
backlog, and so the work the broker does per message, small, without stopping publishers of
other queues. Our broker enqueues synchronously, so a queue "keeps up" as long as its
consumers take what arrives: its credit is its ready backlog.

Rules:

1. A queue *lags* when it has consumers and more than ``queue_credit`` ready messages
   (``ServerConfig.queue_credit``, ``--queue-credit``; 0 turns credit flow off). A queue
   without consumers never lags: it is storage, bounded by the alarms only, so messages can be
   queued for consumers that come later.
2. A connection whose input published into a lagging queue is *paused*: its socket is not read
   (``Session.hold_reading("credit")``) after that input, so it overshoots by at most one read.
   It stays paused until every queue it waits for grants credit again: its ready count falls to
   ``queue_credit // 2`` (its consumers drained it), or it loses its last consumer, or it is
   deleted. Nothing is dropped or refused; the paused publisher's bytes wait in its socket.
3. Only publishing pauses: an input that published nothing (acks, a requeue, a nack that
   dead-letters into a lagging queue) never pauses its connection.
4. No deadlock: a connection with a consumer that acknowledges (not ``no_ack``) is never
   paused by credit, because its acks may be what drains the queue it would wait for (its own,
   or one in a cycle of such connections). Such a publisher is bounded by the alarms alone, as
   before credit flow existed. (RabbitMQ pauses it anyway; its documentation advises separate
   connections for publishing and consuming.)
5. Credit flow is silent, as RabbitMQ's: no ``connection.blocked``, which stays the memory and
   disk alarms' notification. The management API shows the connection's state as ``flow``.
6. Cost: the core's stores put a queue in the meter's ``long_queues`` set when an append takes
   it past the lowest per-queue mark (``core/flow.py``); only while that set is not empty does
   the shell walk it after an input (:meth:`CreditFlow.watch`), one length and one counter
   comparison per queue. A queue leaves the set once its ready count is at or below the lower
   of the two low marks. Which queues an input fed is read from each queue's ``published``
   counter, remembered after every watch; every input is watched (reads, lost sockets,
   drained buffers, timers, management requests), so a counter that moved was moved by the
   input just run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minibroker.core.flow import ReadyMeter
    from minibroker.core.queues import Queue
    from minibroker.server.session import Session

__all__ = ["CreditFlow"]

log = logging.getLogger("minibroker.server")


class CreditFlow:
    """The lagging queues of one server, and the connections paused on them."""

    def __init__(self, meter: ReadyMeter, credit: int, queue_high: int, queue_low: int,
                 consumes: Callable[[Session], bool]) -> None:
        self.meter = meter
        #: Does a connection have a consumer that acknowledges? (rule 4)
        self.consumes = consumes
        #: Ready messages past which a queue with consumers lags (rule 1); 0: never.
        self.credit = credit
        #: Ready count at which a lagging queue grants credit again (rule 2).
        self.low = credit // 2
        self.queue_high = queue_high
        #: A queue leaves ``meter.long_queues`` at or below this (rule 6).
        self.floor = min(self.low, queue_low) if credit else queue_low
        #: Lagging queues, each with the connections paused on it.
        self.lagging: dict[Queue, set[Session]] = {}
        #: Paused connections, each with the queues it waits for.
        self.paused: dict[Session, set[Queue]] = {}
        #: Each watched queue's ``published`` counter at the last watch (rule 6).
        self._seen: dict[Queue, int] = {}
        #: Times a connection was paused (for tests and statistics).
        self.pauses = 0

    @property
    def mark(self) -> int:
        """The lowest per-queue mark: where the stores start listing a queue (rule 6)."""
        return min(self.credit, self.queue_high) if self.credit else self.queue_high

    def watch(self, publisher: Session | None) -> bool:
        """After an input, while ``meter.long_queues`` is not empty: pause ``publisher`` (the
        input's connection, if the input published) on the lagging queues it fed, let lagging
        queues that drained grant credit, and say whether a queue is past ``queue_high`` (for
        the alarm)."""
        too_long = False
        seen = self._seen
        lagging = self.lagging
        credit, queue_high, floor = self.credit, self.queue_high, self.floor
        done: list[Queue] = []
        for queue in self.meter.long_queues:
            ready = len(queue.ready)
            published = queue.published
            fed = seen.get(queue, -1) != published
            seen[queue] = published
            if queue.deleted:
                done.append(queue)
                continue
            if ready > queue_high:
                too_long = True
            waiting = lagging.get(queue)
            if waiting is None:
                if not (credit and ready > credit and queue.consumers):
                    if ready <= floor:
                        done.append(queue)
                    continue
                waiting = lagging[queue] = set()
            elif ready <= self.low or not queue.consumers:
                self._grant(queue)
                if ready <= floor:
                    done.append(queue)
                continue
            if fed and publisher is not None and publisher not in waiting:
                self._pause(publisher, queue, waiting)
        for queue in done:
            self.meter.long_queues.discard(queue)
            seen.pop(queue, None)
            if queue in lagging:
                self._grant(queue)
        return too_long

    def forget(self, session: Session) -> None:
        """``session``'s socket is gone: it waits for nothing any more."""
        for queue in self.paused.pop(session, ()):
            waiting = self.lagging.get(queue)
            if waiting is not None:
                waiting.discard(session)

    def release_all(self) -> None:
        """Every lagging queue grants credit (the server serves another core)."""
        for queue in list(self.lagging):
            self._grant(queue)
        self._seen.clear()

    def _pause(self, session: Session, queue: Queue, waiting: set[Session]) -> None:
        if session.closed or self.consumes(session):
            return
        waiting.add(session)
        queues = self.paused.get(session)
        if queues is None:
            queues = self.paused[session] = set()
            session.hold_reading("credit")
            self.pauses += 1
            log.debug("%s: paused %s connection %d: queue '%s' lags (%d ready messages, "
                      "credit %d)", session.peer, session.protocol_name, session.id, queue.name,
                      len(queue.ready), self.credit)
        queues.add(queue)

    def _grant(self, queue: Queue) -> None:
        """``queue`` grants credit again: resume who waited only for it (rule 2)."""
        for session in self.lagging.pop(queue, ()):
            queues = self.paused.get(session)
            if queues is None:
                continue
            queues.discard(queue)
            if not queues:
                del self.paused[session]
                if not session.closed:
                    session.release_reading("credit")
                    log.debug("%s: resumed %s connection %d: queue '%s' has %d ready messages",
                              session.peer, session.protocol_name, session.id, queue.name,
                              len(queue.ready))
