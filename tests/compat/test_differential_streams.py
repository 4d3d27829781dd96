"""Differential tests for stream queues: the same pika scenario against minibroker and against
RabbitMQ must give the same observable outcome.

Same contract as ``test_differential.py``: RabbitMQ 3.10's outcomes are recorded in
``rabbitmq_stream_outcomes.json`` and minibroker is checked against them on every run; with
``MINIBROKER_RABBITMQ_URL`` set every scenario also runs against that RabbitMQ and must still
give the recorded outcome; add ``MINIBROKER_RECORD_OUTCOMES=1`` to re-record them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pika = pytest.importorskip("pika")

from tests.compat.conftest import ServerThread  # noqa: E402
from tests.compat.differential_streams import (  # noqa: E402
    STREAM_SCENARIOS,
    run_stream_scenario,
)
from tests.compat.test_differential import normalize  # noqa: E402

RECORDED = Path(__file__).with_name("rabbitmq_stream_outcomes.json")


def recorded() -> dict[str, Any]:
    if not RECORDED.exists():
        return {}
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


@pytest.mark.parametrize("name", list(STREAM_SCENARIOS))
def test_minibroker_matches_rabbitmq(name: str, module_broker: ServerThread) -> None:
    expected = recorded().get(name)
    assert expected is not None, (
        f"no recorded RabbitMQ outcome for {name}: run with MINIBROKER_RABBITMQ_URL and "
        "MINIBROKER_RECORD_OUTCOMES=1"
    )
    assert normalize(run_stream_scenario(name, module_broker.url)) == expected


@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", list(STREAM_SCENARIOS))
def test_rabbitmq_still_gives_recorded_outcome(name: str, rabbitmq: tuple[str, str]) -> None:
    outcome = normalize(run_stream_scenario(name, rabbitmq[0]))
    if os.environ.get("MINIBROKER_RECORD_OUTCOMES"):
        data = recorded()
        data[name] = outcome
        RECORDED.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
        return
    assert outcome == recorded().get(name)
