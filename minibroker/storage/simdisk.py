"""A simulated disk: the store's :class:`~minibroker.storage.files.FileSystem` in memory, able
to lose power.

Tests run the store on it and cut the power at any moment, to check what survives.

Rules:

1. Each file keeps its bytes and how many of them are *synced* (made durable by
   :meth:`sync`). Each directory keeps two views of its names: the current one and the durable
   one (as of its last :meth:`SimDisk.sync_dir`). Directories themselves are made and removed
   at once and durably (a simplification: the store syncs a directory's entries before it
   removes the directory).
2. :meth:`SimDisk.power_cut` models a power loss: the durable names come back (a file created
   or renamed since the last directory sync vanishes, one removed reappears), every file is cut
   back to its synced bytes plus the prefix of the unsynced ones that ``keep`` chooses (a torn
   write), and one kept unsynced byte may be garbled (``flip``, ``garble``). Locks are
   released.
3. :meth:`SimDisk.process_crash` models ``kill -9``: whatever reached the file system stays
   (the page cache survives the process); only locks are released.
4. After either, the handles opened before are dead: using one raises ``RuntimeError``, so a
   test cannot keep writing through a store that "died".
5. Every operation holds one lock, so the store's worker thread may use the disk too.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Callable

from minibroker.storage.errors import DataDirLocked
from minibroker.storage.files import AppendFile, FileLock, ReadFile

__all__ = ["SimDisk"]


class _SimFile:
    __slots__ = ("data", "synced")

    def __init__(self) -> None:
        self.data = bytearray()
        self.synced = 0


class _SimHandle:
    __slots__ = ("_disk", "_epoch", "_file", "path")

    def __init__(self, disk: SimDisk, path: str, file: _SimFile) -> None:
        self._disk = disk
        self._epoch = disk.epoch
        self._file = file
        self.path = path

    def _check(self) -> None:
        if self._epoch != self._disk.epoch:
            raise RuntimeError(f"{self.path}: handle used after a simulated crash")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        with self._disk.mutex:
            self._check()
            self._file.data += data
            self._disk.writes += 1

    def sync(self) -> None:
        with self._disk.mutex:
            self._check()
            self._file.synced = len(self._file.data)
            self._disk.syncs += 1

    def close(self) -> None:
        pass


class _SimReader:
    __slots__ = ("_disk", "_epoch", "_file", "path")

    def __init__(self, disk: SimDisk, path: str, file: _SimFile) -> None:
        self._disk = disk
        self._epoch = disk.epoch
        self._file = file
        self.path = path

    def pread(self, size: int, offset: int) -> bytes:
        with self._disk.mutex:
            if self._epoch != self._disk.epoch:
                raise RuntimeError(f"{self.path}: handle used after a simulated crash")
            return bytes(self._file.data[offset:offset + size])

    def close(self) -> None:
        pass


class _SimLock:
    __slots__ = ("_disk", "_epoch", "_path")

    def __init__(self, disk: SimDisk, path: str) -> None:
        self._disk = disk
        self._epoch = disk.epoch
        self._path = path

    def release(self) -> None:
        with self._disk.mutex:
            if self._epoch == self._disk.epoch:
                self._disk.locks.discard(self._path)


class SimDisk:
    """An in-memory :class:`~minibroker.storage.files.FileSystem` with power cuts."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.names: dict[str, _SimFile] = {}
        self.durable_names: dict[str, _SimFile] = {}
        self.dirs: set[str] = {"/"}
        self.locks: set[str] = set()
        #: Bumped by every crash: handles from an earlier epoch are dead (rule 4).
        self.epoch = 0
        self.writes = 0
        self.syncs = 0

    # -- the FileSystem interface -------------------------------------------------------------

    def open_append(self, path: str) -> AppendFile:
        with self.mutex:
            self._need_dir(posixpath.dirname(path))
            file = self.names.get(path)
            if file is None:
                file = self.names[path] = _SimFile()
            return _SimHandle(self, path, file)

    def read(self, path: str) -> bytes:
        with self.mutex:
            return bytes(self._get(path).data)

    def open_read(self, path: str) -> ReadFile:
        with self.mutex:
            return _SimReader(self, path, self._get(path))

    def listdir(self, path: str) -> list[str]:
        with self.mutex:
            self._need_dir(path)
            names = {posixpath.basename(name) for name in self.names
                     if posixpath.dirname(name) == path}
            names.update(posixpath.basename(d) for d in self.dirs
                         if d != path and posixpath.dirname(d) == path)
            return sorted(names)

    def exists(self, path: str) -> bool:
        with self.mutex:
            return path in self.names or path in self.dirs

    def remove(self, path: str) -> None:
        with self.mutex:
            self._get(path)
            del self.names[path]

    def rename(self, source: str, target: str) -> None:
        with self.mutex:
            self.names[target] = self._get(source)
            del self.names[source]

    def truncate(self, path: str, size: int) -> None:
        with self.mutex:
            file = self._get(path)
            del file.data[size:]
            file.synced = len(file.data)

    def sync_dir(self, path: str) -> None:
        with self.mutex:
            self._need_dir(path)
            for name in [n for n in self.durable_names if posixpath.dirname(n) == path]:
                del self.durable_names[name]
            for name, file in self.names.items():
                if posixpath.dirname(name) == path:
                    self.durable_names[name] = file

    def makedirs(self, path: str) -> None:
        with self.mutex:
            while path not in self.dirs:  # directories are created durable (a simplification)
                self.dirs.add(path)
                path = posixpath.dirname(path)

    def remove_dir(self, path: str) -> None:
        with self.mutex:  # at once and durable, as ``makedirs`` (the same simplification)
            self._need_dir(path)
            if any(posixpath.dirname(n) == path for n in (*self.names, *self.dirs)):
                raise OSError(f"directory not empty: {path}")
            self.dirs.discard(path)
            for name in [n for n in self.durable_names if posixpath.dirname(n) == path]:
                del self.durable_names[name]

    def lock(self, path: str) -> FileLock:
        with self.mutex:
            if path in self.locks:
                raise DataDirLocked(posixpath.dirname(path), os.getpid())
            self.locks.add(path)
            return _SimLock(self, path)

    # -- crashes ------------------------------------------------------------------------------

    def power_cut(
        self,
        keep: Callable[[str, int], int] | None = None,
        *,
        flip: bool = False,
        garble: Callable[[str, int], int | None] | None = None,
    ) -> None:
        """Lose power (rule 2). ``keep(path, unsynced)`` says how many of a file's unsynced
        bytes reach the disk anyway (default: none). ``flip`` garbles the last byte kept;
        ``garble(path, kept)`` may name one of the kept unsynced bytes to garble instead, which
        leaves a hole followed by good data (pages need not reach the disk in order)."""
        with self.mutex:
            self.epoch += 1
            self.locks.clear()
            self.names = dict(self.durable_names)
            for path, file in sorted(self.names.items()):
                unsynced = len(file.data) - file.synced
                kept = min(max(keep(path, unsynced), 0), unsynced) if keep and unsynced else 0
                del file.data[file.synced + kept:]
                if kept:
                    where = garble(path, kept) if garble else (kept - 1 if flip else None)
                    if where is not None:
                        file.data[file.synced + min(max(where, 0), kept - 1)] ^= 0xFF
                file.synced = len(file.data)

    def process_crash(self) -> None:
        """The process dies (``kill -9``): written data stays, locks go (rule 3)."""
        with self.mutex:
            self.epoch += 1
            self.locks.clear()

    # -- inspection ---------------------------------------------------------------------------

    def usage(self, directory: str) -> int:
        """Bytes held by the files under ``directory``."""
        with self.mutex:
            prefix = directory.rstrip("/") + "/"
            return sum(len(f.data) for n, f in self.names.items() if n.startswith(prefix))

    def _get(self, path: str) -> _SimFile:
        file = self.names.get(path)
        if file is None:
            raise FileNotFoundError(path)
        return file

    def _need_dir(self, path: str) -> None:
        if path not in self.dirs:
            raise FileNotFoundError(path)
