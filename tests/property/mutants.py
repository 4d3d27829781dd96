"""Hand-made mutants of the broker core: bugs the suite once missed, kept so it never misses them.

Run by hand, not collected by pytest (``python -m tests.property.mutants [NAME ...]``): each
mutant is applied to its source file, the tests named for it run, and the file is restored.
A mutant *survives* when its tests pass; the runner then exits 1.

Rules:

1. A mutant is one textual replacement that must match exactly once, so a refactor that moves
   the code makes the runner fail loudly (update the mutant) instead of passing silently.
2. The file is restored in a ``finally``, whatever the tests do.
3. Each mutant names the tests that kill it (``docs/testing-the-broker.md`` lists them): the
   state machine first, then the focused test, so either alone is a guard. The runner kills
   with the ``ci`` hypothesis profile unless ``HYPOTHESIS_PROFILE`` says otherwise; a single
   killer can be checked with ``--only-machine``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MACHINE = "tests/property/test_broker_state_machine.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    killers: tuple[str, ...]


MUTANTS = (
    Mutant(
        "round-robin-removal",
        "minibroker/core/consumers.py",
        "        if level.start > level.last:\n",
        "        if False:\n",
        (MACHINE, "tests/unit/core/test_consumer_ring.py::"
         "test_a_turn_past_the_last_consumer_wraps_before_a_newcomer_joins"),
    ),
    Mutant(
        "expires-lease-not-renewed",
        "minibroker/core/lifecycle.py",
        "            lease.last_used = now\n",
        "            pass\n",
        (MACHINE, "tests/unit/core/test_backing_stores.py::"
         "test_a_used_queue_lives_a_full_lease_from_its_last_use"),
    ),
    Mutant(
        "publish-many-drops-second",
        "minibroker/core/publishing.py",
        "            for message, mandatory in accepted:\n",
        "            for message, mandatory in accepted[:1] + accepted[2:]:\n",
        (MACHINE, "tests/unit/client/test_arguments.py"),
    ),
    Mutant(
        "queue-redelivered-not-counted",
        "minibroker/core/queues.py",
        "        self.redelivered += len(batch)\n",
        "",
        (MACHINE, "tests/unit/core/test_broker_statistics.py::"
         "test_queue_statistics_describe_one_queue"),
    ),
)


#: Mutants of paths the state machine added later (consumer priority, single active consumer).
MUTANTS += (
    Mutant(
        "consumer-priority-ignored",
        "minibroker/core/consumers.py",
        "            -consumer.priority, level.round_for(number), number, consumer, level\n",
        "            0, level.round_for(number), number, consumer, level\n",
        (MACHINE,),
    ),
    Mutant(
        "single-active-consumer-ignored",
        "minibroker/core/consumers.py",
        "        if self.single_active:\n            first = self.first()",
        "        if False:\n            first = self.first()",
        (MACHINE,),
    ),
    Mutant(
        "x-death-reason-lost",
        "minibroker/core/deadletter.py",
        '"count": 1, "reason": reason, "queue": queue,',
        '"count": 1, "reason": "expired", "queue": queue,',
        (MACHINE,),
    ),
    Mutant(
        "message-properties-lost",
        "minibroker/core/deadletter.py",
        "        replace(properties, headers=headers, expiration=None),",
        "        type(properties)(headers=headers),",
        (MACHINE,),
    ),
    Mutant(
        "reject-publish-acked",
        "minibroker/core/lifecycle.py",
        "                accepted = False\n",
        "                pass\n",
        (MACHINE,),
    ),
    Mutant(
        "tx-rollback-loses-settlements",
        "minibroker/core/transactions.py",
        "        restored.update((tag, unacked) for tag, unacked, _ in tx.settlements)\n",
        "",
        (MACHINE,),
    ),
    Mutant(
        "tx-commit-publishes-twice",
        "minibroker/core/transactions.py",
        "        for publish in tx.publishes:\n",
        "        for publish in tx.publishes * 2:\n",
        (MACHINE,),
    ),
    Mutant(
        "alternate-exchange-ignored",
        "minibroker/core/topology.py",
        '            alternate = exchange.arguments.get("alternate-exchange")\n',
        "            alternate = None\n",
        (MACHINE,),
    ),
    Mutant(
        "exchange-delete-keeps-bindings-to-it",
        "minibroker/core/topology.py",
        "        self._unbind_everywhere(Destination(DestinationKind.EXCHANGE, exchange.name))\n",
        "",
        (MACHINE,),
    ),
    Mutant(
        "max-priority-ignored",
        "minibroker/core/features.py",
        "    if max_priority is None:\n",
        "    if True:\n",
        (MACHINE,),
    ),
)


def run(mutant: Mutant) -> bool:
    """Apply ``mutant``, run its killers; True when they fail (the mutant is killed)."""
    path = ROOT / mutant.path
    source = path.read_text()
    if source.count(mutant.old) != 1:
        raise SystemExit(f"{mutant.name}: the mutated text is not found exactly once")
    try:
        path.write_text(source.replace(mutant.old, mutant.new))
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             *mutant.killers], cwd=ROOT, capture_output=True, text=True, check=False,
            env={**os.environ, "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci")},
        )
    finally:
        path.write_text(source)
    return result.returncode != 0


def main(args: list[str]) -> int:
    # A SIGTERM (``timeout``, CI cancelling) must still restore the mutated file (rule 2).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    only_machine = "--only-machine" in args
    names = [arg for arg in args if not arg.startswith("--")]
    survivors = []
    for mutant in MUTANTS:
        if names and mutant.name not in names:
            continue
        killed = run(replace(mutant, killers=(MACHINE,)) if only_machine else mutant)
        print(f"{mutant.name}: {'killed' if killed else 'SURVIVED'}")
        if not killed:
            survivors.append(mutant.name)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
