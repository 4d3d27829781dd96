"""Fixtures shared by the core's unit tests: a fresh broker with a manual clock, and one open
channel on it (``helpers.py``). A test file that needs something else defines its own."""

from __future__ import annotations

import pytest

from tests.unit.core.helpers import Chan, Harness


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def ch(harness: Harness) -> Chan:
    return harness.open()
