"""Users, vhosts and permissions through the management API of the real broker.

What RabbitMQ's API does for them, as a user of ``rabbitmqadmin`` or of a provisioning script
sees it: the account made over HTTP logs in over AMQP, a vhost made over HTTP isolates what is
declared in it, a permission set over HTTP applies to the next operation, deletions close the
connections they concern, and only an administrator may do any of it.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pika
import pytest
from pika.exceptions import (
    ChannelClosedByBroker,
    ConnectionClosedByBroker,
    ProbableAuthenticationError,
)

from minibroker.testing import ThreadBroker, broker_in_thread

TIMEOUT = 10.0


@pytest.fixture
def broker() -> Iterator[ThreadBroker]:
    with broker_in_thread(management=True, heartbeat=0) as running:
        yield running


def call(broker: ThreadBroker, method: str, path: str, body: Any = None, *,
         user: str = "guest", password: str = "guest") -> tuple[int, Any]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        broker.management_url.rstrip("/") + path, data=data, method=method,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def amqp(broker: ThreadBroker, user: str, password: str, vhost: str = "/"
         ) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", broker.port, vhost, pika.PlainCredentials(user, password),
        heartbeat=0, blocked_connection_timeout=TIMEOUT))


def test_a_user_made_over_http_logs_in_over_amqp_and_is_listed(broker: ThreadBroker) -> None:
    assert call(broker, "PUT", "/api/users/ann", {"password": "pw1", "tags": "monitoring"})[0] \
        == 201
    assert call(broker, "PUT", "/api/permissions/%2F/ann",
                {"configure": ".*", "write": ".*", "read": ".*"})[0] == 201
    connection = amqp(broker, "ann", "pw1")
    connection.channel().queue_declare("made-by-ann")
    connection.close()
    status, user = call(broker, "GET", "/api/users/ann")
    assert status == 200
    assert user["name"] == "ann" and user["tags"] == ["monitoring"]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert user["password_hash"] and user["password_hash"] != "pw1"
    assert {"user": "ann", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"} in \
        call(broker, "GET", "/api/permissions")[1]
    # Replacing the password: 204, the old one no longer logs in.
    assert call(broker, "PUT", "/api/users/ann", {"password": "pw2"})[0] == 204
    with pytest.raises(ProbableAuthenticationError):
        amqp(broker, "ann", "pw1")
    amqp(broker, "ann", "pw2").close()


def test_a_permission_set_over_http_applies_to_the_next_operation(broker: ThreadBroker) -> None:
    call(broker, "PUT", "/api/users/bob", {"password": "pw", "tags": ""})
    call(broker, "PUT", "/api/permissions/%2F/bob", {"configure": "^bob-", "write": ".*",
                                                      "read": ".*"})
    connection = amqp(broker, "bob", "pw")
    channel = connection.channel()
    channel.queue_declare("bob-1")
    with pytest.raises(ChannelClosedByBroker) as refused:
        channel.queue_declare("other")
    assert refused.value.reply_code == 403
    assert refused.value.reply_text == ("ACCESS_REFUSED - configure access to queue 'other' in "
                                        "vhost '/' refused for user 'bob'")
    assert call(broker, "DELETE", "/api/permissions/%2F/bob")[0] == 204
    assert call(broker, "GET", "/api/permissions/%2F/bob")[0] == 404
    connection.close()


def test_a_vhost_made_over_http_isolates_and_its_deletion_closes_its_connections(
        broker: ThreadBroker) -> None:
    assert call(broker, "PUT", "/api/vhosts/orders", {"description": "the orders team"})[0] \
        == 201
    assert call(broker, "PUT", "/api/vhosts/orders")[0] == 204
    call(broker, "PUT", "/api/permissions/orders/guest",
         {"configure": ".*", "write": ".*", "read": ".*"})
    connection = amqp(broker, "guest", "guest", "orders")
    connection.channel().queue_declare("jobs")
    # Declared in "orders", listed there over the API, and not in "/".
    assert call(broker, "GET", "/api/queues/orders/jobs")[0] == 200
    assert call(broker, "GET", "/api/queues/%2F/jobs")[0] == 404
    status, vhost = call(broker, "GET", "/api/vhosts/orders")
    assert status == 200 and vhost["name"] == "orders"
    assert call(broker, "DELETE", "/api/vhosts/orders")[0] == 204
    with pytest.raises(ConnectionClosedByBroker) as closed:
        connection.channel()
    assert closed.value.reply_code == 320
    assert call(broker, "GET", "/api/vhosts/orders")[0] == 404
    assert call(broker, "DELETE", "/api/vhosts/orders")[0] == 404


def test_deleting_a_user_closes_its_connections(broker: ThreadBroker) -> None:
    call(broker, "PUT", "/api/users/carl", {"password": "pw"})
    call(broker, "PUT", "/api/permissions/%2F/carl", {"configure": "", "write": "", "read": ""})
    connection = amqp(broker, "carl", "pw")
    assert call(broker, "DELETE", "/api/users/carl")[0] == 204
    with pytest.raises(ConnectionClosedByBroker) as closed:
        connection.channel()
    assert (closed.value.reply_code, closed.value.reply_text) == (
        320, "CONNECTION_FORCED - user 'carl' is deleted")
    assert call(broker, "DELETE", "/api/users/carl")[0] == 404


def test_only_an_administrator_manages_accounts(broker: ThreadBroker) -> None:
    call(broker, "PUT", "/api/users/dana", {"password": "pw", "tags": ["management"]})
    refused = (401, {"error": "not_authorised", "reason": "Not administrator user"})
    assert call(broker, "GET", "/api/users", user="dana", password="pw") == refused
    assert call(broker, "PUT", "/api/users/evil", {"password": "x"}, user="dana",
                password="pw") == refused
    assert call(broker, "GET", "/api/whoami", user="dana", password="pw")[1] == {
        "name": "dana", "tags": ["management"]}


@pytest.mark.parametrize(("path", "body", "reason"), [
    ("/api/users/new", {"tags": "x"}, "password or password_hash must be set for a new user"),
    ("/api/users/new", {"password": 5}, "password must be a string, not int"),
    ("/api/users/new", {"password": "p", "tags": 3},
     "tags must be a comma-separated string or a list of strings"),
    ("/api/permissions/%2F/nobody", {"configure": ".*"}, "no user 'nobody'"),
    ("/api/permissions/nowhere/guest", {"configure": ".*"}, "no vhost 'nowhere'"),
])
def test_bad_bodies_are_400_naming_the_problem(broker: ThreadBroker, path: str,
                                               body: dict[str, Any], reason: str) -> None:
    assert call(broker, "PUT", path, body) == (400, {"error": "bad_request", "reason": reason})


def test_the_default_vhost_is_not_deleted(broker: ThreadBroker) -> None:
    assert call(broker, "DELETE", "/api/vhosts/" + quote("/", safe="")) == (400, {
        "error": "bad_request",
        "reason": "the default vhost '/' holds the broker's own core and cannot be deleted in "
                  "minibroker"})
    assert call(broker, "GET", "/api/vhosts/%2F")[0] == 200
