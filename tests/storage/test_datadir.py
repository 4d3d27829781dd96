"""Where data lives, one broker per directory, and the free space there."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minibroker.storage import DataDirLocked, DurableStore
from minibroker.storage.datadir import DEFAULT_DISK_FREE_LIMIT, disk_free, resolve_data_dir

HOME = Path("/home/user")


@pytest.mark.parametrize(("option", "environ", "platform", "expected"), [
    ("/srv/mb", {"MINIBROKER_DATA_DIR": "/env"}, "linux", "/srv/mb"),
    (None, {"MINIBROKER_DATA_DIR": "/env"}, "linux", "/env"),
    ("", {"MINIBROKER_DATA_DIR": ""}, "linux", "/home/user/.local/state/minibroker"),
    (None, {"XDG_STATE_HOME": "/xdg"}, "linux", "/xdg/minibroker"),
    (None, {"XDG_STATE_HOME": "relative/path"}, "linux", "/home/user/.local/state/minibroker"),
    (None, {}, "freebsd14", "/home/user/.local/state/minibroker"),
    (None, {"XDG_STATE_HOME": "/xdg"}, "darwin",
     "/home/user/Library/Application Support/minibroker"),
    (None, {"LOCALAPPDATA": "C:/Users/u/AppData/Local"}, "win32",
     "C:/Users/u/AppData/Local/minibroker"),
    (None, {}, "win32", "/home/user/AppData/Local/minibroker"),
])
def test_the_data_directory_is_chosen_in_order(option: str | None, environ: dict[str, str],
                                               platform: str, expected: str) -> None:
    assert resolve_data_dir(option, environ=environ, platform=platform, home=HOME) == Path(
        expected)


def test_a_tilde_is_expanded() -> None:
    assert resolve_data_dir("~/mb", environ={}) == Path.home() / "mb"


def test_disk_free_works_for_a_directory_not_created_yet(tmp_path: Path) -> None:
    free = disk_free(tmp_path / "not" / "yet")
    assert free == disk_free(tmp_path) and free > 0
    assert DEFAULT_DISK_FREE_LIMIT == 50_000_000


def test_a_second_broker_process_is_refused_with_the_directory_and_the_holder_pid(
        tmp_path: Path) -> None:
    store = DurableStore(str(tmp_path))
    try:
        script = textwrap.dedent(f"""
            from minibroker.storage import DataDirLocked, DurableStore
            try:
                DurableStore({str(tmp_path)!r})
            except DataDirLocked as exc:
                print(exc.pid, exc)
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=60, check=True)
        pid, text = result.stdout.strip().split(" ", 1)
        assert int(pid) == os.getpid()
        assert str(tmp_path) in text and f"process {os.getpid()}" in text
        with pytest.raises(DataDirLocked):  # and in the same process, too
            DurableStore(str(tmp_path))
    finally:
        store.close()
    DurableStore(str(tmp_path)).close()  # free again
