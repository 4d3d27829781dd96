"""The payloads of message-log records: what the core asked to be stored, as msgpack. No I/O.

A message segment holds three record types, each a batch of intents that arrived in the same
flush (one loop iteration), grouped by queue *incarnation* (the sequence number of the queue's
declaration, unique per data directory):

``PUBLISH`` ``[[incarnation, [entry, ...]], ...]``, an entry being
    ``[msg_id, exchange, routing_key, properties, body]`` and, when they are not the defaults,
    ``expires_at`` (absolute, seconds since the Unix epoch, or nil) and ``delivery_count``
    (written by compaction for a message that was requeued: it marks it redelivered).
``SETTLE`` ``[[incarnation, segment, generation, runs], ...]``
    The messages left the queue for good (ack, reject, expiry, purge, dead-lettering...).
    ``runs`` lists the ``msg_id`` s as ``start, count`` pairs (an ``ack multiple`` or a purge
    is one pair); ``segment``/``generation`` name the file that holds their PUBLISH.
``REQUEUE`` ``[[incarnation, segment, generation, [msg_id, delivery_count, ...]], ...]``
    The messages went back to their queue: they are redelivered from now on.

Rules:

1. A message is stored per queue: a message routed to two durable queues is two entries.
2. Properties are one msgpack ``bin`` holding the native protocol's property array
   (``protocols/native/values.py``), so recovery decodes each distinct set of properties once
   (:class:`PropertiesCache`) and the recovered messages share the object.
3. SETTLE and REQUEUE are *tombstones*: they matter only while the PUBLISH they name is still on
   disk in ``segment`` at ``generation`` (``segments.py`` decides when that stops).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

import msgpack

from minibroker.errors import ProtocolError
from minibroker.message import EMPTY_PROPERTIES, Properties
from minibroker.protocols.native.values import (
    PROPERTY_NAMES,
    decode_properties,
    ext_hook,
    pack_default,
)

__all__ = [
    "PUBLISH", "REQUEUE", "SETTLE", "TYPES", "PropertiesCache", "decode_runs", "encode_runs",
    "pack_fields", "properties_blob", "unpack_fields",
]

PUBLISH = 1
SETTLE = 2
REQUEUE = 3
TYPES = frozenset({PUBLISH, SETTLE, REQUEUE})

#: The blob of "no properties": an empty msgpack array.
EMPTY_BLOB = b"\x90"
#: Bytes an entry costs beyond its body and strings (msgpack framing, msg_id, record share).
ENTRY_OVERHEAD = 16


_pack_fields = msgpack.Packer(default=pack_default, datetime=True, use_bin_type=True).pack


def pack_fields(value: Any) -> bytes:
    """msgpack of a value that may hold field values (decimals, timestamps), the way the
    native protocol writes them."""
    return _pack_fields(value)  # type: ignore[no-any-return]


def unpack_fields(data: bytes | memoryview) -> Any:
    return msgpack.unpackb(data, ext_hook=ext_hook, timestamp=3)


_property_values = attrgetter(*PROPERTY_NAMES)
#: property values -> blob, for properties without headers (hashable): a publisher's messages
#: mostly share them, and a lookup is cheaper than packing (0.1 µs instead of 1). Bounded.
_blobs: dict[tuple[Any, ...], bytes] = {}
_BLOBS_LIMIT = 1024


def properties_blob(properties: Properties) -> bytes:
    """The properties as rule 2's blob: the native protocol's array (trailing absent
    properties left out) packed on its own."""
    if properties is EMPTY_PROPERTIES:
        return EMPTY_BLOB
    values = _property_values(properties)
    hashable = values[2] is None
    if hashable:
        blob = _blobs.get(values)
        if blob is not None:
            return blob
    end = len(values)
    while end and values[end - 1] is None:
        end -= 1
    blob = pack_fields(values[:end])
    if hashable:
        if len(_blobs) >= _BLOBS_LIMIT:
            _blobs.clear()
        _blobs[values] = blob
    return blob


def encode_runs(msg_ids: Iterable[int]) -> list[int]:
    """Sorted ``msg_id`` s -> ``[start, count, start, count, ...]``."""
    runs: list[int] = []
    start = previous = -2
    for msg_id in sorted(msg_ids):
        if msg_id == previous + 1:
            previous = msg_id
            continue
        if start >= 0:
            runs += (start, previous - start + 1)
        start = previous = msg_id
    if start >= 0:
        runs += (start, previous - start + 1)
    return runs


def decode_runs(runs: Sequence[int]) -> Iterable[int]:
    for index in range(0, len(runs) - 1, 2):
        start = runs[index]
        yield from range(start, start + runs[index + 1])


class PropertiesCache:
    """Blob -> :class:`Properties`, so identical properties are decoded once and shared
    (rule 2). Bounded: emptied when full."""

    __slots__ = ("_cache", "_limit")

    def __init__(self, limit: int = 4096) -> None:
        self._cache: dict[bytes, Properties] = {EMPTY_BLOB: EMPTY_PROPERTIES}
        self._limit = limit

    @property
    def known(self) -> dict[bytes, Properties]:
        """The blobs decoded so far (read only: a hot loop's ``known.get`` saves a call)."""
        return self._cache

    def get(self, blob: bytes) -> Properties:
        """The properties of ``blob``; raises :class:`ProtocolError` if it does not decode."""
        properties = self._cache.get(blob)
        if properties is None:
            try:
                values: Any = unpack_fields(blob)
            except ProtocolError:
                raise
            except Exception as exc:  # msgpack raises several unrelated types on bad input
                raise ProtocolError(f"properties do not decode: {exc}") from None
            if type(values) is not list:
                raise ProtocolError("properties are not an array")
            properties = decode_properties(values, "properties")
            if len(self._cache) >= self._limit:
                self._cache.clear()
                self._cache[EMPTY_BLOB] = EMPTY_PROPERTIES
            self._cache[blob] = properties
        return properties
