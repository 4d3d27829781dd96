"""The API's resources against a real core: what a user of RabbitMQ's API observes."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import quote

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.message import Message, Properties
from tests.management.harness import World

GET = {"count": 10, "ackmode": "ack_requeue_false", "encoding": "auto"}


def publish(world: World, exchange: str, routing_key: str, payload: str = "x",
            **extra: Any) -> dict[str, Any]:
    reply = world.request("POST", f"/api/exchanges/%2F/{exchange}/publish", {
        "routing_key": routing_key, "payload": payload, "payload_encoding": "string",
        "properties": {}, **extra})
    assert reply.status == 200, reply.body
    return reply.json  # type: ignore[no-any-return]


# --- queues ------------------------------------------------------------------------------------

def test_declare_is_created_then_no_content_then_refused_when_different() -> None:
    world = World()
    body = {"durable": True, "arguments": {"x-max-length": 2}}
    assert world.request("PUT", "/api/queues/%2F/q", body).status == 201
    assert world.request("PUT", "/api/queues/%2F/q", body).status == 204
    queue = world.get("/api/queues/%2F/q")
    assert (queue["durable"], queue["arguments"], queue["type"]) == (
        True, {"x-max-length": 2}, "classic")
    reply = world.request("PUT", "/api/queues/%2F/q", {"durable": True})
    assert reply.json == {"error": "bad_request", "reason": "inequivalent arg 'x-max-length' "
                          "for queue 'q' in vhost '/': received none but current is the value "
                          "'2' of type 'long'"}  # RabbitMQ's words for a JSON number


def test_declare_validates_the_body() -> None:
    world = World()
    for body, reason in (
        (b"[1]", "not_json"), (b"{", "not_json"), (b'{"durable": "yes"}', ["not_boolean", "yes"]),
        (b'{"arguments": 3}', ["not_table", "arguments"]),
        (b'{"arguments": {"x-max-length": "a"}}', "invalid arg 'x-max-length' for queue 'q' in "
                                                  "vhost '/': \"expected integer, got longstr\""),
        (b'{"arguments": {"big": 99999999999999999999}}',
         "arguments: integer 99999999999999999999 does not fit a signed 64-bit field value"),
    ):
        reply = world.request("PUT", "/api/queues/%2F/q", raw=body)
        assert (reply.status, reply.json["reason"]) == (400, reason), body
    assert world.request("PUT", "/api/queues/%2F/amq.q").json == {
        "error": "not_authorised", "reason": "Access refused."}


def test_delete_conditions_and_purge() -> None:
    world = World()
    world.request("PUT", "/api/queues/%2F/q")
    publish(world, "amq.default", "q")
    assert world.request("DELETE", "/api/queues/%2F/q?if-empty=true").json == {
        "error": "bad_request", "reason": "queue 'q' in vhost '/' not empty"}
    world.client(1)
    world.run(c.Consume(1, 1, "q", "ctag", no_ack=True))
    assert world.request("DELETE", "/api/queues/%2F/q?if-unused=true").json == {
        "error": "bad_request", "reason": "queue 'q' in vhost '/' in use"}
    world.run(c.Cancel(1, 1, "ctag"))
    publish(world, "amq.default", "q")
    assert world.request("DELETE", "/api/queues/%2F/q/contents").status == 204
    assert world.get("/api/queues/%2F/q")["messages"] == 0
    assert world.request("DELETE", "/api/queues/%2F/q?if-empty=true").status == 204
    assert world.request("DELETE", "/api/queues/%2F/q").status == 404
    assert world.request("DELETE", "/api/queues/%2F/q/contents").status == 404


def test_get_requeues_or_takes_by_ackmode() -> None:
    world = World()
    world.request("PUT", "/api/queues/%2F/q")
    for word in ("one", "two", "three"):
        publish(world, "amq.default", "q", word)
    got = world.request("POST", "/api/queues/%2F/q/get", {**GET, "count": 2,
                                                          "ackmode": "ack_requeue_true"}).json
    assert [(m["payload"], m["redelivered"], m["message_count"]) for m in got] == [
        ("one", False, 2), ("two", False, 1)]
    got = world.request("POST", "/api/queues/%2F/q/get", GET).json
    assert [(m["payload"], m["redelivered"]) for m in got] == [
        ("one", True), ("two", True), ("three", False)]
    assert world.get("/api/queues/%2F/q")["messages"] == 0
    assert world.request("POST", "/api/queues/%2F/q/get", GET).json == []


def test_reject_without_requeue_dead_letters() -> None:
    world = World()
    world.request("PUT", "/api/queues/%2F/dead")
    world.request("PUT", "/api/queues/%2F/q", {"arguments": {
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}})
    publish(world, "amq.default", "q", "bad")
    world.request("POST", "/api/queues/%2F/q/get", {**GET, "ackmode": "reject_requeue_false"})
    [message] = world.request("POST", "/api/queues/%2F/dead/get", GET).json
    assert message["payload"] == "bad"
    assert message["properties"]["headers"]["x-death"][0]["reason"] == "rejected"


def test_get_renders_payloads_and_properties() -> None:
    world = World()
    world.request("PUT", "/api/queues/%2F/q")
    world.client(1)
    world.run(c.Publish(1, 1, Message("", "q", "héllo".encode(), Properties(
        content_type="text/plain", headers={"n": 1, "b": b"raw"}, delivery_mode=2,
        timestamp=1_700_000_000))))
    world.run(c.Publish(1, 1, Message("", "q", b"\xff\x00")))
    got = world.request("POST", "/api/queues/%2F/q/get",
                        {**GET, "ackmode": "ack_requeue_true", "truncate": 2}).json
    assert got[0] == {
        "payload_bytes": 6, "redelivered": False, "exchange": "", "routing_key": "q",
        "message_count": 1, "payload": "aMM=", "payload_encoding": "base64",  # b"h\xc3", cut in é
        "properties": {"content_type": "text/plain", "headers": {"n": 1, "b": "raw"},
                       "delivery_mode": 2, "timestamp": 1_700_000_000}}
    assert got[1]["properties"] == []  # RabbitMQ's rendering of "no properties"
    got = world.request("POST", "/api/queues/%2F/q/get", {**GET, "encoding": "base64"}).json
    assert [m["payload"] for m in got] == [base64.b64encode("héllo".encode()).decode(), "/wA="]


def test_get_refusals() -> None:
    world = World()
    world.request("PUT", "/api/queues/%2F/q")
    assert world.request("POST", "/api/queues/%2F/missing/get", GET).json == {
        "error": "not_found", "reason": "NOT_FOUND - no queue 'missing' in vhost '/'"}
    assert world.request("POST", "/api/queues/%2F/q/get", {**GET, "ackmode": "x"}).status == 400
    assert world.request("POST", "/api/queues/%2F/q/get", {"ackmode": "x"}).json["reason"] == (
        "[{key_missing,count},\n {key_missing,encoding}]")
    world.client(1)
    world.run(c.DeclareQueue(1, 1, "mine", exclusive=True))
    reply = world.request("POST", "/api/queues/%2F/mine/get", GET)
    assert reply.status == 400
    assert "exclusive access" in reply.json["reason"]


def test_a_queue_shows_its_consumers_and_counters() -> None:
    world = World()
    world.client(1, channels=2)
    world.run(c.DeclareQueue(1, 1, "q"))
    world.run(c.Consume(1, 2, "q", "ctag", exclusive=True))
    publish(world, "amq.default", "q")
    queue = world.get("/api/queues/%2F/q")
    assert (queue["consumers"], queue["exclusive_consumer_tag"], queue["messages_unacknowledged"]
            ) == (1, "ctag", 1)
    assert queue["message_stats"]["publish"] == 1
    assert queue["message_stats"]["deliver_get"] == 1
    [consumer] = queue["consumer_details"]
    assert consumer["channel_details"]["name"] == "127.0.0.1:50001 -> 127.0.0.1:5680 (2)"
    assert consumer["ack_required"] is True


# --- exchanges ---------------------------------------------------------------------------------

def test_exchange_declare_show_delete() -> None:
    world = World()
    assert world.request("PUT", "/api/exchanges/%2F/x", {"type": "fanout"}).status == 201
    assert world.request("PUT", "/api/exchanges/%2F/x", {"type": "fanout"}).status == 204
    assert world.request("PUT", "/api/exchanges/%2F/x", {}).json["reason"] == (
        "inequivalent arg 'type' for exchange 'x' in vhost '/': received 'direct' but current "
        "is 'fanout'")
    assert world.request("PUT", "/api/exchanges/%2F/y", {"type": "nope"}).status == 400
    assert world.get("/api/exchanges/%2F/x")["type"] == "fanout"
    assert world.get("/api/exchanges/%2F/amq.default")["name"] == ""
    world.request("PUT", "/api/queues/%2F/q")
    world.request("POST", "/api/bindings/%2F/e/x/q/q", {})
    assert world.request("DELETE", "/api/exchanges/%2F/x?if-unused=true").json == {
        "error": "bad_request", "reason": "exchange 'x' in vhost '/' in use"}
    assert world.request("DELETE", "/api/exchanges/%2F/amq.direct").status == 401
    assert world.request("DELETE", "/api/exchanges/%2F/x").status == 204
    assert world.request("DELETE", "/api/exchanges/%2F/x").status == 404


def test_publish_says_whether_it_was_routed() -> None:
    world = World()
    world.request("PUT", "/api/queues/%2F/q")
    assert publish(world, "amq.default", "q") == {"routed": True}
    assert publish(world, "amq.direct", "q") == {"routed": False}
    assert publish(world, "amq.default", "q", "aGk=", payload_encoding="base64") == {
        "routed": True}
    [*_, last] = world.request("POST", "/api/queues/%2F/q/get", GET).json
    assert last["payload"] == "hi"


def test_publish_refusals() -> None:
    world = World()
    cases = [
        ({"routing_key": "q", "payload": "x", "payload_encoding": "zzz"},
         ["unsupported_encoding", "zzz"]),
        ({"properties": {}}, "[{key_missing,routing_key},\n {key_missing,payload},\n "
                             "{key_missing,payload_encoding}]"),
        ({"routing_key": "q", "payload": "x", "payload_encoding": "string",
          "properties": {"delivery_mode": "x"}}, ["not_int", "delivery_mode"]),
        ({"routing_key": "q", "payload": "x", "payload_encoding": "string",
          "properties": {"user_id": "mallory"}},
         "406 PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user "
         "was 'guest'"),
    ]
    for body, reason in cases:
        reply = world.request("POST", "/api/exchanges/%2F/amq.default/publish", body)
        assert (reply.status, reply.json["reason"]) == (400, reason)
    reply = world.request("POST", "/api/exchanges/%2F/nope/publish", cases[0][0] | {
        "payload_encoding": "string"})
    assert reply.json["reason"] == "404 NOT_FOUND - no exchange 'nope' in vhost '/'"


def test_publish_reaches_a_consumer_of_another_connection() -> None:
    world = World()
    world.client(1)
    world.run(c.DeclareQueue(1, 1, "q"))
    world.run(c.Consume(1, 1, "q", "ctag", no_ack=True))
    publish(world, "amq.default", "q", "to you")
    delivered = [e for e in world.effects if type(e).__name__ == "Deliver"]
    assert [(e.connection, e.message.body) for e in delivered] == [(1, b"to you")]  # type: ignore[attr-defined]


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
