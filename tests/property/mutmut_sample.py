"""A seeded random sample of mutmut's mutants, and the score per area.

mutmut (pyproject.toml ``[tool.mutmut]``) makes about ten thousand mutants of the core and the
two codecs; on two shared cores it checks about half a mutant a second, so the whole set is a
night's run. A uniform random sample of each area, drawn with a fixed seed, estimates the
score of the whole area in half an hour (docs/testing-the-broker.md, "Mutation testing").

Rules:

1. Run from the checkout after ``mutmut run`` has generated ``mutants/`` once (any run does;
   ``mutmut run "minibroker.core.topic.*"`` is a short one). Mutant names are read from
   mutmut's own ``mutants/**/*.py.meta`` files.
2. The areas are disjoint and name every mutated file: ``core`` is ``minibroker/core/``,
   ``codecs`` the counted files of ``minibroker/protocols/amqp091/`` and ``native/``.
3. The same seed and sizes, in the same order, draw the same names from the same mutants, so
   a later run checks the same mutants (the names change only where the source changed).
   ``--area`` narrows a command to one area of that draw.
4. ``score`` counts mutmut's verdicts (``mutmut results``' exit-code table) over the sample,
   or over every checked mutant with ``--all``; ``killed`` includes timeouts, as mutmut does.
5. mutmut switches a mutant on in a process forked after the modules were imported and the
   tests collected, so a mutant of a function that only runs by then (the AMQP codec compiles
   its method decoders and encoders from the spec table at import, the native schema its frame
   layouts) is never switched on and survives whatever the tests do. ``recheck`` finds the
   sample's survivors in functions that run by then, applies each to a copy of the checkout
   and runs the area's tests there (``RECHECK_TESTS``); its verdicts
   (``mutants/recheck.json``) replace mutmut's in ``score``.

Usage::

    mutmut run --max-children 2 $(python -m tests.property.mutmut_sample sample core=500 codecs=350)
    python -m tests.property.mutmut_sample recheck core=500 codecs=350
    python -m tests.property.mutmut_sample score core=500 codecs=350
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AREAS = {
    "core": "minibroker/core/",
    "codecs": "minibroker/protocols/",
}
KILLED = {1, 3, 36, 24, -24, 152, 255}
SURVIVED = {0, 33}  # 33: no test reaches the mutant
RECHECK_TESTS = {
    "core": ["tests/unit/core", "tests/property"],
    "codecs": ["tests/unit/protocols", "tests/property/test_amqp_codec_property.py",
               "tests/property/test_native_codec_property.py"],
}
_IMPORT_TRACE = """
import json, sys
import pytest
called = set()
def profile(frame, event, arg):
    if event == "call" and "/minibroker/" in frame.f_code.co_filename:
        called.add((frame.f_code.co_filename.split("/minibroker/")[1], frame.f_code.co_name))
sys.setprofile(profile)
pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", *sys.argv[1:]])
sys.setprofile(None)
print(json.dumps(sorted(called)))
"""


def exit_codes() -> dict[str, dict[str, int | None]]:
    """Every mutant's last exit code, by area (None: not checked yet), rule 5's rechecks
    included."""
    by_area: dict[str, dict[str, int | None]] = {area: {} for area in AREAS}
    for meta in sorted((ROOT / "mutants" / "minibroker").rglob("*.py.meta")):
        source = meta.relative_to(ROOT / "mutants").as_posix().removesuffix(".meta")
        for area, prefix in AREAS.items():
            if source.startswith(prefix):
                codes = json.loads(meta.read_text())["exit_code_by_key"]
                by_area[area].update(codes)
    rechecked = ROOT / "mutants" / "recheck.json"
    if rechecked.exists():
        for name, code in json.loads(rechecked.read_text()).items():
            for codes in by_area.values():
                if name in codes and codes[name] in SURVIVED:  # a kill by either counts
                    codes[name] = code
    return by_area


def _source_and_function(name: str) -> tuple[str, str]:
    """``minibroker.core.topic.xǁTopicTrieǁmatch__mutmut_13`` -> (``minibroker/core/topic.py``,
    ``match``)."""
    parts = name.split("__mutmut_")[0].split(".")
    mangled = parts[-1]
    function = mangled.split("ǁ")[-1] if "ǁ" in mangled else mangled.removeprefix("x_")
    return "/".join(parts[:-1]) + ".py", function


def import_time_functions() -> set[tuple[str, str]]:
    """(path under minibroker/, function name) of every function that runs before mutmut
    forks: importing the package and collecting the tests (mutmut's warm-up)."""
    selection = [path for paths in RECHECK_TESTS.values() for path in paths]
    out = subprocess.run([sys.executable, "-c", _IMPORT_TRACE, *selection], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    return {(path, function) for path, function in json.loads(out.splitlines()[-1])}


def apply_mutant(name: str, tree: Path) -> None:
    """Apply ``mutmut show``'s diff of ``name`` to the copy of the checkout at ``tree``."""
    diff = subprocess.run(["mutmut", "show", name], capture_output=True, text=True,
                          check=True, cwd=ROOT).stdout.splitlines()
    source, function = _source_and_function(name)
    owner = name.split("ǁ")[1] if "ǁ" in name else None
    old: list[str] = []
    new: list[str] = []
    for line in diff[diff.index(next(x for x in diff if x.startswith("@@"))) + 1:]:
        if line[:1] in (" ", "-"):
            old.append(line[1:])
        if line[:1] in (" ", "+"):
            new.append(line[1:])
    path = tree / source
    text = path.read_text()
    # From the start of the line of the function's def (in its class, for a method).
    start = text.index(f"class {owner}") if owner else 0
    start = text.rfind("\n", 0, text.index(f"def {function}(", start)) + 1
    before = "\n".join(old)
    # The diff's lines are the function's, dedented to column 0 for a method: find them with
    # the method's indentation.
    for indent in ("", "    ", "        "):
        block = "\n".join(indent + line if line else line for line in old)
        at = text.find(block, start)
        if at >= 0:
            after = "\n".join(indent + line if line else line for line in new)
            path.write_text(text[:at] + after + text[at + len(block):])
            return
    raise LookupError(f"cannot place the diff of {name}: {before[:80]!r}")


def recheck(drawn: dict[str, list[str]]) -> dict[str, int]:
    """Rule 5: rerun, in a copy of the checkout, the survivors in import-time functions."""
    by_area = exit_codes()
    at_import = import_time_functions()
    store = ROOT / "mutants" / "recheck.json"
    verdicts: dict[str, int] = json.loads(store.read_text()) if store.exists() else {}
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch)
        for part in ("minibroker", "tests", "docs", "pyproject.toml"):
            copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
            copy(ROOT / part, tree / part)
        for area, names in drawn.items():
            for name in names:
                source, function = _source_and_function(name)
                if by_area[area][name] not in SURVIVED:
                    continue
                if (source.removeprefix("minibroker/"), function) not in at_import:
                    continue
                pristine = (ROOT / source).read_text()
                try:
                    apply_mutant(name, tree)
                except LookupError as error:
                    print(error, flush=True)
                    continue
                run = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                     "--hypothesis-profile=mutation", *RECHECK_TESTS[area]],
                    cwd=tree, capture_output=True, check=False)
                (tree / source).write_text(pristine)
                verdicts[name] = 0 if run.returncode == 0 else 1
                print(name, "survived" if run.returncode == 0 else "killed", flush=True)
                store.write_text(json.dumps(verdicts, indent=1))
    return verdicts


def sample(sizes: dict[str, int], seed: int) -> dict[str, list[str]]:
    by_area = exit_codes()
    rng = random.Random(seed)
    drawn: dict[str, list[str]] = {}
    for area, size in sizes.items():
        names = sorted(by_area[area])
        drawn[area] = sorted(rng.sample(names, min(size, len(names))))
    return drawn


def describe(area: str, codes: list[int | None], total: int) -> str:
    checked = [code for code in codes if code is not None]
    killed = sum(code in KILLED for code in checked)
    survived = sum(code in SURVIVED for code in checked)
    counted = killed + survived
    if counted == 0:
        return f"{area}: nothing checked yet (of {total} mutants)"
    share = killed / counted
    # A 95% normal interval for the share of the whole area.
    half = 1.96 * math.sqrt(share * (1 - share) / counted)
    other = Counter(code for code in checked if code not in KILLED | SURVIVED)
    return (
        f"{area}: {killed} killed / {counted} = {share:.1%} (95% interval "
        f"{max(share - half, 0):.1%}-{min(share + half, 1):.1%}); {len(codes) - len(checked)} "
        f"not checked; other exit codes {dict(other)}; {total} mutants in the area"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["sample", "score", "survivors", "recheck"])
    parser.add_argument("sizes", nargs="*", help="AREA=N, e.g. core=500 codecs=350")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--all", action="store_true", help="score every checked mutant")
    parser.add_argument("--area", choices=sorted(AREAS), help="only this area of the draw")
    args = parser.parse_args()
    sizes = {area: int(n) for area, n in (item.split("=") for item in args.sizes)}
    by_area = exit_codes()
    drawn = (
        {area: sorted(by_area[area]) for area in sizes or AREAS}
        if args.all
        else sample(sizes, args.seed)
    )
    if args.area:
        drawn = {args.area: drawn[args.area]}
    if args.command == "sample":
        print(" ".join(name for names in drawn.values() for name in names))
    elif args.command == "recheck":
        recheck(drawn)
    elif args.command == "score":
        for area, names in drawn.items():
            print(describe(area, [by_area[area][n] for n in names], len(by_area[area])))
    else:
        for names in drawn.values():
            for name in names:
                if by_area_code(by_area, name) in SURVIVED:
                    print(name)


def by_area_code(by_area: dict[str, dict[str, int | None]], name: str) -> int | None:
    for codes in by_area.values():
        if name in codes:
            return codes[name]
    return None


if __name__ == "__main__":
    main()
