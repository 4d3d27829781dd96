"""The file operations the store uses, behind one small interface, and their real implementation.

The store touches the disk only through a :class:`FileSystem`, so a test can swap in the
simulated disk (``simdisk.py``) that loses unsynced writes on a "power cut".

Rules:

1. Files are written only by appending (:meth:`AppendFile.write`); nothing is rewritten in
   place. Replacing a file is write-temp, :meth:`AppendFile.sync`, :meth:`FileSystem.rename`,
   :meth:`FileSystem.sync_dir`.
2. :meth:`AppendFile.sync` is ``fdatasync`` (data and the size, not the timestamps); a file
   created, renamed or removed is durable only after :meth:`FileSystem.sync_dir` of its
   directory (POSIX does not promise that a file's fsync makes its directory entry durable).
3. :meth:`AppendFile.write` writes everything or raises: a short write is retried.
4. :meth:`FileSystem.lock` takes an exclusive, non-blocking lock on a file and records the
   holder's PID in it; it raises :class:`DataDirLocked` naming the holder when that fails. The
   operating system drops the lock when the process dies, however it dies.
5. :meth:`FileSystem.open_read` gives positional reads (``pread``) of a file that may still be
   growing, for the stream log's readers: a read sees what was written before it.
"""

from __future__ import annotations

import os
import sys
from typing import Protocol

from minibroker.storage.errors import DataDirLocked

__all__ = ["AppendFile", "FileLock", "FileSystem", "OsFileSystem", "ReadFile"]


class AppendFile(Protocol):
    path: str

    def write(self, data: bytes | bytearray | memoryview) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class FileLock(Protocol):
    def release(self) -> None: ...


class ReadFile(Protocol):
    path: str

    def pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer at the end of the file)."""
        ...

    def close(self) -> None: ...


class FileSystem(Protocol):
    def open_append(self, path: str) -> AppendFile:
        """Open ``path`` for appending, creating it (empty) if it does not exist."""
        ...

    def read(self, path: str) -> bytes: ...
    def open_read(self, path: str) -> ReadFile:
        """Rule 5."""
        ...

    def listdir(self, path: str) -> list[str]: ...
    def exists(self, path: str) -> bool: ...
    def remove(self, path: str) -> None: ...
    def rename(self, source: str, target: str) -> None:
        """Atomically replace ``target`` by ``source``."""
        ...

    def truncate(self, path: str, size: int) -> None:
        """Cut ``path`` to ``size`` bytes and make the new size durable."""
        ...

    def sync_dir(self, path: str) -> None: ...
    def makedirs(self, path: str) -> None: ...
    def remove_dir(self, path: str) -> None:
        """Remove the empty directory ``path``."""
        ...

    def lock(self, path: str) -> FileLock: ...


if sys.platform == "darwin":  # macOS: fsync does not reach the platter; F_FULLFSYNC does
    import fcntl

    def _datasync(fd: int) -> None:
        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
elif hasattr(os, "fdatasync"):
    _datasync = os.fdatasync
else:  # Windows
    _datasync = os.fsync


class _OsAppendFile:
    __slots__ = ("fd", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        self.fd = os.open(path, flags, 0o644)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        written = os.write(self.fd, data)
        if written != len(data):  # rule 3: a short write (signal, full pipe...) is retried
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(self.fd, view):]

    def sync(self) -> None:
        _datasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class _OsReadFile:
    __slots__ = ("fd", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _OsFileLock:
    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = -1


class OsFileSystem:
    """The real file system."""

    def open_append(self, path: str) -> AppendFile:
        return _OsAppendFile(path)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as file:
            return file.read()

    def open_read(self, path: str) -> ReadFile:
        return _OsReadFile(path)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def remove(self, path: str) -> None:
        os.remove(path)

    def rename(self, source: str, target: str) -> None:
        os.replace(source, target)

    def truncate(self, path: str, size: int) -> None:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync_dir(self, path: str) -> None:
        if sys.platform == "win32":  # directories cannot be opened (nor need to be synced)
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def remove_dir(self, path: str) -> None:
        os.rmdir(path)

    def lock(self, path: str) -> FileLock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        try:
            _lock_exclusive(fd)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirLocked(os.path.dirname(path) or ".", pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return _OsFileLock(fd)


if sys.platform == "win32":
    import msvcrt

    def _lock_exclusive(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
else:
    import fcntl

    def _lock_exclusive(fd: int) -> None:
        # flock, not fcntl/lockf: a flock lock belongs to the open file description, so a
        # second open of the same file in the same process conflicts too (two stores in one
        # test process are refused exactly like two broker processes).
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
