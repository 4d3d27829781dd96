"""A core's topology as definitions and back (``persistence/definitions.py``,
``persistence/recovery.py``): an export keeps only the bindings that survive a restart (from a
durable exchange to a durable queue or exchange), and a restore skips other vhosts' objects,
declares a non-classic queue with its type, and reports each definition the core refuses in
one line, with RabbitMQ's text, restoring the rest."""

from __future__ import annotations

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.persistence.definitions import export_definitions
from minibroker.persistence.recovery import restore_definitions
from minibroker.storage import (
    BindingDefinition,
    Definitions,
    ExchangeDefinition,
    QueueDefinition,
)


def test_an_export_keeps_only_bindings_between_durable_ends() -> None:
    broker = Broker()
    for command in [
        c.OpenConnection(1), c.OpenChannel(1, 1),
        c.DeclareExchange(1, 1, "durable-x", "direct", durable=True),
        c.DeclareExchange(1, 1, "durable-y", "fanout", durable=True),
        c.DeclareExchange(1, 1, "transient-x", "direct"),
        c.DeclareQueue(1, 1, "durable-q", durable=True),
        c.DeclareQueue(1, 1, "transient-q"),
        c.BindQueue(1, 1, "durable-q", "durable-x", "k"),
        c.BindQueue(1, 1, "transient-q", "durable-x", "k"),  # to a transient queue
        c.BindQueue(1, 1, "durable-q", "transient-x", "k"),  # from a transient exchange
        c.BindExchange(1, 1, "transient-x", "durable-x", "k"),  # to a transient exchange
        c.BindExchange(1, 1, "durable-y", "durable-x", "k2"),
    ]:
        broker.handle(command, now=0.0)
    assert export_definitions(broker).bindings == (
        BindingDefinition("durable-x", "durable-q", "queue", "k"),
        BindingDefinition("durable-x", "durable-y", "exchange", "k2"),
    )


def test_a_restore_reports_what_the_core_refuses_and_restores_the_rest() -> None:
    broker = Broker()
    definitions = Definitions(
        exchanges=(ExchangeDefinition("odd", type="nonsense"),
                   ExchangeDefinition("elsewhere", vhost="v")),
        queues=(QueueDefinition("qq", type="quorum"),
                QueueDefinition("bad", arguments={"x-max-length": "many"}),
                QueueDefinition("other", vhost="v")),
        bindings=(BindingDefinition("missing", "qq"),
                  BindingDefinition("amq.direct", "qq", routing_key="k", vhost="v")),
    )
    assert restore_definitions(broker, definitions, now=0.0) == [
        "exchange 'odd' not restored: PRECONDITION_FAILED - unknown exchange type 'nonsense'",
        "queue 'bad' not restored: PRECONDITION_FAILED - invalid arg 'x-max-length' for queue "
        "'bad' in vhost '/': \"expected integer, got longstr\"",
        "binding of queue 'qq' to exchange 'missing' not restored: NOT_FOUND - no exchange "
        "'missing' in vhost '/'",
    ]
    snapshot = broker.snapshot()
    assert [queue.name for queue in snapshot.queues] == ["qq"]  # another vhost's: not here
    assert broker.queue_statistics("qq").arguments == {"x-queue-type": "quorum"}
    assert "elsewhere" not in broker.topology.exchanges
    assert [b for b in snapshot.bindings if b.source == "amq.direct"] == []
