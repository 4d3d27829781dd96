"""Re-recording RabbitMQ's outcomes (``MINIBROKER_RECORD_OUTCOMES=1``) without dropping the
assertion.

The differential tests hold a reference RabbitMQ to outcomes recorded from RabbitMQ 3.10
(``rabbitmq_outcomes.json``, ``rabbitmq_wire_outcomes.json``, ``access_scenarios.json``), and
minibroker, under its 3.10 profile, to the same recordings.

Rules:

1. Without the variable, the reference RabbitMQ must give the recorded outcome.
2. With it, RabbitMQ's outcome replaces the recording, and the test still asserts: minibroker
   (3.10 profile) must give the outcome just recorded. A scenario whose outcome RabbitMQ did
   not change passes as before; one whose outcome changed fails, showing the previous and the
   new recording and minibroker's answer, until minibroker agrees. So a recording run is never
   a run without assertions, and a changed recording is never taken silently.
3. Only a RabbitMQ 3.10 is recorded; recording against another version fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def recording() -> bool:
    """Whether this run re-records the outcomes (``MINIBROKER_RECORD_OUTCOMES`` set)."""
    return bool(os.environ.get("MINIBROKER_RECORD_OUTCOMES"))


def assert_minibroker_agrees(name: str, previous: Any, recorded: Any,
                             minibroker: Callable[[], Any]) -> None:
    """Rule 2: after ``recorded`` replaced ``previous``, minibroker must give ``recorded``."""
    ours = minibroker()
    changed = "changed" if recorded != previous else "did not change"
    assert ours == recorded, (
        f"{name}: RabbitMQ's outcome {changed} and was re-recorded, but minibroker answers "
        f"differently.\n previous recording: {previous!r}\n new recording:      {recorded!r}\n"
        f" minibroker:         {ours!r}")
