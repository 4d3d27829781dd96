"""The data directory's streams and when their appends are durable.

Rules:

1. Each stream is a :class:`~minibroker.storage.streams.DiskStream` in its own directory,
   named by its vhost, its name and its *incarnation* (``streams.stream_directory``), opened
   (and recovered) by :meth:`StreamStore.open`.
2. :meth:`StreamStore.flush` (once per loop iteration, next to ``DurableStore.flush``) writes
   every stream's pending chunks and hands the files to group commit under one *mark*, the
   next number of the store's sequencer: one ``fdatasync`` per file written, whatever the
   number of streams. It remembers how far each stream had written at that mark. A
   ``DurableStore`` calls :meth:`StreamStore.write` instead and hands the files over with its
   own in one call: handed over apart, the worker could sync a stream's chunks and report
   the mark before the definition and message records numbered below it were even written.
3. When the writer reports ``durable up to seq N`` (``writer.py`` rule 1), :meth:`durable`
   says, for each stream, up to which offset its messages are on disk: publisher confirms
   for stream appends wait for that (the offset of the message, below the durable end).
4. A stream's directory is named by the incarnation its definition records (``deflog.py``
   rule 3), so the definitions that come back after a crash name exactly their own files.
   A stream opened before its DECLARE reached the store (the server: the core makes the log,
   the journal's DECLARE follows at the flush) gets a fresh number of the store's sequencer,
   and the store's DECLARE of it records that number (:meth:`StreamStore.claim`); the
   streams of one name opened since the last flush are claimed in order, so a stream deleted
   and declared again in one loop iteration gets each DECLARE its own incarnation. A stream
   declared before it is opened (a recovered definition) is opened at its definition's.
5. Deleting a stream kills its handle and removes its directory (a ``DeleteDirectory`` job,
   after what was written before is durable); nothing is renamed: a stream declared again
   under the name has a directory of its own. Under a ``DurableStore``
   (``hold_deletions``) the job waits until the store has written the stream's DELETE
   definition record (:meth:`StreamStore.release`, then :meth:`StreamStore.submit_released`
   after the write), so no file is removed before the deletion itself can be durable: a
   stream whose DELETE a power cut lost comes back whole, as a deleted classic queue whose
   DELETE was lost comes back with its messages.
6. At open, under a ``DurableStore``, the directories that no recovered definition names —
   deleted streams whose removal a stop interrupted, new streams whose DECLARE a power cut
   lost — are removed (:attr:`StreamStore.removed`), and the sequencer is moved past every
   incarnation found, so a number is never given to two streams. A directory of the layout
   before incarnations (``streams/<digest>``) moves into the directory of the recovered
   stream of that digest. Alone (tests, benchmarks: no definitions) a stream is opened at the
   newest incarnation on disk for its name.
"""

from __future__ import annotations

import posixpath
from collections import deque

from minibroker.storage.files import AppendFile, FileSystem
from minibroker.storage.jobs import DeleteDirectory
from minibroker.storage.messagelog import Sequencer
from minibroker.storage.streams import (
    OFFSETS,
    DiskStream,
    StreamSettings,
    parse_directory,
    stream_digest,
    stream_directory,
)
from minibroker.storage.writer import GroupCommit

__all__ = ["StreamStore"]

Key = tuple[str, str]


class StreamStore:
    """Streams under ``root`` sharing one group commit (rules 1-6)."""

    def __init__(self, fs: FileSystem, root: str, writer: GroupCommit,
                 sequencer: Sequencer, *, hold_deletions: bool = False,
                 incarnations: dict[Key, int] | None = None) -> None:
        """``incarnations``: the incarnation of every stream whose definition was recovered
        (rules 4 and 6); ``None`` for a store without definitions."""
        self._fs = fs
        self.root = root
        self._base = posixpath.join(root, "streams")
        self._writer = writer
        self._sequencer = sequencer
        self.streams: dict[Key, DiskStream] = {}
        #: (mark, {stream: offset written by then}) not yet durable, oldest first.
        self._marks: deque[tuple[int, dict[DiskStream, int]]] = deque()
        #: Each stream's durable end: every offset below it is on disk.
        self.durable_end: dict[DiskStream, int] = {}
        #: Rule 5: the directories of deleted streams, until their DELETE is written.
        self._hold = hold_deletions
        self._held: dict[Key, list[str]] = {}
        self._released: list[str] = []
        #: Rule 4: the incarnation of each stream declared and not opened yet.
        self._declared: dict[Key, int] = dict(incarnations or {})
        #: Rule 4: the incarnations of streams opened and not yet claimed, oldest first.
        self._unclaimed: dict[Key, deque[int]] = {}
        self._alone = incarnations is None
        #: Alone (rule 6): each name's newest incarnation on disk, by digest.
        self._found: dict[str, int] = {}
        #: Rule 6: the directories removed at open.
        self.removed: list[str] = []
        self._scan()

    # -- open (rule 6) -------------------------------------------------------------------

    def _scan(self) -> None:
        fs = self._fs
        if not fs.exists(self._base):
            return
        wanted = {stream_digest(*key): incarnation
                  for key, incarnation in self._declared.items()}
        highest = 0
        doomed: list[str] = []
        legacy: list[tuple[str, str]] = []
        for name in sorted(fs.listdir(self._base)):
            path = posixpath.join(self._base, name)
            parsed = parse_directory(name)
            if parsed is None:
                if len(name) == 64 and not self._alone:  # the layout before incarnations
                    if name in wanted:
                        legacy.append((path, f"{path}-{wanted[name]}"))
                    else:
                        doomed.append(path)
                continue
            digest, incarnation = parsed
            highest = max(highest, incarnation)
            if self._alone:
                older = self._found.get(digest)
                if older is not None:  # a deleted incarnation whose removal was interrupted
                    doomed.append(posixpath.join(self._base, f"{digest}-{min(older, incarnation)}"))
                self._found[digest] = max(incarnation, older or 0)
            elif wanted.get(digest) != incarnation:
                doomed.append(path)
        for old, new in legacy:
            self._move(old, new)
        for path in doomed:
            self._remove_directory(path)
        if doomed or legacy:
            fs.sync_dir(self._base)
        self.removed = doomed
        self._sequencer.last = max(self._sequencer.last, highest)

    def _move(self, old: str, new: str) -> None:
        """Rule 6: a directory of the layout before incarnations into its incarnation's; what
        a crash interrupted before goes on (a file already moved is not moved again)."""
        fs = self._fs
        fs.makedirs(new)
        present = set(fs.listdir(new))
        for name in fs.listdir(old):
            if (name.endswith(".seg") or name == OFFSETS) and name not in present:
                fs.rename(posixpath.join(old, name), posixpath.join(new, name))
        fs.sync_dir(new)
        self._remove_directory(old)

    def _remove_directory(self, path: str) -> None:
        fs = self._fs
        for name in fs.listdir(path):
            fs.remove(posixpath.join(path, name))
        fs.sync_dir(path)
        fs.remove_dir(path)

    # -- streams (rules 1, 4, 5) ---------------------------------------------------------

    def open(self, vhost: str, name: str, settings: StreamSettings) -> DiskStream:
        """The stream's handle, recovering its files on first use (rules 1, 4)."""
        key = (vhost, name)
        stream = self.streams.get(key)
        if stream is None:
            incarnation = self._declared.pop(key, None)
            if incarnation is None and self._alone:
                incarnation = self._found.pop(stream_digest(vhost, name), None)
            if incarnation is None:
                incarnation = self._sequencer.next()
                if not self._alone:
                    self._unclaimed.setdefault(key, deque()).append(incarnation)
            directory = stream_directory(self.root, vhost, name, incarnation)
            new = not self._fs.exists(directory)
            new_base = new and not self._fs.exists(self._base)
            stream = DiskStream(self._fs, directory, self._writer, settings)
            if new:
                # A new directory's name is durable only once its parent is synced (and
                # the parent's once the data directory is). Told only now that DiskStream
                # made them: the worker may be in a round already and would sync a
                # directory that does not exist yet (ENOENT: the storage failed).
                if new_base:
                    self._writer.created(self.root)
                self._writer.created(self._base)
            self.streams[key] = stream
            self.durable_end[stream] = stream.written
        return stream

    def claim(self, vhost: str, name: str) -> int:
        """Rule 4: the incarnation the store's DECLARE of a new stream records."""
        key = (vhost, name)
        opened = self._unclaimed.get(key)
        if opened:
            first = opened.popleft()
            if not opened:
                del self._unclaimed[key]
            return first
        incarnation = self._declared.get(key)
        if incarnation is None:  # declared before it is opened: the open takes this one
            incarnation = self._declared[key] = self._sequencer.next()
        return incarnation

    def delete(self, vhost: str, name: str) -> None:
        """Rule 5."""
        key = (vhost, name)
        self._declared.pop(key, None)  # declared, never opened: a later open is a new stream
        stream = self.streams.pop(key, None)
        if stream is None:
            return
        stream.close()
        for segment in stream.segments:
            segment.removed = True
        stream.segments = []
        self.durable_end.pop(stream, None)
        if self._hold:  # rule 5
            self._held.setdefault(key, []).append(stream.directory)
        else:
            self._writer.submit(DeleteDirectory(stream.directory))

    def release(self, vhost: str, name: str) -> None:
        """Rule 5: the stream's DELETE record is recorded; its files may go once it is
        written."""
        self._released += self._held.pop((vhost, name), ())

    def submit_released(self) -> None:
        """Rule 5: called once the released streams' DELETE records are written."""
        for path in self._released:
            self._writer.submit(DeleteDirectory(path))
        self._released = []

    def forget_vhost(self, vhost: str) -> None:
        """The vhost is deleted, its journal dropped: no DECLARE will claim its streams'
        incarnations (rule 4), and no DELETE will come for the streams it never declared in
        the store — their files go after the store's next write, with the vhost's DELETEs."""
        for table in (self._unclaimed, self._declared):
            for key in [key for key in table if key[0] == vhost]:
                del table[key]
        for key in [key for key in self._held if key[0] == vhost]:
            self.release(*key)

    # -- writing (rules 2, 3) ------------------------------------------------------------

    def flush(self) -> int:
        """Rule 2; the mark covering what was written, 0 when nothing was."""
        mark, files = self.write()
        if files:
            self._writer.written(mark, *files)
        return mark

    def write(self) -> tuple[int, list[AppendFile]]:
        """Rule 2: write every stream's pending chunks; the mark and the files written, for
        the caller to hand to group commit ((0, []) when nothing was written)."""
        files: list[AppendFile] = []
        reached: dict[DiskStream, int] = {}
        for stream in self.streams.values():
            file = stream.flush()
            if file is not None:
                files.append(file)
                reached[stream] = stream.written
        if not files:
            return 0, []
        mark = self._sequencer.next()
        self._marks.append((mark, reached))
        return mark, files

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
