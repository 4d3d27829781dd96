"""Transactions: ``tx.select``, ``tx.commit`` and ``tx.rollback``.

Rules:

1. A channel is in confirm mode or transactional, never both (406 either way round, RabbitMQ's
   texts).
2. A transactional channel buffers its publishes and settlements (``TxBuffer``);
   ``tx.commit`` carries out the settlements — acks, then requeues, then rejections — and then
   routes the publishes, in order. A publish whose exchange was deleted in the meantime is
   dropped, as RabbitMQ does.
3. ``tx.rollback`` forgets the publishes and puts the settled-but-uncommitted deliveries back
   as unacked, in delivery-tag order (RabbitMQ).
"""

from __future__ import annotations

from minibroker.core import commands as c
from minibroker.core import delivery
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
        for action in (delivery.ACK, delivery.REQUEUE, delivery.DISCARD):
            group = [unacked for _, unacked, kind in tx.settlements if kind == action]
            if group:
                self.acks.apply(channel, group, action, now, effects)
        state = self.state
        for message, mandatory in tx.publishes:
            if message.exchange in state.topology.exchanges:
                state.published += 1
                self.publishing.route(channel, message, mandatory, now, effects)
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
