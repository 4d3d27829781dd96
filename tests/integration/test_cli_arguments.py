"""Command lines ``python -m minibroker`` refuses, each in one line with exit status 2 and
nothing left running: values out of range, options that exclude each other, a definitions
file that is missing or not JSON, and ``export-definitions`` without a data directory or
into a file. Run in-process (``cli.main``): what is checked happens before or instead of
serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minibroker.cli import EXIT_OK, EXIT_USAGE, main

QUIET = ["--port", "0", "--no-management", "--in-memory"]


@pytest.mark.parametrize(("argv", "error"), [
    (["--port", "70000"], "argument --port: 70000 is not a port number (0..65535)"),
    (["--heartbeat", "65536"], "argument --heartbeat: 65536 is not in 0..65535"),
    (["--disk-free-limit", "-1"], "argument --disk-free-limit: -1 is not a non-negative integer"),
    (["--in-memory", "--data-dir", "somewhere"], "--in-memory and --data-dir exclude each other"),
])
def test_an_argument_out_of_range_is_a_usage_error(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    assert capsys.readouterr().err.splitlines()[-1] == f"minibroker: error: {error}"


def test_a_missing_definitions_file_is_named(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.json"
    assert main([*QUIET, "--definitions", str(missing)]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"minibroker: cannot use {missing}: No such file or directory\n")


def test_a_definitions_file_that_is_not_json_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main([*QUIET, "--definitions", str(broken)]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"minibroker: {broken}: not JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)\n")


def test_export_definitions_without_a_data_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "no-data"
    assert main(["export-definitions", "--data-dir", str(missing)]) == EXIT_USAGE
    assert capsys.readouterr().err == f"minibroker: no data directory at {missing}\n"


def test_export_definitions_into_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    target = tmp_path / "definitions.json"
    assert main(["export-definitions", "--data-dir", str(data), "-o", str(target)]) == EXIT_OK
    exported = json.loads(target.read_text())
    assert exported["queues"] == [] and exported["exchanges"] == []
