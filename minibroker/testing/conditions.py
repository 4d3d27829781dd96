"""Waiting conditions: what a test can wait for, as ``(check, description)`` pairs.

Rules:

1. A condition is ``(check, description)``. ``check()`` runs on the broker's loop after every
   input (``controller.py``) and returns ``(done, what it saw)``, so a timeout can say both what
   it waited for and what it found.
2. Counts of *things present* are exact (``ready=3`` waits for exactly 3, ``connections(0)``
   for none left); counts of *events* are "at least" (3 acks have happened, whatever came
   after).
3. A check reads the live core of the moment (``controller.broker``), so a condition armed
   before a ``reset()`` keeps working on the fresh core.
4. Conditions on the message history cost O(new events) per check, not O(history): their first
   check (on the loop thread) takes a running :class:`~minibroker.testing.history.Tally` from
   the recorder, which counts what is recorded then once and every later event as it comes.
"""

from __future__ import annotations

from minibroker.core.statistics import QueueStatistics
from minibroker.testing.controller import Check, Controller
from minibroker.testing.history import Tally

__all__ = ["Condition", "Conditions"]

Condition = tuple[Check, str]


def _where(**filters: str | None) -> str:
    return "".join(f" {name}={value!r}" for name, value in filters.items() if value is not None)


class Conditions:
    """The ``*_condition`` builders shared by both handles (``wait_for_*`` use them)."""

    _controller: Controller

    def queue_condition(
        self, queue: str, *, ready: int | None = None, unacked: int | None = None,
        consumers: int | None = None,
    ) -> Condition:
        """``queue`` exists with exactly these counts (``ready=1`` when none is given)."""
        wanted = {key: value for key, value in
                  (("ready", ready), ("unacked", unacked), ("consumers", consumers))
                  if value is not None}
        if not wanted:
            wanted = {"ready": 1}
        controller = self._controller

        def check() -> tuple[bool, str]:
            stats = find_queue(controller, queue)
            if stats is None:
                return False, f"no queue {queue!r}"
            seen = {key: getattr(stats, key) for key in wanted}
            text = " ".join(f"{key}={value}" for key, value in seen.items())
            return seen == wanted, f"queue {queue!r} with {text}"

        text = " ".join(f"{key}={value}" for key, value in wanted.items())
        return check, f"queue {queue!r} to have {text}"

    def fate_condition(
        self, kind: str, count: int = 1, *, queue: str | None = None,
        exchange: str | None = None, routing_key: str | None = None,
    ) -> Condition:
        """At least ``count`` messages had a ``kind`` event ("acked", "dead-lettered"...)."""
        controller = self._controller
        where = _where(queue=queue, exchange=exchange, routing_key=routing_key)
        tallies: list[Tally] = []  # taken at the first check, on the loop thread (rule 4)

        def check() -> tuple[bool, str]:
            if not tallies:
                tallies.append(controller.recorder.tally(
                    kind, queue=queue, exchange=exchange, routing_key=routing_key))
            seen = tallies[0].count
            return seen >= count, f"{seen} {kind}{where}{_note(controller)}"

        return check, f"{count} message(s) {kind}{where}"

    def publish_condition(
        self, count: int = 1, *, exchange: str | None = None, routing_key: str | None = None,
    ) -> Condition:
        """At least ``count`` messages were published (to ``exchange`` with ``routing_key``),
        whatever became of them: routed, unroutable or refused."""
        controller = self._controller
        where = _where(exchange=exchange, routing_key=routing_key)
        tallies: list[Tally] = []  # rule 4

        def check() -> tuple[bool, str]:
            if not tallies:
                tallies.append(controller.recorder.tally(
                    None, exchange=exchange, routing_key=routing_key))
            seen = tallies[0].count
            return seen >= count, f"{seen} published{where}{_note(controller)}"

        return check, f"{count} message(s) published{where}"

    def consumer_condition(self, queue: str, count: int = 1) -> Condition:
        """At least ``count`` consumers on ``queue``."""
        controller = self._controller

        def check() -> tuple[bool, str]:
            stats = find_queue(controller, queue)
            seen = 0 if stats is None else stats.consumers
            return seen >= count, f"{seen} consumer(s) on queue {queue!r}"

        return check, f"{count} consumer(s) on queue {queue!r}"

    def connections_condition(self, count: int, *, name: str | None = None) -> Condition:
        """Exactly ``count`` open client connections (named ``name``, when given)."""
        controller = self._controller
        named = "" if name is None else f" named {name!r}"

        def check() -> tuple[bool, str]:
            connections = controller.broker.connections.values()
            seen = sum(1 for state in connections
                       if name is None or state.connection_name == name)
            return seen == count, f"{seen} connection(s){named}"

        return check, f"{count} open connection(s){named}"

    def idle_condition(self) -> Condition:
        """Idle: nothing unacked anywhere, nothing ready in a queue that has consumers."""
        controller = self._controller

        def check() -> tuple[bool, str]:
            busy = [f"{stats.name!r} ready={stats.ready} unacked={stats.unacked}"
                    for stats in controller.broker.snapshot().queues
                    if stats.unacked or (stats.ready and stats.consumers)]
            return not busy, ("busy queues: " + ", ".join(busy)) if busy else "idle"

        return check, "the broker to be idle"


def find_queue(controller: Controller, name: str) -> QueueStatistics | None:
    broker = controller.broker
    if name not in broker.topology.queues:
        return None
    return broker.queue_statistics(name)


def _note(controller: Controller) -> str:
    note = controller.recorder.note
    return f" ({note})" if note else ""
