"""Table-driven frame decoding for the native codec: a frame class's annotations are its schema.

``codec.py`` rule 5. Each frame type gets a :class:`Schema`: its wire layout, read from the
field annotations of ``frames.py``; a precise check that names the first bad element; and a
fast ``decode``/``encode`` pair generated from the layout as straight-line code.

Rules:

1. ``decode`` only accepts: anything its fast tests do not pass goes to ``check``, which finds
   and names the fault (``FrameSyntaxError`` 502, ``FrameError`` 501 for a connection frame
   off channel 0), so the two cannot disagree about what is valid (a property test compares
   them).
2. Frames only a server sends carry what it checked or took from AMQP: their tables and
   properties are read as such (``values.py`` rule 4).
3. A frame type's ``decode`` and ``encode`` are compiled the first time they are used, not at
   import: a process uses a few of the 60 frame types, and compiling all of them cost about
   5 ms of every start (``docs/benchmarks.md``, "Start-up"). The codecs' tables
   (:func:`decoders`, :func:`encoders`) first hold a stand-in per frame type that compiles it
   and puts the compiled function in its own place, so from the second frame of a type on the
   hot path calls the compiled function directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import Any

from minibroker.errors import FrameError, FrameSyntaxError
from minibroker.message import EMPTY_PROPERTIES, Properties
from minibroker.protocols.native.frames import FRAME_TYPES, Body, ConnectionFrame, Frame
from minibroker.protocols.native.runs import decode_chunks, encode_chunks
from minibroker.protocols.native.values import (
    check_field_table,
    decode_properties,
    encode_properties,
)

__all__ = ["SCHEMAS", "Schema", "decoders", "encoders"]

_MAX_SHORTSTR = 255
_UINT_MAX = {"UInt16": 0xFFFF, "UInt32": 0xFFFF_FFFF, "UInt64": 0xFFFF_FFFF_FFFF_FFFF}
# Annotation (as written in frames.py) -> the one Python type msgpack decodes it to.
_WIRE_TYPES: dict[str, type] = {
    "opcode": int, "Channel0": int, "UInt16": int, "UInt32": int, "UInt64": int,
    "ShortStr": str, "str | None": str,
    "bool": bool, "bytes": bytes, "FieldTable": dict, "Properties": list,
    "Batch": list, "Records": list, "Chunks": list,
}


class Schema:
    """One frame type: its wire layout, a precise (slow) check, and compiled fast paths.

    ``decode`` and ``encode`` are generated from the layout (as ``dataclasses`` generates
    ``__init__``): straight-line code with no per-field loop, 2-3x faster than walking the
    layout. ``source`` holds their text for reading. ``decode`` only accepts: anything it does
    not like goes to ``check``, which finds and names the fault, so the two cannot disagree
    about what is valid (a property test compares them)."""

    __slots__ = ("build", "check_table", "decode", "decode_props", "encode", "first", "kinds",
                 "name", "names", "opcode", "source")

    def __init__(self, cls: type[Frame]) -> None:
        is_connection = issubclass(cls, ConnectionFrame)
        # (every frame class is a dataclass; mypy cannot see it through ``type[Frame]``)
        specs = [(f.name, str(f.type)) for f in fields(cls)]  # type: ignore[arg-type]
        if is_connection:  # AMQP §4.2.3: connection traffic "MUST use channel number zero"
            specs.insert(0, ("channel", "Channel0"))
        self.name = cls.__name__
        self.names = ("opcode", *(name for name, _ in specs))
        self.kinds = ("opcode", *(kind for _, kind in specs))
        self.first = 2 if is_connection else 1  # where the constructor's arguments start
        self.build: Callable[..., Frame] = cls  # not frozen: protocols/building.py rule 1
        self.opcode = cls.opcode
        # Frames only a server sends carry what it checked or took from AMQP (values.py rule 4).
        # (Client frames keep the plain functions: Publish is the hot path.)
        self.check_table: Callable[[dict[Any, Any], str], None] = check_field_table
        self.decode_props: Callable[[list[Any], str], Properties] = decode_properties
        if cls.sender == "server":
            self.check_table = partial(check_field_table, from_client=False)
            self.decode_props = partial(decode_properties, from_client=False)

    def __getattr__(self, name: str) -> Any:
        """``decode``, ``encode`` and ``source`` are compiled on first use (rule 3)."""
        if name not in ("decode", "encode", "source"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.source = _compile_source(self, self.opcode)
        namespace: dict[str, Any] = {
            "build": self.build, "check": self.check, "check_field_table": self.check_table,
            "decode_properties": self.decode_props, "encode_properties": encode_properties,
            "decode_batch": decode_batch, "encode_batch": encode_batch,
            "decode_records": decode_records, "encode_records": encode_records,
            "decode_chunks": decode_chunks, "encode_chunks": encode_chunks,
            "EMPTY_PROPERTIES": EMPTY_PROPERTIES, "short_enough": _short_enough,
        }
        exec(self.source, namespace)
        self.decode: Callable[[list[Any]], Frame] = namespace["decode"]
        self.encode: Callable[[Any], tuple[Any, ...]] = namespace["encode"]
        return getattr(self, name)

    def check(self, values: list[Any]) -> Frame:
        """The slow path: check every element, raise naming the first bad one, else build."""
        if len(values) != len(self.kinds):
            raise FrameSyntaxError(
                f"{self.name}: expected {len(self.kinds)} array elements "
                f"[{', '.join(self.names)}], got {len(values)}"
            )
        args = list(values)
        for i, kind in enumerate(self.kinds):
            args[i] = self._check_value(self.names[i], kind, values[i])
        return self.build(*args[self.first :])

    def _check_value(self, name: str, kind: str, value: Any) -> Any:
        where = f"{self.name}.{name}"
        expected, actual = _WIRE_TYPES[kind], type(value)
        if actual is not expected and not (value is None and kind == "str | None"):
            raise FrameSyntaxError(f"{where}: expected {_msgpack_name(expected)}"
                                   f"{' or nil' if kind == 'str | None' else ''}, "
                                   f"got {_msgpack_name(actual)}")
        if kind == "Channel0" and value != 0:
            raise FrameError(f"{self.name} must travel on channel 0, not {value}")
        if kind in _UINT_MAX and not 0 <= value <= _UINT_MAX[kind]:
            raise FrameSyntaxError(f"{where}: {value} is not in 0..{_UINT_MAX[kind]}")
        if kind == "ShortStr" and not _short_enough(value):
            raise FrameSyntaxError(f"{where}: longer than {_MAX_SHORTSTR} bytes")
        if kind == "FieldTable" and value:
            self.check_table(value, where)
        if kind == "Properties":
            return self.decode_props(value, self.name)
        if kind == "Batch":
            return decode_batch(value, where)
        if kind == "Records":
            return decode_records(value, where)
        if kind == "Chunks":
            return decode_chunks(value, where)
        return value


def _short_enough(text: str) -> bool:
    # surrogateescape: a client decodes a server's text that is not UTF-8 that way (rule 7)
    return len(text.encode("utf-8", "surrogateescape")) <= _MAX_SHORTSTR


# Kind -> the fast-path test of one decoded element ``{v}`` (all must hold to take the fast path).
_FAST_TESTS = {
    "opcode": "type({v}) is int",
    "Channel0": "type({v}) is int and {v} == 0",
    "UInt16": "type({v}) is int and 0 <= {v} <= 0xFFFF",
    "UInt32": "type({v}) is int and 0 <= {v} <= 0xFFFFFFFF",
    "UInt64": "type({v}) is int and {v} >= 0",  # msgpack has no larger int than 2**64-1
    # 63 characters encode to at most 252 bytes, so short names skip the encode
    "ShortStr": "type({v}) is str and (len({v}) <= 63 or short_enough({v}))",
    "str | None": "({v} is None or type({v}) is str)",
    "bool": "type({v}) is bool",
    "bytes": "type({v}) is bytes",
    "FieldTable": "type({v}) is dict",
    "Properties": "type({v}) is list",
    "Batch": "type({v}) is list",
    "Records": "type({v}) is list",
    "Chunks": "type({v}) is list",
}


_LISTS = {list}
_PAIRS = {2}
_first = itemgetter(0)
_second = itemgetter(1)
_BINS = {bytes}


def decode_batch(values: list[Any], where: str) -> list[tuple[Properties, bytes]]:
    """A ``Batch``: ``[[properties, body], ...]``, each element checked. A batch whose
    messages all come without properties (``[]``) is checked and built by C loops
    (``set(map(...))``, ``zip``), with no Python step a message; any other by the loop
    below, which also names what is wrong."""
    if (values and set(map(type, values)) == _LISTS and set(map(len, values)) == _PAIRS):
        wire_properties, bodies = zip(*values, strict=True)
        if (set(map(type, wire_properties)) == _LISTS and set(map(type, bodies)) == _BINS
                and not any(wire_properties)):
            return list(zip(repeat(EMPTY_PROPERTIES), bodies))
    messages = []
    for item in values:
        if type(item) is not list or len(item) != 2 or type(item[0]) is not list or (
                type(item[1]) is not bytes):
            raise FrameSyntaxError(f"{where}: each message must be [properties, bin]")
        properties = decode_properties(item[0], where) if item[0] else EMPTY_PROPERTIES
        messages.append((properties, item[1]))
    return messages


def encode_batch(messages: list[tuple[Properties, bytes]]) -> list[Any]:
    """A ``Batch`` for the packer; messages sharing one properties object (``publish_batch``
    of bodies alone) share one encoding, paired with their bodies by ``zip`` (msgpack packs a
    tuple as an array), with no Python step a message."""
    if messages:
        first = messages[0][0]
        if len(set(map(id, map(_first, messages)))) == 1:
            return list(zip(repeat(encode_properties(first)), map(_second, messages)))
    return [[encode_properties(properties), body] for properties, body in messages]


def decode_records(
    values: list[Any], where: str,
) -> list[tuple[int, str, str, Properties, bytes]]:
    """``Records``: ``[[offset, exchange, routing_key, properties, body], ...]``, checked. Only a
    server sends them: their properties are what the broker checked or took from AMQP."""
    records = []
    for item in values:
        if (type(item) is not list or len(item) != 5 or type(item[0]) is not int
                or item[0] < 0 or type(item[1]) is not str or type(item[2]) is not str
                or type(item[3]) is not list or type(item[4]) is not bytes):
            raise FrameSyntaxError(
                f"{where}: each record must be [offset, exchange, routing_key, properties, bin]")
        properties = (decode_properties(item[3], where, from_client=False) if item[3]
                      else EMPTY_PROPERTIES)
        records.append((item[0], item[1], item[2], properties, item[4]))
    return records


def encode_records(records: list[tuple[int, str, str, Properties, bytes]]) -> list[list[Any]]:
    return [[offset, exchange, routing_key, encode_properties(properties), body]
            for offset, exchange, routing_key, properties, body in records]


_CONVERT = {
    "Properties": ("(decode_properties({v}, '{name}') if {v} else EMPTY_PROPERTIES)",
                   "encode_properties(frame.{field})"),
    "Batch": ("decode_batch({v}, '{name}.{field}')", "encode_batch(frame.{field})"),
    "Records": ("decode_records({v}, '{name}.{field}')", "encode_records(frame.{field})"),
    "Chunks": ("decode_chunks({v}, '{name}.{field}')", "encode_chunks(frame.{field})"),
}


def _compile_source(schema: Schema, opcode: int) -> str:
    """The text of ``decode(values) -> Frame`` and ``encode(frame) -> tuple`` for one frame."""
    local = [f"v_{name}" for name in schema.names]
    tests = "\n                and ".join(
        _FAST_TESTS[kind].format(v=v) for v, kind in zip(local, schema.kinds, strict=True)
    )
    tables = "".join(
        f"            if {v}:\n                check_field_table({v}, '{schema.name}.{name}')\n"
        for v, name, kind in zip(local, schema.names, schema.kinds, strict=True)
        if kind == "FieldTable"
    )
    args = [
        _CONVERT[kind][0].format(v=v, name=schema.name, field=name) if kind in _CONVERT else v
        for v, name, kind in zip(local, schema.names, schema.kinds, strict=True)
    ][schema.first :]
    attributes = [
        _CONVERT[kind][1].format(field=name) if kind in _CONVERT else f"frame.{name}"
        for name, kind in zip(schema.names, schema.kinds, strict=True)
    ][schema.first :]
    head = f"{opcode}, 0" if schema.first == 2 else f"{opcode}"
    return (
        f"def decode(values):\n"
        f"    if len(values) == {len(local)}:\n"
        f"        {', '.join(local)}, = values\n"
        f"        if ({tests}):\n"
        f"{tables}"
        f"            return build({', '.join(args)})\n"
        f"    return check(values)\n"
        f"\n"
        f"def encode(frame):\n"
        f"    return ({', '.join([head, *attributes])},)\n"
    )


def _msgpack_name(cls: type) -> str:
    return {int: "int", str: "str", bool: "bool", bytes: "bin", dict: "map", list: "array",
            float: "float", type(None): "nil"}.get(cls, cls.__name__)


#: Opcode -> the schema of its frame.
SCHEMAS = {cls.opcode: Schema(cls) for cls in FRAME_TYPES}

_DECODERS: dict[tuple[str, ...], dict[int, Callable[[list[Any]], Frame]]] = {}
_ENCODERS: dict[tuple[str, ...], dict[type[Frame], Callable[[Any], tuple[Any, ...]]]] = {}


def decoders(senders: tuple[str, ...]) -> dict[int, Callable[[list[Any]], Frame]]:
    """Opcode -> ``decode`` of each frame that ``senders`` may send (rule 3): one table shared
    by every codec that asks for the same senders, never changed but for its stand-ins."""
    if senders not in _DECODERS:
        table: dict[int, Callable[[list[Any]], Frame]] = {}
        for cls in FRAME_TYPES:
            if cls.sender in senders:
                table[cls.opcode] = _first_decode(SCHEMAS[cls.opcode], table)
        _DECODERS[senders] = table
    return _DECODERS[senders]


def encoders(senders: tuple[str, ...]) -> dict[type[Frame], Callable[[Any], tuple[Any, ...]]]:
    """Frame class -> ``encode`` of each frame that ``senders`` may send, as :func:`decoders`;
    not ``Body``, which only the codec makes, from a message too large for one frame."""
    if senders not in _ENCODERS:
        table: dict[type[Frame], Callable[[Any], tuple[Any, ...]]] = {}
        for cls in FRAME_TYPES:
            if cls.sender in senders and cls is not Body:
                table[cls] = _first_encode(cls, SCHEMAS[cls.opcode], table)
        _ENCODERS[senders] = table
    return _ENCODERS[senders]


def _first_decode(
    schema: Schema, table: dict[int, Callable[[list[Any]], Frame]],
) -> Callable[[list[Any]], Frame]:
    """The stand-in for a decode not compiled yet: compiles it and takes its place."""

    def decode(values: list[Any]) -> Frame:
        table[schema.opcode] = schema.decode
        return schema.decode(values)

    return decode


def _first_encode(
    cls: type[Frame], schema: Schema, table: dict[type[Frame], Callable[[Any], tuple[Any, ...]]],
) -> Callable[[Any], tuple[Any, ...]]:
    def encode(frame: Any) -> tuple[Any, ...]:
        table[cls] = schema.encode
        return schema.encode(frame)

    return encode
