"""The layers stay apart, and the package reads on its own.

1. The core stays sans-IO: nothing under minibroker/core imports I/O, clocks, randomness,
   msgpack, or another minibroker package (except the bottom floor: minibroker.errors,
   minibroker.message and minibroker.valueclass).
2. The protocols (codecs and their connection objects) import neither the server nor the
   client; the client (``client/`` and ``blocking.py``) imports neither the core nor the server.
3. No import cycle inside ``server/`` or ``client/``, except type-only imports (under
   ``if TYPE_CHECKING:``).
4. Module docstrings point only at files inside the repository.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "minibroker"
CORE = PACKAGE / "core"
FORBIDDEN = {
    "asyncio", "socket", "selectors", "time", "random", "os", "msgpack", "uvloop", "threading",
    "secrets", "io", "pathlib", "subprocess", "signal", "logging", "ssl",
}

#: The bottom floor every layer may import: the error hierarchy, the message vocabulary and the
#: decorator of value classes.
BOTTOM = {"minibroker.errors", "minibroker.message", "minibroker.valueclass"}


def _imports(path: Path, *, type_only: bool = True) -> list[str]:
    """Every module ``path`` imports (relative imports inside core count as core). Without
    ``type_only``, imports under ``if TYPE_CHECKING:`` are left out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped: set[int] = set()
    if not type_only:
        for node in ast.walk(tree):
            if (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                    and node.test.id == "TYPE_CHECKING"):
                skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.append("minibroker.core")  # relative imports stay inside core
            elif node.module:
                names.append(node.module)
    return names


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


CORE_FILES = sorted(CORE.rglob("*.py"))
PROTOCOL_FILES = sorted((PACKAGE / "protocols").rglob("*.py"))
CLIENT_FILES = [*sorted((PACKAGE / "client").rglob("*.py")), PACKAGE / "blocking.py"]


def test_core_files_exist() -> None:
    assert len(CORE_FILES) >= 5 and len(PROTOCOL_FILES) >= 5 and len(CLIENT_FILES) >= 5


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_imports_no_io(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        if top == "minibroker":
            assert name in BOTTOM or name.startswith("minibroker.core"), (
                f"{path.name} imports {name}: core may only use {sorted(BOTTOM)}"
            )


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", PROTOCOL_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_protocols_import_neither_server_nor_client(path: Path) -> None:
    for name in _imports(path):
        for above in ("minibroker.server", "minibroker.client", "minibroker.blocking",
                      "minibroker.testing"):
            assert not _inside(name, above), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", CLIENT_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_client_imports_neither_core_nor_server(path: Path) -> None:
    for name in _imports(path):
        for other in ("minibroker.core", "minibroker.server", "minibroker.testing"):
            assert not _inside(name, other), f"{path.name} imports {name}"


@pytest.mark.parametrize("package", ["server", "client"])
def test_no_import_cycle_but_type_only_ones(package: str) -> None:
    files = {_module(path): path for path in (PACKAGE / package).rglob("*.py")}
    graph = {
        module: {name for name in _imports(path, type_only=False) if name in files}
        for module, path in files.items()
    }
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in visiting:
            cycle = [*visiting[visiting.index(module):], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


_MENTION = re.compile(r"[\w./-]+\.(?:py|md|toml)\b")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_docstrings_point_only_inside_the_repository(path: Path) -> None:
    """A file named with a folder must exist beside the module, in the package or at the root;
    a bare file name somewhere in the repository (prose names siblings without their folder)."""
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    for mention in _MENTION.findall(docstring):
        assert not mention.startswith(".."), f"{path.name} points outside: {mention}"
        if "/" in mention:
            assert any((base / mention).exists() for base in (path.parent, PACKAGE, ROOT)), (
                f"{path.name} names {mention}, which is not in the repository")
        else:
            assert any(ROOT.glob(f"**/{mention}")), (
                f"{path.name} names {mention}, which is not in the repository")


def test_layering_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom minibroker.server import x\nfrom typing import "
                   "TYPE_CHECKING\nif TYPE_CHECKING:\n    from minibroker.client import y\n")
    assert _imports(bad) == ["asyncio", "minibroker.server", "typing", "minibroker.client"]
    assert _imports(bad, type_only=False) == ["asyncio", "minibroker.server", "typing"]
