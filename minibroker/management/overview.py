"""``/api/overview``, ``/api/whoami``, ``/api/vhosts``, the health checks and the aliveness test.

Rules:

1. The overview sums every vhost: ``object_totals`` and ``queue_totals`` from the core's
   statistics, ``message_stats`` from its counters with rates from the sampler; with
   ``msg_rates_age``/``msg_rates_incr`` (``lengths_age``/``lengths_incr`` for queue totals) the
   details carry RabbitMQ's ``samples``, ``avg_rate`` and ``avg``.
2. Health checks answer ``{"status": "ok"}`` with 200, or ``{"status": "failed", "reason":
   ...}`` with 503 and RabbitMQ's extra fields (``alarms``; ``missing`` and ``ports``).
3. ``whoami`` answers the user's tags from the broker's accounts (``accounts.py``); a backend
   without accounts treats every user as an administrator.
4. The overview and ``/api/vhosts`` cover the vhosts the user may see (``authz.py``); for a
   user who sees only its own connections, the totals count only those, and there is no
   ``consumers`` total (RabbitMQ 3.10's overview for a ``management`` user).
"""

from __future__ import annotations

from typing import Any

from minibroker.core.commands import DeclareQueue, Get, Publish
from minibroker.core.effects import GetOk
from minibroker.core.exchanges import EXCHANGE_TYPES
from minibroker.errors import AMQPError
from minibroker.management.accounts import VHOST_WRITES
from minibroker.management.api import (
    PRODUCT_NAME,
    PRODUCT_VERSION,
    RABBITMQ_VERSION,
    Api,
    Call,
    json_response,
)
from minibroker.management.errors import NOT_FOUND, bad_request
from minibroker.management.listing import listing
from minibroker.message import Message
from minibroker.protocols.http import Response

__all__ = ["ALIVENESS_QUEUE", "ROUTES", "USER_TAGS"]

USER_TAGS = ["administrator"]
ALIVENESS_QUEUE = "aliveness-test"
_STANDARD = {"direct", "fanout", "headers", "topic"}
_MESSAGE_STATS = ("publish", "deliver_get", "ack", "return_unroutable")


def _age(call: Call, prefix: str) -> tuple[float | None, float | None]:
    try:
        age = call.query.get(f"{prefix}_age")
        incr = call.query.get(f"{prefix}_incr")
        return (float(age) if age else None), (float(incr) if incr else None)
    except ValueError:
        raise bad_request(f"{prefix}_age and {prefix}_incr must be numbers") from None


def overview(api: Api, call: Call) -> Response:
    totals = dict.fromkeys(("channels", "connections", "consumers", "exchanges", "queues"), 0)
    counts = dict.fromkeys(("publish", "deliver_get", "ack", "return_unroutable", "messages",
                            "messages_ready", "messages_unacknowledged"), 0)
    viewer = call.viewer
    for vhost in api.backend.vhosts():
        core = api.backend.core(vhost)
        if core is None or not viewer.sees(vhost):
            continue
        stats = core.statistics()
        for key in totals:
            totals[key] += getattr(stats, key)
        if not viewer.monitor:  # rule 4: only the user's own connections and channels
            own = [info for info in core.snapshot().connections if viewer.owns(info.user)]
            totals["connections"] += len(own) - stats.connections
            totals["channels"] += sum(len(info.channels) for info in own) - stats.channels
        for key, value in (("publish", stats.published), ("deliver_get", stats.delivered),
                           ("ack", stats.acked), ("return_unroutable", stats.returned),
                           ("messages", stats.messages_ready + stats.messages_unacked),
                           ("messages_ready", stats.messages_ready),
                           ("messages_unacknowledged", stats.messages_unacked)):
            counts[key] += value
    sampler = api.sampler
    rate_age, rate_incr = _age(call, "msg_rates")
    length_age, length_incr = _age(call, "lengths")
    message_stats: dict[str, Any] = {}
    for key in ("publish", "deliver_get", "ack", "return_unroutable"):
        message_stats[key] = counts[key]
        message_stats[f"{key}_details"] = sampler.details(key, age=rate_age, incr=rate_incr)
    queue_totals: dict[str, Any] = {}
    for key in ("messages", "messages_ready", "messages_unacknowledged"):
        queue_totals[key] = counts[key]
        queue_totals[f"{key}_details"] = sampler.details(key, age=length_age, incr=length_incr)
    retention = int(sampler.retention)
    return json_response({
        "management_version": RABBITMQ_VERSION,
        "rates_mode": "basic",
        "sample_retention_policies": {"global": [retention], "basic": [retention],
                                      "detailed": [retention]},
        "exchange_types": [
            {"name": name, "enabled": True,
             "description": f"AMQP {name} exchange, as per the AMQP specification"
             if name in _STANDARD else f"{name} exchange"}
            for name in sorted(EXCHANGE_TYPES)
        ],
        "product_version": PRODUCT_VERSION,
        "product_name": PRODUCT_NAME,
        "rabbitmq_version": RABBITMQ_VERSION,
        "cluster_name": api.node,
        "disable_stats": False,
        "message_stats": message_stats,
        "queue_totals": queue_totals,
        "object_totals": totals if viewer.monitor else {
            key: value for key, value in totals.items() if key != "consumers"},
        "statistics_db_event_queue": 0,
        "node": api.node,
        "listeners": [
            {"node": api.node, "protocol": listener.protocol,
             "ip_address": listener.ip_address, "port": listener.port}
            for listener in api.backend.listeners()
        ],
        "contexts": [
            {"node": api.node, "description": "RabbitMQ Management", "path": "/",
             "port": str(listener.port), "protocol": listener.protocol}
            for listener in api.backend.listeners() if listener.protocol == "http"
        ],
    })


def whoami(api: Api, call: Call) -> Response:
    access = api.backend.access()
    user = None if access is None else access.users.get(call.user)
    tags = USER_TAGS if user is None else sorted(user.tags)
    return json_response({"name": call.user, "tags": tags})


def _vhost(api: Api, vhost: str) -> dict[str, Any]:
    core = api.core(vhost)
    stats = core.statistics()
    rates = api.sampler.vhost_rates(vhost)
    octets = [0, 0]
    for info in core.snapshot().connections:
        details = api.backend.connection_details(info.connection)
        if details is not None:
            octets = [octets[0] + details.recv_oct, octets[1] + details.send_oct]
    description = "Default virtual host" if vhost == "/" else ""
    counts = {"publish": stats.published, "deliver_get": stats.delivered, "ack": stats.acked,
              "return_unroutable": stats.returned,
              "messages": stats.messages_ready + stats.messages_unacked,
              "messages_ready": stats.messages_ready,
              "messages_unacknowledged": stats.messages_unacked,
              "recv_oct": octets[0], "send_oct": octets[1]}
    out: dict[str, Any] = {
        "cluster_state": {api.node: "running"},
        "description": description,
        "message_stats": {},
        "metadata": {"description": description, "tags": []},
        "name": vhost,
        "tags": [],
        "tracing": False,
    }
    for key, value in counts.items():
        target = out["message_stats"] if key in _MESSAGE_STATS else out
        target[key] = value
        target[f"{key}_details"] = {"rate": rates[key]}
    return out


def list_vhosts(api: Api, call: Call) -> Response:
    return json_response(listing([_vhost(api, name) for name in sorted(api.backend.vhosts())
                                  if call.viewer.sees(name)],
                                 call.query))


def show_vhost(api: Api, call: Call) -> Response:
    return json_response(_vhost(api, call.params["vhost"]))


def _failed(reason: str, **extra: Any) -> Response:
    return json_response({"status": "failed", "reason": reason, **extra}, status=503)


def check_alarms(api: Api, call: Call) -> Response:
    alarms = api.backend.alarms()
    if alarms:
        return _failed("There are alarms in effect in the cluster",
                       alarms=[{"node": api.node, "resource": alarm} for alarm in alarms])
    return json_response({"status": "ok"})


def check_port_listener(api: Api, call: Call) -> Response:
    text = call.params["port"]
    if not text.isdigit():
        raise bad_request("Invalid port")
    port = int(text)
    ports = sorted(listener.port for listener in api.backend.listeners())
    if port not in ports:
        return _failed("No active listener", missing=port, ports=ports)
    return json_response({"status": "ok", "port": port})


def check_virtual_hosts(api: Api, call: Call) -> Response:
    return json_response({"status": "ok"})  # a vhost is its core: it runs while we answer


def aliveness(api: Api, call: Call) -> Response:
    """Declare ``aliveness-test``, publish a message to it and get it back (RabbitMQ's test;
    like RabbitMQ, the queue is left in place)."""
    vhost = call.params["vhost"]
    if api.backend.core(vhost) is None:
        raise NOT_FOUND
    body = b"test_message"
    with api.channel(vhost, call.user) as channel:
        conn, number = channel.connection, channel.channel
        try:
            channel.run(DeclareQueue(conn, number, ALIVENESS_QUEUE))
            channel.run(Publish(conn, number, Message("", ALIVENESS_QUEUE, body)))
            reply = channel.run(Get(conn, number, ALIVENESS_QUEUE, no_ack=True)).reply
        except AMQPError as err:
            return _failed(str(err))
    if not isinstance(reply, GetOk) or reply.message.body != body:
        return _failed("the test message did not come back")
    return json_response({"status": "ok"})


ROUTES = [
    ("/api/overview", {"GET": overview}),
    ("/api/whoami", {"GET": whoami}),
    ("/api/vhosts", {"GET": list_vhosts}),
    ("/api/vhosts/{vhost}", {"GET": show_vhost, **VHOST_WRITES}),
    ("/api/health/checks/alarms", {"GET": check_alarms}),
    ("/api/health/checks/local-alarms", {"GET": check_alarms}),
    ("/api/health/checks/port-listener/{port}", {"GET": check_port_listener}),
    ("/api/health/checks/virtual-hosts", {"GET": check_virtual_hosts}),
    ("/api/aliveness-test/{vhost}", {"GET": aliveness}),
]
