"""The API's resources against a real core: queues and exchanges, as a user of RabbitMQ's API
observes them."""

from __future__ import annotations

import base64

from minibroker.core import commands as c
from minibroker.core.effects import singles
from minibroker.message import Message, Properties
from tests.management.harness import World, publish

GET = {"count": 10, "ackmode": "ack_requeue_false", "encoding": "auto"}


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
    delivered = [e for e in singles(world.effects) if type(e).__name__ == "Deliver"]
    assert [(e.connection, e.message.body) for e in delivered] == [(1, b"to you")]  # type: ignore[attr-defined]
