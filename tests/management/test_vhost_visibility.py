"""The management API across vhosts, and what each user may see of them (``authz.py``).

An administrator sees every vhost's queues, exchanges, bindings, connections and channels,
each with its own ``vhost``; a ``management`` user sees only the vhosts it has permissions in
and its own connections; a user without a management tag sees nothing. The refusals are
compared with the local RabbitMQ's when its management API is reachable
(``MINIBROKER_RABBITMQ_MGMT_URL``, or the host of ``MINIBROKER_RABBITMQ_URL`` on 15672).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest

from minibroker.testing import ThreadBroker, broker_in_thread

TIMEOUT = 10.0
Caller = Callable[..., tuple[int, Any]]
NOT_MANAGEMENT = (401, {"error": "not_authorised", "reason": "Not management user"})
NOT_ADMIN = (401, {"error": "not_authorised", "reason": "Not administrator user"})
NOT_VHOST = (401, {"error": "not_authorised",
                   "reason": "User not authorised to access virtual host"})
NOT_OBJECT = (401, {"error": "not_authorised", "reason": "User not authorised to access object"})


def _caller(root: str) -> Caller:
    def call(method: str, path: str, body: Any = None, *, user: str = "guest",
             password: str = "guest") -> tuple[int, Any]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(
            root.rstrip("/") + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None
    return call


def _setup(call: Caller, shop: str, clerk: str, nobody: str, admin: tuple[str, str]) -> None:
    user, password = admin
    assert call("PUT", f"/api/vhosts/{shop}", {}, user=user, password=password)[0] in (201, 204)
    for name, tags in ((clerk, "management"), (nobody, "")):
        assert call("PUT", f"/api/users/{name}", {"password": "pw", "tags": tags}, user=user,
                    password=password)[0] in (201, 204)
    assert call("PUT", f"/api/permissions/{shop}/{clerk}",
                {"configure": ".*", "write": ".*", "read": ".*"}, user=user,
                password=password)[0] in (201, 204)
    assert call("PUT", f"/api/queues/{shop}/orders", {"durable": True}, user=clerk,
                password="pw")[0] in (201, 204)


def _refusals(call: Caller, shop: str, clerk: str, nobody: str) -> dict[str, Any]:
    """The answers that depend only on tags and permissions, by a readable key."""
    out: dict[str, Any] = {}
    for path in ("/api/overview", "/api/whoami", "/api/queues", f"/api/queues/{shop}"):
        out[f"{nobody} GET {path}"] = call("GET", path, user=nobody, password="pw")
    for path in ("/api/queues/%2F", "/api/queues/%2F/nothing", "/api/exchanges/%2F",
                 "/api/bindings/%2F", "/api/vhosts/%2F/connections", "/api/users",
                 f"/api/vhosts/{shop}", "/api/vhosts/%2F", "/api/definitions",
                 f"/api/permissions/{shop}/{clerk}", "/api/queues/no-such-vhost-here"):
        out[f"clerk GET {path}"] = call("GET", path, user=clerk, password="pw")
    out["clerk PUT /api/queues/%2F/x"] = call("PUT", "/api/queues/%2F/x", {}, user=clerk,
                                              password="pw")
    status, queues = call("GET", "/api/queues?columns=name,vhost", user=clerk, password="pw")
    out["clerk GET /api/queues"] = (status, queues)
    status, vhosts = call("GET", "/api/vhosts?columns=name", user=clerk, password="pw")
    out["clerk GET /api/vhosts"] = (status, vhosts)
    status, overview = call("GET", "/api/overview", user=clerk, password="pw")
    out["clerk overview totals"] = (status, sorted(overview["object_totals"]),
                                    overview["object_totals"]["queues"])
    return out


def _expected(shop: str, clerk: str, nobody: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in ("/api/overview", "/api/whoami", "/api/queues", f"/api/queues/{shop}"):
        out[f"{nobody} GET {path}"] = NOT_MANAGEMENT
    for path in ("/api/queues/%2F", "/api/queues/%2F/nothing", "/api/exchanges/%2F",
                 "/api/bindings/%2F", "/api/vhosts/%2F/connections"):
        out[f"clerk GET {path}"] = NOT_VHOST
    for path in ("/api/users", f"/api/vhosts/{shop}", "/api/vhosts/%2F", "/api/definitions",
                 f"/api/permissions/{shop}/{clerk}"):
        out[f"clerk GET {path}"] = NOT_ADMIN
    out["clerk GET /api/queues/no-such-vhost-here"] = (
        404, {"error": "Object Not Found", "reason": "Not Found"})
    out["clerk PUT /api/queues/%2F/x"] = NOT_VHOST
    out["clerk GET /api/queues"] = (200, [{"name": "orders", "vhost": shop}])
    out["clerk GET /api/vhosts"] = (200, [{"name": shop}])
    out["clerk overview totals"] = (200, ["channels", "connections", "exchanges", "queues"], 1)
    return out


@pytest.fixture
def broker() -> Iterator[ThreadBroker]:
    with broker_in_thread(management=True, heartbeat=0) as running:
        yield running


def test_who_sees_what_is_rabbitmqs(broker: ThreadBroker) -> None:
    call = _caller(broker.management_url)
    _setup(call, "shop", "clerk", "nobody", ("guest", "guest"))
    assert _refusals(call, "shop", "clerk", "nobody") == _expected("shop", "clerk", "nobody")


def test_every_vhost_is_listed_with_its_own_vhost_field(broker: ThreadBroker) -> None:
    call = _caller(broker.management_url)
    _setup(call, "shop", "clerk", "nobody", ("guest", "guest"))
    assert call("PUT", "/api/queues/%2F/orders", {"durable": True})[0] == 201
    clerk = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", broker.port, "shop", pika.PlainCredentials("clerk", "pw"), heartbeat=0,
        client_properties={"connection_name": "clerk's"}))
    clerk.channel()
    guest = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    guest.channel()
    try:
        status, queues = call("GET", "/api/queues?columns=name,vhost")
        assert status == 200
        assert queues == [{"name": "orders", "vhost": "/"}, {"name": "orders", "vhost": "shop"}]
        status, exchanges = call("GET", "/api/exchanges/shop?columns=name,vhost")
        assert {e["vhost"] for e in exchanges} == {"shop"} and {"name": "amq.topic",
                                                                 "vhost": "shop"} in exchanges
        status, bindings = call("GET", "/api/bindings/shop")
        assert [(b["source"], b["destination"], b["vhost"]) for b in bindings] == [
            ("", "orders", "shop")]
        status, connections = call("GET", "/api/connections")
        by_vhost = {c["vhost"]: c for c in connections}
        assert set(by_vhost) == {"/", "shop"}
        assert by_vhost["shop"]["user"] == "clerk"
        assert by_vhost["shop"]["client_properties"]["connection_name"] == "clerk's"
        status, channels = call("GET", "/api/channels?columns=vhost,user")
        assert sorted((c["vhost"], c["user"]) for c in channels) == [("/", "guest"),
                                                                     ("shop", "clerk")]
        status, overview = call("GET", "/api/overview")
        assert overview["object_totals"]["connections"] == 2
        # The clerk sees its own connection only, and not the guest's by name either.
        status, mine = call("GET", "/api/connections", user="clerk", password="pw")
        assert [c["user"] for c in mine] == ["clerk"]
        name = urllib.parse.quote(by_vhost["/"]["name"], safe="")
        assert call("GET", f"/api/connections/{name}", user="clerk", password="pw") == NOT_OBJECT
        status, totals = call("GET", "/api/overview", user="clerk", password="pw")
        assert totals["object_totals"]["connections"] == 1
    finally:
        clerk.close()
        guest.close()


def test_the_export_holds_the_registrys_users_and_permissions(broker: ThreadBroker) -> None:
    call = _caller(broker.management_url)
    _setup(call, "shop", "clerk", "nobody", ("guest", "guest"))
    status, document = call("GET", "/api/definitions")
    assert status == 200
    users = {user["name"]: user for user in document["users"]}
    assert users["clerk"]["tags"] == ["management"] and users["nobody"]["tags"] == []
    assert {(p["user"], p["vhost"]) for p in document["permissions"]} == {
        ("guest", "/"), ("clerk", "shop")}
    assert {"name": "orders", "vhost": "shop", "durable": True, "auto_delete": False,
            "arguments": {}} in document["queues"]


def _rabbitmq_management() -> tuple[str, tuple[str, str]] | None:
    url = os.environ.get("MINIBROKER_RABBITMQ_MGMT_URL")
    if url is None and (amqp := os.environ.get("MINIBROKER_RABBITMQ_URL")):
        parts = urllib.parse.urlsplit(amqp)
        url = f"http://{parts.username}:{parts.password}@{parts.hostname}:15672"
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    root = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
    admin = (urllib.parse.unquote(parts.username or "guest"),
             urllib.parse.unquote(parts.password or "guest"))
    try:
        _caller(root)("GET", "/api/overview", user=admin[0], password=admin[1])
    except OSError:
        return None
    return root, admin


def test_the_refusals_are_those_of_the_local_rabbitmq() -> None:
    found = _rabbitmq_management()
    if found is None:
        pytest.skip("no RabbitMQ management API (MINIBROKER_RABBITMQ_MGMT_URL)")
    root, admin = found
    call = _caller(root)
    unique = uuid.uuid4().hex[:8]
    shop, clerk, nobody = f"mb-vhost-{unique}", f"mb-clerk-{unique}", f"mb-nobody-{unique}"
    user, password = admin
    try:
        _setup(call, shop, clerk, nobody, admin)
        assert _refusals(call, shop, clerk, nobody) == _expected(shop, clerk, nobody)
    finally:
        call("DELETE", f"/api/vhosts/{shop}", user=user, password=password)
        for name in (clerk, nobody):
            call("DELETE", f"/api/users/{name}", user=user, password=password)
