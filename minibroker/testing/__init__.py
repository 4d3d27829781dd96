"""minibroker as the fake broker in your test suite: start one per test in milliseconds.

Reading order: ``handles.py`` (``running_broker`` and ``broker_in_thread``, the waits), ``api.py``
(addresses, inspection, actions, faults), ``conditions.py`` (what a wait waits for),
``actions.py`` (the handle's own connection into the core), ``controller.py`` (reset, restart,
waiters), ``history.py`` (every message's fate, bounded), ``faults.py``, ``clock.py``
(``ManualClock``), ``pytest_plugin.py`` (the ``minibroker`` fixture). Recipes: docs/testing.md.

Rule: nothing here is global. Every broker has its own port (chosen by the kernel), loop
objects, history and faults, so brokers run side by side and under pytest-xdist.

    async with running_broker() as broker:
        async with minibroker.connect(broker.url) as conn:
            ...
        await broker.wait_for_queue("jobs", ready=3)
"""

from minibroker.testing.actions import TOOLKIT_CONNECTION, GotMessage
from minibroker.testing.api import BrokerAPI, QueuedMessage
from minibroker.testing.clock import ManualClock
from minibroker.testing.conditions import Condition
from minibroker.testing.controller import WaitTimeout
from minibroker.testing.faults import METHOD_COMMANDS
from minibroker.testing.handles import (
    RunningBroker,
    ThreadBroker,
    broker_in_thread,
    running_broker,
)
from minibroker.testing.history import FateEvent, History, MessageRecord

__all__ = [
    "METHOD_COMMANDS",
    "TOOLKIT_CONNECTION",
    "BrokerAPI",
    "Condition",
    "FateEvent",
    "GotMessage",
    "History",
    "ManualClock",
    "MessageRecord",
    "QueuedMessage",
    "RunningBroker",
    "ThreadBroker",
    "WaitTimeout",
    "broker_in_thread",
    "running_broker",
]
