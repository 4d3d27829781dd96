"""Durable storage: definitions and persistent messages that survive a crash.

The shell drives it (file I/O and one worker thread); the core never imports it.

Reading map:

1. ``records.py`` — the bytes on disk: file header, records with length, CRC and seq.
2. ``intents.py``, ``deflog.py`` — what the records say (messages; definitions).
3. ``store.py``, ``queuelog.py`` — the API the broker calls: ``DurableStore``, ``QueueLog``.
4. ``messagelog.py``, ``writer.py`` — the write path and group commit.
5. ``startup.py``, ``recovery.py`` — back from the files after a clean or unclean stop.
6. ``segments.py``, ``compaction.py``, ``jobs.py`` — reclaiming disk space.
7. ``files.py``, ``simdisk.py`` — the file-system seam, real and simulated.
8. ``datadir.py`` — where data lives, the lock, free space; ``definitions.py`` and
   ``definitions_json.py`` — definitions as values and as RabbitMQ's JSON.
9. ``streams.py``, ``streamsegments.py``, ``streamreader.py``, ``streamstore.py`` — streams'
   own segment files, their sparse index, readers and durability marks (``docs/streams.md``).

``docs/storage.md`` describes the format, the guarantees and the measured choices.
"""

from minibroker.storage.definitions import (
    BindingDefinition,
    Definitions,
    ExchangeDefinition,
    PermissionDefinition,
    QueueDefinition,
    UserDefinition,
    VHostDefinition,
)
from minibroker.storage.errors import (
    DataDirLocked,
    DefinitionsError,
    StorageError,
    StorageFailed,
    UnsupportedFormat,
)
from minibroker.storage.queuelog import QueueLog
from minibroker.storage.recovered import (
    RecoveredMessage,
    RecoveredQueue,
    RecoveredState,
    RecoveryReport,
)
from minibroker.storage.store import DurableStore, StoreStatistics

__all__ = [
    "BindingDefinition", "DataDirLocked", "Definitions", "DefinitionsError", "DurableStore",
    "ExchangeDefinition", "PermissionDefinition", "QueueDefinition", "QueueLog",
    "RecoveredMessage", "RecoveredQueue", "RecoveredState", "RecoveryReport", "StorageError",
    "StorageFailed", "StoreStatistics", "UnsupportedFormat", "UserDefinition",
    "VHostDefinition",
]
