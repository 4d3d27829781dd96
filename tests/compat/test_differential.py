"""Differential tests: the same pika scenario against minibroker and against RabbitMQ must give
the same observable outcome (which calls succeed, reply codes and texts, bodies, flags, counts).

RabbitMQ's outcomes are recorded in ``rabbitmq_outcomes.json`` so minibroker is checked against
them on every run. When ``MINIBROKER_RABBITMQ_URL`` points at a reachable RabbitMQ, every
scenario also runs there and must still give the recorded outcome (so the recording cannot go
stale); set ``MINIBROKER_RECORD_OUTCOMES=1`` as well to re-record it.

Where RabbitMQ 3.10 and current releases differ (``RABBITMQ_310_OUTCOMES``, e.g. an unknown
exchange type: 503 connection error on 3.10, 406 channel error since PR #11214), the recording
and minibroker follow the current release and a 3.10 broker is held to its own answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pika = pytest.importorskip("pika")

from tests.compat import (  # noqa: E402, F401 - importing registers the scenarios
    differential_messaging,
    differential_topology,
)
from tests.compat.conftest import ServerThread  # noqa: E402
from tests.compat.differential import (  # noqa: E402
    RABBITMQ_310_OUTCOMES,
    SCENARIOS,
    Outcome,
    run_scenario,
)

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
    return major_minor < (3, 13)


@pytest.mark.parametrize("name", NAMES)
def test_minibroker_matches_rabbitmq(name: str, module_broker: ServerThread) -> None:
    expected = recorded().get(name)
    assert expected is not None, (
        f"no recorded RabbitMQ outcome for {name}: run with MINIBROKER_RABBITMQ_URL and "
        "MINIBROKER_RECORD_OUTCOMES=1"
    )
    assert normalize(run_scenario(name, module_broker.url)) == expected


@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", NAMES)
def test_rabbitmq_still_gives_recorded_outcome(name: str, rabbitmq: tuple[str, str]) -> None:
    url, version = rabbitmq
    outcome = normalize(run_scenario(name, url))
    pair = RABBITMQ_310_OUTCOMES.get(name)
    if pair is not None and is_310(version):
        # Marked difference: the old broker's answer is checked, the recording keeps the
        # current release's.
        assert outcome == normalize(pair[0])
        outcome = normalize(pair[1])
    if os.environ.get("MINIBROKER_RECORD_OUTCOMES"):
        data = recorded()
        data[name] = outcome
        RECORDED.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
        return
    assert outcome == recorded().get(name)

