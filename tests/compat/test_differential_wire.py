"""Raw-frame differential tests: frames no client library sends, and the broker's exact answer.

Same contract as ``test_differential.py``: RabbitMQ's outcomes are recorded (here in
``rabbitmq_wire_outcomes.json``) and minibroker is checked against them on every run; with
``MINIBROKER_RABBITMQ_URL`` set each scenario also runs against that RabbitMQ and must still
give the recorded outcome, and ``MINIBROKER_RECORD_OUTCOMES=1`` re-records them (and still
asserts that minibroker gives each outcome recorded: ``recording.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import ServerThread
from tests.compat.differential_wire import WIRE_SCENARIOS, run_wire_scenario
from tests.compat.recording import assert_minibroker_agrees, recording

RECORDED = Path(__file__).with_name("rabbitmq_wire_outcomes.json")


def normalize(outcome: Any) -> Any:
    return json.loads(json.dumps(outcome))


def recorded() -> dict[str, Any]:
    if not RECORDED.exists():
        return {}
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


@pytest.mark.parametrize("name", list(WIRE_SCENARIOS))
def test_minibroker_answers_raw_frames_like_rabbitmq(name: str, module_broker: ServerThread
                                                     ) -> None:
    expected = recorded().get(name)
    assert expected is not None, (
        f"no recorded RabbitMQ outcome for {name}: run with MINIBROKER_RABBITMQ_URL and "
        "MINIBROKER_RECORD_OUTCOMES=1"
    )
    assert normalize(run_wire_scenario(name, module_broker.url)) == expected


@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", list(WIRE_SCENARIOS))
def test_rabbitmq_still_answers_raw_frames_as_recorded(
    name: str, rabbitmq: tuple[str, str], module_broker: ServerThread,
) -> None:
    url, version = rabbitmq
    outcome = normalize(run_wire_scenario(name, url))
    if recording():
        assert version.startswith("3.10."), f"record against a RabbitMQ 3.10, not {version}"
        data = recorded()
        previous = data.get(name)
        data[name] = outcome
        RECORDED.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
        assert_minibroker_agrees(name, previous, outcome,
                                 lambda: normalize(run_wire_scenario(name, module_broker.url)))
        return
    assert outcome == recorded().get(name)
