"""docs/testing.md, "pytest": the first recipes, as a user's test module holds them."""

import pika
from minibroker.blocking import connect as blocking_connect

def test_pika(minibroker, minibroker_amqp_url):
    connection = pika.BlockingConnection(pika.URLParameters(minibroker_amqp_url))
    connection.channel().queue_declare("jobs")
    connection.channel().basic_publish("", "jobs", b"hello")
    minibroker.wait_for_queue("jobs", ready=1)
    assert [m.body for m in minibroker.messages("jobs")] == [b"hello"]

def test_native_blocking(minibroker_url):
    with blocking_connect(minibroker_url) as conn:
        conn.channel().declare_queue("jobs")

from minibroker import connect

async def test_async(minibroker):
    async with connect(minibroker.url) as conn:
        channel = await conn.channel()
        await channel.declare_queue("q")
        await channel.publish("", "q", b"x")
        await minibroker.wait_for_queue_async("q", ready=1)

def test_seed(minibroker):
    minibroker.declare_exchange("orders", "topic")
    minibroker.declare_queue("eu-orders")
    minibroker.bind("eu-orders", "orders", "eu.#")
    assert minibroker.publish("orders", "eu.new", b'{"id": 1}',
                              content_type="application/json") == ("eu-orders",)
    message = minibroker.get("eu-orders")
    assert message.body == b'{"id": 1}'
