"""The core stays sans-IO: nothing under minibroker/core imports I/O, clocks, randomness,
msgpack, or another minibroker package (except the bottom floor: minibroker.errors and
minibroker.message)."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "minibroker" / "core"
FORBIDDEN = {
    "asyncio", "socket", "selectors", "time", "random", "os", "msgpack", "uvloop", "threading",
    "secrets", "io", "pathlib", "subprocess", "signal", "logging", "ssl",
}

#: The bottom floor every layer may import: the error hierarchy and the message vocabulary.
BOTTOM = {"minibroker.errors", "minibroker.message"}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.append("minibroker.core")  # relative imports stay inside core
            elif node.module:
                names.append(node.module)
    return names


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_core_files_exist() -> None:
    assert len(CORE_FILES) >= 5


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_imports_no_io(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        if top == "minibroker":
            assert name in BOTTOM or name.startswith("minibroker.core"), (
                f"{path.name} imports {name}: core may only use {sorted(BOTTOM)}"
            )


def test_layering_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom minibroker.server import x\n")
    assert _imports(bad) == ["asyncio", "minibroker.server"]
