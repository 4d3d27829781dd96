"""docs/testing.md, "Does my app survive a broker crash?": the recipe, verbatim."""

import pika
import pika.exceptions
import pytest

from minibroker.testing import broker_in_thread


def test_confirmed_orders_survive_a_broker_crash(tmp_path):
    with broker_in_thread(data_dir=str(tmp_path)) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()                   # each publish returns once it is on disk
        channel.queue_declare("orders", durable=True)
        for n in range(3):
            channel.basic_publish("", "orders", f"order {n}".encode(),
                                  pika.BasicProperties(delivery_mode=2))

        broker.crash()                               # kill -9, then recovery from tmp_path

        with pytest.raises(pika.exceptions.AMQPConnectionError):
            channel.basic_publish("", "orders", b"lost connection")
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = connection.channel()
        bodies = []
        for method, _properties, body in channel.consume("orders", inactivity_timeout=1):
            if method is None:
                break
            assert method.redelivered                # the app may have seen it before
            bodies.append(body)
            channel.basic_ack(method.delivery_tag)
        assert bodies == [b"order 0", b"order 1", b"order 2"]
