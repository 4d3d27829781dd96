"""The record mode's own rule (``recording.py``): re-recording keeps an assertion."""

from __future__ import annotations

import pytest

from tests.compat.recording import assert_minibroker_agrees


def test_a_changed_recording_fails_until_minibroker_agrees() -> None:
    with pytest.raises(AssertionError) as info:
        assert_minibroker_agrees("s", ["ok"], ["error", 406], lambda: ["ok"])
    assert str(info.value).startswith(
        "s: RabbitMQ's outcome changed and was re-recorded, but minibroker answers differently.\n"
        " previous recording: ['ok']\n new recording:      ['error', 406]\n"
        " minibroker:         ['ok']")
    assert_minibroker_agrees("s", ["ok"], ["error", 406], lambda: ["error", 406])


def test_an_unchanged_recording_still_holds_minibroker_to_it() -> None:
    with pytest.raises(AssertionError, match=r"^s: RabbitMQ's outcome did not change"):
        assert_minibroker_agrees("s", ["ok"], ["ok"], lambda: ["error", 404])
