"""Every python block of the user-facing documents is covered by a test (``blocks.py``)."""

from __future__ import annotations

import pytest

from tests.docs.blocks import DOCUMENTS, ROOT, Block, python_blocks, verbatim_in

ALL = [block for document in DOCUMENTS for block in python_blocks(document)]


def test_the_documents_have_blocks() -> None:
    assert {block.document for block in ALL} == set(DOCUMENTS)


@pytest.mark.parametrize("block", ALL, ids=str)
def test_each_block_is_covered_by_the_test_its_marker_names(block: Block) -> None:
    assert block.kind is not None and block.target is not None, (
        f"{block}: no <!-- test: ... --> or <!-- run: ... --> marker on the line before the "
        "block (tests/docs/blocks.py, rule 1)")
    target = ROOT / block.target
    assert block.target.startswith("tests/docs/test_") and target.is_file(), (
        f"{block}: no test file {block.target}")
    if block.kind == "test":
        assert verbatim_in(block.code, target.read_text()), (
            f"{block}: the block is not in {block.target} as written; copy the changed "
            "one into the other (they must stay the same)")


def test_verbatim_means_same_lines_same_indentation() -> None:
    code = "with x:\n    y()\n\nz()"
    assert verbatim_in(code, "def t():\n    with x:\n        y()\n\n    z()\n")
    assert not verbatim_in(code, "def t():\n    with x:\n        y()\n\n  z()\n")
    assert not verbatim_in(code, "with x:\n    y(1)\n\nz()\n")
    assert not verbatim_in(code, "# with x:\n    y()\n\nz()\n")
