"""Topic matching worst cases: broker time and trie steps for inputs built to be slow.

Run by hand (not a test):  python bench/topic_worst_case.py

Each row is one ``TopicTrie.match`` on a pre-built trie (best of 5), with the number of states
it visited (``TopicTrie.last_match_steps``, the figure the unit tests bound). The first three
rows are the inputs that froze the previous matcher, which tried every ``#`` state against
every suffix of the key:

1. a 10,000-word routing key (CC/BCC entries have no length limit) against ``#.#``;
2. the same key against ``#.#.#.#.#.a``;
3. 100,000 distinct wildcard bindings (``*``-runs around two ``#``) and a 255-byte key.

The last row is adversarial on purpose: 10,000 random patterns over ``a``/``*``/``#`` make
thousands of trie nodes live at once, and one binding that never matches keeps the matcher
from stopping early. It shows the remaining bound: (live states) x (words).
"""

from __future__ import annotations

import platform
import random
import sys
import time

from minibroker.core.topic import TopicTrie

LONG_KEY = ".".join(["w"] * 10_000)
SHORT_KEY = ".".join(["a"] * 128)[:255]
#: Bound to a value of its own, so matching cannot stop early on "every value found".
NEVER = "never.matches"


def star_hash_bindings(count: int) -> list[str]:
    keys = []
    for i in range(count):
        before, after = divmod(i, 300)
        keys.append(".".join(["*"] * (before % 60) + ["#"] + ["*"] * (after % 60)
                             + ["#", f"z{i % 97}"]))
    return keys


def random_bindings(count: int, rng: random.Random) -> list[str]:
    keys: set[str] = set()
    while len(keys) < count:
        keys.add(".".join(rng.choice(["a", "*", "#"]) for _ in range(rng.randint(4, 20))))
    return sorted(keys)


def measure(name: str, bindings: list[str], routing_key: str) -> None:
    trie: TopicTrie[int] = TopicTrie()
    for i, binding_key in enumerate(bindings):
        trie.add(binding_key, 99 if binding_key == NEVER else i % 7)
    best = float("inf")
    matched = 0
    for _ in range(5):
        start = time.perf_counter()
        matched = len(trie.match(routing_key))
        best = min(best, time.perf_counter() - start)
    print(f"{name:<44} {len(bindings):>8,} {trie.node_count:>8,} "
          f"{trie.last_match_steps:>10,} {best * 1000:>9.2f} {matched:>4}")


def main() -> int:
    print(f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.machine()}; best of 5")
    print(f"{'case':<44} {'bindings':>8} {'nodes':>8} {'steps':>10} {'ms':>9} {'hit':>4}")
    measure("1. '#.#' vs 10,000 words", ["#.#"], LONG_KEY)
    measure("2. '#.#.#.#.#.a' vs 10,000 words", ["#.#.#.#.#.a"], LONG_KEY)
    measure("3. 100,000 '*..#..*..#.z' vs 255 bytes", star_hash_bindings(100_000), SHORT_KEY)
    measure("   same, key ending in a bound word", star_hash_bindings(100_000),
            SHORT_KEY[:-1] + "z5")
    adversarial = [*random_bindings(10_000, random.Random(1)), NEVER]
    measure("4. 10,000 random a/*/# patterns vs 255 bytes", adversarial, SHORT_KEY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
