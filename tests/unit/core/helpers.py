"""Test helpers for the broker core: a harness that drives ``Broker.handle`` with a manual clock.

Rules:

1. Tests talk to the core only through ``Broker.handle`` (and its read-only introspection), as a
   protocol adapter would; :class:`Harness` just saves the typing.
2. Time is a number the test sets (``harness.now``); nothing here reads a clock.
3. :func:`fingerprint` captures everything a later command could observe, so a test can show
   that a refused command left the broker exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import (
    ConsumeOk,
    Deliver,
    Effect,
    GetOk,
    Outcome,
    QueueDeclareOk,
    QueueDeleteOk,
    QueuePurgeOk,
    singles,
)
from minibroker.message import FieldTable, Message, Properties

__all__ = ["Chan", "Harness", "bodies", "delivered", "fingerprint"]


class Harness:
    """One broker, a manual clock, and shortcuts to open connections and channels."""

    def __init__(self, broker: Broker | None = None) -> None:
        self.broker = broker or Broker()
        self.now = 0.0

    def handle(self, command: c.Command) -> Outcome:
        return self.broker.handle(command, now=self.now)

    def open(self, connection: int = 1, channel: int = 1, *, user: str = "guest") -> Chan:
        """Open ``channel`` on ``connection`` (opening the connection first if needed)."""
        if connection not in self.broker.connections:
            self.handle(c.OpenConnection(connection, user))
        self.handle(c.OpenChannel(connection, channel))
        return Chan(self, connection, channel)

    def close_connection(self, connection: int) -> Outcome:
        return self.handle(c.CloseConnection(connection))


@dataclass(frozen=True)
class Chan:
    """One open channel: each method sends the matching command from this channel."""

    harness: Harness
    connection: int
    channel: int

    def declare_queue(
        self, queue: str = "", *, passive: bool = False, durable: bool = False,
        exclusive: bool = False, auto_delete: bool = False, arguments: FieldTable | None = None,
    ) -> QueueDeclareOk:
        reply = self.harness.handle(c.DeclareQueue(
            self.connection, self.channel, queue, passive, durable, exclusive, auto_delete,
            arguments,
        )).reply
        assert isinstance(reply, QueueDeclareOk)
        return reply

    def declare_exchange(
        self, exchange: str, type: str = "direct", *, passive: bool = False,
        durable: bool = False, auto_delete: bool = False, internal: bool = False,
        arguments: FieldTable | None = None,
    ) -> Outcome:
        return self.harness.handle(c.DeclareExchange(
            self.connection, self.channel, exchange, type, passive, durable, auto_delete,
            internal, arguments,
        ))

    def delete_exchange(self, exchange: str, *, if_unused: bool = False) -> Outcome:
        return self.harness.handle(
            c.DeleteExchange(self.connection, self.channel, exchange, if_unused)
        )

    def bind(
        self, queue: str, exchange: str, routing_key: str = "",
        arguments: FieldTable | None = None,
    ) -> Outcome:
        return self.harness.handle(
            c.BindQueue(self.connection, self.channel, queue, exchange, routing_key, arguments)
        )

    def unbind(self, queue: str, exchange: str, routing_key: str = "") -> Outcome:
        return self.harness.handle(
            c.UnbindQueue(self.connection, self.channel, queue, exchange, routing_key)
        )

    def bind_exchange(self, destination: str, source: str, routing_key: str = "") -> Outcome:
        return self.harness.handle(
            c.BindExchange(self.connection, self.channel, destination, source, routing_key)
        )

    def unbind_exchange(self, destination: str, source: str, routing_key: str = "") -> Outcome:
        return self.harness.handle(
            c.UnbindExchange(self.connection, self.channel, destination, source, routing_key)
        )

    def purge(self, queue: str) -> int:
        reply = self.harness.handle(c.PurgeQueue(self.connection, self.channel, queue)).reply
        assert isinstance(reply, QueuePurgeOk)
        return reply.message_count

    def delete_queue(
        self, queue: str, *, if_unused: bool = False, if_empty: bool = False
    ) -> Outcome:
        outcome = self.harness.handle(
            c.DeleteQueue(self.connection, self.channel, queue, if_unused, if_empty)
        )
        assert isinstance(outcome.reply, QueueDeleteOk)
        return outcome

    def publish(
        self, exchange: str, routing_key: str, body: bytes = b"", *, mandatory: bool = False,
        properties: Properties | None = None,
    ) -> Outcome:
        message = Message(exchange, routing_key, body, properties or Properties())
        return self.harness.handle(
            c.Publish(self.connection, self.channel, message, mandatory)
        )

    def qos(self, prefetch_count: int, *, global_: bool = False) -> Outcome:
        return self.harness.handle(
            c.Qos(self.connection, self.channel, prefetch_count, global_)
        )

    def consume(
        self, queue: str, consumer_tag: str = "", *, no_ack: bool = False,
        exclusive: bool = False, arguments: FieldTable | None = None,
    ) -> Outcome:
        outcome = self.harness.handle(c.Consume(
            self.connection, self.channel, queue, consumer_tag, no_ack, exclusive, arguments,
        ))
        assert isinstance(outcome.reply, ConsumeOk)
        return outcome

    def cancel(self, consumer_tag: str) -> Outcome:
        return self.harness.handle(c.Cancel(self.connection, self.channel, consumer_tag))

    def get(self, queue: str, *, no_ack: bool = False) -> Outcome:
        return self.harness.handle(c.Get(self.connection, self.channel, queue, no_ack))

    def get_ok(self, queue: str, *, no_ack: bool = False) -> GetOk:
        reply = self.get(queue, no_ack=no_ack).reply
        assert isinstance(reply, GetOk), reply
        return reply

    def ack(self, delivery_tag: int, *, multiple: bool = False) -> Outcome:
        return self.harness.handle(
            c.Ack(self.connection, self.channel, delivery_tag, multiple)
        )

    def nack(self, delivery_tag: int, *, multiple: bool = False, requeue: bool = True) -> Outcome:
        return self.harness.handle(
            c.Nack(self.connection, self.channel, delivery_tag, multiple, requeue)
        )

    def reject(self, delivery_tag: int, *, requeue: bool = True) -> Outcome:
        return self.harness.handle(
            c.Reject(self.connection, self.channel, delivery_tag, requeue)
        )

    def recover(self, *, requeue: bool = True) -> Outcome:
        return self.harness.handle(c.Recover(self.connection, self.channel, requeue))

    def confirm_select(self) -> Outcome:
        return self.harness.handle(c.ConfirmSelect(self.connection, self.channel))

    def tx_select(self) -> Outcome:
        return self.harness.handle(c.TxSelect(self.connection, self.channel))

    def tx_commit(self) -> Outcome:
        return self.harness.handle(c.TxCommit(self.connection, self.channel))

    def tx_rollback(self) -> Outcome:
        return self.harness.handle(c.TxRollback(self.connection, self.channel))

    def close(self) -> Outcome:
        return self.harness.handle(c.CloseChannel(self.connection, self.channel))


def delivered(outcome: Outcome | Iterable[Effect]) -> list[Deliver]:
    """The single deliveries of an outcome, in order: its ``Deliver`` effects, a
    ``DeliverRun`` as the deliveries it stands for."""
    effects = outcome.effects if isinstance(outcome, Outcome) else outcome
    return [effect for effect in singles(effects) if isinstance(effect, Deliver)]


def bodies(outcome: Outcome | Iterable[Effect]) -> list[bytes]:
    """The bodies delivered by an outcome, in order."""
    return [effect.message.body for effect in delivered(outcome)]


def fingerprint(broker: Broker) -> object:
    """Everything later commands could observe: introspection plus the per-channel counters
    (next delivery tag, next confirm number, last declared queue, unacked tags, tx buffer) and
    the order and flags of every ready message."""
    channels = tuple(
        (
            conn.id, ch.number, ch.next_delivery_tag, ch.next_publish_seq, ch.last_queue,
            ch.confirm, tuple(ch.unacked), tuple(sorted(ch.consumers)),
            None if ch.tx is None else (len(ch.tx.publishes), len(ch.tx.settlements)),
            tuple((t, cons.unacked) for t, cons in ch.consumers.items()), ch.consumer_unacked,
        )
        for conn in broker.connections.values()
        for ch in conn.channels.values()
    )
    ready = tuple(
        (name, tuple((e.msg_id, e.message.body, e.redelivered) for e in queue.entries()))
        for name, queue in broker.topology.queues.items()
    )
    return (broker.snapshot(), broker.statistics(), channels, ready)
