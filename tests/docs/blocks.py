"""The code blocks of the user-facing documents, and the tests that keep each one true.

Rules:

1. Every ``python`` block of a checked document is preceded (on the line before its fence) by
   one marker naming the test file that covers it:

   - ``<!-- test: tests/docs/FILE.py -->``: the block appears *verbatim* in that test file (as
     a whole module, or indented inside a test); the file runs it with assertions around it.
   - ``<!-- run: tests/docs/FILE.py -->``: that test file reads the block from the document
     and runs it (for blocks a user runs as they are, against a broker they started).

2. A block and its test cannot drift: editing either breaks :func:`verbatim_in` (``test:``), or
   the test runs the edited block itself (``run:``). ``test_blocks.py`` enforces rule 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The documents whose python blocks must all be covered.
DOCUMENTS = ("README.md", "docs/testing.md", "examples/README.md")

_MARKER = re.compile(r"^<!-- (test|run): (\S+) -->$")


@dataclass(frozen=True)
class Block:
    document: str
    line: int  #: the fence's line number, from 1
    kind: str | None  #: "test", "run", or None (no marker)
    target: str | None  #: the test file named by the marker
    code: str

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def python_blocks(document: str) -> list[Block]:
    lines = (ROOT / document).read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            marker = _MARKER.match(lines[index - 1]) if index else None
            end = lines.index("```", index + 1)
            found.append(Block(document, index + 1, marker and marker.group(1),
                               marker and marker.group(2), "\n".join(lines[index + 1:end])))
            index = end
        index += 1
    return found


def marked(kind: str, target: str) -> list[Block]:
    """The blocks of every document whose marker is ``kind`` and names ``target``."""
    return [block for document in DOCUMENTS for block in python_blocks(document)
            if block.kind == kind and block.target == target]


def verbatim_in(code: str, text: str) -> bool:
    """Do ``code``'s lines appear in ``text`` consecutively, all with the same indentation?"""
    wanted = code.splitlines()
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if not line.endswith(wanted[0]):
            continue
        indent = line[: len(line) - len(wanted[0])]
        if indent.strip():
            continue
        window = lines[start:start + len(wanted)]
        if len(window) == len(wanted) and all(
            got == (indent + want if want else "") or (not want and not got.strip())
            for got, want in zip(window, wanted, strict=True)
        ):
            return True
    return False
