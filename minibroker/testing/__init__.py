"""minibroker as the fake broker in your test suite: start one per test in milliseconds.

Reading order: ``handles.py`` (``running_broker`` and ``broker_in_thread``, the waits), ``api.py``
(addresses, inspection, actions, faults), ``conditions.py`` (what a wait waits for),
``actions.py`` (the handle's own connection into the core), ``controller.py`` (reset, restart,
waiters), ``history.py`` (every message's fate, bounded), ``faults.py``, ``clock.py``
(``ManualClock``), ``pytest_plugin.py`` (the ``minibroker`` fixture). Recipes: docs/testing.md.

Rule 1: nothing here is global. Every broker has its own port (chosen by the kernel), loop
objects, history and faults, so brokers run side by side and under pytest-xdist.

Rule 2: importing this package (as pytest does with the plugin, in every session) loads none of
the broker: the names below are imported on first use (PEP 562).

    async with running_broker() as broker:
        async with minibroker.connect(broker.url) as conn:
            ...
        await broker.wait_for_queue("jobs", ready=3)
"""

#: Every public name -> the module that defines it (imported on first use, rule 2).
_WHERE = {
    "TOOLKIT_CONNECTION": "actions", "GotMessage": "actions",
    "BrokerAPI": "api", "QueuedMessage": "api",
    "ManualClock": "clock",
    "Condition": "conditions",
    "WaitTimeout": "controller",
    "METHOD_COMMANDS": "faults",
    "RunningBroker": "handles", "ThreadBroker": "handles", "broker_in_thread": "handles",
    "running_broker": "handles",
    "FateEvent": "history", "History": "history", "MessageRecord": "history",
}

__all__ = sorted(_WHERE)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from minibroker.testing.actions import TOOLKIT_CONNECTION as TOOLKIT_CONNECTION
    from minibroker.testing.actions import GotMessage as GotMessage
    from minibroker.testing.api import BrokerAPI as BrokerAPI
    from minibroker.testing.api import QueuedMessage as QueuedMessage
    from minibroker.testing.clock import ManualClock as ManualClock
    from minibroker.testing.conditions import Condition as Condition
    from minibroker.testing.controller import WaitTimeout as WaitTimeout
    from minibroker.testing.faults import METHOD_COMMANDS as METHOD_COMMANDS
    from minibroker.testing.handles import RunningBroker as RunningBroker
    from minibroker.testing.handles import ThreadBroker as ThreadBroker
    from minibroker.testing.handles import broker_in_thread as broker_in_thread
    from minibroker.testing.handles import running_broker as running_broker
    from minibroker.testing.history import FateEvent as FateEvent
    from minibroker.testing.history import History as History
    from minibroker.testing.history import MessageRecord as MessageRecord


def __getattr__(name: str) -> "Any":
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
