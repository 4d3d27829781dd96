"""The storage package stays in its lane: no event loop, no server, client or core.

It is the shell's, driven through plain calls and one callable (``on_durable``), so any loop
(or none, in tests) can drive it; the core reaches it only through the backing-store seam."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STORAGE = Path(__file__).resolve().parents[2] / "minibroker" / "storage"
FORBIDDEN = {"asyncio", "uvloop", "socket", "selectors"}
ALLOWED = {
    "minibroker.errors", "minibroker.message", "minibroker.protocols.building",
    "minibroker.protocols.native.values", "minibroker.valueclass",
}


def imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(STORAGE.glob("*.py")), ids=lambda p: p.name)
def test_storage_imports_no_loop_and_no_other_layer(path: Path) -> None:
    for name in imports(path):
        assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
        if name.startswith("minibroker") and name != "minibroker":
            assert name.startswith("minibroker.storage") or name in ALLOWED, (
                f"{path.name} imports {name}")
