"""Definitions as plain values: exchanges, queues, bindings, users, vhosts, permissions, topic
permissions.

These are what the definitions log stores and what RabbitMQ's definitions JSON
(``definitions_json.py``) converts to and from. Field names follow that JSON.

Rules:

1. Every definition is a frozen value; ``arguments`` are AMQP field tables.
2. A definition has a *key* (:func:`key`): two definitions with the same key describe the same
   object, so declaring one replaces the other and deleting by key removes it. A binding's key
   is all of its fields (RabbitMQ tells bindings apart by their arguments too).
3. :class:`Definitions` is one whole document: the six kinds of objects plus the sections this
   broker keeps but does not interpret (policies, parameters, global parameters and topic
   permissions), carried verbatim so a round trip loses nothing.
4. :class:`TopicPermissionDefinition` is how the definitions log stores a topic permission
   (the accounts made at run time, ``persistence/accounts.py``); in a document it is one
   of the ``topic_permissions`` objects, RabbitMQ's JSON (:meth:`Definitions.of`).
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, TypeAlias

from minibroker.message import FieldTable
from minibroker.storage.intents import pack_fields
from minibroker.valueclass import valueclass

__all__ = [
    "BindingDefinition", "Definition", "Definitions", "ExchangeDefinition",
    "PermissionDefinition", "QueueDefinition", "TopicPermissionDefinition", "UserDefinition",
    "VHostDefinition", "key",
]


@valueclass(frozen=True)
class ExchangeDefinition:
    name: str
    vhost: str = "/"
    type: str = "direct"
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: FieldTable = field(default_factory=dict)


@valueclass(frozen=True)
class QueueDefinition:
    name: str
    vhost: str = "/"
    durable: bool = True
    auto_delete: bool = False
    arguments: FieldTable = field(default_factory=dict)
    #: RabbitMQ's queue type: "classic", "quorum" or "stream".
    type: str = "classic"


@valueclass(frozen=True)
class BindingDefinition:
    source: str
    destination: str
    destination_type: str = "queue"  #: "queue" or "exchange"
    routing_key: str = ""
    vhost: str = "/"
    arguments: FieldTable = field(default_factory=dict)


@valueclass(frozen=True)
class UserDefinition:
    name: str
    #: base64 of salt + hash, exactly as RabbitMQ stores it ("" for a user without password).
    password_hash: str
    hashing_algorithm: str = "rabbit_password_hashing_sha256"
    tags: tuple[str, ...] = ()
    limits: dict[str, Any] = field(default_factory=dict)


@valueclass(frozen=True)
class VHostDefinition:
    name: str
    description: str = ""
    tags: tuple[str, ...] = ()
    #: RabbitMQ's per-vhost limits, verbatim (an object, or an empty list as 3.10 writes it).
    limits: Any = field(default_factory=list)
    default_queue_type: str | None = None


@valueclass(frozen=True)
class PermissionDefinition:
    user: str
    vhost: str
    configure: str = ".*"
    write: str = ".*"
    read: str = ".*"


@valueclass(frozen=True)
class TopicPermissionDefinition:
    user: str
    vhost: str
    exchange: str
    write: str = ".*"
    read: str = ".*"

    def document(self) -> dict[str, Any]:
        """Rule 4: as RabbitMQ's ``topic_permissions`` object."""
        return {"user": self.user, "vhost": self.vhost, "exchange": self.exchange,
                "write": self.write, "read": self.read}


Definition: TypeAlias = (
    "ExchangeDefinition | QueueDefinition | BindingDefinition | UserDefinition"
    " | VHostDefinition | PermissionDefinition | TopicPermissionDefinition"
)


def key(definition: Definition) -> tuple[Any, ...]:
    """The identity of a definition (rule 2)."""
    if isinstance(definition, ExchangeDefinition):
        return ("exchange", definition.vhost, definition.name)
    if isinstance(definition, QueueDefinition):
        return ("queue", definition.vhost, definition.name)
    if isinstance(definition, BindingDefinition):
        arguments = pack_fields(sorted(definition.arguments.items()))
        return ("binding", definition.vhost, definition.source, definition.destination_type,
                definition.destination, definition.routing_key, arguments)
    if isinstance(definition, UserDefinition):
        return ("user", definition.name)
    if isinstance(definition, VHostDefinition):
        return ("vhost", definition.name)
    if isinstance(definition, TopicPermissionDefinition):
        return ("topic_permission", definition.user, definition.vhost, definition.exchange)
    return ("permission", definition.user, definition.vhost)


@valueclass(frozen=True)
class Definitions:
    """A whole definitions document (rule 3)."""

    users: tuple[UserDefinition, ...] = ()
    vhosts: tuple[VHostDefinition, ...] = ()
    permissions: tuple[PermissionDefinition, ...] = ()
    exchanges: tuple[ExchangeDefinition, ...] = ()
    queues: tuple[QueueDefinition, ...] = ()
    bindings: tuple[BindingDefinition, ...] = ()
    topic_permissions: tuple[dict[str, Any], ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    global_parameters: tuple[dict[str, Any], ...] = ()
    policies: tuple[dict[str, Any], ...] = ()
    #: The version strings of the exporting broker, when the document had them.
    rabbit_version: str | None = None
    rabbitmq_version: str | None = None
    product_name: str | None = None
    product_version: str | None = None

    def all(self) -> tuple[Definition, ...]:
        """Every object, in an order that can be declared one by one: vhosts and users before
        permissions, exchanges and queues before the bindings between them."""
        return (*self.vhosts, *self.users, *self.permissions, *self.exchanges, *self.queues,
                *self.bindings)

    @classmethod
    def of(cls, objects: list[Definition], **extra: Any) -> Definitions:
        """Sort ``objects`` into a document (topic permissions as its ``topic_permissions``
        objects, rule 4)."""
        topic = tuple(o.document() for o in objects if isinstance(o, TopicPermissionDefinition))
        if topic:
            extra["topic_permissions"] = (*extra.get("topic_permissions", ()), *topic)
        return cls(
            users=tuple(o for o in objects if isinstance(o, UserDefinition)),
            vhosts=tuple(o for o in objects if isinstance(o, VHostDefinition)),
            permissions=tuple(o for o in objects if isinstance(o, PermissionDefinition)),
            exchanges=tuple(o for o in objects if isinstance(o, ExchangeDefinition)),
            queues=tuple(o for o in objects if isinstance(o, QueueDefinition)),
            bindings=tuple(o for o in objects if isinstance(o, BindingDefinition)),
            **extra,
        )
