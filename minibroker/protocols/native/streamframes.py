"""The native protocol's frames for streams: batched publishing, reading a stream without a
subscription, and the offsets named consumers store (``docs/protocol.md``: Basic: messages,
and Streams). ``frames.py``'s rules hold here too; ``frames.py`` imports these classes, so
they are in its ``FRAME_TYPES``.
"""

from __future__ import annotations

from typing import TypeAlias

from minibroker.message import FieldTable, Properties
from minibroker.protocols.native.frames import Frame, ShortStr, UInt16, UInt32, UInt64
from minibroker.valueclass import valueclass

__all__ = [
    "Batch", "OffsetCommit", "OffsetCommitOk", "OffsetQuery", "OffsetQueryOk", "PublishBatch",
    "Records", "StreamRead", "StreamReadOk",
]

#: Messages of a ``PublishBatch``: (properties, body) pairs.
Batch: TypeAlias = "list[tuple[Properties, bytes]]"
#: Messages of a ``StreamReadOk``: (offset, exchange, routing_key, properties, body).
Records: TypeAlias = "list[tuple[int, str, str, Properties, bytes]]"


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
