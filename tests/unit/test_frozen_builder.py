"""``valueclass.frozen_builder``: the object it builds is the frozen class's own, equal to what
the class call makes."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from minibroker.valueclass import frozen_builder, valueclass


@valueclass(frozen=True)
class Point:
    x: int
    y: int
    label: str | None = None


def test_frozen_builder_makes_the_same_frozen_instance() -> None:
    build = frozen_builder(Point)
    made = build(1, 2)
    assert type(made) is Point
    assert made == Point(1, 2) and hash(made) == hash(Point(1, 2))
    assert made.label is None  # a field left out is None
    assert build(1, 2, "a") == Point(1, 2, "a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.x = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(made)) == made


def test_frozen_builder_refuses_a_post_init() -> None:
    @valueclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            pass

    with pytest.raises(TypeError):
        frozen_builder(Checked)
