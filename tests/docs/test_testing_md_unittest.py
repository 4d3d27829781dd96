"""docs/testing.md, "unittest": the TestCase, as written there (pytest runs it)."""

import unittest
from minibroker.testing import broker_in_thread

class OrderTests(unittest.TestCase):
    def setUp(self):
        self.broker = self.enterContext(broker_in_thread())

    def test_an_order_is_queued(self):
        self.broker.declare_queue("orders")
        self.broker.publish("", "orders", b"order 42")
        self.assertEqual(self.broker.queue("orders").ready, 1)
