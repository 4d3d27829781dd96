"""Differential tests: the same pika scenario against minibroker and against RabbitMQ must give
the same observable outcome (which calls succeed, reply codes and texts, bodies, flags, counts).

Rules:

1. RabbitMQ 3.10's outcomes are recorded in ``rabbitmq_outcomes.json``, and minibroker, run
   under its RabbitMQ 3.10 profile (``ServerConfig(rabbitmq="3.10")``), is checked against
   them on every run. When ``MINIBROKER_RABBITMQ_URL`` points at a reachable RabbitMQ 3.10,
   every scenario also runs there and must still give the recorded outcome (so the recording
   cannot go stale); set ``MINIBROKER_RECORD_OUTCOMES=1`` as well to re-record it, which
   still asserts that minibroker gives each outcome recorded (``recording.py``).
2. Where the newest RabbitMQ minibroker models (4.2) answers differently (``NEWEST_OUTCOMES``,
   one entry per such scenario, e.g. an unknown exchange type: 503 connection error on 3.10,
   406 channel error since 3.13.3), minibroker under its default, newest profile must give
   that answer. Every row of ``core/generations.py`` has such a scenario
   (``differential_generations.ROW_SCENARIOS``).
3. A reference RabbitMQ of another version is held to the newest answer where one is written
   down, else to the recording.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from minibroker.core.generations import ACCESS_ROWS, ROWS
from tests.compat import (  # noqa: F401 - importing registers the scenarios
    differential_fidelity,
    differential_generations,
    differential_messaging,
    differential_streams,
    differential_topology,
)
from tests.compat.conftest import ServerThread
from tests.compat.differential import (
    NEWEST_OUTCOMES,
    SCENARIOS,
    Outcome,
    run_scenario,
)
from tests.compat.differential_features import FEATURE_SCENARIOS
from tests.compat.recording import assert_minibroker_agrees, recording

RECORDED = Path(__file__).with_name("rabbitmq_outcomes.json")
NAMES = list(SCENARIOS)


def normalize(outcome: Outcome) -> Any:
    """What the outcome looks like after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(outcome))


def recorded() -> dict[str, Any]:
    if not RECORDED.exists():
        return {}
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


def is_310(version: str) -> bool:
    major_minor = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    return major_minor == (3, 10)


@pytest.mark.parametrize("name", NAMES)
def test_minibroker_matches_rabbitmq(name: str, module_broker: ServerThread) -> None:
    expected = recorded().get(name)
    assert expected is not None, (
        f"no recorded RabbitMQ outcome for {name}: run with MINIBROKER_RABBITMQ_URL and "
        "MINIBROKER_RECORD_OUTCOMES=1"
    )
    assert normalize(run_scenario(name, module_broker.url)) == expected


@pytest.mark.parametrize("name", [name for name in NAMES if name in NEWEST_OUTCOMES])
def test_minibroker_newest_profile_gives_the_newest_answer(
    name: str, newest_broker: ServerThread,
) -> None:
    assert normalize(run_scenario(name, newest_broker.url)) == normalize(NEWEST_OUTCOMES[name])


def test_every_profile_row_has_a_scenario_with_both_answers() -> None:
    scenarios = differential_generations.ROW_SCENARIOS
    # The access-control rows have theirs in access_scenarios.json (test_access_*).
    assert sorted(scenarios) == sorted(row.name for row in ROWS if row not in ACCESS_ROWS)
    for name in scenarios.values():
        assert name in SCENARIOS and name in NEWEST_OUTCOMES, name
        assert name in recorded(), f"no recorded RabbitMQ 3.10 outcome for {name}"
    assert set(NEWEST_OUTCOMES) <= set(SCENARIOS) | set(FEATURE_SCENARIOS)


def expected_of(name: str, version: str) -> Any:
    """What a RabbitMQ of ``version`` must answer (rules 1 and 3)."""
    if not is_310(version) and name in NEWEST_OUTCOMES:
        return normalize(NEWEST_OUTCOMES[name])
    return recorded().get(name)


def record(name: str, outcome: Any, version: str) -> Any:
    """Write RabbitMQ 3.10's ``outcome`` for ``name``; returns the previous recording."""
    assert is_310(version), f"record against a RabbitMQ 3.10, not {version}"
    data = recorded()
    previous = data.get(name)
    data[name] = outcome
    RECORDED.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
    return previous


@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", NAMES)
def test_rabbitmq_still_gives_recorded_outcome(
    name: str, rabbitmq: tuple[str, str], module_broker: ServerThread,
) -> None:
    url, version = rabbitmq
    outcome = normalize(run_scenario(name, url))
    if recording():
        previous = record(name, outcome, version)
        assert_minibroker_agrees(name, previous, outcome,
                                 lambda: normalize(run_scenario(name, module_broker.url)))
        return
    assert outcome == expected_of(name, version)
