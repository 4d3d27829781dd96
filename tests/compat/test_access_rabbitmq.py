"""Differential security tests: every scenario of ``access_scenarios.json`` against the reference
RabbitMQ, whose users, vhosts, permissions and limits are made with ``rabbitmqctl`` for the run
and removed after it.

Each scenario must still give its recorded outcome, so the recording (which minibroker's access
model is held to in ``tests/unit/core/test_access_scenarios.py``) cannot go stale. With
``MINIBROKER_RECORD_OUTCOMES=1`` the outcomes are re-recorded (the ``rabbitmq_3.10`` field;
the ``current`` field, for scenarios marked with a generation difference, is written by hand
from RabbitMQ's source and is never overwritten), and each scenario then asserts that
minibroker under its 3.10 profile gives the outcome just recorded (``recording.py``).

A broker other than 3.10 is held only to the scenarios no generation difference touches.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pika
import pytest

from tests.compat import access_runner
from tests.compat.access_runner import Names
from tests.compat.rabbitmqctl import provisioned, reference_broker
from tests.compat.recording import assert_minibroker_agrees, recording
from tests.compat.test_access_minibroker import minibroker_outcomes

SCENARIOS = access_runner.load()
NAMES = [scenario["name"] for scenario in SCENARIOS]
RECORDED = "rabbitmq_3.10"
#: Scenarios run side by side (each has its own vhost and user); RabbitMQ's answers to bad
#: logins take 3 seconds each, so running them one by one would take minutes.
WORKERS = 8


def _version(host: str, port: int) -> str:
    params = pika.ConnectionParameters(host, port, credentials=pika.PlainCredentials(
        "guest", "guest"), connection_attempts=1, socket_timeout=5)
    connection = pika.BlockingConnection(params)
    try:
        return str(connection._impl.server_properties.get("version", ""))
    finally:
        connection.close()


@pytest.fixture(scope="module")
def rabbitmq_outcomes() -> Iterator[tuple[str, dict[str, Any]]]:
    """(RabbitMQ version, scenario name -> outcome), run once for the module; when recording,
    the outcomes replace the recording (the previous one stays in ``PREVIOUS``)."""
    host, port = reference_broker()
    version = _version(host, port)
    names = Names(uuid.uuid4().hex[:6])
    document = access_runner.definitions(SCENARIOS, names)
    with provisioned(host, port, document), ThreadPoolExecutor(WORKERS) as pool:
        futures = {
            scenario["name"]: pool.submit(access_runner.run, scenario, index, names, host, port)
            for index, scenario in enumerate(SCENARIOS)
        }
        outcomes = {name: future.result() for name, future in futures.items()}
    if recording():
        assert version.startswith("3.10."), f"record against a RabbitMQ 3.10, not {version}"
        data = json.loads(access_runner.SCENARIO_FILE.read_text())
        for scenario, loaded in zip(data["scenarios"], SCENARIOS, strict=True):
            PREVIOUS[scenario["name"]] = loaded.get(RECORDED)
            scenario[RECORDED] = loaded[RECORDED] = outcomes[scenario["name"]]
        access_runner.SCENARIO_FILE.write_text(access_runner.dump(data))
    yield version, outcomes


#: When recording: scenario name -> its recording before this run.
PREVIOUS: dict[str, Any] = {}


@pytest.fixture(scope="module")
def minibroker_310() -> dict[str, Any]:
    """minibroker's outcomes under its 3.10 profile (asked for only when recording)."""
    return minibroker_outcomes("3.10")


@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", NAMES)
def test_rabbitmq_gives_the_recorded_outcome(
    name: str, rabbitmq_outcomes: tuple[str, dict[str, Any]], request: pytest.FixtureRequest,
) -> None:
    version, outcomes = rabbitmq_outcomes
    scenario = SCENARIOS[NAMES.index(name)]
    if recording():
        ours: dict[str, Any] = request.getfixturevalue("minibroker_310")
        assert_minibroker_agrees(name, PREVIOUS[name], outcomes[name], lambda: ours[name])
        return
    if version.startswith("3.10."):
        assert RECORDED in scenario, f"{name} has no recorded outcome: record it"
        assert outcomes[name] == scenario[RECORDED]
    elif "difference" in scenario:
        pytest.skip(f"RabbitMQ {version}: {scenario['difference']} changed between releases")
    else:
        assert outcomes[name] == scenario[RECORDED]
