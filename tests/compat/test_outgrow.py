"""When you outgrow one machine: minibroker's exported definitions import into RabbitMQ with
``rabbitmqctl import_definitions``, and the AMQP example runs against both brokers.

Against the reference RabbitMQ (``MINIBROKER_RABBITMQ_URL``; skipped without it or without a
``rabbitmqctl`` that can administer it). Only names this run generated are created there, and
they are deleted afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pytest

from minibroker.testing import broker_in_thread
from tests.compat.rabbitmqctl import _await_import, rabbitmqctl, reference_broker

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.rabbitmq
def test_exported_definitions_import_into_rabbitmq(tmp_path: Path) -> None:
    host, port = reference_broker()
    run = uuid.uuid4().hex[:8]
    names = {"x": f"mbdef-{run}-events", "ae": f"mbdef-{run}-unrouted",
             "q": f"mbdef-{run}-audit", "qq": f"mbdef-{run}-quorum"}
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        broker.declare_exchange(names["ae"], "fanout", durable=True)
        broker.declare_exchange(names["x"], "topic", durable=True,
                                arguments={"alternate-exchange": names["ae"]})
        broker.declare_queue(names["q"], durable=True,
                             arguments={"x-message-ttl": 60000, "x-max-length": 100})
        broker.declare_queue(names["qq"], durable=True, arguments={"x-queue-type": "quorum"})
        broker.bind(names["q"], names["x"], "audit.#")
        broker.bind(names["qq"], names["ae"])
        broker.bind_exchange(names["ae"], "amq.topic", f"{run}.#")
        broker.crash()  # what is exported is what was stored
        document = broker.export_definitions()
    assert document["product_name"] == "minibroker"
    document["queues"].sort(key=lambda q: q["name"] != names["qq"])  # the sentinel imports last
    try:
        rabbitmqctl("import_definitions", stdin=json.dumps(document))
        _await_import(host, port, document)
        connection = pika.BlockingConnection(pika.ConnectionParameters(host, port))
        channel = connection.channel()
        channel.confirm_delivery()
        # The binding and the arguments came along: the topic routes, the queue took its TTL.
        channel.basic_publish(names["x"], "audit.login", b"x",
                              pika.BasicProperties(delivery_mode=2))
        channel.basic_publish(names["x"], "nobody.listens", b"y")  # to the alternate exchange
        assert channel.queue_declare(names["q"], passive=True).method.message_count == 1
        assert channel.queue_declare(names["qq"], passive=True).method.message_count == 1
        connection.close()
    finally:
        connection = pika.BlockingConnection(pika.ConnectionParameters(host, port))
        channel = connection.channel()
        for key in ("q", "qq"):
            channel.queue_delete(names[key])
        for key in ("x", "ae"):
            channel.exchange_delete(names[key])
        connection.close()


@pytest.mark.parametrize("target", ["minibroker", pytest.param("rabbitmq",
                                                                marks=pytest.mark.rabbitmq)])
def test_the_amqp_example_runs_on_both_brokers(target: str) -> None:
    if target == "rabbitmq":
        url = os.environ.get("MINIBROKER_RABBITMQ_URL")
        if not url:
            pytest.skip("MINIBROKER_RABBITMQ_URL is not set")
        lines = _run_example(url)
    else:
        with broker_in_thread() as broker:
            lines = _run_example(broker.amqp_url)
    assert lines[0] == "Published 3 persistent orders, each confirmed."
    assert [line.split(" (")[0] for line in lines[1:4]] == [
        "Billing order 1", "Billing order 2", "Billing order 3"]
    assert lines[-1] == "Billed 3 orders."


def _run_example(url: str) -> list[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "durable_orders.py"), url],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
