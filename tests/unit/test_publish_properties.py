"""The message-property keywords of a publish are written once (``client/publish.py``)."""

from __future__ import annotations

import dataclasses

import pytest

from minibroker.client.publish import PublishProperties, message_properties
from minibroker.message import EMPTY_PROPERTIES, Properties
from minibroker.protocols.native.values import PROPERTY_NAMES


def test_publish_keywords_are_the_properties_but_cluster_id() -> None:
    fields = [field.name for field in dataclasses.fields(Properties)]
    assert list(PublishProperties.__annotations__) == [n for n in fields if n != "cluster_id"]
    assert list(PROPERTY_NAMES) == fields  # the native wire's order is the same list


def test_no_property_given_is_the_shared_empty_properties() -> None:
    assert message_properties(None, {}) is EMPTY_PROPERTIES
    assert message_properties(None, {"priority": None}) is EMPTY_PROPERTIES
    assert message_properties(None, {"priority": 0}) == Properties(priority=0)


def test_properties_and_keywords_do_not_mix_and_unknown_keywords_are_refused() -> None:
    with pytest.raises(TypeError, match="not both"):
        message_properties(Properties(), {"priority": 1})
    with pytest.raises(TypeError, match="cluster_id"):
        message_properties(None, {"cluster_id": "x"})  # type: ignore[typeddict-unknown-key]
