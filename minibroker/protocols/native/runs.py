"""Runs of stream messages on the native wire: the ``chunks`` of a ``StreamFetchOk``
(``streamframes.py`` rules 1-2), decoded, checked and encoded.

Rules:

1. A run is ``[first_offset, entries]``; an entry is ``[exchange, routing_key, properties,
   body]``, ``properties`` the message's properties array (``values.py`` rule 3) packed on its
   own into a ``bin`` — the layout of a durable stream's chunk entries, so a stored chunk
   travels as it is (:func:`fetch_ok_payload` joins encoded runs without decoding them).
2. :func:`decode_chunks` checks every run and entry and raises :class:`FrameSyntaxError`
   naming the fault; it returns each run as columns, ``(first_offset, exchanges,
   routing_keys, properties, bodies)``, each entry's properties ``bin`` turned into
   :class:`Properties`, decoding each distinct ``bin`` once: a bounded cache
   of :data:`_CACHE_SIZE` entries, emptied when full. Only a server sends runs, so their
   properties are read as what the broker checked or took from AMQP (``values.py`` rule 4).
3. Encoding (:func:`properties_bin`, :func:`entries_of`) is the reverse; the codec packs, so
   text from AMQP that is not UTF-8 travels as its octets (``codec.py`` rule 7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeAlias

import msgpack

from minibroker.errors import FrameSyntaxError
from minibroker.message import EMPTY_PROPERTIES, Message, Properties
from minibroker.protocols.native.values import (
    decode_properties,
    encode_properties,
    ext_hook,
    pack_default,
)

__all__ = [
    "EMPTY_BIN", "Run", "decode_chunks", "encode_chunks", "entries_of", "fetch_ok_payload",
    "properties_bin",
]

#: The properties ``bin`` of a message without properties (an empty msgpack array).
EMPTY_BIN = b"\x90"
#: Distinct properties ``bin`` s kept decoded (rule 2), and encoded.
_CACHE_SIZE = 1024
_encoded: dict[int, tuple[Properties, bytes]] = {}
_MSGPACK_ERRORS = (ValueError, TypeError, OverflowError, msgpack.UnpackException)
_pack_bin = msgpack.Packer(default=pack_default, datetime=True, use_bin_type=True,
                           unicode_errors="surrogateescape").pack
_packer = msgpack.Packer(use_bin_type=True)
_RUN = b"\x92"  # a run: a 2-element array
#: A decoded run (rule 2): its first offset, then its entries' exchanges, routing keys,
#: properties and bodies, in offset order.
Run: TypeAlias = (
    "tuple[int, tuple[str, ...], tuple[str, ...], tuple[Properties, ...], tuple[bytes, ...]]")
_ENTRY_TEXT = "each entry must be [exchange: str, routing_key: str, properties: bin, body: bin]"


class _Decoded(dict[bytes, Properties]):
    """Rule 2's cache: ``decoded[blob]`` is the :class:`Properties` of a properties ``bin``; a
    hit is a dict subscript in C (``map`` calls it once a message), a miss decodes."""

    def __missing__(self, blob: bytes) -> Properties:
        where = "StreamFetchOk.chunks"
        try:
            values = msgpack.unpackb(blob, ext_hook=ext_hook, timestamp=3,
                                     unicode_errors="surrogateescape")
        except _MSGPACK_ERRORS as exc:
            raise FrameSyntaxError(
                f"{where}: properties are not one msgpack value: {exc}") from None
        if type(values) is not list:
            raise FrameSyntaxError(f"{where}: properties must be a msgpack array")
        properties = decode_properties(values, where, from_client=False)
        if len(self) >= _CACHE_SIZE:
            self.clear()
            self[EMPTY_BIN] = EMPTY_PROPERTIES
        self[blob] = properties
        return properties


_decoded = _Decoded({EMPTY_BIN: EMPTY_PROPERTIES})
_LISTS = {list}
_FOUR = {4}
_TEXT = {str}
_BINS = {bytes}


def _fault(entries: list[Any], where: str) -> NoReturn:
    """The error for the first malformed entry (the slow path of :func:`decode_chunks`)."""
    for entry in entries:
        if (type(entry) is not list or len(entry) != 4 or type(entry[0]) is not str
                or type(entry[1]) is not str or type(entry[2]) is not bytes
                or type(entry[3]) is not bytes):
            break
    raise FrameSyntaxError(f"{where}: {_ENTRY_TEXT}")


def decode_chunks(values: list[Any], where: str) -> list[Run]:
    """Rule 2: ``values`` checked, each run as its columns. The checks and the columns are
    made by C loops (``set(map(type, ...))``, ``zip``), not a Python loop per entry: with the
    client's ``StreamMessage`` built the same way, a 5,000-message read decodes in ~0.35 µs a
    message instead of ~1.2 µs (a loop per entry, then a frozen dataclass per message)."""
    chunks: list[Run] = []
    for run in values:
        if (type(run) is not list or len(run) != 2 or type(run[0]) is not int or run[0] < 0
                or type(run[1]) is not list):
            raise FrameSyntaxError(f"{where}: each run must be [first_offset, [entry, ...]]")
        entries = run[1]
        if not entries:
            chunks.append((run[0], (), (), (), ()))
            continue
        if set(map(type, entries)) != _LISTS or set(map(len, entries)) != _FOUR:
            _fault(entries, where)
        exchanges, routing_keys, blobs, bodies = zip(*entries, strict=True)
        if (set(map(type, exchanges)) != _TEXT or set(map(type, routing_keys)) != _TEXT
                or set(map(type, blobs)) != _BINS or set(map(type, bodies)) != _BINS):
            _fault(entries, where)
        chunks.append((run[0], exchanges, routing_keys, tuple(map(_decoded.__getitem__, blobs)),
                       bodies))
    return chunks


def properties_bin(properties: Properties) -> bytes:
    """Rule 1's ``bin`` of ``properties`` (remembered by identity, as ``values.py`` does)."""
    if properties is EMPTY_PROPERTIES:
        return EMPTY_BIN
    entry = _encoded.get(id(properties))
    if entry is not None and entry[0] is properties:
        return entry[1]
    blob: bytes = _pack_bin(encode_properties(properties))
    if len(_encoded) >= _CACHE_SIZE:
        _encoded.clear()
    _encoded[id(properties)] = (properties, blob)  # holds the object: its id stays its own
    return blob


def encode_chunks(chunks: list[Run]) -> list[list[Any]]:
    """Decoded runs (rule 2's form) -> the wire's."""
    return [[first, [[exchange, routing_key, properties_bin(properties), body]
                     for exchange, routing_key, properties, body
                     in zip(exchanges, routing_keys, properties_of, bodies, strict=True)]]
            for first, exchanges, routing_keys, properties_of, bodies in chunks]


def entries_of(messages: Sequence[tuple[int, Message]]) -> list[tuple[int, list[list[Any]]]]:
    """(offset, message) pairs -> runs of wire entries, one run per stretch of consecutive
    offsets (a filtered read skips some)."""
    runs: list[tuple[int, list[list[Any]]]] = []
    entries: list[list[Any]] = []
    expected = -1
    for offset, message in messages:
        if offset != expected:
            entries = []
            runs.append((offset, entries))
        entries.append([message.exchange, message.routing_key,
                        properties_bin(message.properties), message.body])
        expected = offset + 1
    return runs


def fetch_ok_payload(opcode: int, channel: int, next_offset: int,
                     runs: Sequence[tuple[int, bytes]],
                     pack: Callable[[Any], bytes] = _packer.pack) -> bytes:
    """A ``StreamFetchOk``'s msgpack from runs whose entries are already encoded (each
    ``bytes`` one msgpack array of entries): joined, never decoded (rule 1)."""
    parts = [b"\x94", pack(opcode), pack(channel), pack(next_offset),
             _packer.pack_array_header(len(runs))]
    for first, entries in runs:
        parts.append(_RUN)
        parts.append(pack(first))
        parts.append(entries)
    return b"".join(parts)
