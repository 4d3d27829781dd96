"""A real client of RabbitMQ's HTTP API (pyrabbit2, on ``requests``) drives the management API
unchanged, over a real socket, through the HTTP codec."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from pyrabbit2.api import Client, PermissionError
from pyrabbit2.http import HTTPError

from minibroker.core import commands as c
from minibroker.message import Message
from tests.management.httpserver import ApiServer


@pytest.fixture
def server() -> Iterator[ApiServer]:
    with ApiServer() as running:
        yield running


@pytest.fixture
def client(server: ApiServer) -> Client:
    return Client(f"127.0.0.1:{server.port}", "guest", "guest", timeout=10)


def test_topology_and_messages_round_trip(server: ApiServer, client: Client) -> None:
    assert client.is_alive()
    assert client.get_whoami()["name"] == "guest"
    client.create_exchange("/", "orders", "topic", durable=True)
    client.create_queue("/", "orders.eu", durable=True, arguments={"x-max-length": 10})
    client.create_binding("/", "orders", "orders.eu", "eu.#")
    assert client.publish("/", "orders", "eu.fr", "bonjour") is True
    assert client.publish("/", "orders", "us.ny", "hello") is False  # no binding matches
    assert client.get_queue_depth("/", "orders.eu") == 1
    [message] = client.get_messages("/", "orders.eu", count=5, requeue=True)
    assert (message["payload"], message["routing_key"], message["redelivered"]) == (
        "bonjour", "eu.fr", False)
    [again] = client.get_messages("/", "orders.eu", count=5, requeue=False)
    assert again["redelivered"] is True
    assert client.get_queue_depth("/", "orders.eu") == 0
    bindings = client.get_queue_bindings("/", "orders.eu")
    assert [(b["source"], b["routing_key"]) for b in bindings] == [
        ("", "orders.eu"), ("orders", "eu.#")]
    # the key to name a binding by is its properties_key, quoted once more for the path
    key = bindings[1]["properties_key"]
    assert key == "eu.%23"
    client.delete_binding("/", "orders", "orders.eu", quote(key, safe=""))
    assert [b["source"] for b in client.get_queue_bindings("/", "orders.eu")] == [""]
    client.delete_queue("/", "orders.eu")
    client.delete_exchange("/", "orders")
    assert "orders" not in [x["name"] for x in client.get_exchanges("/")]


def test_queue_listing_with_a_pattern_uses_pages(client: Client) -> None:
    for name in ("jobs.a", "jobs.b", "other"):
        client.create_queue("/", name)
    assert sorted(q["name"] for q in client.get_queues("/", pattern="jobs")) == [
        "jobs.a", "jobs.b"]
    assert sorted(q["name"] for q in client.get_queues("/", pattern="^jobs\\.a$", regex=True)) \
        == ["jobs.a"]


def test_purge_and_errors_come_back_as_rabbitmq_gives_them(client: Client) -> None:
    client.create_queue("/", "q")
    client.publish("/", "amq.default", "q", "one")
    client.purge_queue("/", "q")
    assert client.get_queue_depth("/", "q") == 0
    with pytest.raises(HTTPError) as info:
        client.get_queue("/", "missing")
    assert (info.value.status, info.value.detail) == (404, "Not Found")
    with pytest.raises(HTTPError) as info:
        client.create_queue("/", "q", durable=True)
    assert info.value.status == 400
    assert info.value.detail == (
        "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current "
        "is 'false'")


def test_connections_are_listed_and_closed(server: ApiServer, client: Client) -> None:
    def connect() -> None:
        server.world.client(7, properties={"connection_name": "worker"})
        server.world.run(c.DeclareQueue(7, 1, "work"))
        server.world.run(c.Publish(7, 1, Message("", "work", b"x")))
        server.world.run(c.Consume(7, 1, "work", "ctag"))

    server.call(connect)
    [connection] = client.get_connections()
    assert connection["user_provided_name"] == "worker"
    assert client.get_channels()[0]["consumer_count"] == 1
    client.delete_connection(connection["name"])
    assert server.call(lambda: server.world.closed) == [(7, "Closed via management plugin")]
    assert client.get_connections() == []
    assert client.get_queue_depth("/", "work") == 1  # the unacked delivery went back


def test_wrong_password_is_refused(server: ApiServer) -> None:
    with pytest.raises(PermissionError, match="Login failed"):
        Client(f"127.0.0.1:{server.port}", "guest", "nope", timeout=10).get_overview()
