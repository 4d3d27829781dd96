"""README.md and examples/README.md: the blocks a user runs as they are, run as they are.

The ``run:`` blocks go to a fresh interpreter, with the default broker URL (which a test must
never bind) replaced by a broker on a free port; the ``test:`` block is a test of this module.
"""

import os
import subprocess
import sys

import pytest

from minibroker.testing import broker_in_thread
from tests.docs.blocks import ROOT, Block, marked

#: What each run-block prints, found by a line of the block.
EXPECTED = {
    'await ch.declare_exchange("logs", "topic")': "eu.orders b'hello' {'k': 1}\n",
    "broker = Broker()": "[Deliver(connection=1, channel=1, consumer_tag='me', delivery_tag=1,",
    "with blocking.connect(": "b'hello'\n",
}
DEFAULT_URL = "minibroker://127.0.0.1:5680"


@pytest.mark.parametrize("block", marked("run", "tests/docs/test_readme.py"), ids=str)
def test_the_block_runs_as_written(block: Block) -> None:
    (expected,) = [output for line, output in EXPECTED.items() if line in block.code]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with broker_in_thread() as broker:
        code = block.code.replace(DEFAULT_URL, broker.url)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(expected), done.stdout


import pika

def test_order_is_queued(minibroker):
    connection = pika.BlockingConnection(pika.URLParameters(minibroker.amqp_url))
    channel = connection.channel()
    channel.queue_declare("orders")
    channel.basic_publish("", "orders", b"order 42")
    minibroker.wait_for_queue("orders", ready=1)
    assert [m.body for m in minibroker.messages("orders")] == [b"order 42"]
    connection.close()
