"""The definitions log: durable exchanges, queues, bindings, users, vhosts and permissions.

One file, ``definitions.log``: the file header, then ``DECLARE`` and ``DELETE`` records. The
current definitions are the replay of the file. Loop side, no I/O: the store writes the records
this module encodes, through the same group commit as the messages.

Rules:

1. Declaring a definition equal to the current one writes nothing; declaring a changed one
   writes a DECLARE that replaces it (same key, ``definitions.py`` rule 2).
2. Deleting a queue or an exchange deletes the bindings that name it, at runtime and on replay
   alike (RabbitMQ removes them too), so the log never needs a record per binding for that.
3. A durable queue has an *incarnation*: the sequence number of the record that first declared
   it. Its messages are stored under that number (``intents.py``), so the messages of a deleted
   queue can never appear in a new queue of the same name, whatever survives a crash. A
   stream's incarnation is a number of the same sequencer given when its log was opened, just
   before; it names the stream's directory (``streamstore.py`` rule 4).
4. Compaction writes the current definitions to ``definitions.next`` followed by a
   ``SNAPSHOT_END`` record, keeps appending there, then (once it is synced) renames it over
   ``definitions.log`` and syncs the directory. On recovery a ``definitions.next`` that holds a
   ``SNAPSHOT_END`` replaces the log (the rename was interrupted); one without is dropped (its
   snapshot was never complete, so nothing after it was durable either).
"""

from __future__ import annotations

from typing import Any

from minibroker.storage.definitions import (
    BindingDefinition,
    Definition,
    Definitions,
    ExchangeDefinition,
    PermissionDefinition,
    QueueDefinition,
    TopicPermissionDefinition,
    UserDefinition,
    VHostDefinition,
    key,
)
from minibroker.storage.intents import pack_fields, unpack_fields

__all__ = [
    "DECLARE", "DELETE", "SNAPSHOT_END", "TYPES", "DefinitionsState", "decode_definition",
    "encode_definition",
]

DECLARE = 16
DELETE = 17
SNAPSHOT_END = 18
TYPES = frozenset({DECLARE, DELETE, SNAPSHOT_END})


def encode_definition(definition: Definition, incarnation: int = 0) -> list[Any]:
    """A definition as the msgpack array of a DECLARE record."""
    d = definition
    if isinstance(d, ExchangeDefinition):
        return ["exchange", d.vhost, d.name, d.type, d.auto_delete, d.internal, d.arguments]
    if isinstance(d, QueueDefinition):
        return ["queue", d.vhost, d.name, d.auto_delete, d.arguments, d.type, incarnation]
    if isinstance(d, BindingDefinition):
        return ["binding", d.vhost, d.source, d.destination, d.destination_type, d.routing_key,
                d.arguments]
    if isinstance(d, UserDefinition):
        return ["user", d.name, d.password_hash, d.hashing_algorithm, list(d.tags), d.limits]
    if isinstance(d, VHostDefinition):
        return ["vhost", d.name, d.description, list(d.tags), d.limits, d.default_queue_type]
    if isinstance(d, TopicPermissionDefinition):
        return ["topic_permission", d.user, d.vhost, d.exchange, d.write, d.read]
    return ["permission", d.user, d.vhost, d.configure, d.write, d.read]


def decode_definition(fields: list[Any]) -> tuple[Definition, int]:
    """A DECLARE payload -> (definition, incarnation); ``ValueError`` if it has another shape
    (the record passed its CRC, so that means a bug or a foreign file, reported as damage)."""
    try:
        kind, *rest = fields
        if kind == "exchange":
            vhost, name, type_, auto_delete, internal, arguments = rest
            return ExchangeDefinition(name, vhost, type_, True, auto_delete, internal,
                                      arguments), 0
        if kind == "queue":
            vhost, name, auto_delete, arguments, type_, incarnation = rest
            return QueueDefinition(name, vhost, True, auto_delete, arguments, type_), incarnation
        if kind == "binding":
            vhost, source, destination, destination_type, routing_key, arguments = rest
            return BindingDefinition(source, destination, destination_type, routing_key, vhost,
                                     arguments), 0
        if kind == "user":
            name, password_hash, algorithm, tags, limits = rest
            return UserDefinition(name, password_hash, algorithm, tuple(tags), limits), 0
        if kind == "vhost":
            name, description, tags, limits, default_queue_type = rest
            return VHostDefinition(name, description, tuple(tags), limits,
                                   default_queue_type), 0
        if kind == "permission":
            user, vhost, configure, write, read = rest
            return PermissionDefinition(user, vhost, configure, write, read), 0
        if kind == "topic_permission":
            user, vhost, exchange, write, read = rest
            return TopicPermissionDefinition(user, vhost, exchange, write, read), 0
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed definition record {fields!r:.120}: {exc}") from None
    raise ValueError(f"unknown definition kind {fields[0]!r:.40}")


pack = pack_fields
unpack = unpack_fields


class DefinitionsState:
    """The current definitions, kept by replaying DECLARE/DELETE payloads (rules 1-3)."""

    __slots__ = ("incarnations", "objects")

    def __init__(self) -> None:
        #: key -> definition, in declaration order.
        self.objects: dict[tuple[Any, ...], Definition] = {}
        #: (vhost, queue name) -> incarnation, for durable queues.
        self.incarnations: dict[tuple[str, str], int] = {}

    def declare(self, definition: Definition, incarnation: int = 0) -> bool:
        """Apply a declaration; ``False`` if it changes nothing (rule 1)."""
        k = key(definition)
        if self.objects.get(k) == definition:
            return False
        self.objects[k] = definition
        if isinstance(definition, QueueDefinition):
            self.incarnations.setdefault((definition.vhost, definition.name), incarnation)
        return True

    def delete(self, k: tuple[Any, ...]) -> bool:
        """Apply a deletion (with rule 2's cascade); ``False`` if there was nothing to delete."""
        if self.objects.pop(k, None) is None:
            return False
        kind, vhost, name = k[0], k[1], k[-1]
        if kind == "queue":
            del self.incarnations[(vhost, name)]
            self._unbind(lambda b: b.destination_type == "queue" and b.destination == name,
                         vhost)
        elif kind == "exchange":
            self._unbind(lambda b: b.source == name or (
                b.destination_type == "exchange" and b.destination == name), vhost)
        return True

    def _unbind(self, matches: Any, vhost: str) -> None:
        doomed = [k for k, d in self.objects.items()
                  if isinstance(d, BindingDefinition) and d.vhost == vhost and matches(d)]
        for k in doomed:
            del self.objects[k]

    def apply(self, kind: int, payload: Any) -> None:
        """Replay one record's payload."""
        if kind == DECLARE:
            definition, incarnation = decode_definition(payload)
            self.declare(definition, incarnation)
        elif kind == DELETE:
            self.delete(tuple(payload))

    def snapshot(self) -> list[list[Any]]:
        """DECLARE payloads that rebuild the current state (for compaction, rule 4)."""
        return [encode_definition(d, self.incarnation_of(d)) for d in self.objects.values()]

    def incarnation_of(self, definition: Definition) -> int:
        if isinstance(definition, QueueDefinition):
            return self.incarnations[(definition.vhost, definition.name)]
        return 0

    def definitions(self) -> Definitions:
        return Definitions.of(list(self.objects.values()))
