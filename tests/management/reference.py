"""The reference: what RabbitMQ's management API answers, endpoint by endpoint, as shapes.

A *shape* maps every field path of a JSON answer (``message_stats.publish_details.rate``,
``listeners[].port``) to the set of JSON types seen there (``int``, ``float``, ``str``,
``bool``, ``null``, ``object``, ``array``). The same scenario is played against RabbitMQ
(``record``) and against minibroker (``test_differential.py``), and the shapes are compared.

Record the reference again (RabbitMQ with the ``rabbitmq_management`` plugin enabled)::

    MINIBROKER_RABBITMQ_MGMT_URL=http://guest:guest@127.0.0.1:15672 \\
    MINIBROKER_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/ \\
    MINIBROKER_RABBITMQ_PROMETHEUS_URL=http://127.0.0.1:15692 \
    python -m tests.management.reference
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

RECORDING = Path(__file__).with_name("rabbitmq_management_reference.json")
PROMETHEUS_RECORDING = Path(__file__).with_name("rabbitmq_prometheus_reference.json")

#: Objects whose keys are data (argument names, client capabilities, node names), not fields.
OPAQUE = {"arguments", "client_properties", "cluster_state", "headers", "properties",
          "socket_opts", "backing_queue_status", "garbage_collection",
          "effective_policy_definition"}

Shape = dict[str, set[str]]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", dict: "object", list: "array"}[type(value)]


def shape(value: Any, path: str = "", out: Shape | None = None) -> Shape:
    """Every field path of ``value`` with the JSON types seen there (lists: every element)."""
    out = {} if out is None else out
    if path:
        out.setdefault(path, set()).add(json_type(value))
    if isinstance(value, dict) and path.rsplit(".", 1)[-1].removesuffix("[]") not in OPAQUE:
        for key, item in value.items():
            shape(item, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        for item in value:
            shape(item, f"{path}[]", out)
    return out


def merge(shapes: list[Shape]) -> Shape:
    out: Shape = {}
    for one in shapes:
        for path, types in one.items():
            out.setdefault(path, set()).update(types)
    return out


# --- the scenario ------------------------------------------------------------------------------

class Names:
    """The objects a scenario creates, under a prefix unique to the run."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.exchange = f"{prefix}.x"
        self.queue = f"{prefix}.q"
        self.consumed = f"{prefix}.c"
        self.connection_name = f"{prefix}-client"


Requester = Callable[..., tuple[int, Any]]
Finder = Callable[[Requester], dict[str, Any]]


def endpoints(names: Names, request: Requester) -> Iterator[tuple[str, int, Any]]:
    """(endpoint name, status, JSON body or None) for every answer the reference covers."""
    q, x, c = (urllib.parse.quote(n, safe="") for n in (names.queue, names.exchange,
                                                          names.consumed))

    def mine(items: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> list[Any]:
        return [item for item in items if str(key(item) or "").startswith(names.prefix)]

    def get(path: str) -> tuple[int, Any]:
        return request("GET", path)

    status, body = get("/api/overview")
    yield "overview", status, body
    status, body = get("/api/overview?lengths_age=60&lengths_incr=5&msg_rates_age=60"
                       "&msg_rates_incr=5")
    yield "overview_samples", status, body
    status, body = get("/api/queues")
    yield "queues", status, mine(body, lambda item: item["name"])
    yield ("queue", *get(f"/api/queues/%2F/{q}"))
    yield ("queue_consumed", *get(f"/api/queues/%2F/{c}"))
    yield ("queue_bindings", *get(f"/api/queues/%2F/{q}/bindings"))
    status, body = get("/api/exchanges")
    yield "exchanges", status, [item for item in body if item["name"] in (names.exchange, "")]
    yield ("exchange", *get(f"/api/exchanges/%2F/{x}"))
    yield ("exchange_source_bindings", *get(f"/api/exchanges/%2F/{x}/bindings/source"))
    status, body = get("/api/bindings")
    yield "bindings", status, mine(body, lambda item: item["destination"])
    status, between = get(f"/api/bindings/%2F/e/{x}/q/{q}")
    yield "bindings_between", status, between
    key = urllib.parse.quote(between[0]["properties_key"], safe="")
    yield ("binding", *get(f"/api/bindings/%2F/e/{x}/q/{q}/{key}"))
    status, body = get("/api/connections")
    conns = mine(body, lambda item: item.get("user_provided_name"))
    yield "connections", status, conns
    name = urllib.parse.quote(conns[0]["name"], safe="")
    yield ("connection", *get(f"/api/connections/{name}"))
    status, body = get("/api/channels")
    channels = [item for item in body if item["connection_details"]["name"] == conns[0]["name"]]
    yield "channels", status, channels
    yield ("channel", *get(f"/api/channels/{urllib.parse.quote(channels[0]['name'], safe='')}"))
    status, body = get("/api/consumers")
    yield "consumers", status, mine(body, lambda item: item["queue"]["name"])
    yield ("whoami", *get("/api/whoami"))
    yield ("vhosts", *get("/api/vhosts"))
    yield ("health_alarms", *get("/api/health/checks/alarms"))
    yield ("health_virtual_hosts", *get("/api/health/checks/virtual-hosts"))
    yield ("health_port_missing", *get("/api/health/checks/port-listener/1"))
    yield ("health_port_invalid", *get("/api/health/checks/port-listener/abc"))
    yield ("aliveness", *get("/api/aliveness-test/%2F"))
    status, body = get("/api/definitions")
    for part in ("queues", "exchanges", "bindings"):
        body[part] = [item for item in body[part]
                      if str(item.get("name", item.get("destination"))).startswith(names.prefix)]
    yield "definitions", status, body
    yield ("get", *request("POST", f"/api/queues/%2F/{q}/get",
                           {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto",
                            "truncate": 50000}))
    yield ("publish", *request("POST", f"/api/exchanges/%2F/{x}/publish",
                               {"properties": {}, "routing_key": "k.p", "payload": "x",
                                "payload_encoding": "string"}))
    yield ("publish_unroutable", *request("POST", "/api/exchanges/%2F/amq.direct/publish",
                                          {"properties": {}, "routing_key": "nowhere",
                                           "payload": "x", "payload_encoding": "string"}))
    # refusals
    yield ("missing_queue", *get(f"/api/queues/%2F/{q}-missing"))
    yield ("missing_path", *get("/api/nothing-here"))
    yield ("no_auth", *request("GET", "/api/overview", auth=False))
    yield ("bad_auth", *request("GET", "/api/overview", password="wrong"))
    yield ("not_json", *request("PUT", f"/api/queues/%2F/{q}-bad", raw=b"not json"))
    yield ("not_boolean", *request("PUT", f"/api/queues/%2F/{q}-bad", {"durable": "yes"}))
    yield ("inequivalent", *request("PUT", f"/api/queues/%2F/{q}", {"durable": False}))
    yield ("reserved_name", *request("PUT", "/api/exchanges/%2F/amq.mine", {"type": "direct"}))
    yield ("not_empty", *request("DELETE", f"/api/queues/%2F/{q}?if-empty=true"))
    yield ("get_missing_count", *request("POST", f"/api/queues/%2F/{q}/get",
                                         {"ackmode": "ack_requeue_true", "encoding": "auto"}))
    yield ("get_bad_encoding", *request("POST", f"/api/queues/%2F/{q}/get",
                                        {"count": 1, "ackmode": "ack_requeue_true",
                                         "encoding": "nope"}))
    yield ("publish_missing_exchange", *request(
        "POST", f"/api/exchanges/%2F/{x}-missing/publish",
        {"properties": {}, "routing_key": "", "payload": "", "payload_encoding": "string"}))
    yield ("bind_missing_queue", *request("POST", f"/api/bindings/%2F/e/{x}/q/{q}-missing",
                                          {"routing_key": "k"}))
    yield ("page_out_of_range", *get("/api/queues?page=1000"))
    # changes, answered without a body
    yield ("declare_new", *request("PUT", f"/api/queues/%2F/{q}-new", {"durable": False}))
    yield ("declare_again", *request("PUT", f"/api/queues/%2F/{q}-new", {"durable": False}))
    yield ("purge", *request("DELETE", f"/api/queues/%2F/{q}-new/contents"))
    yield ("delete", *request("DELETE", f"/api/queues/%2F/{q}-new"))
    yield ("delete_missing", *request("DELETE", f"/api/queues/%2F/{q}-new"))


PREFIX = "{prefix}"


def summary(answers: Iterator[tuple[str, int, Any]], names: Names) -> dict[str, dict[str, Any]]:
    """Status and shape of each answer; error bodies in full, the run's prefix replaced by
    ``{prefix}`` so recordings of different runs compare."""
    out: dict[str, dict[str, Any]] = {}
    for name, status, body in answers:
        entry: dict[str, Any] = {"status": status}
        if body is not None:
            entry["shape"] = {path: sorted(types) for path, types in sorted(shape(body).items())}
            if status >= 400 and isinstance(body, dict) and "error" in body:
                entry["body"] = json.loads(json.dumps(body).replace(names.prefix, PREFIX))
        out[name] = entry
    return out


# --- against a live RabbitMQ -------------------------------------------------------------------

def http_requester(base_url: str) -> Requester:
    parsed = urllib.parse.urlsplit(base_url)
    user, password = parsed.username or "guest", parsed.password or "guest"
    root = f"{parsed.scheme}://{parsed.hostname}:{parsed.port or 15672}"

    def request(method: str, path: str, body: Any = None, *, auth: bool = True,
                password: str = password, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(root + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read()
        return status, json.loads(text) if text else None
    return request


def live_scenario(amqp_url: str, names: Names) -> Any:
    """Build the scenario on a live broker over AMQP (pika); returns the open connection."""
    import pika

    params = pika.URLParameters(amqp_url)
    params.client_properties = {"connection_name": names.connection_name}
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.exchange_declare(names.exchange, "topic", durable=True)
    channel.queue_declare(names.queue, durable=True, arguments={"x-max-length": 100})
    channel.queue_bind(names.queue, names.exchange, "k.#", arguments={"a": 1})
    channel.confirm_delivery()
    for i in range(3):
        channel.basic_publish(names.exchange, f"k.{i}", b"hello %d" % i, pika.BasicProperties(
            content_type="text/plain", headers={"h": i}, delivery_mode=2))
    second = connection.channel()
    second.queue_declare(names.consumed)
    second.basic_qos(prefetch_count=10)
    second.basic_publish("", names.consumed, b"x")
    second.basic_consume(names.consumed, lambda *args: None, consumer_tag="ctag1")
    connection.process_data_events(0.2)
    return connection


def wait_for_statistics(request: Requester, names: Names, bound: float = 30.0) -> None:
    """RabbitMQ's statistics lag (emitted every 5 s): wait, with a bound, until the scenario's
    connection, channels, consumer and message counts all show."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        _, conns = request("GET", "/api/connections")
        _, queue = request("GET", f"/api/queues/%2F/{urllib.parse.quote(names.consumed)}")
        _, channels = request("GET", "/api/channels")
        ready = [conn for conn in conns if conn.get("user_provided_name")
                 == names.connection_name and conn.get("channels") == 2]
        if ready and "message_stats" in queue and queue.get("consumers") == 1 and any(
                ch.get("consumer_count") == 1 and "message_stats" in ch for ch in channels
                if ch["connection_details"]["name"] == ready[0]["name"]):
            return
        time.sleep(0.5)  # RabbitMQ's statistics arrive on its own 5 s timer: poll, bounded
    raise TimeoutError("RabbitMQ's statistics did not show the scenario in time")


def record_live(mgmt_url: str, amqp_url: str) -> dict[str, dict[str, Any]]:
    names = Names(f"mbref-{secrets.token_hex(4)}")
    request = http_requester(mgmt_url)
    connection = live_scenario(amqp_url, names)
    try:
        wait_for_statistics(request, names)
        return summary(endpoints(names, request), names)
    finally:
        connection.close()
        for path in (f"/api/queues/%2F/{names.queue}", f"/api/queues/%2F/{names.consumed}",
                     f"/api/exchanges/%2F/{names.exchange}"):
            request("DELETE", path)


# --- rabbitmq_prometheus -------------------------------------------------------------------------

def metric_families(text: str) -> dict[str, dict[str, Any]]:
    """Family name -> type, label names and whether it had samples, as ``prometheus_client``'s
    parser reads them."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        labels = sorted({label for sample in family.samples for label in sample.labels})
        out[family.name] = {"type": family.type, "labels": labels,
                            "sampled": bool(family.samples)}
    return out


def record_prometheus(url: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The families of ``/metrics`` and ``/metrics/per-object`` of a live rabbitmq_prometheus."""
    out = {}
    for path in ("/metrics", "/metrics/per-object"):
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=30) as response:
            out[path] = metric_families(response.read().decode("utf-8"))
    return out


def main() -> None:
    mgmt_url = os.environ["MINIBROKER_RABBITMQ_MGMT_URL"]
    amqp_url = os.environ.get("MINIBROKER_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    recording = record_live(mgmt_url, amqp_url)
    RECORDING.write_text(json.dumps(recording, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(recording)} answers in {RECORDING}")
    prometheus_url = os.environ.get("MINIBROKER_RABBITMQ_PROMETHEUS_URL")
    if prometheus_url:
        families = record_prometheus(prometheus_url)
        PROMETHEUS_RECORDING.write_text(json.dumps(families, indent=1, sort_keys=True) + "\n")
        print(f"recorded {sum(map(len, families.values()))} metric families in "
              f"{PROMETHEUS_RECORDING}")


if __name__ == "__main__":
    main()
