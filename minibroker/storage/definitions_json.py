"""RabbitMQ's definitions JSON (``rabbitmqctl export_definitions``) to and from plain values.

Pure: text or parsed JSON in, :class:`~minibroker.storage.definitions.Definitions` out, and
back; the caller reads and writes the files.

Rules:

1. Validation is strict: a field of the wrong type, a missing required field, an unknown
   ``destination_type``, queue type or hashing algorithm, a name longer than AMQP's 255 bytes
   or an argument that AMQP cannot carry raises :class:`DefinitionsError` naming the field the
   way a reader finds it (``queues[2].durable``).
2. What RabbitMQ itself accepts is accepted: the older forms too (``tags`` as a comma-separated
   string, vhosts with only a name, users without ``hashing_algorithm``, objects without
   ``vhost`` meaning the default vhost ``/``), and keys this module does not know are ignored,
   so files of newer RabbitMQ versions still load.
3. Policies, parameters, global parameters and topic permissions are carried verbatim (each must
   be a list of objects): this broker does not interpret them, but a round trip keeps them.
4. Exporting writes RabbitMQ's key order and only JSON types; an argument holding bytes, a
   decimal or a timestamp cannot be written and is refused by name.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from minibroker.errors import ProtocolError
from minibroker.message import FieldTable
from minibroker.protocols.native.values import check_field_table
from minibroker.storage.definitions import (
    BindingDefinition,
    Definitions,
    ExchangeDefinition,
    PermissionDefinition,
    QueueDefinition,
    UserDefinition,
    VHostDefinition,
)
from minibroker.storage.errors import DefinitionsError

__all__ = ["HASHING_ALGORITHMS", "QUEUE_TYPES", "from_json", "parse", "render", "to_json"]

QUEUE_TYPES = ("classic", "quorum", "stream")
HASHING_ALGORITHMS = (
    "rabbit_password_hashing_sha256", "rabbit_password_hashing_sha512",
    "rabbit_password_hashing_md5",
)
_OPAQUE = ("topic_permissions", "parameters", "global_parameters", "policies")
_T = TypeVar("_T")
_MISSING = object()


def parse(text: str | bytes) -> Definitions:
    """A definitions document from its JSON text."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise DefinitionsError(f"not JSON: {exc}") from None
    return from_json(document)


def render(definitions: Definitions, **versions: str) -> str:
    """The JSON text of a document (see :func:`to_json` for ``versions``)."""
    return json.dumps(to_json(definitions, **versions), indent=2, ensure_ascii=False) + "\n"


# -- reading --------------------------------------------------------------------------------

class _Entry:
    """One JSON object being read, with its path for error texts."""

    __slots__ = ("obj", "where")

    def __init__(self, obj: object, where: str) -> None:
        if not isinstance(obj, dict):
            raise DefinitionsError(f"{where}: expected an object, got {_kind(obj)}")
        self.obj: dict[str, Any] = obj
        self.where = where

    def get(self, name: str, kind: type[_T], default: Any = _MISSING) -> _T:
        value = self.obj.get(name, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise DefinitionsError(f"{self.where}.{name}: missing")
            return default  # type: ignore[no-any-return]
        # bool is an int in Python, never in JSON: keep them apart.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise DefinitionsError(
                f"{self.where}.{name}: expected {_KIND_NAMES.get(kind, kind.__name__)}, "
                f"got {_kind(value)} {json.dumps(value)[:60]}")
        return value

    def name(self, field: str = "name", *, empty: bool = False) -> str:
        value = self.get(field, str)
        if not value and not empty:
            raise DefinitionsError(f"{self.where}.{field}: must not be empty")
        if len(value.encode()) > 255:
            raise DefinitionsError(f"{self.where}.{field}: longer than 255 bytes (AMQP shortstr)")
        return value

    def choice(self, field: str, choices: tuple[str, ...], default: Any = _MISSING) -> str:
        value = self.get(field, str, default)
        if value not in choices:
            raise DefinitionsError(f"{self.where}.{field}: {value!r} is not one of "
                                   f"{', '.join(choices)}")
        return value

    def table(self, field: str = "arguments") -> FieldTable:
        table: FieldTable = self.get(field, dict, {})
        try:
            check_field_table(table, f"{self.where}.{field}")
        except ProtocolError as exc:
            raise DefinitionsError(exc.text) from None
        return table

    def strings(self, field: str) -> tuple[str, ...]:
        value = self.obj.get(field, [])
        if isinstance(value, str):  # the older form: "administrator,management"
            return tuple(tag for tag in (t.strip() for t in value.split(",")) if tag)
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise DefinitionsError(f"{self.where}.{field}: expected a list of strings, got "
                                   f"{json.dumps(value)[:60]}")
        return tuple(value)


_KIND_NAMES = {str: "a string", bool: "a boolean", dict: "an object", list: "a list",
               int: "an integer"}


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def _exchange(e: _Entry) -> ExchangeDefinition:
    return ExchangeDefinition(e.name(), e.get("vhost", str, "/"), e.name("type"),
                              e.get("durable", bool), e.get("auto_delete", bool),
                              e.get("internal", bool, False), e.table())


def _queue(e: _Entry) -> QueueDefinition:
    return QueueDefinition(e.name(), e.get("vhost", str, "/"), e.get("durable", bool),
                           e.get("auto_delete", bool), e.table(),
                           e.choice("type", QUEUE_TYPES, "classic"))


def _binding(e: _Entry) -> BindingDefinition:
    return BindingDefinition(e.name("source", empty=True), e.name("destination"),
                             e.choice("destination_type", ("queue", "exchange")),
                             e.name("routing_key", empty=True), e.get("vhost", str, "/"),
                             e.table())


def _user(e: _Entry) -> UserDefinition:
    password_hash = e.get("password_hash", str)
    try:
        base64.b64decode(password_hash, validate=True)
    except binascii.Error:
        raise DefinitionsError(f"{e.where}.password_hash: not base64") from None
    return UserDefinition(e.name(), password_hash,
                          e.choice("hashing_algorithm", HASHING_ALGORITHMS, HASHING_ALGORITHMS[0]),
                          e.strings("tags"), e.get("limits", dict, {}))


def _vhost(e: _Entry) -> VHostDefinition:
    metadata = _Entry(e.obj.get("metadata", {}), f"{e.where}.metadata")
    limits = e.obj.get("limits", [])
    if not isinstance(limits, (list, dict)):
        raise DefinitionsError(f"{e.where}.limits: expected an object or a list, got "
                               f"{_kind(limits)}")
    # 3.10 nests description and tags in "metadata"; later versions also write them at the top.
    source = metadata if metadata.obj else e
    return VHostDefinition(e.name(), source.get("description", str, ""), source.strings("tags"),
                           limits, source.get("default_queue_type", str, None))


def _permission(e: _Entry) -> PermissionDefinition:
    return PermissionDefinition(e.name("user"), e.name("vhost"), e.get("configure", str),
                                e.get("write", str), e.get("read", str))


def _section(document: dict[str, Any], name: str, read: Callable[[_Entry], _T]) -> tuple[_T, ...]:
    entries = document.get(name, [])
    if not isinstance(entries, list):
        raise DefinitionsError(f"{name}: expected a list, got {_kind(entries)}")
    return tuple(read(_Entry(entry, f"{name}[{index}]")) for index, entry in enumerate(entries))


def from_json(document: object) -> Definitions:
    """A definitions document from parsed JSON (rules 1-3)."""
    if not isinstance(document, dict):
        raise DefinitionsError(f"the document must be a JSON object, not {_kind(document)}")
    top = _Entry(document, "definitions")

    def opaque(name: str) -> tuple[dict[str, Any], ...]:
        return _section(document, name, lambda e: e.obj)

    return Definitions(
        users=_section(document, "users", _user),
        vhosts=_section(document, "vhosts", _vhost),
        permissions=_section(document, "permissions", _permission),
        exchanges=_section(document, "exchanges", _exchange),
        queues=_section(document, "queues", _queue),
        bindings=_section(document, "bindings", _binding),
        topic_permissions=opaque("topic_permissions"),
        parameters=opaque("parameters"),
        global_parameters=opaque("global_parameters"),
        policies=opaque("policies"),
        rabbit_version=top.get("rabbit_version", str, None),
        rabbitmq_version=top.get("rabbitmq_version", str, None),
        product_name=top.get("product_name", str, None),
        product_version=top.get("product_version", str, None),
    )


# -- writing --------------------------------------------------------------------------------

def to_json(definitions: Definitions, *, rabbit_version: str = "3.10.0",
            product_name: str = "minibroker", product_version: str | None = None
            ) -> dict[str, Any]:
    """The JSON object of a document, in RabbitMQ's key order (rule 4). A document read from
    a file keeps its own version fields (a round trip changes nothing); one without any (an
    export of this broker's state) gets these: the RabbitMQ version whose format is written,
    and this product."""
    d = definitions
    if d.rabbit_version is None:
        if product_version is None:
            from minibroker import __version__ as product_version
        versions = {"rabbit_version": rabbit_version, "rabbitmq_version": rabbit_version,
                    "product_name": product_name, "product_version": product_version}
    else:
        versions = {name: value for name in ("rabbit_version", "rabbitmq_version",
                                             "product_name", "product_version")
                    if (value := getattr(d, name)) is not None}
    return {
        **versions,
        "users": [{"name": u.name, "password_hash": u.password_hash,
                   "hashing_algorithm": u.hashing_algorithm, "tags": list(u.tags),
                   "limits": _json(u.limits, f"users[{i}].limits")}
                  for i, u in enumerate(d.users)],
        "vhosts": [_vhost_json(v, i) for i, v in enumerate(d.vhosts)],
        "permissions": [{"user": p.user, "vhost": p.vhost, "configure": p.configure,
                         "write": p.write, "read": p.read} for p in d.permissions],
        **{name: [dict(entry) for entry in getattr(d, name)] for name in _OPAQUE},
        "queues": [{"name": q.name, "vhost": q.vhost, "durable": q.durable,
                    "auto_delete": q.auto_delete, "arguments": _json(q.arguments,
                                                                     f"queues[{i}].arguments"),
                    "type": q.type} for i, q in enumerate(d.queues)],
        "exchanges": [{"name": e.name, "vhost": e.vhost, "type": e.type, "durable": e.durable,
                       "auto_delete": e.auto_delete, "internal": e.internal,
                       "arguments": _json(e.arguments, f"exchanges[{i}].arguments")}
                      for i, e in enumerate(d.exchanges)],
        "bindings": [{"source": b.source, "vhost": b.vhost, "destination": b.destination,
                      "destination_type": b.destination_type, "routing_key": b.routing_key,
                      "arguments": _json(b.arguments, f"bindings[{i}].arguments")}
                     for i, b in enumerate(d.bindings)],
    }


def _vhost_json(v: VHostDefinition, index: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {"description": v.description, "tags": list(v.tags)}
    if v.default_queue_type is not None:
        metadata["default_queue_type"] = v.default_queue_type
    return {"name": v.name, "limits": _json(v.limits, f"vhosts[{index}].limits"),
            "metadata": metadata}


def _json(value: Any, where: str) -> Any:
    """``value`` if JSON can carry it exactly, else :class:`DefinitionsError` naming it."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_json(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {name: _json(item, f"{where}.{name}") for name, item in value.items()}
    raise DefinitionsError(f"{where}: a {type(value).__name__} cannot be written as JSON")
