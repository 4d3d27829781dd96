"""Differential tests for RabbitMQ's queue features (TTL, dead-lettering, x-expires, length
limits, priorities, alternate exchanges, single active consumer, consumer priorities, quorum
declarations, direct reply-to, CC/BCC, argument validation): the same pika scenario against
minibroker and against RabbitMQ must give the same observable outcome.

Rules:

1. Same contract as ``test_differential.py``: RabbitMQ 3.10's outcomes are recorded in
   ``rabbitmq_outcomes.json`` (one entry per scenario, next to the core scenarios' entries);
   minibroker under its 3.10 profile is checked against them on every run, and under its
   newest profile against ``NEWEST_OUTCOMES`` where the newest RabbitMQ answers differently.
   With ``MINIBROKER_RABBITMQ_URL`` set every scenario also runs against that RabbitMQ and
   must still give the recorded outcome; add ``MINIBROKER_RECORD_OUTCOMES=1`` to re-record
   these scenarios' entries (only theirs), which still asserts that minibroker gives each
   outcome recorded (``recording.py``). Without a RabbitMQ, minibroker is held to the
   recording alone: a scenario with no recorded outcome fails.
2. A scenario whose feature the core does not have yet is ``xfail(strict=True)`` with the
   feature named in the reason (``PENDING``): it fails loudly once the feature lands, so whoever
   lands it removes the mark. Nothing is skipped.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat import (  # noqa: F401 - importing registers parts 2 and 3
    differential_features_limits,
    differential_features_routing,
)
from tests.compat.conftest import ServerThread
from tests.compat.differential import NEWEST_OUTCOMES
from tests.compat.differential_features import FEATURE_SCENARIOS, run_feature
from tests.compat.recording import assert_minibroker_agrees, recording
from tests.compat.test_differential import (
    expected_of,
    normalize,
    record,
    recorded,
)

#: scenario -> the missing core feature that makes minibroker fail it today.
PENDING: dict[str, str] = {}


def params() -> list[Any]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(
            strict=True, reason=f"{PENDING[name]} not implemented in the core yet"))
        if name in PENDING else name
        for name in FEATURE_SCENARIOS
    ]


@pytest.mark.parametrize("name", params())
def test_minibroker_matches_rabbitmq(name: str, module_broker: ServerThread) -> None:
    expected = recorded().get(name)
    assert expected is not None, (
        f"no recorded RabbitMQ outcome for {name}: run with MINIBROKER_RABBITMQ_URL and "
        "MINIBROKER_RECORD_OUTCOMES=1"
    )
    assert normalize(run_feature(name, module_broker.url)) == expected


@pytest.mark.parametrize("name", [name for name in FEATURE_SCENARIOS if name in NEWEST_OUTCOMES])
def test_minibroker_newest_profile_gives_the_newest_answer(
    name: str, newest_broker: ServerThread,
) -> None:
    assert normalize(run_feature(name, newest_broker.url)) == normalize(NEWEST_OUTCOMES[name])


@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", list(FEATURE_SCENARIOS))
def test_rabbitmq_still_gives_recorded_outcome(
    name: str, rabbitmq: tuple[str, str], module_broker: ServerThread,
) -> None:
    url, version = rabbitmq
    outcome = normalize(run_feature(name, url))
    if recording():
        previous = record(name, outcome, version)
        assert_minibroker_agrees(name, previous, outcome,
                                 lambda: normalize(run_feature(name, module_broker.url)))
        return
    assert outcome == expected_of(name, version)
