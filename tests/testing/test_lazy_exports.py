"""``minibroker.testing`` exports its names lazily (importing it costs nothing): each one is
found on first use, ``dir()`` lists them all, and a name it does not export is an
AttributeError naming it, as for any module."""

from __future__ import annotations

import pytest

import minibroker.testing as testing


def test_every_exported_name_is_listed_and_resolves() -> None:
    names = dir(testing)
    assert set(testing.__all__) <= set(names)
    for name in testing.__all__:
        assert getattr(testing, name) is not None, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError,
                       match=r"^module 'minibroker\.testing' has no attribute 'nope'$"):
        testing.nope  # noqa: B018
