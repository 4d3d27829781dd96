"""The ``minibroker_vhost`` fixture: a vhost of each test's own on the session broker, and the
toolkit's vhost and user deletion closing their connections as RabbitMQ does."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ConnectionClosedByBroker

from minibroker.testing import ThreadBroker, broker_in_thread


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_an_empty_vhost_of_its_own(
    minibroker_session: ThreadBroker, minibroker_vhost: str, run: int,
) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(
        minibroker_session.amqp_url_in(minibroker_vhost)))
    try:
        channel = connection.channel()
        # passive=False with exclusive=True would be refused if the previous run's queue lived
        declared = channel.queue_declare("work", durable=True)
        assert declared.method.message_count == 0
        channel.basic_publish("", "work", f"run {run}".encode())
    finally:
        connection.close()


def test_deleting_a_vhost_or_a_user_closes_their_connections() -> None:
    with broker_in_thread(heartbeat=0) as broker:
        broker.add_vhost("v")
        broker.add_user("ann", "pw", permissions={"v": (".*", ".*", ".*")})
        ann = pika.BlockingConnection(pika.URLParameters(broker.amqp_url_in("v", "ann")))
        guest = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        broker.delete_user("ann")
        with pytest.raises(ConnectionClosedByBroker) as closed:
            ann.channel()
        assert closed.value.args == (320, "CONNECTION_FORCED - user 'ann' is deleted")
        broker.set_permissions("guest", "v")
        in_v = pika.BlockingConnection(pika.URLParameters(broker.amqp_url_in("v")))
        broker.delete_vhost("v")
        with pytest.raises(ConnectionClosedByBroker) as down:
            in_v.channel()
        assert down.value.args == (320, "CONNECTION_FORCED - vhost 'v' is down")
        guest.channel()  # "/" is untouched
        guest.close()
