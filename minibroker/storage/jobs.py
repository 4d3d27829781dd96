"""Reclaim jobs: the file work the store hands to its worker thread (``writer.py`` rule 4).

Rules:

1. Each job ends durable: a removed or replaced file has its directory synced before the job
   returns (unless the store runs with ``sync="never"``), so the next job may rely on it.
2. Replacing a file is write-temp, sync, rename over the original, sync the directory: at
   every instant the original or the replacement is whole on disk.
"""

from __future__ import annotations

import posixpath

from minibroker.storage.compaction import compact_segment
from minibroker.storage.files import FileSystem
from minibroker.storage.segments import Compaction

__all__ = ["CompactSegment", "DeleteDirectory", "DeleteFile", "InstallFile", "write_file"]


def write_file(fs: FileSystem, path: str, data: bytes, *, sync: bool) -> None:
    """Write a whole new file at ``path`` via ``path + '.tmp'`` (rule 2)."""
    temporary = path + ".tmp"
    if fs.exists(temporary):
        fs.remove(temporary)
    file = fs.open_append(temporary)
    try:
        file.write(data)
        if sync:
            file.sync()
    finally:
        file.close()
    fs.rename(temporary, path)
    if sync:
        fs.sync_dir(posixpath.dirname(path))


class DeleteFile:
    """Remove a segment whose messages are all settled."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def run(self, fs: FileSystem, sync: bool) -> None:
        fs.remove(self.path)
        if sync:
            fs.sync_dir(posixpath.dirname(self.path))


class DeleteDirectory:
    """Remove a directory and every file in it (a deleted stream's): the files, a sync of the
    directory, then the directory itself and a sync of its parent."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def run(self, fs: FileSystem, sync: bool) -> None:
        if not fs.exists(self.path):
            return
        for name in fs.listdir(self.path):
            fs.remove(posixpath.join(self.path, name))
        if sync:
            fs.sync_dir(self.path)
        fs.remove_dir(self.path)
        if sync:
            fs.sync_dir(posixpath.dirname(self.path))


class CompactSegment:
    """Rewrite a segment without its garbage; the result is the new size in bytes."""

    __slots__ = ("compaction", "path")

    def __init__(self, path: str, compaction: Compaction) -> None:
        self.path = path
        self.compaction = compaction

    def run(self, fs: FileSystem, sync: bool) -> int:
        image = compact_segment(fs.read(self.path), self.compaction)
        write_file(fs, self.path, image, sync=sync)
        return len(image)


class InstallFile:
    """Rename a file written and synced by the loop over its final name."""

    __slots__ = ("source", "target")

    def __init__(self, source: str, target: str) -> None:
        self.source = source
        self.target = target

    def run(self, fs: FileSystem, sync: bool) -> None:
        fs.rename(self.source, self.target)
        if sync:
            fs.sync_dir(posixpath.dirname(self.target))
