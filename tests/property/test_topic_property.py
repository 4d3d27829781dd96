"""The compiled topic trie agrees with the reference matcher, before and after unbinds, and
never visits more than one state per trie node per key position."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from minibroker.core.exchanges import Destination, DestinationKind, TopicExchange
from minibroker.core.topic import TopicTrie, canonical_words, reference_match, split_words

# A small alphabet makes matches (and near misses) frequent; "" exercises empty words.
ROUTING_WORDS = st.sampled_from(["", "a", "b", "*", "#"])  # '*'/'#' are literal here
PATTERN_WORDS = st.sampled_from(["", "a", "b", "*", "#"])


def keys(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # Zero words is the empty key; one empty word is the same string, which is the point.
    return st.lists(words, max_size=6).map(".".join)


BINDINGS = st.lists(st.tuples(keys(PATTERN_WORDS), st.integers(0, 4)), max_size=25)
ROUTING_KEYS = st.lists(keys(ROUTING_WORDS), min_size=1, max_size=10)


def expected(bindings: list[tuple[str, int]], routing_key: str) -> set[int]:
    return {value for binding_key, value in bindings if reference_match(binding_key, routing_key)}


@given(BINDINGS, ROUTING_KEYS, st.data())
def test_trie_matches_like_reference_before_and_after_unbinds(
    bindings: list[tuple[str, int]], routing_keys: list[str], data: st.DataObject
) -> None:
    trie: TopicTrie[int] = TopicTrie()
    for binding_key, value in bindings:
        trie.add(binding_key, value)
    for routing_key in routing_keys:
        assert trie.match(routing_key) == expected(bindings, routing_key)

    removed = data.draw(st.sets(st.integers(0, max(len(bindings) - 1, 0))))
    remaining = [pair for i, pair in enumerate(bindings) if i not in removed]
    for i in sorted(removed):
        if i < len(bindings):
            assert trie.remove(*bindings[i])
    for routing_key in routing_keys:
        assert trie.match(routing_key) == expected(remaining, routing_key)

    for pair in remaining:
        assert trie.remove(*pair)
    assert trie.node_count == 1


@given(BINDINGS, ROUTING_KEYS, st.data())
def test_topic_exchange_routes_like_reference(
    bindings: list[tuple[str, int]], routing_keys: list[str], data: st.DataObject
) -> None:
    exchange = TopicExchange("t")
    for binding_key, value in bindings:
        exchange.bind(Destination(DestinationKind.QUEUE, f"q{value}"), binding_key, {})
    drop = data.draw(st.sets(st.integers(0, 4), max_size=2))
    for value in drop:
        exchange.unbind_destination(Destination(DestinationKind.QUEUE, f"q{value}"))
    live = [(key, value) for key, value in bindings if value not in drop]
    for routing_key in routing_keys:
        routed = {d.name for d in exchange.route(routing_key, None)}
        assert routed == {f"q{v}" for v in expected(live, routing_key)}


# Wildcard-heavy binding keys and long routing keys: the shapes that made matching super-linear.
WILD_WORDS = st.sampled_from(["a", "b", "*", "#", "#", ""])
WILD_BINDINGS = st.lists(
    st.tuples(st.lists(WILD_WORDS, max_size=12).map(".".join), st.integers(0, 6)), max_size=40
)
LONG_KEYS = st.lists(st.sampled_from(["a", "b", ""]), max_size=60).map(".".join)


@given(st.lists(WILD_WORDS, max_size=12).map(".".join), LONG_KEYS)
def test_canonical_form_matches_the_same_keys(binding_key: str, routing_key: str) -> None:
    canonical = ".".join(canonical_words(binding_key))
    assert reference_match(canonical, routing_key) == reference_match(binding_key, routing_key)


@given(WILD_BINDINGS, st.lists(LONG_KEYS, min_size=1, max_size=5))
def test_wildcard_heavy_tries_match_like_reference_within_the_step_bound(
    bindings: list[tuple[str, int]], routing_keys: list[str]
) -> None:
    trie: TopicTrie[int] = TopicTrie()
    for binding_key, value in bindings:
        trie.add(binding_key, value)
    for routing_key in routing_keys:
        assert trie.match(routing_key) == expected(bindings, routing_key)
        # No (node, position) pair twice: at most one step per node per position.
        positions = len(split_words(routing_key)) + 1
        assert trie.last_match_steps <= trie.node_count * positions
