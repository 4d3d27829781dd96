"""The native protocol's frames for streams: batched publishing, reading a stream without a
subscription, and the offsets named consumers store (``docs/protocol.md``: Basic: messages,
and Streams). ``frames.py``'s rules hold here too; ``frames.py`` imports these classes, so
they are in its ``FRAME_TYPES``.

Rules:

1. ``StreamFetch`` asks what ``StreamRead`` asks; its answer, ``StreamFetchOk``, carries the
   messages in *runs*: ``[first_offset, entries]``, the entries at consecutive offsets from
   ``first_offset``, each ``[exchange, routing_key, properties, body]`` with the properties
   as their own msgpack array (``values.py`` rule 3) packed into a ``bin`` (``b"\x90"``: none).
   That is the very encoding a durable stream keeps its chunks in (``storage/streams.py``),
   so the broker sends a stored chunk's entries on as they are, without a Python object per
   message (``docs/benchmarks.md``, "Native stream speed").
2. Decoding a ``StreamFetchOk`` checks every run and entry (a malformed one is a 502 naming
   what is wrong) and turns each entry's properties into :class:`Properties`, once per
   distinct ``bin`` (a bounded cache): the decoded ``chunks`` are runs of columns,
   ``(first_offset, exchanges, routing_keys, properties, bodies)`` (``runs.py`` rule 2).
"""

from __future__ import annotations

from typing import TypeAlias

from minibroker.message import FieldTable, Properties
from minibroker.protocols.native.frames import Frame, ShortStr, UInt16, UInt32, UInt64
from minibroker.valueclass import valueclass

__all__ = [
    "Batch", "Chunks", "OffsetCommit", "OffsetCommitOk", "OffsetQuery", "OffsetQueryOk",
    "PublishBatch", "Records", "StreamFetch", "StreamFetchOk", "StreamRead", "StreamReadOk",
]

#: Messages of a ``PublishBatch``: (properties, body) pairs.
Batch: TypeAlias = "list[tuple[Properties, bytes]]"
#: Messages of a ``StreamReadOk``: (offset, exchange, routing_key, properties, body).
Records: TypeAlias = "list[tuple[int, str, str, Properties, bytes]]"
#: Messages of a ``StreamFetchOk``, decoded (rule 2): per run ``(first_offset, exchanges,
#: routing_keys, properties, bodies)``.
Chunks: TypeAlias = (
    "list[tuple[int, tuple[str, ...], tuple[str, ...], tuple[Properties, ...], tuple[bytes, ...]]]")


@valueclass()
class PublishBatch(Frame, opcode=0x57, sender="client"):
    """Many messages to one exchange and routing key in one frame: as many Publish frames in a
    row (the broker numbers each for confirms), except that a batch with a refused message
    (say, a bad ``expiration``) is refused whole, before any of it is routed. No reply; in
    confirm mode one ConfirmAck (``multiple``) covers the batch when every message was taken."""
    channel: UInt16
    exchange: ShortStr
    routing_key: ShortStr
    mandatory: bool
    messages: Batch


@valueclass()
class StreamRead(Frame, opcode=0x70, sender="client"):
    """Read a stream: ``arguments`` as a stream consumer's (``x-stream-offset``, the filter).
    Reply: StreamReadOk."""
    channel: UInt16
    queue: ShortStr
    arguments: FieldTable
    max_messages: UInt32
    max_bytes: UInt32


@valueclass()
class StreamReadOk(Frame, opcode=0x71, sender="server"):
    channel: UInt16
    next_offset: UInt64
    messages: Records


@valueclass()
class StreamFetch(Frame, opcode=0x76, sender="client"):
    """``StreamRead``, answered in runs (rule 1). Reply: StreamFetchOk."""
    channel: UInt16
    queue: ShortStr
    arguments: FieldTable
    max_messages: UInt32
    max_bytes: UInt32


@valueclass()
class StreamFetchOk(Frame, opcode=0x77, sender="server"):
    """The messages of a ``StreamFetch`` in runs (rules 1-2), and the offset to read from
    next. The broker encodes it with ``NativeCodec.send_fetch_ok``."""
    channel: UInt16
    next_offset: UInt64
    chunks: Chunks


@valueclass()
class OffsetCommit(Frame, opcode=0x72, sender="client"):
    """Store ``offset`` for the consumer ``name`` of the stream. Reply: OffsetCommitOk."""
    channel: UInt16
    queue: ShortStr
    name: ShortStr
    offset: UInt64


@valueclass()
class OffsetCommitOk(Frame, opcode=0x73, sender="server"):
    channel: UInt16


@valueclass()
class OffsetQuery(Frame, opcode=0x74, sender="client"):
    """The offset stored for ``name``. Reply: OffsetQueryOk (``found`` false: none)."""
    channel: UInt16
    queue: ShortStr
    name: ShortStr


@valueclass()
class OffsetQueryOk(Frame, opcode=0x75, sender="server"):
    channel: UInt16
    found: bool
    offset: UInt64
