"""The access-control scenarios of ``access_scenarios.json`` against minibroker, over real sockets:
every one must give RabbitMQ 3.10's recorded outcome when minibroker answers as 3.10, and the
current releases' outcome otherwise. The accounts are loaded from the same definitions document
``rabbitmqctl import_definitions`` gets, through minibroker's own importer."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from minibroker.accounts import load_accounts
from minibroker.storage import definitions_json
from minibroker.testing import broker_in_thread
from tests.compat import access_runner
from tests.compat.access_runner import Names

SCENARIOS = access_runner.load()
NAMES = [scenario["name"] for scenario in SCENARIOS]
WORKERS = 4
GENERATIONS = {"3.10": "3.10", "4.2": "current"}


def minibroker_outcomes(version: str) -> dict[str, Any]:
    """Scenario name -> outcome from one minibroker answering as RabbitMQ ``version``."""
    names = Names(uuid.uuid4().hex[:6])
    document = access_runner.definitions(SCENARIOS, names)
    with broker_in_thread(heartbeat=0, rabbitmq=version) as broker:
        problems = load_accounts(broker.server.access,
                                 definitions_json.parse(json.dumps(document)))
        assert problems == []
        with ThreadPoolExecutor(WORKERS) as pool:
            futures = {
                scenario["name"]: pool.submit(access_runner.run, scenario, index, names,
                                              "127.0.0.1", broker.port)
                for index, scenario in enumerate(SCENARIOS)
            }
            return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module", params=sorted(GENERATIONS))
def outcomes(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """(generation, scenario name -> outcome) from one broker answering as that version."""
    version: str = request.param
    return GENERATIONS[version], minibroker_outcomes(version)


@pytest.mark.parametrize("name", NAMES)
def test_minibroker_gives_rabbitmqs_outcome(
    name: str, outcomes: tuple[str, dict[str, Any]],
) -> None:
    generation, found = outcomes
    scenario = SCENARIOS[NAMES.index(name)]
    assert found[name] == access_runner.expected(scenario, generation)
