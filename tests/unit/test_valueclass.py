"""``@valueclass`` behaves as ``@dataclass(slots=True)``: each test builds the same class both
ways and compares what a user of the class can observe."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from minibroker.valueclass import valueclass


class Base:
    __slots__ = ()
    KIND: ClassVar[str] = "base"


def make(maker: Any) -> type:
    """The same class body under ``maker`` (a decorator)."""

    @maker
    class Sample(Base):
        """"""  # an empty docstring: both generate one

        CODE: ClassVar[int] = 7
        name: str
        count: int = 0
        tags: list[str] = field(default_factory=list)
        table: dict[str, Any] | None = None

    return Sample  # type: ignore[no-any-return]


FLAVOURS = [
    pytest.param(dataclass(slots=True), valueclass(), id="mutable"),
    pytest.param(dataclass(frozen=True, slots=True), valueclass(frozen=True), id="frozen"),
]
pytestmark = pytest.mark.parametrize(("reference", "ours"), FLAVOURS)


def both(reference: Any, ours: Any) -> tuple[type, type]:
    return make(reference), make(ours)


def outcome(action: Any) -> tuple[str, Any]:
    try:
        return "ok", action()
    except Exception as exc:  # the error's type and text are what is compared
        return type(exc).__name__, str(exc)


def test_construction_and_repr(reference: Any, ours: Any) -> None:
    for cls_ref, cls in [both(reference, ours)]:
        for args, kwargs in [(("a",), {}), (("a", 2), {"tags": ["x"]}),
                             ((), {"name": "n", "table": {"k": 1}})]:
            assert repr(cls(*args, **kwargs)) == repr(cls_ref(*args, **kwargs))
            assert cls(*args, **kwargs) == cls(*args, **kwargs)
        for args, kwargs in [((), {}), (("a", 1, [], None, 5), {}), (("a",), {"name": "b"}),
                             (("a",), {"colour": 1})]:
            assert outcome(lambda: cls(*args, **kwargs)) == outcome(  # noqa: B023
                lambda: cls_ref(*args, **kwargs))  # noqa: B023


def test_default_factory_gives_each_instance_its_own(reference: Any, ours: Any) -> None:
    cls = make(ours)
    assert cls("a").tags is not cls("b").tags


def test_equality_and_hash(reference: Any, ours: Any) -> None:
    cls_ref, cls = both(reference, ours)
    assert cls("a", 1) == cls("a", 1)
    assert cls("a", 1) != cls("a", 2)
    assert cls("a").__eq__(cls_ref("a")) is NotImplemented
    assert cls("a") != ("a", 0, [], None)
    nan = float("nan")
    assert (cls("a", nan) == cls("a", nan)) == (cls_ref("a", nan) == cls_ref("a", nan))  # type: ignore[arg-type]
    assert (cls.__hash__ is None) == (cls_ref.__hash__ is None)
    if cls.__hash__ is not None:
        assert hash(cls("a", 1, None)) == hash(cls_ref("a", 1, None))  # type: ignore[arg-type]


def test_slots_match_args_fields_doc(reference: Any, ours: Any) -> None:
    cls_ref, cls = both(reference, ours)
    assert cls.__slots__ == cls_ref.__slots__  # type: ignore[attr-defined]
    assert not hasattr(cls("a"), "__dict__")
    assert cls.__match_args__ == cls_ref.__match_args__  # type: ignore[attr-defined]
    assert cls.__doc__ == cls_ref.__doc__
    assert cls.__qualname__ == cls_ref.__qualname__
    assert cls.CODE == 7 and cls.KIND == "base"  # type: ignore[attr-defined]
    described = [(f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.compare)
                 for f in dataclasses.fields(cls)]
    assert described == [(f.name, f.type, f.default, f.default_factory, f.init, f.repr,
                          f.compare) for f in dataclasses.fields(cls_ref)]
    assert dataclasses.is_dataclass(cls) and dataclasses.is_dataclass(cls("a"))
    assert repr(cls.__dataclass_params__) == repr(cls_ref.__dataclass_params__)  # type: ignore[attr-defined]


def test_replace_asdict_and_match(reference: Any, ours: Any) -> None:
    cls = make(ours)
    value = cls("a", 1, ["t"])
    assert dataclasses.replace(value, count=2) == cls("a", 2, ["t"])
    assert dataclasses.asdict(value) == {"name": "a", "count": 1, "tags": ["t"], "table": None}
    match value:
        case cls(name, count):  # type: ignore[misc]
            assert (name, count) == ("a", 1)
        case _:
            pytest.fail("positional pattern did not match")


def test_assignment(reference: Any, ours: Any) -> None:
    cls_ref, cls = both(reference, ours)
    mine, theirs = cls("a"), cls_ref("a")
    assert outcome(lambda: setattr(mine, "count", 3)) == outcome(
        lambda: setattr(theirs, "count", 3))
    # Neither class has a slot for it. (dataclass's frozen slotted class fails here with a
    # TypeError from its own ``super()`` call on CPython 3.11; ours says it is frozen.)
    assert outcome(lambda: setattr(mine, "other", 3))[0] in ("AttributeError",
                                                             "FrozenInstanceError")
    assert outcome(lambda: setattr(theirs, "other", 3))[0] != "ok"
    assert outcome(lambda: delattr(mine, "name")) == outcome(lambda: delattr(theirs, "name"))
    assert outcome(lambda: repr(mine)) == outcome(lambda: repr(theirs))


def test_pickle_and_copy(reference: Any, ours: Any) -> None:
    cls = make(ours)
    globals()["Sample"] = cls  # pickle finds classes by module and qualified name
    cls.__qualname__ = "Sample"
    try:
        value = cls("a", 1, ["t"], {"k": 1})
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.copy(value) == value
        duplicate = copy.deepcopy(value)
        assert duplicate == value and duplicate.tags is not value.tags
    finally:
        del globals()["Sample"]


def test_recursive_repr(reference: Any, ours: Any) -> None:
    cls_ref, cls = both(reference, ours)
    mine, theirs = cls("a", tags=[]), cls_ref("a", tags=[])
    mine.tags.append(mine)
    theirs.tags.append(theirs)
    assert repr(mine) == repr(theirs)


def test_init_is_compiled_once_and_put_on_the_class(reference: Any, ours: Any) -> None:
    cls = make(ours)
    first = cls.__init__
    cls("a")
    compiled = cls.__init__
    assert compiled is not first
    cls("b")
    assert cls.__init__ is compiled
    value = cls.__new__(cls)
    first(value, "c")  # an __init__ taken before the first call still works
    assert value.name == "c"


def test_signature_before_the_first_instance(reference: Any, ours: Any) -> None:
    cls_ref, cls = both(reference, ours)
    assert str(inspect.signature(cls)) == str(inspect.signature(cls_ref))
    assert cls("a") == cls("a")


def test_refused_definitions(reference: Any, ours: Any) -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @ours
        class Bad:
            a: int = 0
            b: int
    with pytest.raises(ValueError, match="mutable default"):
        @ours
        class Mutable:
            a: list[int] = []
    with pytest.raises(TypeError, match="__setattr__"):
        @valueclass(frozen=True)
        class Guarded:
            a: int

            def __setattr__(self, name: str, value: Any) -> None:
                pass


def test_post_init_runs_after_the_fields_are_set(reference: Any, ours: Any) -> None:
    seen = []

    def body(maker: Any) -> Any:
        @maker
        class Checked:
            low: int
            high: int = 10

            def __post_init__(self) -> None:
                seen.append((self.low, self.high))
                if self.low > self.high:
                    raise ValueError(f"low {self.low} is above high {self.high}")

        return Checked

    for cls in (body(reference), body(ours)):
        assert cls(1).high == 10
        with pytest.raises(ValueError, match="low 11 is above high 10"):
            cls(11)
    assert seen == [(1, 10), (11, 10)] * 2
