"""Topic binding keys compiled into a trie, and a tiny reference matcher for tests.

A topic exchange routes a message to every binding whose binding key *matches* the routing key
(AMQP 0-9-1 §3.1.3.3): "The routing key used for a topic exchange MUST consist of zero or more
words delimited by dots. [...] The binding key [...] can contain `*` which matches exactly one
word and `#` which matches zero or more words."

Rules:

1. Words are split on ``"."`` exactly as RabbitMQ's ``split_topic_key`` does: every dot separates
   two words, so empty words are words (``"a."`` is ``["a", ""]``, ``"."`` is ``["", ""]``), and
   the empty key ``""`` is *zero* words (so ``"*"`` does not match ``""`` but ``"#"`` does).
2. In a binding key, a word that is exactly ``*`` matches one word (possibly empty), a word that is
   exactly ``#`` matches zero or more words; every other word, including ``a*`` or ``#b``, is
   literal. Matching is case-sensitive and covers the whole routing key. In a routing key, ``*``
   and ``#`` are ordinary characters.
3. A binding key is stored in its *canonical form* (:func:`canonical_words`): in every run of
   consecutive ``*``/``#`` words that holds a ``#``, the ``*`` words come first and one ``#``
   ends the run (``"#.#"`` is ``"#"``, ``"#.*.#"`` is ``"*.#"``). The two forms match exactly the
   same keys, and in the canonical trie a ``#`` node (one reached through a ``#`` word) has only
   literal children.
4. Matching runs the trie as an automaton over the routing key's words, left to right, with two
   sets of live states. The *frontier* holds the nodes that matched exactly the words read so
   far; a node reaches it only from its parent's state one word earlier, so no node is in it
   twice at one position and no (node, position) pair is ever explored twice. A ``#`` node,
   once reached, stays live for every later word (``#`` absorbs them) and is entered once per
   match; its values match at once (it can absorb the rest of the key), and it is kept live only
   while it has children to try. Matching stops early when nothing is live any more, or when
   every value held by the trie has matched (the result cannot grow). Cost: one step per live
   state per word — ``#.#`` against a 10,000-word key is one step, ``#.#.#.#.#.a`` one
   dictionary lookup per word (``bench/topic_worst_case.py``). The bound is (live states) x
   (words): bindings built so that thousands of trie nodes stay live at once can still make one
   match cost that many steps per word.
5. :attr:`TopicTrie.last_match_steps` counts the states the last match visited (each frontier
   node and each live ``#`` node, per word), so tests can assert the cost bound of rule 4
   without a clock.
6. Removing the last value at a node prunes it and every ancestor left empty: memory follows the
   live bindings, whatever the bind/unbind churn.
7. :func:`reference_match` is the specification in ten lines; it exists for tests, not routing.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import cache
from typing import Generic, TypeVar

__all__ = ["TopicTrie", "canonical_words", "reference_match", "split_words"]

T = TypeVar("T", bound=Hashable)

_STAR = "*"
_HASH = "#"


def split_words(key: str) -> list[str]:
    """Split a topic key into words (rule 1): ``""`` is zero words, ``"."`` is two empty words."""
    return key.split(".") if key else []


def canonical_words(binding_key: str) -> list[str]:
    """The words of ``binding_key`` in canonical form (rule 3): each run of ``*``/``#`` words
    that holds a ``#`` becomes its ``*`` words followed by one ``#``."""
    words = split_words(binding_key)
    if _HASH not in words:
        return words
    out: list[str] = []
    stars = 0
    hashed = False
    for word in words:
        if word == _STAR:
            stars += 1
        elif word == _HASH:
            hashed = True
        else:
            _flush_wildcards(out, stars, hashed)
            stars, hashed = 0, False
            out.append(word)
    _flush_wildcards(out, stars, hashed)
    return out


def _flush_wildcards(out: list[str], stars: int, hashed: bool) -> None:
    out.extend([_STAR] * stars)
    if hashed:
        out.append(_HASH)


def reference_match(binding_key: str, routing_key: str) -> bool:
    """Does ``binding_key`` match ``routing_key``? The obvious recursive definition (rules 1-2)."""
    pattern = split_words(binding_key)
    words = split_words(routing_key)

    @cache
    def match(p: int, w: int) -> bool:
        if p == len(pattern):
            return w == len(words)
        if pattern[p] == _HASH:
            # '#' absorbs zero words (skip it) or one more word (stay on it).
            return match(p + 1, w) or (w < len(words) and match(p, w + 1))
        if w == len(words):
            return False
        return (pattern[p] == _STAR or pattern[p] == words[w]) and match(p + 1, w + 1)

    return match(0, 0)


class _Node(Generic[T]):
    """One trie node: the path from the root to it spells a canonical binding key prefix."""

    __slots__ = ("children", "hash", "star", "values")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}  # literal words only
        self.star: _Node[T] | None = None
        self.hash: _Node[T] | None = None
        # value -> how many binding keys ending here hold it (a multiset: a destination can be
        # bound twice with the same key but different arguments, or with "#" and "#.#").
        self.values: dict[T, int] = {}

    def is_empty(self) -> bool:
        return not (self.values or self.children or self.star is not None or self.hash is not None)


class TopicTrie(Generic[T]):
    """A multiset of (binding key, value) pairs, matched against routing keys.

    ``add``/``remove`` count duplicates, ``match`` returns each matching value once.
    """

    __slots__ = ("_distinct", "_node_count", "_root", "last_match_steps")

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._node_count = 1
        #: value -> number of (binding key, value) pairs holding it (rule 4's early stop)
        self._distinct: dict[T, int] = {}
        #: States visited by the last :meth:`match` (rule 5).
        self.last_match_steps = 0

    @property
    def node_count(self) -> int:
        """Number of trie nodes, the root included (1 when empty: rule 6)."""
        return self._node_count

    def add(self, binding_key: str, value: T) -> None:
        node = self._root
        for word in canonical_words(binding_key):
            if word == _STAR:
                nxt = node.star
                if nxt is None:
                    nxt = node.star = _Node()
                    self._node_count += 1
            elif word == _HASH:
                nxt = node.hash
                if nxt is None:
                    nxt = node.hash = _Node()
                    self._node_count += 1
            else:
                found = node.children.get(word)
                if found is None:
                    found = node.children[word] = _Node()
                    self._node_count += 1
                nxt = found
            node = nxt
        node.values[value] = node.values.get(value, 0) + 1
        self._distinct[value] = self._distinct.get(value, 0) + 1

    def remove(self, binding_key: str, value: T) -> bool:
        """Remove one (binding_key, value) pair; False if it was not there."""
        path: list[tuple[_Node[T], str]] = []  # (parent, word leading to the child)
        node: _Node[T] | None = self._root
        for word in canonical_words(binding_key):
            assert node is not None
            path.append((node, word))
            if word == _STAR:
                node = node.star
            elif word == _HASH:
                node = node.hash
            else:
                node = node.children.get(word)
            if node is None:
                return False
        assert node is not None
        count = node.values.get(value)
        if count is None:
            return False
        held = self._distinct[value]
        if held > 1:
            self._distinct[value] = held - 1
        else:
            del self._distinct[value]
        if count > 1:
            node.values[value] = count - 1
            return True
        del node.values[value]
        # Rule 6: prune the now-empty tail of the path, deepest node first.
        child = node
        for parent, word in reversed(path):
            if not child.is_empty():
                break
            if word == _STAR:
                parent.star = None
            elif word == _HASH:
                parent.hash = None
            else:
                del parent.children[word]
            self._node_count -= 1
            child = parent
        return True

    def match(self, routing_key: str) -> set[T]:
        """Every value whose binding key matches ``routing_key`` (rules 2-4)."""
        words = routing_key.split(".") if routing_key else []
        result: set[T] = set()
        everything = len(self._distinct)  # once all of them matched, nothing can be added
        frontier: list[_Node[T]] = [self._root]
        live: list[_Node[T]] = []  # entered '#' nodes that have children (rule 4)
        entered: set[int] | None = None  # id() of every '#' node entered so far
        steps = 0
        for word in words:
            steps += len(frontier)
            following: list[_Node[T]] = []
            for node in frontier:
                hash_node = node.hash
                if hash_node is not None:
                    # '#' matches zero words here; entered once, it stays live (the loop over
                    # ``live`` below tries its children with this very word).
                    if entered is None:
                        entered = set()
                    if id(hash_node) not in entered:
                        entered.add(id(hash_node))
                        if hash_node.values:
                            result.update(hash_node.values)
                            if len(result) == everything:
                                self.last_match_steps = steps
                                return result
                        if hash_node.children:
                            live.append(hash_node)
                child = node.children.get(word)
                if child is not None:
                    following.append(child)
                if node.star is not None:
                    following.append(node.star)
            if live:
                steps += len(live)
                for hash_node in live:
                    child = hash_node.children.get(word)
                    if child is not None:
                        following.append(child)
            elif not following:
                self.last_match_steps = steps
                return result
            frontier = following
        steps += len(frontier)
        for node in frontier:
            if node.values:
                result.update(node.values)
            hash_node = node.hash
            if hash_node is not None and hash_node.values:
                result.update(hash_node.values)
        self.last_match_steps = steps
        return result

    def __len__(self) -> int:
        """Number of (binding key, value) pairs held, duplicates counted."""
        total = 0
        stack = [self._root]
        while stack:
            node = stack.pop()
            total += sum(node.values.values())
            stack.extend(node.children.values())
            if node.star is not None:
                stack.append(node.star)
            if node.hash is not None:
                stack.append(node.hash)
        return total
