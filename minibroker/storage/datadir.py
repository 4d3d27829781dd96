"""Where a broker keeps its data, and how much room is left there. Standard library only.

Rules:

1. The data directory is, in order: the ``--data-dir`` value, else ``$MINIBROKER_DATA_DIR``,
   else the platform's per-user state directory: ``$XDG_STATE_HOME/minibroker`` or
   ``~/.local/state/minibroker`` on Linux and other Unix systems (the XDG base directory
   specification's place for state), ``~/Library/Application Support/minibroker`` on macOS,
   ``%LOCALAPPDATA%\\minibroker`` on Windows. An empty value counts as unset, and a relative
   ``$XDG_STATE_HOME`` is ignored, as the XDG specification says.
2. The free space is that of the file system holding the directory (or its nearest existing
   parent, before the directory is created). RabbitMQ's default disk-free limit is 50 MB:
   :data:`DEFAULT_DISK_FREE_LIMIT`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEFAULT_DISK_FREE_LIMIT", "disk_free", "resolve_data_dir"]

#: RabbitMQ's ``disk_free_limit`` default: 50 MB ("50000000" bytes in its configuration).
DEFAULT_DISK_FREE_LIMIT = 50_000_000
ENVIRONMENT_VARIABLE = "MINIBROKER_DATA_DIR"


def resolve_data_dir(
    option: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
) -> Path:
    """The data directory (rule 1). ``environ``, ``platform`` and ``home`` default to this
    process's, and exist for tests."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if option:
        return Path(option).expanduser()
    if environ.get(ENVIRONMENT_VARIABLE):
        return Path(environ[ENVIRONMENT_VARIABLE]).expanduser()
    home = Path.home() if home is None else home
    if platform == "win32":
        base = environ.get("LOCALAPPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / "minibroker"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "minibroker"
    state = environ.get("XDG_STATE_HOME")
    if state and os.path.isabs(state):
        return Path(state) / "minibroker"
    return home / ".local" / "state" / "minibroker"


def disk_free(directory: str | os.PathLike[str]) -> int:
    """Free bytes (for an unprivileged user) on the file system of ``directory`` (rule 2)."""
    path = Path(directory).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    # Imported on first use, after the start: shutil imports bz2 and lzma (about 1.5 ms).
    import shutil

    return shutil.disk_usage(path).free
