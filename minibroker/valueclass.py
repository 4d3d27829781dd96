"""``@valueclass``: a slotted dataclass that is cheap to define, for the many small classes of
the protocols and the core (frames, methods, commands, effects).

``@dataclass(slots=True)`` costs 300-1,000 µs a class on CPython 3.11 (it compiles five or
six functions, builds the class twice and calls ``inspect.signature`` for the docstring), and
``python -m minibroker`` defines some 250 of them: about a third of its start-up. This
decorator makes the same classes for about 30 µs each (a nine-field frozen command: 29 µs
against 700 µs; ``docs/benchmarks.md``, "Start-up").

Rules:

1. Same behaviour as ``@dataclass(slots=True)`` or ``@dataclass(frozen=True, slots=True)``:
   ``__init__`` (positional or keyword, defaults, ``field(default_factory=...)``), ``__repr__``,
   ``__eq__`` (same class only, fields compared as a tuple), ``__hash__`` (frozen: of the fields;
   else ``None``), ``__match_args__``, ``__slots__`` and no ``__dict__``, ``FrozenInstanceError``
   on assignment to a frozen instance, pickling and ``copy`` of frozen instances, the generated
   docstring. ``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work: the
   class carries real ``dataclasses.Field`` objects. ``tests/unit/test_valueclass.py`` compares
   every one of these with ``dataclass`` itself.
2. ``__init__`` is the very code ``dataclass`` generates (ending with ``__post_init__()``
   when the class has one), so building a frame costs the same;
   it is compiled on the first call of each class (most of the classes are never built in a
   given run: an AMQP method nobody sends, a frame of another protocol). The first call pays
   about 50 µs once; every later call runs the compiled function directly. Asking for the
   signature (``inspect.signature``, ``help()``) compiles it as well.
3. ``__repr__``, ``__eq__``, ``__hash__`` and the frozen ``__setattr__`` are shared functions
   over the class's field names (``operator.attrgetter``), not code compiled per class.
4. Unsupported, refused with ``TypeError`` at definition: ``InitVar``, and a class that
   defines ``__setattr__``/``__delattr__`` and is frozen. Use ``dataclass`` there.
5. Type checkers see a dataclass (PEP 681 ``dataclass_transform``).
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from operator import attrgetter
from types import MethodType
from typing import Any, ClassVar, TypeVar, dataclass_transform, get_origin

__all__ = ["frozen_builder", "mutable_twin", "valueclass"]

_T = TypeVar("_T")

# ``dataclasses.fields`` keeps the fields whose ``_field_type`` is this marker (CPython
# 3.7-3.13); the unit tests fail loudly if a Python release changes it.
_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]
_MISSING: Any = dataclasses.MISSING
_PARAMS: dict[bool, Any] = {}


class _FactoryMarker:
    """The default ``__init__`` shows for a ``default_factory`` field, as dataclass's does."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


_HAS_FACTORY = _FactoryMarker()


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def valueclass(*, frozen: bool = False) -> Callable[[type[_T]], type[_T]]:
    """``@valueclass()`` or ``@valueclass(frozen=True)``: see the module's rules."""

    def wrap(cls: type[_T]) -> type[_T]:
        return _process(cls, frozen)

    return wrap


def _params(frozen: bool) -> Any:
    """``__dataclass_params__`` for ``frozen``, taken from a real dataclass (made once), since
    its constructor differs between Python releases."""
    if frozen not in _PARAMS:
        probe: Any = dataclasses.dataclass(frozen=frozen)(type("_Probe", (), {}))
        _PARAMS[frozen] = probe.__dataclass_params__
    return _PARAMS[frozen]


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str):  # ``from __future__ import annotations``
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return annotation is ClassVar or get_origin(annotation) is ClassVar


def _process(cls: type[_T], frozen: bool) -> type[_T]:
    namespace = cls.__dict__
    if frozen and ("__setattr__" in namespace or "__delattr__" in namespace):
        raise TypeError(f"{cls.__name__}: a frozen @valueclass cannot define __setattr__")
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in cls.__mro__[-1:0:-1]:  # inherited fields first, as dataclass does
        fields.update(getattr(base, "__dataclass_fields__", {}))
    for name, annotation in namespace.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        if isinstance(annotation, str) and annotation.startswith(("InitVar", "dataclasses.")):
            raise TypeError(f"{cls.__name__}.{name}: @valueclass does not support {annotation}")
        fields[name] = _field(cls, name, annotation, namespace.get(name, _MISSING))
    names = tuple(fields)
    seen_default = None
    for f in fields.values():
        if f.default is not _MISSING or f.default_factory is not _MISSING:
            seen_default = f.name
        elif seen_default is not None:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")

    # Slots are fixed when a class is created: build it again, as dataclass(slots=True) does,
    # without the defaults (class attributes would clash with the slots). What needs no
    # reference to the new class goes in its namespace: each attribute set on a class once it
    # exists costs more (CPython updates its type slots).
    inherited = {slot for base in cls.__mro__[1:-1] for slot in base.__dict__.get("__slots__", ())}
    body = {key: value for key, value in namespace.items()
            if key not in fields and key not in ("__dict__", "__weakref__")}
    body["__slots__"] = tuple(name for name in names if name not in inherited)
    body["__qualname__"] = cls.__qualname__
    body["__dataclass_fields__"] = fields
    body["__dataclass_params__"] = _params(frozen)
    key = _key(names)
    if "__repr__" not in namespace:  # dataclass keeps what the class defines itself
        body["__repr__"] = _repr(names)
    if "__eq__" not in namespace:
        body["__eq__"] = _eq(key)
    if "__match_args__" not in namespace:
        body["__match_args__"] = names
    class_hash = namespace.get("__hash__", _MISSING)
    explicit_hash = not (class_hash is _MISSING or (class_hash is None and "__eq__" in namespace))
    if not explicit_hash:  # dataclass's hash rules for eq=True, unsafe_hash=False
        body["__hash__"] = _hash(key) if frozen else None
    if frozen and "__getstate__" not in namespace:  # slots, no __dict__: pickle by field values
        body["__getstate__"] = _getstate
        body["__setstate__"] = _setstate
    if not namespace.get("__doc__"):
        body["__doc__"] = f"{cls.__name__}({', '.join(map(_parameter, fields.values()))})"
    metaclass: Any = type(cls)
    new: Any = metaclass(cls.__name__, cls.__bases__, body)
    if "__init__" not in namespace:
        new.__init__ = _LazyInit(new, fields, frozen)
    if frozen:
        new.__setattr__ = _frozen_setattr(new, names)
        new.__delattr__ = _frozen_delattr(new, names)
    return new  # type: ignore[no-any-return]


def _field(cls: type, name: str, annotation: Any, default: Any) -> Any:
    """The ``dataclasses.Field`` of one field, as dataclass completes it."""
    f: Any = (default if isinstance(default, dataclasses.Field)
              else dataclasses.field(default=default))
    if f.default is not _MISSING and f.default.__class__.__hash__ is None:
        raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: "
                         "use default_factory")
    f.name = name
    f.type = annotation
    f._field_type = _FIELD
    f.kw_only = False
    return f


def _parameter(f: dataclasses.Field[Any]) -> str:
    """One parameter of the docstring, as ``inspect.signature`` shows it."""
    text = f"{f.name}: {f.type!r}" if type(f.type) is str else f"{f.name}: {_annotation(f.type)}"
    if f.default_factory is not _MISSING:
        return f"{text} = <factory>"
    if f.default is not _MISSING:
        return f"{text} = {f.default!r}"
    return text


def _annotation(annotation: Any) -> str:
    """An annotation as ``inspect.formatannotation`` writes it in a signature."""
    if isinstance(annotation, type) and not get_origin(annotation):
        if annotation.__module__ == "builtins":
            return annotation.__qualname__
        return f"{annotation.__module__}.{annotation.__qualname__}"
    return repr(annotation).replace("typing.", "")


class _LazyInit:
    """The ``__init__`` of a class until its first instance (rule 2): compiles the real one,
    puts it on the class in its place and runs it. ``inspect.signature`` (``help()``,
    hypothesis's ``builds``) sees the real parameters: asking compiles it too."""

    __slots__ = ("cls", "compiled", "fields", "frozen")

    def __init__(self, cls: Any, fields: dict[str, dataclasses.Field[Any]], frozen: bool) -> None:
        self.cls, self.fields, self.frozen = cls, fields, frozen
        self.compiled: Callable[..., None] | None = None

    def real(self) -> Callable[..., None]:
        if self.compiled is None:
            self.compiled = _compile_init(self.cls, self.fields, self.frozen)
            type.__setattr__(self.cls, "__init__", self.compiled)
        return self.compiled

    def __call__(self, instance: Any, *args: Any, **kwargs: Any) -> None:
        self.real()(instance, *args, **kwargs)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self if instance is None else MethodType(self, instance)

    @property
    def __signature__(self) -> Any:
        import inspect

        return inspect.signature(self.real())


def _compile_init(cls: Any, fields: dict[str, dataclasses.Field[Any]], frozen: bool) -> Any:
    """The ``__init__`` dataclass would generate: one store per field, defaults bound as
    parameter defaults, factories called when the marker was passed."""
    parameters, stores = ["self"], []
    closure: dict[str, Any] = {"__setattr": object.__setattr__, "__has_factory": _HAS_FACTORY}
    for name, f in fields.items():
        value = name
        if f.default_factory is not _MISSING:
            closure[f"__factory_{name}"] = f.default_factory
            parameters.append(f"{name}=__has_factory")
            value = f"__factory_{name}() if {name} is __has_factory else {name}"
        elif f.default is not _MISSING:
            closure[f"__default_{name}"] = f.default
            parameters.append(f"{name}=__default_{name}")
        else:
            parameters.append(name)
        stores.append(f"__setattr(self, {name!r}, {value})" if frozen
                      else f"self.{name} = {value}")
    if hasattr(cls, "__post_init__"):
        stores.append("self.__post_init__()")
    source = (f"def __create_fn__({', '.join(closure)}):\n"
              f" def __init__({', '.join(parameters)}):\n"
              + "".join(f"  {store}\n" for store in stores or ["pass"])
              + " return __init__\n")
    namespace: dict[str, Any] = {}
    exec(source, {}, namespace)
    init = namespace["__create_fn__"](*closure.values())
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {name: f.type for name, f in fields.items()} | {"return": None}
    return init


def _key(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The fields of an instance as a tuple, what dataclass's ``__eq__`` and ``__hash__`` use."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return lambda obj: ()


def _repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    getters = [(f"{name}=", attrgetter(name)) for name in names]

    @reprlib.recursive_repr()  # as dataclass's: a value that contains itself shows "..."
    def __repr__(self: Any) -> str:
        inner = ", ".join(label + repr(get(self)) for label, get in getters)
        return f"{self.__class__.__qualname__}({inner})"

    return __repr__


def _eq(key: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    return __eq__


def _hash(key: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(key(self))

    return __hash__


def _frozen_setattr(cls: Any, names: tuple[str, ...]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    return __setattr__


def _frozen_delattr(cls: Any, names: tuple[str, ...]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __delattr__


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, name) for name in self.__dataclass_fields__]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self.__dataclass_fields__, state, strict=False):
        object.__setattr__(self, name, value)


_TWINS: dict[type, Any] = {}


def mutable_twin(cls: type) -> Any:
    """The mutable twin of the frozen, slotted dataclass ``cls`` (:func:`frozen_builder`):
    the same slots, plain stores, every field ``None`` by default. A batch decoder may make
    ``twin()`` objects, store their fields and relabel them ``cls`` itself."""
    twin = _TWINS.get(cls)
    if twin is None:
        layout = {f.name: f.type for f in dataclasses.fields(cls)}
        # A @valueclass, not dataclasses.make_dataclass: 0.4 ms less at every start (its
        # ``__init__`` is the same code, compiled by the first call below).
        twin = _TWINS[cls] = valueclass()(type(
            f"_Mutable{cls.__name__}", cls.__bases__,
            {"__annotations__": layout, **dict.fromkeys(layout)}))
    return twin


def frozen_builder(cls: type[_T]) -> Callable[..., _T]:
    """A fast positional constructor for the frozen, slotted dataclass ``cls``, for decoders
    and hot paths whose values are already checked (``protocols/building.py`` rule 2: about
    a quarter of the frozen ``__init__``'s cost).

    The builder creates the object as a mutable twin with the very same slots, where stores are
    plain, then relabels it as ``cls`` (CPython allows ``__class__`` assignment between classes
    of identical layout and refuses it with TypeError otherwise, which the first call below
    would reveal at import). The result is an ordinary, immutable ``cls`` instance. Every field
    left out is ``None`` (the twin's default); a class with ``__post_init__`` is refused.

    The builder is one compiled function that makes the twin with ``object.__new__`` and
    stores each field itself: calling the twin class ran its ``__init__`` through
    ``type.__call__``, a nested interpreter call on CPython 3.11 (for the ``Deliver`` effects
    and the native adapter's ``Message``s: callgrind bench/instructions.py native ack 83,380
    -> 82,297 instructions a message)."""
    twin = mutable_twin(cls)
    build: Callable[..., _T] = _compile_builder(cls, twin)
    build()  # fails here, at import, if the layouts ever differ
    return build


def _compile_builder(cls: type, twin: type) -> Any:
    """``build(field=None, ...)``: ``object.__new__(twin)``, one plain store per field of
    ``cls``, then ``__class__ = cls`` (:func:`frozen_builder`)."""
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: a builder does not run __post_init__")
    names = [f.name for f in dataclasses.fields(cls)]
    source = ("def __create_fn__(__new, __twin, __cls):\n"
              f" def build({', '.join(f'{name}=None' for name in names)}):\n"
              "  __obj = __new(__twin)\n"
              + "".join(f"  __obj.{name} = {name}\n" for name in names)
              + "  __obj.__class__ = __cls\n"
              "  return __obj\n"
              " return build\n")
    namespace: dict[str, Any] = {}
    exec(source, {}, namespace)
    build = namespace["__create_fn__"](object.__new__, twin, cls)
    build.__qualname__ = f"build_{cls.__qualname__}"
    return build
