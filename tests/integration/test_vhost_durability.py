"""Every vhost is as durable as ``/``: the real process, a vhost created over the management
API, its durable exchange, queue, binding, persistent messages and stream; a clean stop and
``kill -9``; a deleted vhost stays deleted (``server/durability.py`` rules 6-7)."""

from __future__ import annotations

import base64
import json
import re
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pika
import pytest

from tests.integration.test_cli_storage import Broker, brokers  # noqa: F401
from tests.integration.test_durable_streams import consume_stream

VHOST = "orders"
_HTTP = re.compile(r" and (http://\S+) \(management\)")
_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def _api(broker: Broker, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    found = _HTTP.search(broker.line)
    assert found, broker.line
    request = urllib.request.Request(
        found.group(1).rstrip("/") + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": _AUTH, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _connect(broker: Broker, vhost: str = VHOST) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", broker.port, virtual_host=vhost))


def _create_vhost(broker: Broker) -> None:
    assert _api(broker, "PUT", f"/api/vhosts/{VHOST}", {})[0] in (201, 204)
    assert _api(broker, "PUT", f"/api/permissions/{VHOST}/guest",
                {"configure": ".*", "write": ".*", "read": ".*"})[0] in (201, 204)


def _fill(broker: Broker) -> None:
    connection = _connect(broker)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare("events", "topic", durable=True)
    channel.queue_declare("billing", durable=True)
    channel.queue_bind("billing", "events", "order.#")
    channel.queue_declare("log", durable=True, arguments={"x-queue-type": "stream"})
    channel.queue_declare("scratch", durable=False)
    for i in range(5):
        channel.basic_publish("events", "order.new", f"o{i}".encode(),
                              pika.BasicProperties(delivery_mode=2))
        channel.basic_publish("", "log", f"s{i}".encode())
    channel.basic_publish("events", "order.new", b"transient")
    connection.close()
    # "/" has a queue of the same name, with other messages: nothing crosses over.
    connection = _connect(broker, "/")
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("billing", durable=True)
    channel.basic_publish("", "billing", b"root", pika.BasicProperties(delivery_mode=2))
    connection.close()


def _drain(broker: Broker, queue: str, vhost: str = VHOST) -> list[tuple[bytes, bool]]:
    connection = _connect(broker, vhost)
    channel = connection.channel()
    got = []
    while (found := channel.basic_get(queue, auto_ack=True))[0] is not None:
        got.append((found[2], found[0].redelivered))
    connection.close()
    return got


def _stream(broker: Broker, count: int) -> list[tuple[int, bytes]]:
    """The vhost's stream ``log`` from its first offset: (offset, body) pairs."""
    return consume_stream(f"amqp://guest:guest@127.0.0.1:{broker.port}/{VHOST}", "log", count)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["clean", "kill-9"])
def test_a_vhost_and_its_durable_state_survive_a_restart(
        tmp_path: Path, brokers: list[Broker], stop: int,  # noqa: F811 (the fixture)
) -> None:
    data = str(tmp_path / "data")
    brokers.append(first := Broker("--data-dir", data))
    _create_vhost(first)
    _fill(first)
    first.stop(stop)
    brokers.append(second := Broker("--data-dir", data))
    status, vhost = _api(second, "GET", f"/api/vhosts/{VHOST}")
    assert status == 200 and vhost["name"] == VHOST
    status, permissions = _api(second, "GET", f"/api/permissions/{VHOST}/guest")
    assert status == 200 and permissions["configure"] == ".*"
    connection = _connect(second)
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="in vhost 'orders'"):
        channel.queue_declare("scratch", passive=True)  # non-durable: gone
    connection.close()
    got = _drain(second, "billing")
    assert [body for body, _ in got] == [f"o{i}".encode() for i in range(5)]
    assert all(redelivered == (stop == signal.SIGKILL) for _, redelivered in got)
    assert _stream(second, 5) == [(i, f"s{i}".encode()) for i in range(5)]
    assert [body for body, _ in _drain(second, "billing", "/")] == [b"root"]
    # The binding came back: a new publish is routed, and is stored in its turn.
    connection = _connect(second)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish("events", "order.paid", b"again", pika.BasicProperties(delivery_mode=2))
    connection.close()
    second.stop(signal.SIGKILL)
    brokers.append(third := Broker("--data-dir", data))
    assert [body for body, _ in _drain(third, "billing")] == [b"again"]


def test_a_deleted_vhost_stays_deleted_with_its_data(
        tmp_path: Path, brokers: list[Broker],  # noqa: F811 (the fixture)
) -> None:
    data = str(tmp_path / "data")
    brokers.append(first := Broker("--data-dir", data))
    _create_vhost(first)
    _fill(first)
    assert _api(first, "DELETE", f"/api/vhosts/{VHOST}")[0] == 204
    first.stop(signal.SIGKILL)
    brokers.append(second := Broker("--data-dir", data))
    assert _api(second, "GET", f"/api/vhosts/{VHOST}")[0] == 404
    assert not list((tmp_path / "data" / "streams").glob("*/*.seg"))  # its stream's files
    # Made again, the vhost starts empty; "/" kept its queue.
    _create_vhost(second)
    connection = _connect(second)
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        channel.queue_declare("billing", passive=True)
    connection.close()
    assert [body for body, _ in _drain(second, "billing", "/")] == [b"root"]


def test_users_made_over_the_api_survive_but_the_options_are_configuration(
        tmp_path: Path, brokers: list[Broker],  # noqa: F811 (the fixture)
) -> None:
    data = str(tmp_path / "data")
    brokers.append(first := Broker("--data-dir", data))
    assert _api(first, "PUT", "/api/users/ann", {"password": "secret",
                                                "tags": "management"})[0] in (201, 204)
    assert _api(first, "PUT", "/api/permissions/%2F/ann",
                {"configure": "", "write": ".*", "read": ".*"})[0] in (201, 204)
    # A change to an account the options make lasts until the next start (rule 1).
    assert _api(first, "PUT", "/api/users/guest", {"password": "changed",
                                                  "tags": "administrator"})[0] == 204
    first.stop(signal.SIGKILL)
    brokers.append(second := Broker("--data-dir", data))
    status, user = _api(second, "GET", "/api/users/ann")  # as guest/guest: reverted
    assert status == 200 and user["tags"] in (["management"], "management")
    status, permissions = _api(second, "GET", "/api/permissions/%2F/ann")
    assert status == 200 and (permissions["configure"], permissions["write"]) == ("", ".*")
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", second.port, credentials=pika.PlainCredentials("ann", "secret")))
    connection.close()
    assert _api(second, "DELETE", "/api/users/ann")[0] == 204
    second.stop(signal.SIGTERM)
    brokers.append(third := Broker("--data-dir", data))
    assert _api(third, "GET", "/api/users/ann")[0] == 404
