"""A core's topology as RabbitMQ definitions, and back: export, import, ``--definitions``.

The functions for anyone holding a ``Broker`` (the CLI, the test toolkit, the management
API): :func:`export_definitions` / :func:`import_definitions` work on
:class:`~minibroker.storage.definitions.Definitions` values, :func:`export_json` /
:func:`import_json` on RabbitMQ's JSON text (``rabbitmqctl export_definitions`` /
``import_definitions``, ``storage/definitions_json.py``).

Rules:

1. An export holds what survives a restart, as RabbitMQ's export does: durable exchanges
   (not the default exchange nor the ``amq.*`` ones every vhost has), durable queues that
   are not exclusive, and the bindings between them. Users, vhosts and permissions are added
   by the caller who knows them (``extra``), as the document's other sections.
2. An import declares exchanges, then queues, then bindings, each through the core's own
   checks; one that is refused is reported in a line and the rest go on (RabbitMQ's
   ``import_definitions`` stops at the first error; a broker starting with
   ``--definitions`` would rather start and say what it skipped). What exists already with
   the same properties is left as it is. With a journal, what is durable is stored.
3. A whole document (:func:`load_document`: ``--definitions FILE``, the test toolkit) loads
   its accounts first, then each vhost's exchanges, queues and bindings into that vhost's
   core; the objects of a vhost that does not exist are one line, not loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minibroker.accounts import load_accounts
from minibroker.core.access import AccessControl
from minibroker.core.broker import Broker
from minibroker.core.exchanges import DestinationKind
from minibroker.persistence.recovery import restore_definitions
from minibroker.persistence.sync import VHOST, exchange_definition, queue_definition
from minibroker.storage import definitions_json
from minibroker.storage.definitions import BindingDefinition, Definition, Definitions

__all__ = ["export_definitions", "export_json", "import_definitions", "import_json",
           "load_document", "vhosts_of"]


def export_definitions(broker: Broker, extra: list[Definition] | None = None, *,
                       vhost: str = VHOST) -> Definitions:
    """Rule 1, for the core of ``vhost``."""
    topology = broker.topology
    exchanges = [exchange_definition(exchange, vhost)
                 for name, exchange in topology.exchanges.items()
                 if exchange.durable and name and not name.startswith("amq.")]
    queues = [queue_definition(queue, vhost) for queue in topology.queues.values()
              if queue.durable and queue.exclusive_owner is None]
    durable_queues = {queue.name for queue in queues}
    durable_exchanges = {name for name, exchange in topology.exchanges.items()
                         if exchange.durable}
    bindings: list[BindingDefinition] = []
    for binding in topology.bindings():
        destination = binding.destination
        if binding.source not in durable_exchanges or binding.source == "":
            continue
        if destination.kind is DestinationKind.QUEUE:
            if destination.name not in durable_queues:
                continue
            kind = "queue"
        else:
            if destination.name not in durable_exchanges:
                continue
            kind = "exchange"
        bindings.append(BindingDefinition(binding.source, destination.name, kind,
                                          binding.binding_key, vhost, dict(binding.arguments)))
    objects: list[Definition] = [*(extra or []), *exchanges, *queues, *bindings]
    return Definitions.of(objects)


def import_definitions(broker: Broker, definitions: Definitions, *, now: float = 0.0,
                       vhost: str = VHOST) -> list[str]:
    """Rule 2: declare what ``definitions`` hold for ``vhost``; a line for each object
    refused."""
    return restore_definitions(broker, definitions, now=now, vhost=vhost)


def export_json(broker: Broker, **versions: Any) -> str:
    """The broker's durable topology as RabbitMQ's definitions JSON."""
    return definitions_json.render(export_definitions(broker), **versions)


def import_json(broker: Broker, text: str | bytes, *, now: float = 0.0) -> list[str]:
    """Load RabbitMQ's definitions JSON (raises ``DefinitionsError`` naming a bad field)."""
    return import_definitions(broker, definitions_json.parse(text), now=now)


def vhosts_of(definitions: Definitions) -> set[str]:
    """The vhosts that ``definitions``' exchanges, queues and bindings name."""
    return ({d.vhost for d in definitions.exchanges} | {d.vhost for d in definitions.queues}
            | {d.vhost for d in definitions.bindings})


def load_document(document: Definitions, access: AccessControl,
                  core_of: Callable[[str], Broker], *, now: float) -> list[str]:
    """Rule 3; a line for each object refused."""
    problems = load_accounts(access, document)  # first: the vhosts the topology names
    for vhost in sorted(vhosts_of(document)):
        if vhost not in access.vhosts:
            problems.append(f"vhost '{vhost}' does not exist: its exchanges, queues and "
                            "bindings are not loaded")
            continue
        problems += import_definitions(core_of(vhost), document, now=now, vhost=vhost)
    return problems
