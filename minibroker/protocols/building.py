"""How decoders build their value objects fast: the one rule for every codec.

Rules:

1. Frames and methods — what a codec decodes and the session drops after one input — are
   slotted dataclasses that are *not* frozen, and are never mutated by convention
   (``protocols/native/frames.py``, ``protocols/amqp091/methods.py``). A frozen dataclass's
   ``__init__`` stores every field through ``object.__setattr__``; measured on CPython 3.11 for
   a six-field frame: 972 ns frozen, 135 ns not frozen (252 ns with rule 2's trick).
2. A value the broker *keeps* must be immutable: :class:`~minibroker.message.Properties` is
   shared by every queue a message reaches, so it stays frozen, and every decoder builds it
   with :data:`build_properties`, made by :func:`frozen_builder`: 363 ns instead of 1,479 ns
   for the frozen ``__init__`` (measured the same way, four properties set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

from minibroker.message import Properties
from minibroker.valueclass import valueclass

__all__ = ["build_properties", "frozen_builder"]

_T = TypeVar("_T")


def frozen_builder(cls: type[_T]) -> Callable[..., _T]:
    """A fast positional constructor for the frozen, slotted dataclass ``cls``, for decoders
    whose values are already checked (rule 2).

    The builder creates the object as a mutable twin with the very same slots, where stores are
    plain, then relabels it as ``cls`` (CPython allows ``__class__`` assignment between classes
    of identical layout and refuses it with TypeError otherwise, which the first call below
    would reveal at import). The result is an ordinary, immutable ``cls`` instance."""
    # (``fields`` accepts any dataclass; mypy cannot tell ``cls`` is one from ``type[_T]``)
    layout = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    # A @valueclass, not dataclasses.make_dataclass: 0.4 ms less at every start (its
    # ``__init__`` is the same code, compiled by the first call below).
    twin: Any = valueclass()(type(f"_Mutable{cls.__name__}", cls.__bases__,
                                  {"__annotations__": layout, **dict.fromkeys(layout)}))

    def build(*values: Any) -> _T:
        obj = twin(*values)
        obj.__class__ = cls
        return obj  # type: ignore[no-any-return]  # relabelled as cls on the line above

    build()  # fails here, at import, if the layouts ever differ
    return build


#: ``Properties(*values)`` for decoders (rule 2).
build_properties: Callable[..., Properties] = frozen_builder(Properties)
