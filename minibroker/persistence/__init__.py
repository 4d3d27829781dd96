"""Between the core and the disk: the shell's side of durability, loop-agnostic.

``sync.py`` drains the core's journal into the storage engine (``minibroker/storage/``) once
per loop iteration and turns "durable up to seq S" into the core's ``Synced`` input;
``recovery.py`` brings what the store recovered back into a core, messages lazily;
``definitions.py`` converts a core's durable topology to and from RabbitMQ's definitions
(export, import, ``--definitions FILE``). Nothing here imports an event loop: the server
(``server/durability.py``) supplies the scheduling.
"""

from minibroker.persistence.definitions import (
    export_definitions,
    export_json,
    import_definitions,
    import_json,
)
from minibroker.persistence.recovery import MessageLoader, restore_definitions
from minibroker.persistence.sync import StorageSync

__all__ = [
    "MessageLoader", "StorageSync", "export_definitions", "export_json", "import_definitions",
    "import_json", "restore_definitions",
]
