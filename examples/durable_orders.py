"""Durable orders over AMQP 0-9-1 with pika: the same code against minibroker and RabbitMQ.

A durable exchange and queue, persistent messages, publisher confirms, then a consumer that
acknowledges each order. Run against ``python -m minibroker`` (its AMQP URL) or a RabbitMQ:

    python examples/durable_orders.py [AMQP_URL]      (default amqp://guest:guest@127.0.0.1:5680/)

Each run uses its own queue name and deletes what it declared, so it can run anywhere.
"""

from __future__ import annotations

import sys
import uuid

import pika

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5680/"


def main(url: str) -> None:
    run = uuid.uuid4().hex[:8]
    exchange, queue = f"orders-{run}", f"billing-{run}"
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(exchange, "topic", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, "order.#")
    channel.confirm_delivery()  # basic_publish returns once the broker confirmed
    for number in range(1, 4):
        channel.basic_publish(exchange, "order.created", f"order {number}".encode(),
                              pika.BasicProperties(delivery_mode=2,  # persistent
                                                   message_id=f"{run}-{number}"))
    print("Published 3 persistent orders, each confirmed.")
    taken = 0
    for method, properties, body in channel.consume(queue, inactivity_timeout=2):
        if method is None:
            break
        print(f"Billing {body.decode()} ({properties.message_id})")
        channel.basic_ack(method.delivery_tag)
        taken += 1
        if taken == 3:
            break
    channel.cancel()
    channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    connection.close()
    print(f"Billed {taken} orders.")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL)
