"""Transactions: ``tx.select``, ``tx.commit`` and ``tx.rollback``.

Rules:

1. A channel is in confirm mode or transactional, never both (406 either way round, RabbitMQ's
   texts).
2. A transactional channel buffers its publishes and settlements (``TxBuffer``). As in
   RabbitMQ (``rabbit_channel``), a publish is *routed when it is published* and enqueued at
   commit: a binding made between publish and commit does not get it, a queue deleted in
   between does not (a mandatory publish left with no queue is returned at commit), an
   exchange deleted in between does not matter, and the default exchange routes by queue
   name, so a queue declared before the commit gets it. ``tx.commit`` enqueues the publishes
   in order, then carries out the settlements in the order they were made (consecutive ones of
   a kind together, RabbitMQ's ``ack_cons``), each run in delivery-tag order.
3. ``tx.rollback`` forgets the publishes and puts the settled-but-uncommitted deliveries back
   as unacked, in delivery-tag order (RabbitMQ).
4. With a journal, ``tx.commit-ok`` is answered only once what the commit recorded (its
   persistent publishes into durable queues, its settlements) is on disk
   (``Outcome.durable_at``).
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter

from minibroker.core import commands as c
from minibroker.core.acks import Acknowledgements
from minibroker.core.channels import BrokerChannel, TxBuffer
from minibroker.core.effects import Effect, Outcome
from minibroker.core.publishing import Publishing
from minibroker.core.state import BrokerState
from minibroker.errors import PreconditionFailed

__all__ = ["Transactions"]


class Transactions:
    def __init__(
        self, state: BrokerState, publishing: Publishing, acks: Acknowledgements
    ) -> None:
        self.state = state
        self.publishing = publishing
        self.acks = acks

    def select(self, command: c.TxSelect, now: float) -> Outcome:
        channel = self.state.channel(command)
        if channel.confirm:
            raise PreconditionFailed("cannot switch from confirm to tx mode")
        if channel.tx is None:
            channel.tx = TxBuffer([], [])
        return Outcome()

    def commit(self, command: c.TxCommit, now: float) -> Outcome:
        channel, tx = self._transactional(command)
        channel.tx = TxBuffer([], [])
        effects: list[Effect] = []
        journal = self.state.journal
        mark = 0 if journal is None else journal.count
        self.state.published += len(tx.publishes)
        for publish in tx.publishes:
            self.publishing.commit(channel, publish, now, effects)
        for action, run in groupby(tx.settlements, key=itemgetter(2)):
            group = [unacked for _, unacked, _ in sorted(run, key=itemgetter(0))]
            self.acks.apply(channel, group, action, now, effects)
        if journal is not None and journal.count != mark:
            # commit-ok waits for the disk, like a confirm (``journal.py`` rule 5).
            return Outcome(None, effects, durable_at=journal.count)
        return Outcome(None, effects)

    def rollback(self, command: c.TxRollback, now: float) -> Outcome:
        channel, tx = self._transactional(command)
        restored = dict(channel.unacked)
        restored.update((tag, unacked) for tag, unacked, _ in tx.settlements)
        channel.unacked = dict(sorted(restored.items()))
        channel.tx = TxBuffer([], [])
        return Outcome()

    def _transactional(self, command: c.TxCommit | c.TxRollback) -> tuple[BrokerChannel, TxBuffer]:
        channel = self.state.channel(command)
        if channel.tx is None:
            raise PreconditionFailed("channel is not transactional")
        return channel, channel.tx
