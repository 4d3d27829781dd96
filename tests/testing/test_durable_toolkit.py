"""The toolkit with a data directory: crash(), restart(), reset() and definitions, seen from
pika and from the handle's own inspection (``testing/controller.py`` rules 4-5)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pika
import pytest

from minibroker.testing import broker_in_thread, running_broker


def _declare_and_publish(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("jobs", durable=True)
    channel.queue_declare("cache")  # not durable
    for body in (b"one", b"two", b"three"):
        channel.basic_publish("", "jobs", body, pika.BasicProperties(delivery_mode=2))
    channel.basic_publish("", "jobs", b"transient")
    channel.basic_publish("", "cache", b"c", pika.BasicProperties(delivery_mode=2))
    method, _, body = channel.basic_get("jobs")
    assert body == b"one"
    channel.basic_ack(method.delivery_tag)
    method, _, body = channel.basic_get("jobs")  # delivered, never acked
    assert body == b"two"
    connection.close()  # "two" goes back, requeued


def test_crash_keeps_what_was_confirmed_and_drops_what_was_acked(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _declare_and_publish(broker.amqp_url)
        broker.crash()
        assert not broker.has_queue("cache")
        messages = broker.messages("jobs")
        assert [m.body for m in messages] == [b"two", b"three"]
        assert all(m.redelivered for m in messages)  # an unclean stop: all redelivered


def test_restart_with_a_data_dir_is_clean_and_comes_from_the_disk(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _declare_and_publish(broker.amqp_url)
        broker.restart()
        messages = broker.messages("jobs")
        assert [(m.body, m.redelivered) for m in messages] == [(b"two", True), (b"three", False)]
        assert not broker.has_queue("cache")
        # Numbering goes on after the recovered ids: the new message is behind them.
        broker.publish("", "jobs", "four", delivery_mode=2)
        assert [m.body for m in broker.messages("jobs")] == [b"two", b"three", b"four"]


def test_without_a_data_dir_restart_keeps_the_state_and_crash_loses_it() -> None:
    with broker_in_thread() as broker:
        _declare_and_publish(broker.amqp_url)
        broker.restart()
        assert [m.body for m in broker.messages("jobs")] == [b"two", b"three", b"transient"]
        broker.crash()
        assert not broker.has_queue("jobs")


def test_reset_empties_the_data_dir(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        _declare_and_publish(broker.amqp_url)
        broker.reset()
        assert not broker.has_queue("jobs")
        broker.crash()
        assert not broker.has_queue("jobs")


def test_definitions_load_export_and_survive_a_crash(tmp_path: Path) -> None:
    document = {
        "exchanges": [{"name": "events", "vhost": "/", "type": "topic", "durable": True,
                       "auto_delete": False, "internal": False, "arguments": {}}],
        "queues": [{"name": "audit", "vhost": "/", "durable": True, "auto_delete": False,
                    "arguments": {"x-message-ttl": 60000}},
                   {"name": "bad", "vhost": "/", "durable": True, "auto_delete": False,
                    "arguments": {"x-max-length": "ten"}}],
        "bindings": [{"source": "events", "vhost": "/", "destination": "audit",
                      "destination_type": "queue", "routing_key": "#", "arguments": {}}],
    }
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(document))
    with broker_in_thread(data_dir=str(tmp_path / "data")) as broker:
        problems = broker.load_definitions(path)
        assert len(problems) == 1 and "'bad'" in problems[0]
        broker.crash()
        assert broker.publish("events", "a.b", "x", delivery_mode=2) == ("audit",)
        exported = broker.export_definitions()
        assert [q["name"] for q in exported["queues"]] == ["audit"]
        assert exported["queues"][0]["arguments"] == {"x-message-ttl": 60000}
        assert exported["bindings"][0]["routing_key"] == "#"


def test_async_handle_crash_and_ttl_deadlines_survive(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_broker(data_dir=str(tmp_path)) as broker:
            broker.declare_queue("q", durable=True)
            broker.publish("", "q", "expires", delivery_mode=2, expiration="60000")
            broker.publish("", "q", "stays", delivery_mode=2)
            await broker.crash()
            assert [m.body for m in broker.messages("q")] == [b"expires", b"stays"]
            assert broker.queue("q").backing_store == "features"  # a deadline came back

    asyncio.run(main())


def test_a_second_test_broker_on_the_same_dir_is_refused(tmp_path: Path) -> None:
    from minibroker.storage.errors import DataDirLocked

    with (broker_in_thread(data_dir=str(tmp_path)), pytest.raises(DataDirLocked) as info,
          broker_in_thread(data_dir=str(tmp_path))):
        pass
    assert str(tmp_path) in str(info.value)


def test_a_committed_transaction_survives_a_crash(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = connection.channel()
        channel.queue_declare("ledger", durable=True)
        channel.tx_select()
        channel.basic_publish("", "ledger", b"debit", pika.BasicProperties(delivery_mode=2))
        channel.basic_publish("", "ledger", b"credit", pika.BasicProperties(delivery_mode=2))
        channel.tx_commit()  # commit-ok comes once both are on disk
        channel.basic_publish("", "ledger", b"uncommitted", pika.BasicProperties(delivery_mode=2))
        broker.crash()
        assert [m.body for m in broker.messages("ledger")] == [b"debit", b"credit"]


def test_quorum_delivery_counts_and_dead_letter_history_survive_a_crash(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = connection.channel()
        channel.queue_declare("q", durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_declare("dlq", durable=True)
        channel.queue_declare("src", durable=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"})
        channel.basic_publish("", "q", b"job", pika.BasicProperties(delivery_mode=2))
        channel.basic_publish("", "src", b"dead", pika.BasicProperties(delivery_mode=2))
        for _ in range(2):
            method, _, _ = channel.basic_get("q")
            channel.basic_nack(method.delivery_tag, requeue=True)
        method, _, _ = channel.basic_get("src")
        channel.basic_reject(method.delivery_tag, requeue=False)  # dead-lettered to dlq
        _, properties, _ = channel.basic_get("q")
        expected = properties.headers["x-delivery-count"]
        connection.close()  # returned once more: the count goes up by one
        broker.crash()
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = connection.channel()
        method, properties, body = channel.basic_get("q", auto_ack=True)
        assert body == b"job" and method.redelivered
        assert properties.headers["x-delivery-count"] == expected + 1
        _, properties, body = channel.basic_get("dlq", auto_ack=True)
        assert body == b"dead"
        death = properties.headers["x-death"][0]
        assert (death["queue"], death["reason"]) == ("src", "rejected")
        connection.close()


def test_another_vhost_is_durable_and_inspected_with_vhost(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        broker.add_vhost("shop")
        broker.set_permissions("guest", "shop")
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url_in("shop")))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare("sales", "fanout", durable=True)
        channel.queue_declare("jobs", durable=True)
        channel.queue_bind("jobs", "sales")
        for body in (b"a", b"b"):
            channel.basic_publish("sales", "", body, pika.BasicProperties(delivery_mode=2))
        assert [c.user for c in broker.connections(vhost="shop")] == ["guest"]
        assert broker.connections() == ()
        connection.close()
        broker.crash()
        assert broker.has_queue("jobs", vhost="shop") and not broker.has_queue("jobs")
        messages = broker.messages("jobs", vhost="shop")
        assert [(m.body, m.redelivered) for m in messages] == [(b"a", True), (b"b", True)]
        assert broker.queue("jobs", vhost="shop").ready == 2
        assert broker.exchange("sales", vhost="shop").type == "fanout"
        assert [b.destination.name for b in broker.bindings(vhost="shop")
                if b.source == "sales"] == ["jobs"]
        assert broker.statistics(vhost="shop") != broker.statistics()
        with pytest.raises(KeyError, match=r"no exchange 'sales'.$"):
            broker.exchange("sales")
        with pytest.raises(KeyError, match="no vhost 'nowhere'"):
            broker.messages("jobs", vhost="nowhere")
        broker.delete_vhost("shop")
        broker.crash()
        with pytest.raises(KeyError, match="no vhost 'shop'"):
            broker.queues(vhost="shop")
        broker.add_vhost("shop")  # made again: empty
        assert not broker.has_queue("jobs", vhost="shop")


def test_a_transaction_in_another_vhost_commits_once_on_disk(tmp_path: Path) -> None:
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        broker.add_vhost("shop")
        broker.set_permissions("guest", "shop")
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url_in("shop")))
        channel = connection.channel()
        channel.queue_declare("jobs", durable=True)
        channel.tx_select()
        channel.basic_publish("", "jobs", b"t", pika.BasicProperties(delivery_mode=2))
        channel.tx_commit()  # answered once its vhost's journal is on disk
        connection.close()
        broker.crash()
        assert [m.body for m in broker.messages("jobs", vhost="shop")] == [b"t"]


def test_a_document_loads_its_vhosts_accounts_and_topology_and_they_survive(
        tmp_path: Path) -> None:
    document = {
        "vhosts": [{"name": "shop"}],
        "users": [{"name": "clerk", "password_hash": "", "tags": "management"}],
        "permissions": [{"user": "clerk", "vhost": "shop", "configure": ".*", "write": ".*",
                         "read": ".*"}],
        "queues": [{"name": "orders", "vhost": "shop", "durable": True, "auto_delete": False,
                    "arguments": {}},
                   {"name": "lost", "vhost": "nowhere", "durable": True,
                    "auto_delete": False, "arguments": {}}],
    }
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        problems = broker.load_definitions(document)
        assert problems == ["vhost 'nowhere' does not exist: its exchanges, queues and "
                            "bindings are not loaded"]
        broker.crash()
        assert broker.has_queue("orders", vhost="shop") and not broker.has_queue("orders")
