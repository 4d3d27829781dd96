"""An editable install works when Python runs from the checkout's parent folder.

There, a checkout folder named ``minibroker`` would shadow the installed package as a namespace
package (an import finds the folder first, with no ``__init__.py``). The test copies the
checkout's tracked files to ``<tmp>/minibroker``, installs them editable into a fresh virtual
environment (no dependencies: importing the package and its core needs none), and imports from
``<tmp>``. Every step is bounded in time; without a way to get the build backend (no network, no
local index) the test is skipped with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                            timeout=30, check=True)
    return [name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


def test_an_editable_install_imports_from_the_checkouts_parent(tmp_path: Path) -> None:
    checkout = tmp_path / "minibroker"
    for name in _tracked_files():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, checkout / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "-e", str(checkout)],
        capture_output=True, text=True, timeout=300,
    )
    if install.returncode != 0 and "hatchling" in install.stderr and (
            "No matching distribution" in install.stderr
            or "Could not find a version" in install.stderr):
        pytest.skip(f"the build backend cannot be installed here: {install.stderr.strip()}")
    assert install.returncode == 0, install.stderr
    imported = subprocess.run(
        [str(python), "-c",
         "import minibroker, minibroker.core; print(minibroker.__file__); "
         "print(minibroker.core.Broker.__module__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines() == [
        str(checkout / "minibroker" / "__init__.py"), "minibroker.core.broker"]
