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
3. The same seed and sizes draw the same names from the same mutants, so a later run checks
   the same mutants (the names change only where the source changed).
4. ``score`` counts mutmut's verdicts (``mutmut results``' exit-code table) over the sample,
   or over every checked mutant with ``--all``; ``killed`` includes timeouts, as mutmut does.

Usage::

    mutmut run --max-children 2 $(python -m tests.property.mutmut_sample sample core=500 codecs=350)
    python -m tests.property.mutmut_sample score core=500 codecs=350
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AREAS = {
    "core": "minibroker/core/",
    "codecs": "minibroker/protocols/",
}
KILLED = {1, 3, 36, 24, -24, 152, 255}
SURVIVED = {0}


def exit_codes() -> dict[str, dict[str, int | None]]:
    """Every mutant's last exit code, by area (None: not checked yet)."""
    by_area: dict[str, dict[str, int | None]] = {area: {} for area in AREAS}
    for meta in sorted((ROOT / "mutants" / "minibroker").rglob("*.py.meta")):
        source = meta.relative_to(ROOT / "mutants").as_posix().removesuffix(".meta")
        for area, prefix in AREAS.items():
            if source.startswith(prefix):
                codes = json.loads(meta.read_text())["exit_code_by_key"]
                by_area[area].update(codes)
    return by_area


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
    parser.add_argument("command", choices=["sample", "score", "survivors"])
    parser.add_argument("sizes", nargs="*", help="AREA=N, e.g. core=500 codecs=350")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--all", action="store_true", help="score every checked mutant")
    args = parser.parse_args()
    sizes = {area: int(n) for area, n in (item.split("=") for item in args.sizes)}
    by_area = exit_codes()
    drawn = (
        {area: sorted(by_area[area]) for area in sizes or AREAS}
        if args.all
        else sample(sizes, args.seed)
    )
    if args.command == "sample":
        print(" ".join(name for names in drawn.values() for name in names))
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
