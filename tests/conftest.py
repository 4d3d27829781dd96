"""Shared test configuration: hypothesis profiles, and the count of differential tests.

``HYPOTHESIS_PROFILE=ci`` (set by .ci/run) keeps property tests bounded; local runs default to
the more thorough profile.

Tests that compare with a reference RabbitMQ carry the ``rabbitmq`` marker and skip, saying
why, when none answers: the only skips of an installed test extra. So that a run without one
cannot pass for a run with one, the terminal summary ends with one line counting them, e.g.
``differential tests against RabbitMQ 3.10.8: 412 passed, 0 failed, 0 skipped``.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# Mutation testing (pyproject.toml [tool.mutmut]): the ci profile's size, but the same examples
# every run and no shrinking, so a mutant's verdict does not depend on luck and a kill costs
# one failing example.
settings.register_profile(
    "mutation",
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "thorough"))

#: The reference RabbitMQ's version, stored by the fixture that first connects to it.
REFERENCE_VERSION = pytest.StashKey[str]()


def differential_outcomes(reports: dict[str, list[pytest.TestReport]]) -> Counter[str]:
    """nodeid -> one outcome (failed > skipped > passed over its setup, call and teardown),
    counted, for the items marked ``rabbitmq``."""
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    worst: dict[str, str] = {}
    for category, listed in reports.items():
        for report in listed:
            if not isinstance(report, pytest.TestReport) or "rabbitmq" not in report.keywords:
                continue
            outcome = "failed" if category == "error" else report.outcome
            if outcome not in rank or (report.when != "call" and outcome == "passed"):
                continue
            if rank[outcome] >= rank[worst.get(report.nodeid, "passed")]:
                worst[report.nodeid] = outcome
    return Counter(worst.values())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    counts = differential_outcomes(terminalreporter.stats)
    if not counts:
        return
    version = config.stash.get(REFERENCE_VERSION, "")
    against = f"RabbitMQ {version}" if version else "a reference RabbitMQ"
    terminalreporter.write_line(
        f"differential tests against {against}: {counts['passed']} passed, "
        f"{counts['failed']} failed, {counts['skipped']} skipped")
