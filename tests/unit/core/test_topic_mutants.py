"""Topic trie behaviour that mutation testing found unasserted (docs/testing-the-broker.md,
"Mutation testing"): the exact cost count of rule 5, the early stop after unbinds, and the
multiset's size across every kind of node."""

from __future__ import annotations

from minibroker.core.topic import TopicTrie

LONG_KEY = ".".join(["a"] * 50)


def test_steps_count_each_frontier_node_and_each_live_hash_node_per_word() -> None:
    # Rule 5 is what the cost tests of test_topic.py read: it must count every visit, once.
    trie: TopicTrie[str] = TopicTrie()
    trie.add("#.a.#.b", "q")
    assert trie.match("a.a.a.b") == {"q"}
    # Word by word (frontier + live '#' nodes): the root and the first '#' (1 + 1); the 'a'
    # node, with both '#' nodes live (1 + 2), twice more (1 + 2, 1 + 2: the second '#' is
    # entered once, not once per 'a'); then the 'b' node at the end (1).
    assert trie.last_match_steps == 12


def test_an_unbound_value_no_longer_delays_the_early_stop() -> None:
    # Rule 4's early stop compares the matches with the values still bound: a value whose
    # last binding is gone must not keep the match reading a long key.
    trie: TopicTrie[str] = TopicTrie()
    trie.add("#", "kept")
    trie.add(".".join(["a"] * 40) + ".z", "kept")  # a long literal path along the key
    trie.add("other.key", "gone")
    assert trie.remove("other.key", "gone")
    assert trie.match(LONG_KEY) == {"kept"}
    assert trie.last_match_steps == 1


def test_a_value_bound_twice_stays_until_its_last_binding_goes() -> None:
    trie: TopicTrie[str] = TopicTrie()
    trie.add("#", "kept")
    trie.add(".".join(["a"] * 40) + ".z", "kept")
    trie.add("other.key", "twice")
    trie.add("other.*", "twice")
    assert trie.remove("other.key", "twice")
    assert trie.match("other.key") == {"kept", "twice"}
    assert trie.remove("other.*", "twice")
    assert trie.match(LONG_KEY) == {"kept"}
    assert trie.last_match_steps == 1


def test_len_counts_pairs_under_literal_star_and_hash_nodes() -> None:
    trie: TopicTrie[str] = TopicTrie()
    for key in ("a", "a.b", "*", "*.c", "#", "#.d", "a.b"):
        trie.add(key, "q")
    assert len(trie) == 7
    trie.remove("a.b", "q")
    assert len(trie) == 6
