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

Rule: importing one module of the package (``datadir.py`` for the command line's defaults,
``errors.py``) loads only that module: the names below are imported on first use (PEP 562),
so an in-memory broker loads no storage code.
"""

__all__ = [
    "BindingDefinition", "DataDirLocked", "Definitions", "DefinitionsError", "DurableStore",
    "ExchangeDefinition", "PermissionDefinition", "QueueDefinition", "QueueLog",
    "RecoveredMessage", "RecoveredQueue", "RecoveredState", "RecoveryReport", "StorageError",
    "StorageFailed", "StoreStatistics", "UnsupportedFormat", "UserDefinition",
    "VHostDefinition",
]

#: Name -> the module of this package that defines it.
_LAZY = {
    **dict.fromkeys(["BindingDefinition", "Definitions", "ExchangeDefinition",
                     "PermissionDefinition", "QueueDefinition", "UserDefinition",
                     "VHostDefinition"], "definitions"),
    **dict.fromkeys(["DataDirLocked", "DefinitionsError", "StorageError", "StorageFailed",
                     "UnsupportedFormat"], "errors"),
    "QueueLog": "queuelog",
    **dict.fromkeys(["RecoveredMessage", "RecoveredQueue", "RecoveredState", "RecoveryReport"],
                    "recovered"),
    **dict.fromkeys(["DurableStore", "StoreStatistics"], "store"),
}

TYPE_CHECKING = False  # (typing.TYPE_CHECKING without importing typing, as in minibroker/)
if TYPE_CHECKING:  # the names above, for type checkers (``__all__`` exports them)
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


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value  # found once: later lookups do not come here
    return value
