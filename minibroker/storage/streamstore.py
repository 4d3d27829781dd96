"""The data directory's streams and when their appends are durable.

Rules:

1. Each stream is a :class:`~minibroker.storage.streams.DiskStream` in its own directory
   (``streams.stream_directory``), opened (and recovered) by :meth:`StreamStore.open`.
2. :meth:`StreamStore.flush` (once per loop iteration, next to ``DurableStore.flush``) writes
   every stream's pending chunks and hands the files to group commit under one *mark*, the
   next number of the store's sequencer: one ``fdatasync`` per file written, whatever the
   number of streams. It remembers how far each stream had written at that mark.
3. When the writer reports ``durable up to seq N`` (``writer.py`` rule 1), :meth:`durable`
   says, for each stream, up to which offset its messages are on disk: publisher confirms
   for stream appends wait for that (the offset of the message, below the durable end).
4. Deleting a stream renames its files at once (``<segment>.<mark>.deleted``, so a stream
   declared again under the same name starts empty, and recovery removes what a crash left)
   and removes them by ``DeleteFile`` jobs, after what was written before is durable; its
   handle is dead from then on. Renamed files a stop left behind go when the store opens,
   and so do (:meth:`StreamStore.remove_unopened`) the files of a stream whose definition
   did not come back.
5. Under a ``DurableStore`` (``hold_deletions``), the ``DeleteFile`` jobs of a deleted stream
   wait until the store has written the stream's DELETE definition record
   (:meth:`StreamStore.release`, then :meth:`StreamStore.submit_released` after the write),
   so no file is removed before the deletion itself can be durable. And a stream whose
   definition comes back after a power cut (its DELETE record was not synced) gets the
   files a synced rename had already set aside back under their names: it comes back whole,
   as a deleted classic queue whose DELETE was lost comes back with its messages, never
   empty or with holes.
"""

from __future__ import annotations

import posixpath
from collections import deque

from minibroker.storage.files import AppendFile, FileSystem
from minibroker.storage.jobs import DeleteFile
from minibroker.storage.messagelog import Sequencer
from minibroker.storage.streams import OFFSETS, DiskStream, StreamSettings, stream_directory
from minibroker.storage.writer import GroupCommit

__all__ = ["StreamStore"]


class StreamStore:
    """Streams under ``root`` sharing one group commit (rules 1-4)."""

    def __init__(self, fs: FileSystem, root: str, writer: GroupCommit,
                 sequencer: Sequencer, *, hold_deletions: bool = False,
                 kept: frozenset[str] = frozenset()) -> None:
        """``kept``: the directories of the streams whose definitions were recovered
        (rule 5)."""
        self._fs = fs
        self.root = root
        self._writer = writer
        self._sequencer = sequencer
        self.streams: dict[tuple[str, str], DiskStream] = {}
        #: (mark, {stream: offset written by then}) not yet durable, oldest first.
        self._marks: deque[tuple[int, dict[DiskStream, int]]] = deque()
        #: Each stream's durable end: every offset below it is on disk.
        self.durable_end: dict[DiskStream, int] = {}
        #: Rule 5: the renamed files of deleted streams, until their DELETE is written.
        self._hold = hold_deletions
        self._held: dict[tuple[str, str], list[str]] = {}
        self._released: list[str] = []
        self._remove_deleted(kept)

    def _remove_deleted(self, kept: frozenset[str]) -> None:
        """Rule 4: the files of deleted streams a stop left behind; rule 5: those of a stream
        whose definition came back are put back."""
        base = posixpath.join(self.root, "streams")
        if not self._fs.exists(base):
            return
        fs = self._fs
        for name in fs.listdir(base):
            directory = posixpath.join(base, name)
            files = fs.listdir(directory)
            restored = False
            if directory in kept:
                newest: dict[str, tuple[int, str]] = {}
                for file in files:
                    original, mark = _set_aside(file)
                    if original is not None and mark >= newest.get(original, (-1, ""))[0]:
                        newest[original] = (mark, file)
                for original, (_, file) in newest.items():
                    if original not in files:
                        fs.rename(posixpath.join(directory, file),
                                  posixpath.join(directory, original))
                        restored = True
                files = fs.listdir(directory)
            for file in files:
                if file.endswith(".deleted"):
                    fs.remove(posixpath.join(directory, file))
            if restored:
                fs.sync_dir(directory)

    def remove_unopened(self) -> list[str]:
        """Delete the directories of streams nobody opened since the start (their definition
        is gone: deleted before a crash made that durable); the directories removed."""
        base = posixpath.join(self.root, "streams")
        if not self._fs.exists(base):
            return []
        kept = {stream.directory for stream in self.streams.values()}
        removed = []
        for name in self._fs.listdir(base):
            directory = posixpath.join(base, name)
            if directory in kept:
                continue
            for file in self._fs.listdir(directory):
                doomed = posixpath.join(directory, f"{file}.orphan.deleted")
                self._fs.rename(posixpath.join(directory, file), doomed)
                self._writer.submit(DeleteFile(doomed))
            removed.append(directory)
        return removed

    def open(self, vhost: str, name: str, settings: StreamSettings) -> DiskStream:
        """The stream's handle, recovering its files on first use (rule 1)."""
        stream = self.streams.get((vhost, name))
        if stream is None:
            stream = DiskStream(self._fs, stream_directory(self.root, vhost, name),
                                self._writer, settings)
            self.streams[(vhost, name)] = stream
            self.durable_end[stream] = stream.written
        return stream

    def delete(self, vhost: str, name: str) -> None:
        """Rule 4."""
        stream = self.streams.pop((vhost, name), None)
        if stream is None:
            return
        stream.close()
        mark = self._sequencer.last
        doomed: list[str] = []
        for segment in stream.segments:
            segment.removed = True
            doomed.append(f"{segment.path}.{mark}.deleted")
            self._fs.rename(segment.path, doomed[-1])
        offsets = posixpath.join(stream.directory, OFFSETS)
        if self._fs.exists(offsets):
            doomed.append(f"{offsets}.{mark}.deleted")
            self._fs.rename(offsets, doomed[-1])
        stream.segments = []
        self.durable_end.pop(stream, None)
        if self._hold:  # rule 5
            self._held.setdefault((vhost, name), []).extend(doomed)
        else:
            for path in doomed:
                self._writer.submit(DeleteFile(path))

    def release(self, vhost: str, name: str) -> None:
        """Rule 5: the stream's DELETE record is recorded; its files may go once it is
        written."""
        self._released += self._held.pop((vhost, name), ())

    def submit_released(self) -> None:
        """Rule 5: called once the released streams' DELETE records are written."""
        for path in self._released:
            self._writer.submit(DeleteFile(path))
        self._released = []

    def flush(self) -> int:
        """Rule 2; the mark covering what was written, 0 when nothing was."""
        files: list[AppendFile] = []
        reached: dict[DiskStream, int] = {}
        for stream in self.streams.values():
            file = stream.flush()
            if file is not None:
                files.append(file)
                reached[stream] = stream.written
        if not files:
            return 0
        mark = self._sequencer.next()
        self._marks.append((mark, reached))
        self._writer.written(mark, *files)
        return mark

    def durable(self, seq: int) -> dict[DiskStream, int]:
        """Rule 3: the streams whose durable end moved, and where it is now."""
        moved: dict[DiskStream, int] = {}
        marks = self._marks
        while marks and marks[0][0] <= seq:
            _, reached = marks.popleft()
            for stream, offset in reached.items():
                if stream in self.durable_end and offset > self.durable_end[stream]:
                    self.durable_end[stream] = moved[stream] = offset
        return moved

    def retain(self, wall_now: float) -> None:
        """Retention for every stream (``streams.py`` rule 4)."""
        for stream in self.streams.values():
            stream.retain(wall_now)

    def close(self) -> None:
        for stream in self.streams.values():
            stream.close()


def _set_aside(file: str) -> tuple[str | None, int]:
    """``<name>.<mark>.deleted`` -> (name, mark); (None, 0) for any other file (rule 5)."""
    if not file.endswith(".deleted"):
        return None, 0
    original, _, mark = file[:-len(".deleted")].rpartition(".")
    if not original or not mark.isdigit():
        return None, 0
    return original, int(mark)
