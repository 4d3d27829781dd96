"""Another vhost's storage at its edges, through the toolkit with a data directory: a vhost
whose data outlives its naming, and a vhost deleted with a stream in it."""

from __future__ import annotations

import json
from pathlib import Path

import pika
import pytest

from minibroker.testing import broker_in_thread


def _publish(url: str, queue: str, arguments: dict[str, object] | None = None) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue, durable=True, arguments=arguments)
    for body in (b"a", b"b"):
        channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    connection.close()


def test_a_vhost_the_options_no_longer_name_comes_back_with_its_data(tmp_path: Path) -> None:
    # (``python -m minibroker`` prints "vhost 'shop' holds durable definitions: created".)
    with broker_in_thread(data_dir=str(tmp_path), vhosts=("shop",),
                          user_vhosts={"guest": ("/", "shop")}) as broker:
        _publish(broker.amqp_url_in("shop"), "jobs")
    with broker_in_thread(data_dir=str(tmp_path)) as broker:  # no --vhost shop this time
        # Without the vhost, its stored queue and messages would be unreachable (KeyError).
        assert [m.body for m in broker.messages("jobs", vhost="shop")] == [b"a", b"b"]
        assert not broker.has_queue("jobs")


def test_a_vhost_deleted_with_a_stream_loses_the_stream_for_good(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        broker.add_vhost("shop")
        broker.set_permissions("guest", "shop")
        _publish(broker.amqp_url_in("shop"), "log", {"x-queue-type": "stream"})
        _publish(broker.amqp_url, "log", {"x-queue-type": "stream"})  # the same name in /
        assert len(broker.messages("log", vhost="shop")) == 2
        broker.delete_vhost("shop")
        broker.crash()
        with pytest.raises(KeyError, match="no vhost 'shop'"):
            broker.queues(vhost="shop")
        broker.add_vhost("shop")
        assert not broker.has_queue("log", vhost="shop")
        assert [m.body for m in broker.messages("log")] == [b"a", b"b"]  # / untouched


def test_the_definitions_export_holds_every_vhost_and_loads_back(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path / "one")) as broker:
        broker.add_vhost("shop")
        broker.set_permissions("guest", "shop")
        _publish(broker.amqp_url_in("shop"), "jobs")
        _publish(broker.amqp_url, "audit")
        document = broker.export_definitions()
        assert [v["name"] for v in document["vhosts"]] == ["shop"]
        assert sorted((q["vhost"], q["name"]) for q in document["queues"]) == [
            ("/", "audit"), ("shop", "jobs")]
        only_shop = broker.export_definitions(vhost="shop")
        assert [(q["vhost"], q["name"]) for q in only_shop["queues"]] == [("shop", "jobs")]
        with pytest.raises(KeyError, match="no vhost 'nowhere'"):
            broker.export_definitions(vhost="nowhere")
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(document))
    with broker_in_thread(data_dir=str(tmp_path / "two")) as broker:
        assert broker.load_definitions(path) == []
        assert broker.has_queue("jobs", vhost="shop") and broker.has_queue("audit")
        assert not broker.has_queue("jobs")
