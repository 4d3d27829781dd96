"""The HTTP codec and the management API stay pure: no sockets, no event loop, no shell."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "minibroker"
FILES = sorted([*(PACKAGE / "protocols" / "http").glob("*.py"),
                *(PACKAGE / "management").glob("*.py")])
FORBIDDEN = {"asyncio", "socket", "selectors", "threading", "time", "random", "uvloop",
             "minibroker.server", "minibroker.client", "minibroker.testing"}


def imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_the_files_are_there() -> None:
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_io_and_no_shell(path: Path) -> None:
    for name in imports(path):
        assert not any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN), (
            f"{path.name} imports {name}")


def test_the_codec_needs_nothing_of_the_management_api() -> None:
    for path in (PACKAGE / "protocols" / "http").glob("*.py"):
        assert not [name for name in imports(path) if name.startswith("minibroker.management")]
