"""Differential: minibroker's management API answers with RabbitMQ's statuses, fields and types.

The same scenario (``reference.endpoints``) is played against minibroker and compared with the
recording of RabbitMQ 3.10 (``rabbitmq_management_reference.json``), and with the live API when
``MINIBROKER_RABBITMQ_MGMT_URL`` is set. Every field RabbitMQ sends is either sent by
minibroker with the same JSON type or listed below with the reason it is left out; minibroker
sends no field RabbitMQ does not.
"""

from __future__ import annotations

import fnmatch
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from minibroker.core import commands as c
from minibroker.message import Message, Properties
from tests.management.harness import World
from tests.management.reference import PREFIX, RECORDING, Names, endpoints, record_live, summary

#: RabbitMQ's fields minibroker leaves out: (endpoints, field patterns, why).
OMITTED: list[tuple[str, list[str], str]] = [
    ("*", ["garbage_collection*", "reductions*", "memory", "backing_queue_status*"],
     "Erlang VM internals"),
    ("overview*", ["erlang_version", "erlang_full_version", "release_series_support_status",
                   "enable_queue_totals", "listeners[].socket_opts", "contexts[].cowboy_opts",
                   "contexts[].ssl_opts"], "Erlang and web server settings"),
    ("overview*", ["churn_rates*"],
     "the core counts no connection, channel and queue creations and deletions"),
    ("overview*", ["message_stats.confirm*", "message_stats.drop_unroutable*",
                   "message_stats.deliver", "message_stats.deliver_details*",
                   "message_stats.deliver_no_ack*", "message_stats.get",
                   "message_stats.get_details*", "message_stats.get_no_ack*",
                   "message_stats.get_empty*", "message_stats.redeliver*", "message_stats.disk_*"],
     "the core keeps no confirm, unroutable-drop, redelivery or get/deliver split counters"),
    ("vhosts", ["[].message_stats.confirm*", "[].message_stats.drop_unroutable*",
                "[].message_stats.deliver", "[].message_stats.deliver_details*",
                "[].message_stats.deliver_no_ack*", "[].message_stats.get",
                "[].message_stats.get_details*", "[].message_stats.get_no_ack*",
                "[].message_stats.get_empty*", "[].message_stats.redeliver*",
                "[].default_queue_type"], "as the overview; no default queue type setting"),
    ("queue*", ["[].idle_since", "idle_since", "[].consumer_capacity", "consumer_capacity",
                "[].consumer_utilisation", "consumer_utilisation", "[].head_message_timestamp",
                "head_message_timestamp", "[].single_active_consumer_tag",
                "single_active_consumer_tag", "[].message_bytes*", "message_bytes*",
                "[].messages_persistent", "messages_persistent",
                "[].message_stats.deliver", "message_stats.deliver",
                "[].message_stats.deliver_details*", "message_stats.deliver_details*",
                "[].message_stats.deliver_no_ack*", "message_stats.deliver_no_ack*",
                "[].message_stats.get", "message_stats.get", "[].message_stats.get_details*",
                "message_stats.get_details*", "[].message_stats.get_no_ack*",
                "message_stats.get_no_ack*", "[].message_stats.get_empty*",
                "message_stats.get_empty*"],
     "the core's queue statistics have no idle time, byte sizes, utilisation or get split"),
    ("exchange*", ["[].message_stats*", "message_stats*", "[].user_who_performed_action",
                   "user_who_performed_action"], "the core keeps no per-exchange counters or "
                                                 "declaring user"),
    ("channel*", ["[].message_stats*", "message_stats*", "[].idle_since", "idle_since",
                  "[].acks_uncommitted", "acks_uncommitted", "[].messages_uncommitted",
                  "messages_uncommitted", "[].messages_unconfirmed", "messages_unconfirmed"],
     "the core's channel info has no counters, idle time or tx/confirm backlog"),
    ("definitions", ["global_parameters[]*"], "no cluster id"),
]

#: Endpoints whose error bodies must match RabbitMQ's word for word.
EXACT_BODIES = {
    "bad_auth", "bind_missing_queue", "delete_missing", "get_bad_encoding", "get_missing_count",
    "health_port_invalid", "inequivalent", "missing_path", "missing_queue", "not_boolean",
    "not_empty", "not_json", "publish_missing_exchange", "reserved_name",
}


def omitted(endpoint: str, path: str) -> bool:
    return any(fnmatch.fnmatchcase(endpoint, endpoints) and any(
        fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, "[]." + pattern)
        for pattern in patterns) for endpoints, patterns, _ in OMITTED)


def play(world: World, names: Names) -> None:
    """The reference scenario, as core commands (what an AMQP client's frames become)."""
    world.client(1, properties={"connection_name": names.connection_name,
                                "capabilities": {"publisher_confirms": True}}, channels=2)
    run = world.run
    run(c.DeclareExchange(1, 1, names.exchange, "topic", durable=True))
    run(c.DeclareQueue(1, 1, names.queue, durable=True, arguments={"x-max-length": 100}))
    run(c.BindQueue(1, 1, names.queue, names.exchange, "k.#", {"a": 1}))
    run(c.ConfirmSelect(1, 1))
    for i in range(3):
        run(c.Publish(1, 1, Message(names.exchange, f"k.{i}", b"hello %d" % i, Properties(
            content_type="text/plain", headers={"h": i}, delivery_mode=2))))
    run(c.DeclareQueue(1, 2, names.consumed))
    run(c.Qos(1, 2, 10))
    run(c.Publish(1, 2, Message("", names.consumed, b"x")))
    run(c.Consume(1, 2, names.consumed, "ctag1"))
    world.sampler.sample(world.clock())
    world.clock.now += 5
    world.sampler.sample(world.clock())


def our_summary() -> dict[str, dict[str, Any]]:
    world = World()
    names = Names("mbref-test")
    play(world, names)

    def request(method: str, path: str, body: Any = None, *, auth: bool = True,
                password: str = "guest", raw: bytes | None = None) -> tuple[int, Any]:
        reply = world.request(method, path, body, auth=("guest", password) if auth else None,
                              raw=raw)
        return reply.status, reply.json if reply.body else None

    return summary(endpoints(names, request), names)


def differences(ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    for name, reference in sorted(theirs.items()):
        mine = ours[name]
        if mine["status"] != reference["status"]:
            problems.append(f"{name}: status {mine['status']}, RabbitMQ {reference['status']}")
        their_shape = reference.get("shape", {})
        my_shape = mine.get("shape", {})
        for path, types in my_shape.items():
            if path not in their_shape:
                problems.append(f"{name}: field {path!r} is not RabbitMQ's")
            elif not set(types) <= set(their_shape[path]):
                problems.append(f"{name}: {path!r} is {types}, RabbitMQ's {their_shape[path]}")
        for path in their_shape:
            if path not in my_shape and not omitted(name, path):
                problems.append(f"{name}: RabbitMQ's field {path!r} is missing")
        if name in EXACT_BODIES and mine.get("body") != reference.get("body"):
            problems.append(f"{name}: body {mine.get('body')}, RabbitMQ {reference.get('body')}")
    return problems


def test_answers_match_the_recording_of_rabbitmq() -> None:
    recording = json.loads(RECORDING.read_text())
    assert PREFIX in json.dumps(recording)
    assert differences(our_summary(), recording) == []


def test_the_comparison_catches_an_invented_field_and_a_wrong_type() -> None:
    recording = json.loads(RECORDING.read_text())
    ours = our_summary()
    ours["whoami"]["shape"]["invented"] = ["str"]
    ours["whoami"]["shape"]["name"] = ["int"]
    assert differences(ours, recording) == [
        "whoami: 'name' is ['int'], RabbitMQ's ['str']",
        "whoami: field 'invented' is not RabbitMQ's",
    ]


def _live_url() -> str | None:
    """The live management URL when set and answering (a 401 is an answer)."""
    url = os.environ.get("MINIBROKER_RABBITMQ_MGMT_URL")
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    try:
        urllib.request.urlopen(f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api/"
                               "overview", timeout=2)
    except urllib.error.HTTPError:
        return url
    except OSError:
        return None
    return url


@pytest.mark.rabbitmq
def test_answers_match_the_live_rabbitmq() -> None:
    url = _live_url()
    if url is None:
        pytest.skip("MINIBROKER_RABBITMQ_MGMT_URL is not set or not reachable")
    amqp_url = os.environ.get("MINIBROKER_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    assert differences(our_summary(), record_live(url, amqp_url)) == []
