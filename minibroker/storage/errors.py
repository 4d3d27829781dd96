"""The errors of the storage layer.

Rules:

1. Every storage error is a :class:`StorageError` (a :class:`~minibroker.errors.MinibrokerError`),
   so the shell can catch the layer's failures in one place.
2. A message names the file or directory involved, so an operator can act on it without a
   traceback. Damage found by recovery is *not* an error: it is reported in the recovery
   report (``recovery.py``) and start-up goes on.
3. :class:`DefinitionsError` is also a :class:`ValueError`: it is raised for a definitions
   document (RabbitMQ's JSON) that breaks the format, and names the offending field.
"""

from __future__ import annotations

from minibroker.errors import MinibrokerError

__all__ = [
    "DataDirLocked", "DefinitionsError", "StorageError", "StorageFailed", "UnsupportedFormat",
]


class StorageError(MinibrokerError):
    """A failure of the storage layer."""


class DataDirLocked(StorageError):
    """Another broker holds the data directory's lock."""

    def __init__(self, directory: str, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process (PID unknown)"
        super().__init__(
            f"data directory {directory} is in use by {holder}: one data directory holds "
            "exactly one broker; stop that one or choose another --data-dir"
        )
        self.directory = directory
        self.pid = pid


class UnsupportedFormat(StorageError):
    """A file was written by a newer (or unknown) version of the store: refusing to guess."""


class StorageFailed(StorageError):
    """A write or an fsync failed; the store accepts nothing more (a failed fsync cannot be
    retried safely: the kernel may already have dropped the dirty pages it could not write)."""


class DefinitionsError(StorageError, ValueError):
    """A definitions document breaks the format; the text names the offending field."""
