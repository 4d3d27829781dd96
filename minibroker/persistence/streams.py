"""A durable stream's log for the core: the core's ``Log`` (``core/streamlog.py`` rule 7) over a
``DiskStream`` (``storage/streams.py``). The shell injects :class:`DiskLogs` as the core's
factory of stream logs when the server has a data directory.

Rules:

1. Appends go to the ``DiskStream`` (memory until the store's flush at the end of the loop
   iteration) and to a *tail*: the messages not yet written, so consumers get a message in the
   iteration that appended it, as from the in-memory log. Once the flush wrote them, readers
   read the files (``pread`` of the page cache) and the tail is dropped: what a stream holds
   costs the sparse index, not its messages, and is not metered.
2. A cursor reads the files below ``DiskStream.written`` through a ``DiskReader`` it keeps
   open while it reads on, and the tail above; a packed read (``take_packed``) gets the
   files' runs as stored (``streamreader.py`` rule 5), the tail as messages. The reader is
   closed when the cursor reaches the tail and when the cursor is freed. Taken one at a time
   (filters, the toolkit), messages are read :data:`READ_AHEAD` at a time, so a chunk record
   is not decoded per message.
3. Retention: ``Durability`` applies ``DiskStream.retain`` after each flush and on its
   periodic sweep (by wall time); and, as for the in-memory log, the first append after a
   flush closed a segment returns True, so the core applies retention and keeps the
   ``x-max-age`` deadline of the oldest closed segment on its timer heap (a ``ManualClock``
   drives it). Readers in a removed segment go on at the first offset kept.
4. Deleting the stream (``clear``) deletes its files (``StreamStore.delete``).
5. Consumers' stored offsets (``commit_offset``) are the ``DiskStream``'s (its rule 6): the
   queue starts with the recovered ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence

from minibroker.core.streamargs import OffsetSpec, StreamLimits
from minibroker.core.streamlog import filter_value
from minibroker.message import Message
from minibroker.storage.streamreader import DiskReader
from minibroker.storage.streams import DiskStream, StreamSettings
from minibroker.storage.streamstore import StreamStore

__all__ = ["DiskCursor", "DiskLog", "DiskLogs"]

#: Messages a cursor taking one at a time reads from the files at once (rule 2).
READ_AHEAD = 256


def settings_of(limits: StreamLimits) -> StreamSettings:
    return StreamSettings(max_segment_size=limits.max_segment_size,
                          max_length_bytes=limits.max_length_bytes, max_age=limits.max_age,
                          filter_size=limits.filter_size)


class DiskLogs:
    """The factory the shell gives the core: ``(name, limits) -> DiskLog``."""

    def __init__(self, store: StreamStore, vhost: str,
                 wall_time: Callable[[float], float]) -> None:
        self.store = store
        self.vhost = vhost
        self.wall_time = wall_time

    def __call__(self, name: str, limits: StreamLimits) -> DiskLog:
        disk = self.store.open(self.vhost, name, settings_of(limits))
        return DiskLog(self, name, disk)


class DiskLog:
    """One durable stream, as the core sees it (rules 1-4)."""

    #: Rule 1: the messages live on disk.
    metered = False

    def __init__(self, logs: DiskLogs, name: str, disk: DiskStream) -> None:
        self._logs = logs
        self.name = name
        self.disk = disk
        self.deadline: float | None = None
        #: Rule 1: the messages from ``tail_first`` on, not yet written.
        self.tail: list[Message] = []
        self.tail_first = disk.next_offset
        self._last_wall = float("-inf")
        self._key: object = None
        #: Segments the core was last told about (rule 3).
        self._segments = len(disk.segments)

    @property
    def first_offset(self) -> int:
        return self.disk.first_offset

    @property
    def next_offset(self) -> int:
        return self.disk.next_offset

    @property
    def comparisons(self) -> int:
        return self.disk.comparisons

    def __len__(self) -> int:
        return self.disk.next_offset - self.disk.first_offset

    def trim(self) -> None:
        """Drop from the tail what the files hold now."""
        written = self.disk.written
        if written > self.tail_first:
            del self.tail[:written - self.tail_first]
            self.tail_first = written

    def append(
        self, message: Message, now: float, wall_time: Callable[[float], float], key: object,
    ) -> bool:
        disk = self.disk
        if disk.written != self.tail_first:
            self.trim()
        if key is not self._key:  # a new input: its time (one per input, as its chunk's)
            self._key = key
            wall = wall_time(now)
            if wall > self._last_wall:  # chunk times never decrease
                self._last_wall = wall
        disk.append(message, self._last_wall, key)
        self.tail.append(message)
        # Segments close at the flush: the first append after one closed says so (rule 3).
        segments = len(self.disk.segments)
        closed, self._segments = segments > self._segments, segments
        return closed

    def append_many(
        self, messages: Sequence[Message], now: float, wall_time: Callable[[float], float],
        key: object,
    ) -> bool:
        """``append`` of each message (``core/streamlog.py`` rule 9), in one call."""
        disk = self.disk
        if disk.written != self.tail_first:
            self.trim()
        if key is not self._key:
            self._key = key
            wall = wall_time(now)
            if wall > self._last_wall:
                self._last_wall = wall
        disk.append_many(messages, self._last_wall, key)
        self.tail += messages
        segments = len(self.disk.segments)
        closed, self._segments = segments > self._segments, segments
        return closed

    def retain(self, now: float) -> int:
        self.disk.retain(self._logs.wall_time(now))
        self._segments = len(self.disk.segments)
        return 0

    def retention_deadline(self) -> float | None:
        """When the oldest closed segment passes ``x-max-age``, on the ``now`` scale."""
        max_age = self.disk.settings.max_age
        segments = self.disk.segments
        if max_age is None or len(segments) < 2:
            return None
        wall_time = self._logs.wall_time
        return segments[0].last_wall + max_age - (wall_time(0.0) - 0.0)

    def clear(self) -> int:
        self._logs.store.delete(self._logs.vhost, self.name)
        self.tail = []
        self.tail_first = self.disk.next_offset
        return 0

    def seek(self, spec: OffsetSpec, wall_now: float) -> int:
        kind = spec.kind
        disk = self.disk
        if kind == "first":
            return disk.first_offset
        if kind == "last":
            return disk.last_chunk()
        if kind == "next":
            return disk.next_offset
        if kind == "offset":
            return max(int(spec.value), disk.first_offset)
        wall = spec.value if kind == "timestamp" else wall_now - spec.value
        found = disk.at_timestamp(wall)
        return found if found < disk.written else disk.pending_at_timestamp(wall)

    def stored_offsets(self) -> dict[str, int]:
        return dict(self.disk.offsets)

    def store_offset(self, name: str, offset: int) -> None:
        self.disk.store_offset(name, offset)

    def reader(
        self, start: int, filter_values: tuple[str, ...] | None = None,
        match_unfiltered: bool = False,
    ) -> DiskCursor:
        return DiskCursor(self, start, filter_values, match_unfiltered)

    def read(self, start: int) -> Iterator[tuple[int, Message]]:
        cursor = self.reader(start)
        while (item := cursor.take()) is not None:
            yield item


class DiskCursor:
    """A reader of a :class:`DiskLog` (rule 2)."""

    __slots__ = ("_ahead", "_disk", "_filter", "_resume", "log", "match_unfiltered", "offset",
                 "values")

    def __init__(self, log: DiskLog, start: int, values: tuple[str, ...] | None,
                 match_unfiltered: bool) -> None:
        self.log = log
        self.offset = start
        self._filter = values
        self.values = None if values is None else frozenset(values)
        self.match_unfiltered = match_unfiltered
        self._disk: DiskReader | None = None
        #: Messages read from the files but not taken yet, and the offset after them.
        self._ahead: deque[tuple[int, Message]] = deque()
        self._resume = start

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
            self._disk = None

    def _from_disk(self, limit: int) -> list[tuple[int, Message]]:
        """Up to ``limit`` messages from the files, from ``offset`` on."""
        reader = self._disk
        if reader is None or reader.offset != self.offset:
            self.close()
            reader = self._disk = self.log.disk.reader(self.offset, self._filter,
                                                       self.match_unfiltered)
        got = reader.read(max_messages=limit)
        if not got:
            self.offset = max(self.offset, reader.offset)
            self.close()
        return got

    def _position(self) -> None:
        log = self.log
        log.trim()
        if self.offset < log.disk.first_offset:
            self.offset = log.disk.first_offset

    def take(self) -> tuple[int, Message] | None:
        ahead = self._ahead
        if not ahead:
            self._position()
            if self.offset < self.log.disk.written:
                got = self._from_disk(READ_AHEAD)
                if not got:
                    return None if self.offset < self.log.disk.written else self._tail()
                assert self._disk is not None
                self._resume = self._disk.offset
                ahead.extend(got)
        if ahead:
            # A chunk record is decoded once per read, not once per message taken.
            item = ahead.popleft()
            self.offset = item[0] + 1 if ahead else max(item[0] + 1, self._resume)
            return item
        return self._tail()

    def _tail(self) -> tuple[int, Message] | None:
        log = self.log
        values = self.values
        tail = log.tail
        while self.offset < log.disk.next_offset:
            offset = self.offset
            message = tail[offset - log.tail_first]
            self.offset = offset + 1
            if values is None:
                return offset, message
            value = filter_value(message)
            if value in values if value is not None else self.match_unfiltered:
                return offset, message
        return None

    def take_packed(self, limit: int, max_bytes: int,
                    budget: int) -> list[tuple[int, int, bytes]] | None:
        """Runs of the stored encoding from the files (``DiskReader.read_packed``); ``None``
        once the cursor is in the tail, whose messages are taken one by one."""
        assert self.values is None
        if self._ahead:  # not mixed with take() in practice: read them again
            self.offset = self._ahead[0][0]
            self._ahead.clear()
        self._position()
        offset = self.offset
        if offset >= self.log.disk.written:
            return None
        reader = self._disk
        if reader is None or reader.offset != offset:
            self.close()
            reader = self._disk = self.log.disk.reader(offset, None, self.match_unfiltered)
        runs = reader.read_packed(limit, max_bytes, budget)
        self.offset = reader.offset
        if not runs:
            self.close()
        return runs

    def take_run(self, limit: int) -> tuple[int, list[Message]]:
        assert self.values is None
        if self._ahead:  # not mixed with take() in practice: read them again
            self.offset = self._ahead[0][0]
            self._ahead.clear()
        self._position()
        log = self.log
        offset = self.offset
        if offset < log.disk.written:
            reader = self._disk
            if reader is None or reader.offset != offset:
                self.close()
                reader = self._disk = log.disk.reader(offset, None, self.match_unfiltered)
            # A run ends at a gap left by damage: the next call goes on past it.
            first, run = reader.read_run(limit)
            self.offset = reader.offset
            if not run:
                self.close()
            return first, run
        start = offset - log.tail_first
        run = log.tail[start:start + limit]
        self.offset = offset + len(run)
        return offset, run
