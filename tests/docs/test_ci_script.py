"""``.ci/run`` runs exactly the README's test command, and that command's exit status is CI's:
the coverage report printed after it never decides the result."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_test_command_and_exits_with_its_status() -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r'pip install -e "\.\[test\]" && (.+)$', readme, re.MULTILINE)
    assert command is not None
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert f"{command[1]} || status=$?" in lines
    assert lines[-1] == 'exit "$status"'
