"""``/metrics``: Prometheus text a real parser reads, under rabbitmq_prometheus's names."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from minibroker.core import commands as c
from minibroker.message import Message
from tests.management.harness import World
from tests.management.reference import PROMETHEUS_RECORDING, metric_families, record_prometheus

#: The families the issue asks for (parser names: a counter's family drops ``_total``).
WANTED = {
    "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked", "rabbitmq_queue_messages",
    "rabbitmq_queue_consumers", "rabbitmq_connections", "rabbitmq_channels",
    "rabbitmq_consumers", "rabbitmq_queues", "rabbitmq_global_messages_received",
    "rabbitmq_global_messages_delivered", "rabbitmq_global_messages_acknowledged",
    "rabbitmq_process_resident_memory_bytes", "rabbitmq_build_info",
}
#: Asked for, but the core keeps no such counter: absent rather than a made-up zero.
NOT_KEPT = {
    "rabbitmq_global_messages_confirmed", "rabbitmq_global_messages_routed",
    "rabbitmq_global_messages_redelivered", "rabbitmq_global_messages_unroutable_dropped",
}


def busy_world() -> World:
    world = World()
    world.client(1, channels=2)
    world.run(c.DeclareQueue(1, 1, "a"))
    world.run(c.DeclareQueue(1, 1, 'b"\\\n'))  # a name that needs escaping in a label
    for _ in range(3):
        world.run(c.Publish(1, 1, Message("", "a", b"x")))
    world.run(c.Publish(1, 1, Message("", "nowhere", b"x"), mandatory=True))
    world.run(c.Qos(1, 2, 1))
    world.run(c.Consume(1, 2, "a", "ctag"))
    return world


def scrape(world: World, path: str = "/metrics") -> dict[str, dict[tuple[tuple[str, str], ...],
                                                                    float]]:
    reply = world.request("GET", path, auth=None)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            values.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return values


def test_values_follow_the_broker() -> None:
    values = scrape(busy_world())
    one = {name: samples[()] for name, samples in values.items() if () in samples}
    assert {key: one[key] for key in (
        "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
        "rabbitmq_queue_messages", "rabbitmq_queue_consumers", "rabbitmq_connections",
        "rabbitmq_channels", "rabbitmq_consumers", "rabbitmq_queues",
        "rabbitmq_global_messages_received_total", "rabbitmq_global_messages_delivered_total",
        "rabbitmq_global_messages_acknowledged_total",
        "rabbitmq_global_messages_unroutable_returned_total",
        "rabbitmq_queue_messages_published_total", "rabbitmq_process_resident_memory_bytes",
    )} == {
        "rabbitmq_queue_messages_ready": 2, "rabbitmq_queue_messages_unacked": 1,
        "rabbitmq_queue_messages": 3, "rabbitmq_queue_consumers": 1, "rabbitmq_connections": 1,
        "rabbitmq_channels": 2, "rabbitmq_consumers": 1, "rabbitmq_queues": 2,
        "rabbitmq_global_messages_received_total": 4,
        "rabbitmq_global_messages_delivered_total": 1,
        "rabbitmq_global_messages_acknowledged_total": 0,
        "rabbitmq_global_messages_unroutable_returned_total": 1,
        "rabbitmq_queue_messages_published_total": 3,
        "rabbitmq_process_resident_memory_bytes": 12_345_678,
    }
    assert values["rabbitmq_build_info"] == {(("rabbitmq_version", "3.10.8"),): 1}


def test_per_object_metrics_are_labelled_by_queue() -> None:
    values = scrape(busy_world(), "/metrics/per-object")
    assert values["rabbitmq_queue_messages"] == {
        (("queue", "a"), ("vhost", "/")): 3, (("queue", 'b"\\\n'), ("vhost", "/")): 0}
    assert values["rabbitmq_queue_messages_published_total"] == {
        (("queue", "a"), ("queue_vhost", "/")): 3, (("queue", 'b"\\\n'), ("queue_vhost", "/")): 0}


def test_metrics_need_no_login_and_refuse_other_methods() -> None:
    world = World()
    assert world.request("GET", "/metrics", auth=None).status == 200
    assert world.request("POST", "/metrics", auth=None).status == 405
    assert world.request("GET", "/metrics/detailed", auth=None).status == 404


def compare(ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for name, family in sorted(ours.items()):
        reference = theirs.get(name)
        if reference is None:
            problems.append(f"{name} is not a rabbitmq_prometheus metric")
            continue
        if family["type"] != reference["type"]:
            problems.append(f"{name} is a {family['type']}, RabbitMQ's a {reference['type']}")
        extra = set(family["labels"]) - set(reference["labels"])
        if extra and reference["sampled"]:  # a family with no samples shows no labels
            problems.append(f"{name} has labels {sorted(extra)} RabbitMQ's has not")
    return problems


def our_families() -> dict[str, dict[str, dict[str, Any]]]:
    world = busy_world()
    return {path: metric_families(world.request("GET", path, auth=None).body.decode())
            for path in ("/metrics", "/metrics/per-object")}


def test_names_types_and_labels_are_rabbitmq_prometheus_ones() -> None:
    recording = json.loads(PROMETHEUS_RECORDING.read_text())
    ours = our_families()
    for path in ours:
        assert compare(ours[path], recording[path]) == [], path
        assert set(ours[path]) >= WANTED
        assert not NOT_KEPT & set(ours[path])
        assert set(recording[path]) >= NOT_KEPT


def test_the_comparison_catches_a_wrong_name_type_or_label() -> None:
    theirs = {"a": {"type": "gauge", "labels": ["queue"], "sampled": True}}
    assert compare({"a": {"type": "counter", "labels": ["queue", "x"], "sampled": True},
                    "b": {"type": "gauge", "labels": [], "sampled": True}}, theirs) == [
        "a is a counter, RabbitMQ's a gauge", "a has labels ['x'] RabbitMQ's has not",
        "b is not a rabbitmq_prometheus metric"]


@pytest.mark.rabbitmq
def test_names_match_the_live_rabbitmq_prometheus() -> None:
    url = os.environ.get("MINIBROKER_RABBITMQ_PROMETHEUS_URL")
    if not url:
        pytest.skip("MINIBROKER_RABBITMQ_PROMETHEUS_URL is not set")
    try:
        urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=5)
    except urllib.error.HTTPError:
        pass  # it answers
    except OSError:
        pytest.skip(f"{url} does not answer")
    live = record_prometheus(url)
    for path, families in our_families().items():
        assert compare(families, live[path]) == [], path
