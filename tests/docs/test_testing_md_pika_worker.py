"""docs/testing.md, "A pika worker": the app's worker and its test, as written there."""

import contextlib
import threading

import pika

def process_orders(url, handle):
    """The app's worker: handle each order, then ack it; stop when the broker closes us."""
    parameters = pika.URLParameters(url)
    parameters.client_properties = {"connection_name": "orders-worker"}
    connection = pika.BlockingConnection(parameters)
    channel = connection.channel()
    channel.queue_declare("orders", durable=True)
    channel.basic_qos(prefetch_count=1)

    def on_message(channel, method, properties, body):
        handle(body)
        channel.basic_ack(method.delivery_tag)

    channel.basic_consume("orders", on_message)
    with contextlib.suppress(pika.exceptions.ConnectionClosedByBroker):
        channel.start_consuming()

def test_the_worker_acks_each_order(minibroker):
    handled = []
    worker = threading.Thread(target=process_orders,
                              args=(minibroker.amqp_url, handled.append))
    worker.start()
    minibroker.wait_for_consumer("orders")
    minibroker.publish("", "orders", b"order 1", delivery_mode=2)
    minibroker.publish("", "orders", b"order 2", delivery_mode=2)
    minibroker.wait_for_ack(2, queue="orders")
    assert handled == [b"order 1", b"order 2"]
    assert minibroker.close_connection(name="orders-worker") == 1
    worker.join(timeout=5)
    assert not worker.is_alive()
