"""The API's resources against a real core (continued): bindings, clients, definitions,
overview and health."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.message import Message
from tests.management.harness import World, publish

# --- bindings ----------------------------------------------------------------------------------

def test_binding_create_find_by_location_and_delete() -> None:
    world = World()
    world.request("PUT", "/api/queues/%2F/q")
    world.request("PUT", "/api/exchanges/%2F/x", {"type": "topic"})
    reply = world.request("POST", "/api/bindings/%2F/e/x/q/q",
                          {"routing_key": "a.#", "arguments": {"k": "v"}})
    assert reply.status == 201
    location = reply.headers["location"]
    binding = world.get(f"/api/bindings/%2F/e/x/q/{location}")
    assert (binding["routing_key"], binding["arguments"]) == ("a.#", {"k": "v"})
    assert binding["properties_key"].startswith("a.%23~")
    assert world.get("/api/exchanges/%2F/x/bindings/source") == [binding]
    assert world.request("DELETE", f"/api/bindings/%2F/e/x/q/{location}").status == 204
    assert world.get("/api/bindings/%2F/e/x/q/q") == []
    assert world.request("DELETE", f"/api/bindings/%2F/e/x/q/{location}").status == 404


def test_exchange_to_exchange_bindings() -> None:
    world = World()
    world.request("PUT", "/api/exchanges/%2F/a", {"type": "fanout"})
    world.request("PUT", "/api/exchanges/%2F/b", {"type": "fanout"})
    world.request("PUT", "/api/queues/%2F/q")
    assert world.request("POST", "/api/bindings/%2F/e/a/e/b", {}).headers["location"] == "b/~"
    world.request("POST", "/api/bindings/%2F/e/b/q/q", {})
    assert publish(world, "a", "") == {"routed": True}
    [binding] = world.get("/api/exchanges/%2F/b/bindings/destination")
    assert (binding["source"], binding["destination_type"]) == ("a", "exchange")
    assert world.request("DELETE", "/api/bindings/%2F/e/a/e/b/~").status == 204
    assert publish(world, "a", "") == {"routed": False}


def test_every_queue_has_its_default_binding() -> None:
    world = World()
    world.request("PUT", "/api/queues/%2F/q")
    expected = {"source": "", "vhost": "/", "destination": "q", "destination_type": "queue",
                "routing_key": "q", "arguments": {}, "properties_key": "q"}
    assert world.get("/api/bindings") == [expected]
    assert world.get("/api/bindings/%2F/e/amq.default/q/q") == [expected]
    assert world.request("POST", "/api/bindings/%2F/e/amq.default/q/q", {}).status == 401
    assert world.request("POST", "/api/bindings/%2F/e/amq.direct/q/none", {}).json == {
        "error": "not_found", "reason": "no queue 'none' in vhost '/'"}
    assert world.request("GET", "/api/bindings/%2F/e/amq.direct/q/none").status == 404


# --- connections, channels, consumers ------------------------------------------------------------

def test_connections_channels_consumers() -> None:
    world = World()
    world.client(1, properties={"connection_name": "app", "product": "pika"}, channels=2)
    world.run(c.DeclareQueue(1, 1, "q"))
    world.run(c.Qos(1, 2, 5))
    world.run(c.Consume(1, 2, "q", "ctag"))
    [connection] = world.get("/api/connections")
    name = "127.0.0.1:50001 -> 127.0.0.1:5680"
    assert {key: connection[key] for key in ("name", "user_provided_name", "channels", "protocol",
                                              "timeout", "recv_oct", "peer_port")} == {
        "name": name, "user_provided_name": "app", "channels": 2, "protocol": "AMQP 0-9-1",
        "timeout": 60, "recv_oct": 100, "peer_port": 50001}
    assert world.get(f"/api/connections/{quote(name, safe='')}")["ssl_protocol"] == ""
    channels = world.get(f"/api/connections/{quote(name, safe='')}/channels")
    assert [(ch["number"], ch["prefetch_count"], ch["consumer_count"]) for ch in channels] == [
        (1, 0, 0), (2, 5, 1)]
    channel = world.get(f"/api/channels/{quote(name + ' (2)', safe='')}")
    assert [consumer["consumer_tag"] for consumer in channel["consumer_details"]] == ["ctag"]
    [consumer] = world.get("/api/consumers/%2F")
    assert (consumer["queue"], consumer["prefetch_count"], consumer["active"]) == (
        {"name": "q", "vhost": "/"}, 5, True)  # the channel's prefetch, per consumer


def test_close_a_connection_with_a_reason() -> None:
    world = World()
    world.client(1)
    name = quote("127.0.0.1:50001 -> 127.0.0.1:5680", safe="")
    reply = world.request("DELETE", f"/api/connections/{name}", headers={"X-Reason": "go away"})
    assert reply.status == 204
    assert world.closed == [(1, "go away")]
    assert world.request("DELETE", f"/api/connections/{name}").status == 404
    assert world.get("/api/connections") == []


def test_a_connection_the_shell_does_not_describe_still_shows() -> None:
    world = World()
    world.run(c.OpenConnection(9, "guest", "10.0.0.1:4444"))
    [connection] = world.get("/api/connections")
    assert (connection["name"], connection["peer_host"], connection["peer_port"]) == (
        "10.0.0.1:4444", "10.0.0.1", 4444)


def test_single_active_consumers_do_not_claim_activity() -> None:
    world = World()
    world.client(1)
    world.run(c.DeclareQueue(1, 1, "q", arguments={"x-single-active-consumer": True}))
    world.run(c.Consume(1, 1, "q", "one"))
    [consumer] = world.get("/api/consumers")
    assert "active" not in consumer


# --- definitions -------------------------------------------------------------------------------

def build_topology(world: World) -> None:
    world.request("PUT", "/api/exchanges/%2F/x", {"type": "topic", "durable": True})
    world.request("PUT", "/api/exchanges/%2F/y", {"type": "fanout", "internal": True})
    world.request("PUT", "/api/queues/%2F/q", {"durable": True,
                                               "arguments": {"x-message-ttl": 1000}})
    world.request("POST", "/api/bindings/%2F/e/x/q/q", {"routing_key": "k", "arguments": {"a": 1}})
    world.request("POST", "/api/bindings/%2F/e/x/e/y", {"routing_key": "z"})
    world.client(1)
    world.run(c.DeclareQueue(1, 1, "private", exclusive=True))


def test_export_then_import_into_an_empty_broker() -> None:
    world = World()
    build_topology(world)
    document = world.get("/api/definitions")
    assert [q["name"] for q in document["queues"]] == ["q"]  # exclusive queues stay out
    assert [x["name"] for x in document["exchanges"]] == ["x", "y"]
    assert document["vhosts"] == [{"name": "/"}]
    [user] = document["users"]
    raw = base64.b64decode(user["password_hash"])
    assert raw[4:] == hashlib.sha256(raw[:4] + b"guest").digest()
    fresh = World(broker=Broker())
    assert fresh.request("POST", "/api/definitions", document).status == 204
    again = fresh.get("/api/definitions")
    for part in ("queues", "exchanges", "bindings"):
        assert again[part] == document[part]


def test_per_vhost_export_and_import() -> None:
    world = World()
    build_topology(world)
    document = world.get("/api/definitions/%2F?download=defs.json")
    assert set(document) == {"rabbit_version", "parameters", "policies", "queues", "exchanges",
                             "bindings"}
    assert "vhost" not in document["queues"][0]
    reply = world.request("GET", "/api/definitions?download=my%20defs.json")
    assert reply.headers["content-disposition"] == 'attachment; filename="mydefs.json"'
    fresh = World(broker=Broker())
    assert fresh.request("POST", "/api/definitions/%2F", document).status == 204
    assert fresh.get("/api/definitions/%2F") == document


def test_import_refusals() -> None:
    world = World()
    assert world.request("POST", "/api/definitions", raw=b"[]").json == {
        "error": "bad_request", "reason": "failed_to_parse_json"}
    assert world.request("POST", "/api/definitions", {"queues": [{"name": "q"}]}).json == {
        "error": "bad_request", "reason": ["no_such_vhost", "undefined"]}
    assert world.request("POST", "/api/definitions", {
        "queues": [{"name": "q", "vhost": "nope"}]}).json["reason"] == ["no_such_vhost", "nope"]
    world.request("PUT", "/api/queues/%2F/q", {"durable": True})
    reply = world.request("POST", "/api/definitions", {
        "exchanges": [{"name": "new", "vhost": "/", "type": "direct"}],
        "queues": [{"name": "q", "vhost": "/", "durable": False}]})
    assert reply.json["reason"].startswith("inequivalent arg 'durable' for queue 'q'")
    assert world.request("GET", "/api/exchanges/%2F/new").status == 200  # not atomic


# --- overview, rates, health -------------------------------------------------------------------

def test_overview_totals_and_rates() -> None:
    world = World()
    world.client(1, channels=2)
    world.run(c.DeclareQueue(1, 1, "q"))
    world.sampler.sample(world.clock())
    for _ in range(10):
        world.run(c.Publish(1, 1, Message("", "q", b"x")))
    world.run(c.Consume(1, 2, "q", "ctag"))
    world.clock.now += 5
    world.sampler.sample(world.clock())
    overview = world.get("/api/overview")
    assert overview["object_totals"] == {"channels": 2, "connections": 1, "consumers": 1,
                                         "exchanges": 7, "queues": 1}
    assert overview["queue_totals"]["messages"] == 10
    assert overview["queue_totals"]["messages_unacknowledged"] == 10
    assert overview["message_stats"]["publish"] == 10
    assert overview["message_stats"]["publish_details"] == {"rate": 2.0}
    assert overview["message_stats"]["deliver_get_details"] == {"rate": 2.0}
    assert overview["queue_totals"]["messages_ready_details"] == {"rate": 0.0}
    assert [(item["protocol"], item["port"]) for item in overview["listeners"]] == [
        ("amqp", 5680), ("http", 15680)]
    assert overview["contexts"][0]["port"] == "15680"
    queue = world.get("/api/queues/%2F/q")
    assert queue["message_stats"]["publish_details"] == {"rate": 2.0}
    assert queue["messages_details"] == {"rate": 2.0}
    [vhost] = world.get("/api/vhosts")
    assert vhost["message_stats"]["publish_details"] == {"rate": 2.0}
    assert vhost["recv_oct"] == 100


def test_overview_samples_for_charts() -> None:
    world = World()
    world.client(1)
    world.run(c.DeclareQueue(1, 1, "q"))
    world.clock.now = 1_000_000.0
    for _ in range(4):
        world.sampler.sample(world.clock())
        world.run(c.Publish(1, 1, Message("", "q", b"x")))
        world.clock.now += 5
    overview = world.get("/api/overview?msg_rates_age=10&msg_rates_incr=5&lengths_age=10"
                         "&lengths_incr=5")
    details = overview["message_stats"]["publish_details"]
    assert details["samples"] == [{"sample": 3, "timestamp": 1_000_015_000},
                                  {"sample": 2, "timestamp": 1_000_010_000},
                                  {"sample": 1, "timestamp": 1_000_005_000}]
    assert (details["avg_rate"], details["avg"]) == (0.2, 2.0)
    assert overview["queue_totals"]["messages_details"]["samples"][0] == {
        "sample": 3, "timestamp": 1_000_015_000}
    assert world.request("GET", "/api/overview?msg_rates_age=x").status == 400


def test_health_checks() -> None:
    world = World()
    assert world.get("/api/health/checks/alarms") == {"status": "ok"}
    world.backend.alarm_list.append("memory")
    reply = world.request("GET", "/api/health/checks/alarms")
    assert (reply.status, reply.json) == (503, {
        "status": "failed", "reason": "There are alarms in effect in the cluster",
        "alarms": [{"node": "minibroker@localhost", "resource": "memory"}]})
    assert world.get("/api/health/checks/port-listener/5680") == {"status": "ok", "port": 5680}
    reply = world.request("GET", "/api/health/checks/port-listener/5672")
    assert (reply.status, reply.json) == (503, {"status": "failed", "reason": "No active listener",
                                                "missing": 5672, "ports": [5680, 15680]})
    assert world.get("/api/health/checks/virtual-hosts") == {"status": "ok"}
    assert world.get("/api/aliveness-test/%2F") == {"status": "ok"}
    assert world.get("/api/queues/%2F/aliveness-test")["messages"] == 0
