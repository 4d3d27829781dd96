"""The management API of the real broker, over real sockets: what an operator's tools see.

pyrabbit2 (a client of RabbitMQ's HTTP API) and pika (an AMQP client) talk to the same running
``BrokerServer``; what one does, the other observes.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pika
import pytest
from pika.exceptions import ConnectionClosedByBroker
from prometheus_client.parser import text_string_to_metric_families
from pyrabbit2.api import Client, PermissionError

from minibroker.blocking import connect
from minibroker.server.management import IDLE_TIMEOUT
from minibroker.testing import ManualClock, ThreadBroker, broker_in_thread
from tests.management.reference import (
    RECORDING,
    Names,
    endpoints,
    http_requester,
    live_scenario,
    summary,
)
from tests.management.test_differential import differences

TIMEOUT = 10


@pytest.fixture
def broker() -> Iterator[ThreadBroker]:
    with broker_in_thread(management=True, heartbeat=0) as running:
        yield running


@pytest.fixture
def api(broker: ThreadBroker) -> Client:
    return Client(broker.management_url.removeprefix("http://").rstrip("/"), "guest", "guest",
                  timeout=TIMEOUT)


@pytest.fixture
def amqp(broker: ThreadBroker) -> Iterator[pika.BlockingConnection]:
    connection = pika.BlockingConnection(pika.URLParameters(
        broker.amqp_url + "?heartbeat=0&connection_attempts=1"))
    try:
        yield connection
    finally:
        if connection.is_open:
            connection.close()


def request(broker: ThreadBroker, method: str, path: str, body: Any = None, *,
            password: str = "guest", headers: dict[str, str] | None = None,
            user: str = "guest") -> tuple[int, bytes]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        broker.management_url.rstrip("/") + path, data=data, method=method,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json",
                 **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_pyrabbit2_and_pika_drive_the_same_broker(
        broker: ThreadBroker, api: Client, amqp: pika.BlockingConnection) -> None:
    api.create_queue("/", "jobs", durable=False)
    channel = amqp.channel()
    channel.confirm_delivery()  # a confirm means the broker has routed it
    for body in (b"one", b"two", b"three"):
        channel.basic_publish("", "jobs", body)
    with connect(broker.url) as native, native.channel() as native_channel:
        native_channel.confirm_select()  # and one from the native client
        native_channel.publish("", "jobs", b"four")
    assert api.get_queue_depth("/", "jobs") == 4
    assert broker.queue("jobs").ready == 4
    [first] = api.get_messages("/", "jobs", count=1, requeue=False)
    assert first["payload"] == "one" and first["message_count"] == 3
    api.purge_queue("/", "jobs")
    assert api.get_queue_depth("/", "jobs") == 0
    api.delete_queue("/", "jobs")
    assert "jobs" not in [queue["name"] for queue in api.get_queues("/")]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        channel.queue_declare("jobs", passive=True)
    assert info.value.reply_code == 404


def test_a_message_published_through_the_api_reaches_a_pika_consumer(
        broker: ThreadBroker, api: Client, amqp: pika.BlockingConnection) -> None:
    channel = amqp.channel()
    channel.queue_declare("inbox")
    bodies: list[bytes] = []

    def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        bodies.append(body)
        ch.stop_consuming()

    channel.basic_consume("inbox", on_message, auto_ack=True)  # waits for consume-ok
    assert api.publish("/", "amq.default", "inbox", "hello from the API") is True
    amqp.call_later(TIMEOUT, channel.stop_consuming)  # a bound, should nothing arrive
    channel.start_consuming()
    assert bodies == [b"hello from the API"]


def test_metrics_show_a_published_message(
        broker: ThreadBroker, amqp: pika.BlockingConnection) -> None:
    channel = amqp.channel()
    channel.confirm_delivery()
    channel.queue_declare("counted")
    channel.basic_publish("", "counted", b"x")
    with urllib.request.urlopen(broker.management_url + "metrics", timeout=TIMEOUT) as response:
        text = response.read().decode()
    values = {sample.name: sample.value for family in text_string_to_metric_families(text)
              for sample in family.samples if not sample.labels}
    assert values["rabbitmq_global_messages_received_total"] == 1
    assert values["rabbitmq_queue_messages_ready"] == 1
    assert values["rabbitmq_connections"] == 1
    assert values["rabbitmq_process_resident_memory_bytes"] > 1_000_000


def test_a_client_connection_is_listed_and_closed_with_the_reason(
        broker: ThreadBroker, api: Client) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(
        broker.amqp_url + "?heartbeat=0&connection_attempts=1"))
    connection.channel()
    try:
        [listed] = api.get_connections()
        local_port = connection._impl._transport._sock.getsockname()[1]
        assert listed["name"] == f"127.0.0.1:{local_port} -> 127.0.0.1:{broker.port}"
        assert listed["protocol"] == "AMQP 0-9-1" and listed["channels"] == 1
        assert listed["frame_max"] == 131072 and listed["user"] == "guest"
        status, _ = request(broker, "DELETE", "/api/connections/" + quote(listed["name"],
                                                                          safe=""),
                            headers={"X-Reason": "maintenance window"})
        assert status == 204
        with pytest.raises(ConnectionClosedByBroker) as info:
            connection.process_data_events(time_limit=TIMEOUT)
        # RabbitMQ 3.10's words exactly
        assert (info.value.reply_code, info.value.reply_text) == (
            320, "CONNECTION_FORCED - maintenance window")
        broker.wait_for_connections(0)
        assert api.get_connections() == []
    finally:
        if connection.is_open:
            connection.close()


def test_a_wrong_password_is_401(broker: ThreadBroker) -> None:
    status, body = request(broker, "GET", "/api/overview", password="wrong")
    assert status == 401
    assert json.loads(body) == {"error": "not_authorized", "reason": "Login failed"}
    with pytest.raises(PermissionError):
        Client(broker.management_url.removeprefix("http://").rstrip("/"), "guest", "nope",
               timeout=TIMEOUT).get_overview()


def test_users_the_broker_knows_log_in_and_deleted_ones_do_not(broker: ThreadBroker) -> None:
    broker.add_user("ops", "s3cret", tags=("administrator",))
    status, body = request(broker, "GET", "/api/whoami", user="ops", password="s3cret")
    assert status == 200 and json.loads(body)["name"] == "ops"
    assert request(broker, "GET", "/api/whoami", user="ops", password="guest")[0] == 401
    broker.delete_user("ops")
    assert request(broker, "GET", "/api/whoami", user="ops", password="s3cret")[0] == 401


def test_the_overview_names_the_real_listeners(broker: ThreadBroker) -> None:
    status, body = request(broker, "GET", "/api/overview")
    assert status == 200
    listeners = {(item["protocol"], item["port"]) for item in json.loads(body)["listeners"]}
    port = int(broker.management_url.rstrip("/").rsplit(":", 1)[1])
    assert {("amqp", broker.port), ("http", port)} <= listeners
    status, _ = request(broker, "GET", f"/api/health/checks/port-listener/{port}")
    assert status == 200


def test_the_real_broker_answers_as_the_recording_of_rabbitmq(broker: ThreadBroker) -> None:
    """The differential scenario, played over AMQP (pika) and HTTP on the real broker."""
    names = Names("mbref-real")
    connection = live_scenario(broker.amqp_url, names)
    try:
        broker.wait_for_consumer(names.consumed)
        sampler = broker.server.management.sampler  # type: ignore[union-attr]
        start = time.time()
        for at in (start, start + sampler.interval):  # two samples, as two sweeps 5 s apart
            broker._call(lambda at=at: sampler.sample(at))  # type: ignore[misc]
        ours = summary(endpoints(names, http_requester(
            broker.management_url.replace("http://", "http://guest:guest@"))), names)
    finally:
        connection.close()
    assert differences(ours, json.loads(RECORDING.read_text())) == []


def test_what_the_api_declares_and_publishes_survives_a_restart(tmp_path: Any) -> None:
    with broker_in_thread(management=True, data_dir=str(tmp_path)) as broker:
        status, _ = request(broker, "PUT", "/api/queues/%2F/kept", {"durable": True})
        assert status == 201
        status, body = request(broker, "POST", "/api/exchanges/%2F/amq.default/publish", {
            "routing_key": "kept", "payload": "persistent", "payload_encoding": "string",
            "properties": {"delivery_mode": 2}})
        assert (status, json.loads(body)) == (200, {"routed": True})
        url = broker.management_url
        broker.crash()  # as kill -9: only what was written comes back
        assert broker.management_url == url  # the same port again
        status, body = request(broker, "POST", "/api/queues/%2F/kept/get", {
            "count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
        assert status == 200
        assert [message["payload"] for message in json.loads(body)] == ["persistent"]


def test_a_resource_alarm_fails_the_alarms_health_check(broker: ThreadBroker) -> None:
    assert request(broker, "GET", "/api/health/checks/alarms")[0] == 200
    broker._call(lambda: broker.server.flow.disk_alarm("disk: 1 MB free, below the limit"))
    status, body = request(broker, "GET", "/api/health/checks/alarms")
    assert status == 503
    assert json.loads(body)["status"] == "failed"
    broker._call(lambda: broker.server.flow.disk_alarm(None))
    assert request(broker, "GET", "/api/health/checks/alarms")[0] == 200


def test_an_idle_http_connection_is_closed() -> None:
    clock = ManualClock()
    with broker_in_thread(management=True, clock=clock) as broker:
        port = int(broker.management_url.rstrip("/").rsplit(":", 1)[1])
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        idle.request("GET", "/metrics")  # answered: the broker knows the connection
        assert idle.getresponse().read()
        assert idle.sock is not None
        clock.advance(IDLE_TIMEOUT + 1)
        # the periodic sweep sees it idle for longer than allowed: the broker closes it
        assert idle.sock.recv(1) == b""
        idle.close()


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="the kernel's TCP_INFO is Linux's")
# uvloop is a dependency wherever TCP_INFO exists (Linux, CPython): no skip for it.
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_connection_shows_the_octets_it_moved(loop: str) -> None:
    with broker_in_thread(management=True, heartbeat=0, loop=loop) as broker:
        api = Client(broker.management_url.removeprefix("http://").rstrip("/"), "guest",
                     "guest", timeout=TIMEOUT)
        connection = pika.BlockingConnection(pika.URLParameters(
            broker.amqp_url + "?heartbeat=0&connection_attempts=1"))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.queue_declare("bytes")
            [before] = api.get_connections()
            channel.basic_publish("", "bytes", b"x" * 10_000)  # confirmed: the broker read it
            [after] = api.get_connections()
        finally:
            connection.close()
    assert after["recv_oct"] >= before["recv_oct"] + 10_000
    # octets sent count once the peer acknowledged them (the kernel's bytes_acked)
    assert after["send_oct"] >= before["send_oct"] > 0
    assert after["recv_cnt"] > before["recv_cnt"] > 0


@pytest.mark.minibroker(management=True)
def test_the_pytest_fixture_serves_it_on_request(minibroker: ThreadBroker) -> None:
    status, body = request(minibroker, "GET", "/api/whoami")
    assert (status, json.loads(body)["name"]) == (200, "guest")
