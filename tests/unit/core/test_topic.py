"""Topic matching: the word rules, RabbitMQ's observed behaviour, and the trie's bookkeeping."""

from __future__ import annotations

import pytest

from minibroker.core.topic import TopicTrie, canonical_words, reference_match, split_words

#: Routing keys published in the RabbitMQ 3.10 observation.
CANDIDATES = ["", "a", "a.b", "a.b.b", "a..b", "b", "a.x.y.b", ".", "a."]

#: binding key -> the candidates RabbitMQ 3.10 routed to it.
OBSERVED = {
    "#": set(CANDIDATES),
    "#.#": set(CANDIDATES),
    "*": {"a", "b"},
    "a.*": {"a.b", "a."},
    "*.*": {"a.b", ".", "a."},
    "a.#": {"a", "a.b", "a.b.b", "a..b", "a.x.y.b", "a."},
    "#.b": {"a.b", "a.b.b", "a..b", "b", "a.x.y.b"},
    "a.#.b": {"a.b", "a.b.b", "a..b", "a.x.y.b"},
    "a.*.#": {"a.b", "a.b.b", "a..b", "a.x.y.b", "a."},
    "a..b": {"a..b"},
    "": {""},
    "a.b": {"a.b"},
}


@pytest.mark.parametrize("binding_key", sorted(OBSERVED))
def test_reference_match_agrees_with_rabbitmq(binding_key: str) -> None:
    matched = {key for key in CANDIDATES if reference_match(binding_key, key)}
    assert matched == OBSERVED[binding_key]


@pytest.mark.parametrize("binding_key", sorted(OBSERVED))
def test_trie_with_one_binding_agrees_with_rabbitmq(binding_key: str) -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add(binding_key, "q")
    matched = {key for key in CANDIDATES if trie.match(key)}
    assert matched == OBSERVED[binding_key]


def test_trie_with_every_observed_binding_at_once_agrees_with_rabbitmq() -> None:
    trie: TopicTrie[str] = TopicTrie()
    for binding_key in OBSERVED:
        trie.add(binding_key, binding_key)
    for routing_key in CANDIDATES:
        expected = {bk for bk, keys in OBSERVED.items() if routing_key in keys}
        assert trie.match(routing_key) == expected, routing_key


@pytest.mark.parametrize(
    ("key", "words"),
    [("", []), (".", ["", ""]), ("a.", ["a", ""]), (".a", ["", "a"]), ("a.b.c", ["a", "b", "c"])],
)
def test_split_words_keeps_empty_words_and_empty_key_is_zero_words(
    key: str, words: list[str]
) -> None:
    assert split_words(key) == words


@pytest.mark.parametrize(
    ("binding_key", "routing_key", "expected"),
    [
        ("A.b", "a.b", False),  # case-sensitive
        ("a*", "ab", False),  # '*' is a wildcard only as a whole word
        ("a*", "a*", True),
        ("#b", "#b", True),
        ("#b", "b", False),
        ("a", "*", False),  # '*' in a routing key is a literal character
        ("*", "*", True),
        ("#", "#", True),
        ("a.b", "a.b.c", False),  # whole-key match
        ("a.b.c", "a.b", False),
        ("*.#.*", "a", False),
        ("*.#.*", "a.b", True),
        ("#.*", "", False),
        ("#.*", ".", True),
        ("a.#.#.b", "a.b", True),
    ],
)
def test_word_rules(binding_key: str, routing_key: str, expected: bool) -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add(binding_key, "q")
    assert reference_match(binding_key, routing_key) is expected
    assert bool(trie.match(routing_key)) is expected


def test_match_returns_each_value_once_when_several_bindings_match() -> None:
    trie: TopicTrie[str] = TopicTrie()
    for binding_key in ("#", "a.*", "a.b", "#.b", "*.*"):
        trie.add(binding_key, "q")
    trie.add("a.b", "other")
    assert trie.match("a.b") == {"q", "other"}


def test_duplicate_pairs_are_counted_and_removed_one_at_a_time() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a.#", "q")
    trie.add("a.#", "q")
    assert len(trie) == 2
    assert trie.remove("a.#", "q") is True
    assert trie.match("a.b") == {"q"}
    assert trie.remove("a.#", "q") is True
    assert trie.match("a.b") == set()
    assert trie.remove("a.#", "q") is False


def test_remove_of_missing_key_or_value_returns_false_and_keeps_others() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a.b", "q")
    assert trie.remove("a.c", "q") is False
    assert trie.remove("a", "q") is False  # a prefix node with no value
    assert trie.remove("a.b", "other") is False
    assert trie.match("a.b") == {"q"}


def test_remove_prunes_only_the_empty_tail() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("a.b.c", "q1")
    trie.add("a.b", "q2")
    assert trie.node_count == 4  # root, a, b, c
    trie.remove("a.b.c", "q1")
    assert trie.node_count == 3  # 'c' pruned; 'b' still holds q2
    assert trie.match("a.b") == {"q2"}
    trie.remove("a.b", "q2")
    assert trie.node_count == 1


def test_bind_unbind_churn_returns_the_trie_to_its_root() -> None:
    trie: TopicTrie[int] = TopicTrie()
    words = ["a", "b", "", "*", "#", "eu", "us"]
    keys = [
        ".".join(words[(i * 7 + j * 3) % len(words)] for j in range(1 + i % 5))
        for i in range(500)
    ]
    for round_ in range(3):
        for i, key in enumerate(keys):
            trie.add(key, i % 13 + round_)
        assert trie.node_count > 1
        for i, key in enumerate(keys):
            assert trie.remove(key, i % 13 + round_)
        assert trie.node_count == 1
        assert len(trie) == 0
        assert trie.match("a.b") == set()


def test_consecutive_hashes_do_not_blow_up() -> None:
    # Without the visited set this is exponential in the number of '#'s; with it, instant.
    trie: TopicTrie[str] = TopicTrie()
    trie.add(".".join(["#"] * 20) + ".z", "q")
    trie.add(".".join(["#"] * 20), "all")
    routing_key = ".".join(["w"] * 60)
    assert trie.match(routing_key) == {"all"}
    assert trie.match(routing_key + ".z") == {"q", "all"}


@pytest.mark.parametrize(
    ("binding_key", "canonical"),
    [
        ("#.#", "#"),
        ("#.#.#.#.#.a", "#.a"),
        ("#.*", "*.#"),
        ("#.*.#.*", "*.*.#"),
        ("a.#.#.b", "a.#.b"),
        ("*.*", "*.*"),  # no '#': unchanged
        ("a.#.*.b.#", "a.*.#.b.#"),
        ("#..#", "#..#"),  # an empty word is literal and separates the runs
        ("", ""),
    ],
)
def test_canonical_form_merges_wildcard_runs(binding_key: str, canonical: str) -> None:
    assert ".".join(canonical_words(binding_key)) == canonical


# -- worst cases: cost in steps (states visited), never in time ---------------------------------

#: The three inputs that froze the previous matcher (about 4.4 s, 25 s and 98 s of broker time).
LONG_KEY = ".".join(["w"] * 10_000)


def test_hash_hash_against_a_10000_word_key_takes_one_step() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("#.#", "q")
    assert trie.match(LONG_KEY) == {"q"}
    # '#.#' is '#': its value matches on entry, nothing else is live, the key is not read.
    assert trie.last_match_steps == 1


def test_hash_chain_with_a_literal_costs_one_step_per_word() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("#.#.#.#.#.a", "q")
    assert trie.match(LONG_KEY) == set()
    assert trie.match(LONG_KEY + ".a") == {"q"}
    # The root at the first word, then the one live '#' node at each word, then the end.
    assert trie.last_match_steps <= 10_001 + 2


def test_100000_wildcard_bindings_and_a_255_byte_key_stay_within_their_bound() -> None:
    # 100,000 distinct binding keys, each with two '#' runs separated by '*' runs: the previous
    # matcher tried every '#' node against every suffix of the key.
    trie: TopicTrie[int] = TopicTrie()
    for i in range(100_000):
        stars_before, stars_after = divmod(i, 300)
        key = ".".join(["*"] * (stars_before % 60) + ["#"] + ["*"] * (stars_after % 60)
                       + ["#", f"z{i % 97}"])
        trie.add(key, i % 7)
    routing_key = ".".join(["a"] * 128)[:255]
    assert trie.match(routing_key) == set()
    assert trie.match(routing_key[:-1] + "z5") == {i % 7 for i in range(100_000) if i % 97 == 5}
    # Each live state is visited once per word: at most (trie nodes) x (words + 1).
    assert trie.last_match_steps <= trie.node_count * 129
    assert trie.last_match_steps < 20_000


def test_steps_never_exceed_one_per_node_per_position() -> None:
    # Rule 4's guarantee on a trie where many nodes are live at once.
    trie: TopicTrie[int] = TopicTrie()
    patterns = ["#", "*", "a", "b"]
    for i in range(4**5):
        words = [patterns[(i >> (2 * j)) & 3] for j in range(5)]
        trie.add(".".join(words), i % 3)
    trie.add("never.matches", 99)  # defeats the early stop on "every value found"
    routing_key = ".".join("ab"[i % 2] for i in range(40))
    expected = {i % 3 for i in range(4**5)
                if reference_match(".".join(patterns[(i >> (2 * j)) & 3] for j in range(5)),
                                   routing_key)}
    assert trie.match(routing_key) == expected
    assert 0 < trie.last_match_steps <= trie.node_count * 41


def test_matching_stops_once_every_value_has_matched() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("#", "q")
    for i in range(1000):
        trie.add(f"#.{i}.#", "q")
    assert trie.match(LONG_KEY) == {"q"}
    assert trie.last_match_steps == 1
