"""Where the broker's time goes, per layer: read, decode, core, encode, write (and the loop).

    python bench/layers.py native             # 16 B, ack
    python bench/layers.py native --no-ack
    python bench/layers.py amqp --no-ack --count 20000 --top 8

Runs ``instructions.py``'s socket-less publish → deliver → ack loop under cProfile, profiling
only the broker's share (its rule 5: the driver's own encoding and decoding is left out), and
sums each function's own time into the layer its code belongs to.

Rules:

1. A Python function's layer is the first match of :data:`LAYERS` on (file, function name):
   the socket side of the session (``data_received``, the pump, ``flush``) is *read*/*write*,
   codecs and connection state machines are *decode* unless the function encodes (its name
   says ``encode``, ``send``, ``pack`` or ``deliver``), the mapping and the adapters' frame →
   command glue is *dispatch*, ``minibroker/core`` and ``message.py`` are *core*.
2. A built-in (``len``, ``struct.unpack_from``, ``list.append``...) has no file: its time is
   split among its callers' layers in proportion to the calls each made.
3. cProfile's overhead is per call, so small functions look bigger than they are: read the
   shares as where the calls go, and take absolute costs from callgrind (``instructions.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import instructions

Func = tuple[str, int, str]

#: Rule 1: (layer, file pattern, function pattern), first match wins.
LAYERS: list[tuple[str, str, str]] = [
    ("read", r"server/(protocol|session)\.py$",
     r"^(data_received|_pump|_continue|_run_part|_run_batch|_run_one|execute)$"),
    ("write", r"server/session\.py$", r"^(write|flush|schedule_flush|_renew_burst)$"),
    ("write", r"bench/instructions\.py$", r"^write$"),
    ("encode", r"minibroker/protocols/", r"(encode|send|pack|deliver|confirm|_out)"),
    ("encode", r"amqp091/content\.py$", r"^(?!_?decode)"),  # the content frames we write
    ("encode", r"server/\w+_adapter\.py$", r"(effect|reply|flush|deliver)"),
    ("decode", r"minibroker/protocols/", r"."),
    ("dispatch", r"server/\w+_adapter\.py$", r"."),
    ("dispatch", r"server/(server|vhosts|tenancy|adapter)\.py$", r"."),
    ("core", r"minibroker/(core/|message\.py)", r"."),
    ("shell other", r"minibroker/", r"."),
    ("event loop", r"(asyncio|uvloop|selectors|events)", r"."),
]


def layer_of(func: Func) -> str | None:
    path, _, name = func
    if path == "~" or path.startswith("<"):
        return None  # a built-in: rule 2
    path = path.replace("\\", "/")
    for layer, file_pattern, name_pattern in LAYERS:
        if re.search(file_pattern, path) and re.search(name_pattern, name):
            return layer
    return "other"


def by_layer(stats: pstats.Stats) -> tuple[dict[str, float], dict[str, list[tuple[float, str]]]]:
    raw = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = defaultdict(float)
    functions: dict[str, list[tuple[float, str]]] = defaultdict(list)

    def resolve(func: Func, seen: frozenset[Func]) -> dict[str, float]:
        """The layers a function's own time belongs to, as weights summing to 1."""
        layer = layer_of(func)
        if layer is not None:
            return {layer: 1.0}
        callers = raw[func][4]
        calls = sum(c[0] for c in callers.values()) or 1
        weights: dict[str, float] = defaultdict(float)
        for caller, counts in callers.items():
            if caller in seen or caller not in raw:
                continue
            for name, w in resolve(caller, seen | {caller}).items():
                weights[name] += w * counts[0] / calls
        return weights or {"other": 1.0}

    for func, (_, _, tottime, _, _) in raw.items():
        for layer, weight in resolve(func, frozenset({func})).items():
            totals[layer] += tottime * weight
            functions[layer].append((tottime * weight, f"{Path(func[0]).name}:{func[2]}"))
    return totals, functions


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("protocol", choices=("native", "amqp"))
    parser.add_argument("--no-ack", action="store_true")
    parser.add_argument("--backlog", action="store_true",
                        help="the suite's shape (instructions.py rule 4)")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--top", type=int, default=5, help="functions shown per layer")
    args = parser.parse_args()
    instructions.NO_ACK = args.no_ack
    if args.backlog:
        instructions.BATCH = 1000
    profiler = cProfile.Profile()
    instructions.BROKER_ENTER, instructions.BROKER_LEAVE = profiler.enable, profiler.disable
    asyncio.run(instructions.main(args.protocol, args.count))
    totals, functions = by_layer(pstats.Stats(profiler))
    whole = sum(totals.values())
    print(f"# {args.protocol}, 16 B, {'no-ack' if args.no_ack else 'ack'}: {args.count:,} "
          f"messages, {whole / args.count * 1e6:.1f} µs a message under cProfile")
    print("| layer | share | top functions (own time, built-ins folded in) |")
    print("|---|---:|---|")
    for layer, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        top = sorted(functions[layer], reverse=True)[:args.top]
        names = ", ".join(f"{name} {t / whole:.0%}" for t, name in top if t / whole >= 0.005)
        print(f"| {layer} | {seconds / whole:.0%} | {names} |")


if __name__ == "__main__":
    main()
