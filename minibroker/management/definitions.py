"""RabbitMQ's definitions JSON: export the topology, import it as core commands.

This module is the API's one seam with the definitions format: :func:`export_definitions`
(snapshots -> JSON document) and :func:`import_commands` (JSON document -> core commands). A
converter shared with the storage layer can replace the two functions without touching the
handlers.

Rules:

1. Export follows RabbitMQ: every non-exclusive queue, every exchange except the default and
   ``amq.*`` ones, every binding except the default exchange's implicit ones. Users,
   permissions and topic permissions are the broker's registry's when the backend has one
   (``access``: hashes, tags and limits as stored); else the configuration's users (with
   RabbitMQ's salted SHA-256 ``password_hash``) are administrators with full permissions on
   every vhost. A per-vhost export leaves out users, vhosts and each item's ``vhost``.
2. Import checks the whole document before anything changes and answers RabbitMQ's reasons
   (``"failed_to_parse_json"``, ``["no_such_vhost", "<name>"]``); it then declares exchanges,
   queues and bindings in that order. Users, permissions, policies and parameters are ignored:
   minibroker's users come from its configuration, and it has no policies yet.
3. Commands come out with connection and channel 0: the caller runs them on its own channel
   (``dataclasses.replace``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from minibroker.core.access import AccessControl
from minibroker.core.commands import BindExchange, BindQueue, DeclareExchange, DeclareQueue
from minibroker.core.exchanges import DestinationKind
from minibroker.core.statistics import TopologySnapshot
from minibroker.management.body import field_table, flag, json_object, text
from minibroker.management.errors import bad_request
from minibroker.management.render import json_value

__all__ = ["Declaration", "export_definitions", "import_commands", "password_hash"]

#: What a definitions document turns into.
Declaration = DeclareExchange | DeclareQueue | BindQueue | BindExchange

HASHING_ALGORITHM = "rabbit_password_hashing_sha256"


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's stored form: base64(salt + sha256(salt + password)), a 4-byte salt."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _table(table: Mapping[str, Any]) -> dict[str, Any]:
    return {key: json_value(value) for key, value in table.items()}


def export_definitions(
    snapshots: Mapping[str, TopologySnapshot], *, users: Mapping[str, str],
    versions: Mapping[str, str], single_vhost: bool = False,
    hasher: Callable[[str], str] = password_hash, access: AccessControl | None = None,
) -> dict[str, Any]:
    """The definitions document of ``snapshots`` (vhost -> snapshot), rule 1."""
    queues: list[dict[str, Any]] = []
    exchanges: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []

    def place(vhost: str, item: dict[str, Any]) -> dict[str, Any]:
        return item if single_vhost else {"name": item["name"], "vhost": vhost, **item}

    for vhost, snapshot in snapshots.items():
        queues.extend(place(vhost, {
            "name": queue.name, "durable": queue.durable, "auto_delete": queue.auto_delete,
            "arguments": _table(queue.arguments),
        }) for queue in snapshot.queues if not queue.exclusive)
        exchanges.extend(place(vhost, {
            "name": info.name, "type": info.type, "durable": info.durable,
            "auto_delete": info.auto_delete, "internal": info.internal,
            "arguments": _table(info.arguments),
        }) for info in snapshot.exchanges if info.name and not info.name.startswith("amq."))
        bindings.extend({
            "source": binding.source, **({} if single_vhost else {"vhost": vhost}),
            "destination": binding.destination.name,
            "destination_type": binding.destination.kind.value,
            "routing_key": binding.binding_key, "arguments": _table(binding.arguments),
        } for binding in snapshot.bindings if binding.source)
    topology = {"queues": queues, "exchanges": exchanges, "bindings": bindings}
    if single_vhost:
        return {"rabbit_version": versions["rabbitmq_version"], "parameters": [],
                "policies": [], **topology}
    return {
        "rabbit_version": versions["rabbitmq_version"], **versions,
        **(_configured_accounts(users, snapshots, hasher) if access is None
           else _registry_accounts(access)),
        "vhosts": [{"name": vhost} for vhost in snapshots],
        "parameters": [], "global_parameters": [], "policies": [],
        **topology,
    }


def _configured_accounts(users: Mapping[str, str], vhosts: Mapping[str, object],
                         hasher: Callable[[str], str]) -> dict[str, Any]:
    return {
        "users": [{"name": name, "password_hash": hasher(password),
                   "hashing_algorithm": HASHING_ALGORITHM, "tags": ["administrator"],
                   "limits": {}} for name, password in sorted(users.items())],
        "permissions": [{"user": name, "vhost": vhost, "configure": ".*", "write": ".*",
                         "read": ".*"} for name in sorted(users) for vhost in vhosts],
        "topic_permissions": [],
    }


def _registry_accounts(access: AccessControl) -> dict[str, Any]:
    return {
        "users": [{"name": user.name, "password_hash": user.password_hash,
                   "hashing_algorithm": user.hashing_algorithm, "tags": sorted(user.tags),
                   "limits": user.limits.to_definition()}
                  for _, user in sorted(access.users.items())],
        "permissions": [{"user": name, "vhost": vhost, "configure": p.configure,
                         "write": p.write, "read": p.read}
                        for name, vhost, p in sorted(access.permission_entries(),
                                                     key=lambda entry: entry[:2])],
        "topic_permissions": [{"user": name, "vhost": vhost, "exchange": topic.exchange,
                               "write": topic.write, "read": topic.read}
                              for name in sorted(access.users) for vhost in sorted(access.vhosts)
                              for topic in access.topic_permissions(name, vhost).values()],
    }


def _items(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise bad_request(["not_a_list_of_objects", key])
    return items


def import_commands(
    body: bytes, *, vhosts: list[str], vhost: str | None = None
) -> list[tuple[str, Declaration]]:
    """(vhost, command) pairs that create what the document describes (rules 2-3); ``vhost``
    imports a per-vhost document into that vhost."""
    doc = json_object(body, reason="failed_to_parse_json")

    def where(item: dict[str, Any]) -> str:
        name = vhost if vhost is not None else item.get("vhost")
        if not isinstance(name, str) or name not in vhosts:
            raise bad_request(["no_such_vhost", name if isinstance(name, str) else "undefined"])
        return name

    def name_of(item: dict[str, Any], key: str = "name") -> str:
        if key not in item:
            raise bad_request(f"[{{key_missing,{key}}}]")
        return text(item, key)

    commands: list[tuple[str, Declaration]] = []
    for item in _items(doc, "exchanges"):
        commands.append((where(item), DeclareExchange(
            0, 0, name_of(item), text(item, "type", "direct"), durable=flag(item, "durable"),
            auto_delete=flag(item, "auto_delete"), internal=flag(item, "internal"),
            arguments=field_table(item, "arguments"))))
    for item in _items(doc, "queues"):
        commands.append((where(item), DeclareQueue(
            0, 0, name_of(item), durable=flag(item, "durable"),
            auto_delete=flag(item, "auto_delete"), arguments=field_table(item, "arguments"))))
    for item in _items(doc, "bindings"):
        kind = text(item, "destination_type", "queue")
        if kind not in (DestinationKind.QUEUE.value, DestinationKind.EXCHANGE.value):
            raise bad_request(["invalid_destination_type", kind])
        source, destination = name_of(item, "source"), name_of(item, "destination")
        key, arguments = text(item, "routing_key"), field_table(item, "arguments")
        commands.append((where(item), BindQueue(0, 0, destination, source, key, arguments)
                         if kind == "queue" else
                         BindExchange(0, 0, destination, source, key, arguments)))
    return commands
