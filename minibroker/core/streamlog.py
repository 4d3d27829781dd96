"""The stream log in memory: offsets, chunks, segments, the sparse index, readers and retention.
No I/O, no broker concepts (``streams.py`` joins it to queues and consumers).

Rules:

1. Every appended message gets the next *offset*, starting at 0 and never reused, even after
   retention removed older ones.
2. A *chunk* is the run of messages one input to the core appended to this stream — one
   ``basic.publish``, the publishes of one read (``PublishMany``), one ``tx.commit`` — at most
   :data:`CHUNK_MESSAGES` of them. The caller names the input (``key``): a message with the key
   of the open chunk joins it. A chunk carries the time of its input twice — ``now`` (the
   core's clock, for age retention) and ``wall`` (Unix seconds, for timestamp offsets; never
   decreasing) — and a Bloom filter of its messages' filter values (``x-stream-filter-value``,
   RabbitMQ 3.13) plus whether any message had none. This is osiris's chunk: what arrived
   together, written together; ``x-stream-offset: last`` starts at the last chunk's first
   message, a timestamp at the first chunk stamped at or after it.
3. Chunks fill *segments*. A segment is closed when a new chunk starts and the segment holds at
   least ``max_segment_size`` bytes (so a chunk never spans two segments; 0 makes every chunk
   a segment). Bytes are body bytes.
4. The sparse index is a segment's first offset and its chunks' first offsets and times:
   finding an offset costs a binary search over segments (O(log segments)), then the message
   is at ``offset - first`` of its segment; a timestamp costs a binary search over segments
   (by their last chunk's time) then over that segment's chunks. ``comparisons`` counts the
   probes of every seek, for tests and ``bench/streams.py``.
5. Retention removes whole closed segments from the head, never the open one:
   ``x-max-length-bytes`` while the log holds more bytes than allowed (evaluated when a segment
   is closed, as RabbitMQ does), ``x-max-age`` when a closed segment's newest chunk is older
   than the age (at a close, and at :meth:`StreamLog.retention_deadline`). A reader positioned
   in a removed segment continues at the first retained offset.
6. A reader (:class:`StreamReader`) is a cursor: it yields ``(offset, message)`` in offset order
   and never changes the log. With a filter it skips whole chunks whose Bloom filter matches
   none of its values (and that hold no unfiltered message it wants), then checks each
   message of a candidate chunk exactly, so it yields only the messages asked for.
7. :class:`Log` and :class:`Cursor` are what the core asks of a stream's log and of its
   readers. :class:`StreamLog` is the in-memory one; a broker with a data directory gets its
   durable streams' logs from a factory the shell injects (``Streams.make_log``), so the core
   never touches a file. A log that is not ``metered`` keeps its messages outside the
   process's memory (on disk): they do not count into the ready meter.
8. A cursor over messages kept encoded (a durable stream's files) can hand out runs of them
   still encoded (:meth:`Cursor.take_packed`): ``(first_offset, count, entries)``, where
   ``entries`` are bytes the core never reads — the native protocol sends them on as they
   are (``StreamFetch``). It takes at most ``limit`` messages, stops after the one that
   reaches ``max_bytes`` of bodies, and keeps the runs' encoded size within ``budget``
   (the first message excepted). The in-memory log keeps ``Message`` objects and answers
   ``None``.
9. :meth:`Log.append_many` appends messages of one input as :meth:`Log.append` of each would
   (the same chunks, offsets, filters and retention answer), with the work done per chunk,
   not per message: one list extend, one sum of body sizes, one filter value per distinct
   properties object.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter
from typing import Protocol

from minibroker.core.streamargs import OffsetSpec, StreamLimits
from minibroker.message import Message, Properties

__all__ = [
    "CHUNK_MESSAGES", "STORED_OVERHEAD", "Chunk", "Cursor", "Log", "Segment", "StreamLog",
    "StreamReader", "filter_value",
]

#: The most messages one chunk holds (rule 2).
CHUNK_MESSAGES = 1024
#: What a stored message costs beyond its body, for the ready meter: its ``Message`` (shared
#: with the queues it was routed to), its slot in the segment and its share of a chunk —
#: ``bench/streams.py`` measures 60-70 B of RSS for 16-byte messages published in batches;
#: single publishes (a chunk each) cost more.
STORED_OVERHEAD = 128
FILTER_HEADER = "x-stream-filter-value"


class Cursor(Protocol):
    """A reader of a stream's log (rule 6): what consumers and pull reads use."""

    #: The next offset to read (a pull read may move it back within the run it took).
    offset: int

    @property
    def values(self) -> frozenset[str] | None:
        """The filter values, ``None`` without a filter."""

    def take(self) -> tuple[int, Message] | None: ...

    def take_run(self, limit: int) -> tuple[int, list[Message]]: ...

    def take_packed(self, limit: int, max_bytes: int,
                    budget: int) -> list[tuple[int, int, bytes]] | None:
        """Rule 8: runs ``(first_offset, count, entries)`` in the log's stored encoding, or
        ``None`` where the log keeps messages (take them with :meth:`take_run`)."""


class Log(Protocol):
    """What the core asks of a stream's log (rule 7)."""

    #: The age deadline on the broker's timer heap, if any.
    deadline: float | None

    @property
    def metered(self) -> bool:
        """True when the messages are held in memory (they count into the ready meter)."""

    @property
    def first_offset(self) -> int: ...

    @property
    def next_offset(self) -> int: ...

    def __len__(self) -> int: ...

    def append(
        self, message: Message, now: float, wall_time: Callable[[float], float], key: object,
    ) -> bool: ...

    def append_many(
        self, messages: Sequence[Message], now: float, wall_time: Callable[[float], float],
        key: object,
    ) -> bool:
        """Rule 9: ``append`` of each message, in one call."""

    def retain(self, now: float) -> int: ...

    def retention_deadline(self) -> float | None: ...

    def clear(self) -> int: ...

    def seek(self, spec: OffsetSpec, wall_now: float) -> int: ...

    def reader(
        self, start: int, filter_values: tuple[str, ...] | None = None,
        match_unfiltered: bool = False,
    ) -> Cursor: ...

    def read(self, start: int) -> Iterator[tuple[int, Message]]: ...

    def stored_offsets(self) -> dict[str, int]:
        """The consumers' offsets the log kept (a durable log's, after a restart)."""

    def store_offset(self, name: str, offset: int) -> None:
        """Keep a consumer's offset (``commit_offset``) where the log keeps them."""


def filter_value(message: Message) -> str | None:
    """A message's ``x-stream-filter-value`` header, if it is a string."""
    return properties_filter_value(message.properties)


def properties_filter_value(properties: Properties) -> str | None:
    """The ``x-stream-filter-value`` header of ``properties``, if it is a string."""
    headers = properties.headers
    if not headers:
        return None
    value = headers.get(FILTER_HEADER)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


_body = attrgetter("body")
_properties = attrgetter("properties")


def filter_run(chunk: Chunk, messages: Sequence[Message], filter_size: int) -> None:
    """Add the filter values of ``messages`` to ``chunk`` (rule 2), reading each distinct
    properties object once: a batch's messages mostly share one."""
    properties = list(map(_properties, messages))
    for one in dict(zip(map(id, properties), properties, strict=True)).values():
        value = properties_filter_value(one)
        if value is None:
            chunk.unfiltered = True
        else:
            chunk.bloom |= bloom_mask(value, filter_size)


def bloom_mask(value: str, size: int) -> int:
    """The two bits ``value`` sets in a Bloom filter of ``size`` bytes (stable across runs)."""
    data = value.encode()
    bits = size * 8
    first = zlib.crc32(data)
    second = zlib.crc32(data, 0x9E3779B9) | 1
    return (1 << (first % bits)) | (1 << ((first + second) % bits))


class Chunk:
    """One input's messages in one stream (rule 2)."""

    __slots__ = ("bloom", "first", "key", "now", "unfiltered", "wall")

    def __init__(self, first: int, now: float, wall: float, key: object) -> None:
        self.first = first
        self.now = now
        self.wall = wall
        #: The input that appended it, while the chunk is open (dropped when it closes).
        self.key: object = key
        #: Bloom filter of the filter values, and whether a message had none.
        self.bloom = 0
        self.unfiltered = False


def _first(item: Chunk | Segment) -> int:
    return item.first


class Segment:
    """Consecutive chunks, removed together by retention (rule 3)."""

    __slots__ = ("bytes", "chunks", "first", "messages", "removed", "weight")

    def __init__(self, first: int) -> None:
        self.first = first
        self.messages: list[Message] = []
        self.chunks: list[Chunk] = []
        self.bytes = 0
        #: Body bytes plus a fixed overhead per message: what it costs in memory.
        self.weight = 0
        self.removed = False

    @property
    def end(self) -> int:
        """The offset after its last message."""
        return self.first + len(self.messages)

    def chunk_at(self, offset: int) -> int:
        """The index of the chunk holding ``offset``."""
        return bisect_right(self.chunks, offset, key=_first) - 1


class StreamLog:
    """A stream's messages by offset, in segments of chunks (rules 1-5)."""

    __slots__ = (
        "bytes", "comparisons", "deadline", "filter_size", "first_offset", "last_wall",
        "max_age", "max_bytes", "max_segment_size", "next_offset", "segments",
    )

    #: Rule 7: the messages are in memory.
    metered = True

    def __init__(self, limits: StreamLimits) -> None:
        self.max_segment_size = limits.max_segment_size
        self.filter_size = limits.filter_size
        #: Retention limits (rule 5): body bytes, and seconds on the ``now`` scale.
        self.max_bytes = limits.max_length_bytes
        self.max_age = limits.max_age
        #: The age deadline currently on the broker's timer heap, if any (``timers.py``).
        self.deadline: float | None = None
        self.segments: list[Segment] = [Segment(0)]
        #: The oldest retained offset, and the offset the next message gets.
        self.first_offset = 0
        self.next_offset = 0
        #: Body bytes retained.
        self.bytes = 0
        #: Probes made by seeks (rule 4).
        self.comparisons = 0
        #: The newest chunk's wall time (chunk times never decrease).
        self.last_wall = float("-inf")

    def __len__(self) -> int:
        return self.next_offset - self.first_offset

    @property
    def weight(self) -> int:
        return sum(segment.weight for segment in self.segments)

    # -- appending ------------------------------------------------------------------------

    def _chunk_for(
        self, now: float, wall_time: Callable[[float], float], key: object,
    ) -> tuple[Segment, Chunk, bool]:
        """The open chunk the next message of input ``key`` joins (a new one, and maybe a
        new segment, when it cannot: rule 2), and whether a segment was closed."""
        segment = self.segments[-1]
        chunks = segment.chunks
        chunk = chunks[-1] if chunks else None
        offset = self.next_offset
        closed = False
        if chunk is None or chunk.key is not key or offset - chunk.first >= CHUNK_MESSAGES:
            if chunk is not None:
                chunk.key = None
                if segment.bytes >= self.max_segment_size:
                    segment = Segment(offset)
                    self.segments.append(segment)
                    closed = True
            wall = wall_time(now)
            if wall < self.last_wall:
                wall = self.last_wall
            self.last_wall = wall
            chunk = Chunk(offset, now, wall, key)
            segment.chunks.append(chunk)
        return segment, chunk, closed

    def append(
        self, message: Message, now: float, wall_time: Callable[[float], float], key: object,
    ) -> bool:
        """Append ``message`` (its offset is ``next_offset`` before the call); True if this
        closed a segment, so retention should be evaluated (rule 5). ``wall_time(now)`` stamps
        a new chunk; ``key`` names the input (rule 2)."""
        segment, chunk, closed = self._chunk_for(now, wall_time, key)
        size = len(message.body)
        segment.messages.append(message)
        segment.bytes += size
        segment.weight += size + STORED_OVERHEAD
        self.bytes += size
        self.next_offset += 1
        value = filter_value(message)
        if value is None:
            chunk.unfiltered = True
        else:
            chunk.bloom |= bloom_mask(value, self.filter_size)
        return closed

    def append_many(
        self, messages: Sequence[Message], now: float, wall_time: Callable[[float], float],
        key: object,
    ) -> bool:
        """Rule 9."""
        closed = False
        done = 0
        while done < len(messages):
            segment, chunk, closing = self._chunk_for(now, wall_time, key)
            closed = closed or closing
            run = messages[done:done + CHUNK_MESSAGES - (self.next_offset - chunk.first)]
            size = sum(map(len, map(_body, run)))
            segment.messages += run
            segment.bytes += size
            segment.weight += size + STORED_OVERHEAD * len(run)
            self.bytes += size
            self.next_offset += len(run)
            done += len(run)
            filter_run(chunk, run, self.filter_size)
        return closed

    # -- retention (rule 5) ---------------------------------------------------------------

    def retain(self, now: float) -> int:
        """Remove closed head segments past the limits; return the weight removed."""
        max_bytes, max_age = self.max_bytes, self.max_age
        segments = self.segments
        removed = 0
        while len(segments) > 1:
            oldest = segments[0]
            too_big = max_bytes is not None and self.bytes > max_bytes
            too_old = max_age is not None and oldest.chunks[-1].now + max_age <= now
            if not (too_big or too_old):
                break
            del segments[0]
            oldest.removed = True
            self.bytes -= oldest.bytes
            removed += oldest.weight
            self.first_offset = segments[0].first
        return removed

    def retention_deadline(self) -> float | None:
        """When the oldest closed segment passes the age limit (``now`` scale)."""
        if self.max_age is None or len(self.segments) < 2:
            return None
        return self.segments[0].chunks[-1].now + self.max_age

    def clear(self) -> int:
        """Drop everything (the stream is deleted); return the weight removed."""
        weight = self.weight
        for segment in self.segments:
            segment.removed = True
        self.segments = [Segment(self.next_offset)]
        self.first_offset = self.next_offset
        self.bytes = 0
        return weight

    # -- the sparse index (rule 4) ---------------------------------------------------------

    def _segment_key(self, segment: Segment) -> int:
        self.comparisons += 1
        return segment.first

    def _chunk_key(self, chunk: Chunk) -> int:
        self.comparisons += 1
        return chunk.first

    def _segment_wall(self, segment: Segment) -> float:
        self.comparisons += 1
        return segment.chunks[-1].wall if segment.chunks else float("inf")

    def _chunk_wall(self, chunk: Chunk) -> float:
        self.comparisons += 1
        return chunk.wall

    def segment_for(self, offset: int) -> Segment:
        """The segment holding ``offset`` (``first_offset <= offset < next_offset``)."""
        segments = self.segments
        index = bisect_right(segments, offset, key=self._segment_key) - 1
        return segments[index]

    def last_chunk(self) -> int:
        """The first offset of the last chunk (``next_offset`` when empty)."""
        for segment in reversed(self.segments):
            if segment.chunks:
                return segment.chunks[-1].first
        return self.next_offset

    def at_timestamp(self, wall: float) -> int:
        """The first offset of the first chunk stamped at or after ``wall``; ``next_offset``
        when there is none."""
        segments = self.segments
        index = bisect_left(segments, wall, key=self._segment_wall)
        if index == len(segments) or not segments[index].chunks:
            return self.next_offset
        chunks = segments[index].chunks
        found = bisect_left(chunks, wall, key=self._chunk_wall)
        return chunks[found].first

    def seek(self, spec: OffsetSpec, wall_now: float) -> int:
        """The offset a reader attached with ``spec`` starts at (a reader may start past
        ``next_offset``: it waits for that offset)."""
        kind = spec.kind
        if kind == "first":
            return self.first_offset
        if kind == "last":
            return self.last_chunk()
        if kind == "next":
            return self.next_offset
        if kind == "offset":
            return max(int(spec.value), self.first_offset)
        wall = spec.value if kind == "timestamp" else wall_now - spec.value
        return self.at_timestamp(wall)

    def stored_offsets(self) -> dict[str, int]:
        return {}  # in memory, the queue's table is the only one

    def store_offset(self, name: str, offset: int) -> None:
        pass

    def reader(
        self, start: int, filter_values: tuple[str, ...] | None = None,
        match_unfiltered: bool = False,
    ) -> StreamReader:
        return StreamReader(self, start, filter_values, match_unfiltered)

    def read(self, start: int) -> Iterator[tuple[int, Message]]:
        """Every message from ``start`` on (for inspection; the log must not change meanwhile)."""
        reader = self.reader(start)
        while (item := reader.take()) is not None:
            yield item


class StreamReader:
    """A cursor over a :class:`StreamLog` (rule 6)."""

    __slots__ = (
        "chunk", "chunk_end", "log", "masks", "match_unfiltered", "offset", "segment", "values",
    )

    def __init__(
        self, log: StreamLog, start: int, values: tuple[str, ...] | None,
        match_unfiltered: bool,
    ) -> None:
        self.log = log
        #: The next offset to read.
        self.offset = start
        self.segment: Segment | None = None
        self.values = None if values is None else frozenset(values)
        self.masks = () if values is None else tuple(
            bloom_mask(value, log.filter_size) for value in values)
        self.match_unfiltered = match_unfiltered
        #: With a filter: the current chunk's index in its segment and the offset after it.
        self.chunk = -1
        self.chunk_end = -1

    @property
    def caught_up(self) -> bool:
        return self.offset >= self.log.next_offset

    def _locate(self) -> Segment | None:
        """The segment holding ``self.offset`` (moving it past removed segments), or None."""
        log = self.log
        if self.offset < log.first_offset:
            self.offset = log.first_offset
            self.chunk_end = -1
        if self.offset >= log.next_offset:
            return None
        segment = self.segment
        if segment is None or segment.removed or not segment.first <= self.offset < segment.end:
            segment = self.segment = log.segment_for(self.offset)
            self.chunk_end = -1
        return segment

    def take(self) -> tuple[int, Message] | None:
        """The next message this reader wants, consumed from the cursor; ``None`` when the log
        has nothing more for it now."""
        if self.values is not None:
            return self._take_filtered()
        segment = self.segment
        offset = self.offset
        if segment is None or segment.removed or not segment.first <= offset < segment.end:
            segment = self._locate()
            if segment is None:
                return None
            offset = self.offset
        self.offset = offset + 1
        return offset, segment.messages[offset - segment.first]

    def take_run(self, limit: int) -> tuple[int, list[Message]]:
        """Up to ``limit`` consecutive messages from one segment and the offset of the first,
        consumed from the cursor (no filter: the reader's fast path)."""
        assert self.values is None
        segment = self.segment
        offset = self.offset
        if segment is None or segment.removed or not segment.first <= offset < segment.end:
            segment = self._locate()
            if segment is None:
                return offset, []
            offset = self.offset
        position = offset - segment.first
        run = segment.messages[position:position + limit]
        self.offset = offset + len(run)
        return offset, run

    def take_packed(self, limit: int, max_bytes: int,
                    budget: int) -> list[tuple[int, int, bytes]] | None:
        return None  # rule 8: messages in memory, nothing encoded

    def _take_filtered(self) -> tuple[int, Message] | None:
        values = self.values
        assert values is not None
        while True:
            segment = self._locate()
            if segment is None:
                return None
            offset = self.offset
            if offset >= self.chunk_end:
                index = segment.chunk_at(offset) if self.chunk_end < 0 else self.chunk + 1
                if index >= len(segment.chunks) or segment.chunks[index].first > offset:
                    index = segment.chunk_at(offset)
                chunk = segment.chunks[index]
                self.chunk = index
                last = index + 1 == len(segment.chunks)
                self.chunk_end = segment.end if last else segment.chunks[index + 1].first
                if not self._candidate(chunk):
                    if last and segment is self.log.segments[-1] and chunk.key is not None:
                        # The open chunk may still receive a matching message: recheck it
                        # when it grows.
                        self.chunk_end = -1
                        self.offset = segment.end
                        return None
                    self.offset = self.chunk_end
                    continue
            message = segment.messages[offset - segment.first]
            self.offset = offset + 1
            value = filter_value(message)
            if value in values if value is not None else self.match_unfiltered:
                return offset, message

    def _candidate(self, chunk: Chunk) -> bool:
        if self.match_unfiltered and chunk.unfiltered:
            return True
        bloom = chunk.bloom
        return any(bloom & mask == mask for mask in self.masks)
