"""RabbitMQ's JSON objects, built from the core's snapshots and the shell's connection details.

Rules:

1. Field names and JSON types are RabbitMQ 3.10's, exactly (``tests/management`` compares them
   with a recording of the real API). Counts are integers, rates floats.
2. A field is emitted only when minibroker knows its true value. Fields about Erlang internals
   (``garbage_collection``, ``reductions``, ``memory``...) and counters the core does not keep
   are left out rather than filled with invented values; ``docs/management.md`` lists them.
   Fields that are constant for an in-memory broker (``messages_paged_out`` is 0, ``policy``
   is null, ``ssl`` is false) are emitted.
3. Everything here is a pure function of its arguments: no I/O, no clock.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from minibroker.core.exchanges import Binding, DestinationKind
from minibroker.core.statistics import (
    ChannelInfo,
    ConnectionInfo,
    ConsumerInfo,
    ExchangeInfo,
    QueueStatistics,
)
from minibroker.management.backend import ConnectionDetails
from minibroker.message import FieldTable, FieldValue
from minibroker.valueclass import valueclass

__all__ = [
    "Peer", "binding", "channel", "connection", "consumer", "exchange", "json_value", "peer_of",
    "properties_key", "queue", "queue_type",
]

JSON = dict[str, Any]


def json_value(value: FieldValue) -> Any:
    """An AMQP field value as JSON: bytes as text, decimals as numbers, timestamps as epoch
    seconds (the management plugin's rendering)."""
    if isinstance(value, dict):
        return {key: json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_value(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        when = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return int(when.timestamp())
    return value


def _table(table: FieldTable) -> JSON:
    return {key: json_value(value) for key, value in table.items()}


def _details(rate: float) -> JSON:
    return {"rate": float(rate)}


@valueclass(frozen=True)
class Peer:
    """How a client connection is named and addressed in every object that mentions it."""

    connection: int
    name: str
    peer_host: str
    peer_port: int
    user: str
    details: ConnectionDetails | None


def peer_of(info: ConnectionInfo, details: ConnectionDetails | None) -> Peer:
    if details is not None:
        return Peer(info.connection, details.name, details.peer_host, details.peer_port,
                    info.user, details)
    host, _, port = info.peer.rpartition(":")
    name = info.peer or f"connection {info.connection}"
    return Peer(info.connection, name, host or info.peer,
                int(port) if port.isdigit() else 0, info.user, None)


def queue_type(arguments: FieldTable) -> str:
    value = arguments.get("x-queue-type")
    return value if isinstance(value, str) else "classic"


def queue(
    vhost: str, stats: QueueStatistics, node: str, rates: Mapping[str, float],
    exclusive_consumer_tag: str | None,
) -> JSON:
    messages = stats.ready + stats.unacked
    out = {
        "arguments": _table(stats.arguments),
        "auto_delete": stats.auto_delete,
        "consumers": stats.consumers,
        "durable": stats.durable,
        "effective_policy_definition": {},
        "exclusive": stats.exclusive,
        "exclusive_consumer_tag": exclusive_consumer_tag,
        "messages": messages,
        "messages_details": _details(rates["messages"]),
        "messages_paged_out": 0,
        "messages_ram": messages,
        "messages_ready": stats.ready,
        "messages_ready_details": _details(rates["messages_ready"]),
        "messages_ready_ram": stats.ready,
        "messages_unacknowledged": stats.unacked,
        "messages_unacknowledged_details": _details(rates["messages_unacknowledged"]),
        "messages_unacknowledged_ram": stats.unacked,
        "name": stats.name,
        "node": node,
        "operator_policy": None,
        "policy": None,
        "recoverable_slaves": None,
        "state": "running",
        "type": queue_type(stats.arguments),
        "vhost": vhost,
    }
    message_stats = _queue_message_stats(stats, rates)
    if message_stats:
        out["message_stats"] = message_stats
    return out


def _queue_message_stats(stats: QueueStatistics, rates: Mapping[str, float]) -> JSON:
    """RabbitMQ shows the publish counter once a message was published to the queue, and the
    delivery counters once one was delivered from it."""
    out: JSON = {}
    if stats.published:
        out.update({"publish": stats.published, "publish_details": _details(rates["publish"])})
    if stats.delivered:
        out.update({
            "ack": stats.acked, "ack_details": _details(rates["ack"]),
            "deliver_get": stats.delivered,
            "deliver_get_details": _details(rates["deliver_get"]),
            "redeliver": stats.redelivered, "redeliver_details": _details(rates["redeliver"]),
        })
    return out


def exchange(vhost: str, info: ExchangeInfo) -> JSON:
    return {
        "arguments": _table(info.arguments),
        "auto_delete": info.auto_delete,
        "durable": info.durable,
        "internal": info.internal,
        "name": info.name,
        "type": info.type,
        "vhost": vhost,
    }


def properties_key(routing_key: str, arguments: FieldTable) -> str:
    """The binding's name in the API's paths: the URL-quoted routing key, and ``~`` + a hash
    of the arguments when there are any. RabbitMQ hashes the Erlang term of the arguments;
    minibroker hashes their JSON, so keys are stable but not RabbitMQ's own — clients take
    them from ``properties_key`` or ``Location``, as RabbitMQ's documentation says to."""
    key = quote(routing_key, safe="").replace("%20", "+") if routing_key else "~"
    if not arguments:
        return key
    return f"{key}~{_args_hash(arguments)}" if routing_key else f"~{_args_hash(arguments)}"


def _args_hash(arguments: FieldTable) -> str:
    text = json.dumps(_table(arguments), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).digest()[:4]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def binding(vhost: str, item: Binding) -> JSON:
    destination = item.destination
    return {
        "source": item.source,
        "vhost": vhost,
        "destination": destination.name,
        "destination_type": "queue" if destination.kind is DestinationKind.QUEUE else "exchange",
        "routing_key": item.binding_key,
        "arguments": _table(item.arguments),
        "properties_key": properties_key(item.binding_key, item.arguments),
    }


def connection(
    vhost: str, info: ConnectionInfo, peer: Peer, node: str, rates: Mapping[str, float]
) -> JSON:
    out: JSON = {
        "channels": len(info.channels),
        "name": peer.name,
        "node": node,
        "peer_host": peer.peer_host,
        "peer_port": peer.peer_port,
        "type": "network",
        "user": info.user,
        "user_who_performed_action": info.user,
        "vhost": vhost,
    }
    details = peer.details
    if details is None:
        return out
    out.update({
        "auth_mechanism": details.auth_mechanism,
        "channel_max": details.channel_max,
        "client_properties": _table(details.client_properties),
        "connected_at": details.connected_at,
        "frame_max": details.frame_max,
        "host": details.host,
        "peer_cert_issuer": None,
        "peer_cert_subject": None,
        "peer_cert_validity": None,
        "port": details.port,
        "protocol": details.protocol,
        "recv_cnt": details.recv_cnt,
        "recv_oct": details.recv_oct,
        "recv_oct_details": _details(rates["recv_oct"]),
        "send_cnt": details.send_cnt,
        "send_oct": details.send_oct,
        "send_oct_details": _details(rates["send_oct"]),
        "send_pend": details.send_pend,
        "ssl": False,
        "ssl_cipher": None,
        "ssl_hash": None,
        "ssl_key_exchange": None,
        "ssl_protocol": None,
        "state": details.state,
        "timeout": details.heartbeat,
    })
    if details.user_provided_name is not None:
        out["user_provided_name"] = details.user_provided_name
    return dict(sorted(out.items()))


def channel(vhost: str, info: ChannelInfo, peer: Peer, node: str) -> JSON:
    return {
        "confirm": info.confirm,
        "connection_details": {
            "name": peer.name, "peer_host": peer.peer_host, "peer_port": peer.peer_port,
        },
        "consumer_count": info.consumers,
        "global_prefetch_count": info.global_prefetch,
        "messages_unacknowledged": info.unacked,
        "name": f"{peer.name} ({info.channel})",
        "node": node,
        "number": info.channel,
        "pending_raft_commands": 0,
        "prefetch_count": info.prefetch_count,
        "state": "running",
        "transactional": info.transactional,
        "user": peer.user,
        "user_who_performed_action": peer.user,
        "vhost": vhost,
    }


def consumer(
    vhost: str, info: ConsumerInfo, peer: Peer, node: str, *, single_active: bool
) -> JSON:
    out: JSON = {
        "arguments": _table(info.arguments),
        "ack_required": not info.no_ack,
        "channel_details": {
            "connection_name": peer.name,
            "name": f"{peer.name} ({info.channel})",
            "node": node,
            "number": info.channel,
            "peer_host": peer.peer_host,
            "peer_port": peer.peer_port,
            "user": peer.user,
        },
        "consumer_tag": info.consumer_tag,
        "exclusive": info.exclusive,
        "prefetch_count": info.prefetch_count,
        "queue": {"name": info.queue, "vhost": vhost},
    }
    if not single_active:
        # Every consumer of a plain queue takes deliveries. With single active consumer the
        # core's snapshot does not say which one is active, so the fields are left out.
        out["active"] = True
        out["activity_status"] = "up"
    return out
