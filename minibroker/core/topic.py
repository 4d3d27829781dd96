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
3. :class:`TopicTrie` stores each binding key once as a path of words; routing walks the routing
   key's words from the root following, at each node, the literal child, the ``*`` child and the
   ``#`` child (which absorbs 0..n words). Its cost depends on how many trie nodes the routing
   key reaches, not on how many bindings exist.
4. A ``#`` state (node, word index) is visited at most once per route, so consecutive ``#``
   (``"#.#.#"``) cannot blow up exponentially: every other state has a single parent state and is
   therefore unique too.
5. Removing the last value at a node prunes it and every ancestor left empty: memory follows the
   live bindings, whatever the bind/unbind churn.
6. :func:`reference_match` is the specification in ten lines; it exists for tests, not routing.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import cache
from typing import Generic, TypeVar

__all__ = ["TopicTrie", "reference_match", "split_words"]

T = TypeVar("T", bound=Hashable)

_STAR = "*"
_HASH = "#"


def split_words(key: str) -> list[str]:
    """Split a topic key into words (rule 1): ``""`` is zero words, ``"."`` is two empty words."""
    return key.split(".") if key else []


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
    """One trie node: the path from the root to it spells a binding key prefix."""

    __slots__ = ("children", "hash", "star", "values")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}  # literal words only
        self.star: _Node[T] | None = None
        self.hash: _Node[T] | None = None
        # value -> how many binding keys ending here hold it (a multiset: a destination can be
        # bound twice with the same key but different arguments).
        self.values: dict[T, int] = {}

    def is_empty(self) -> bool:
        return not (self.values or self.children or self.star is not None or self.hash is not None)


class TopicTrie(Generic[T]):
    """A multiset of (binding key, value) pairs, matched against routing keys.

    ``add``/``remove`` count duplicates, ``match`` returns each matching value once.
    """

    __slots__ = ("_node_count", "_root")

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._node_count = 1

    @property
    def node_count(self) -> int:
        """Number of trie nodes, the root included (1 when empty: rule 5)."""
        return self._node_count

    def add(self, binding_key: str, value: T) -> None:
        node = self._root
        for word in split_words(binding_key):
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

    def remove(self, binding_key: str, value: T) -> bool:
        """Remove one (binding_key, value) pair; False if it was not there."""
        path: list[tuple[_Node[T], str]] = []  # (parent, word leading to the child)
        node: _Node[T] | None = self._root
        for word in split_words(binding_key):
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
        if count > 1:
            node.values[value] = count - 1
            return True
        del node.values[value]
        # Rule 5: prune the now-empty tail of the path, deepest node first.
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
        words = split_words(routing_key)
        n = len(words)
        result: set[T] = set()
        stack: list[tuple[_Node[T], int]] = [(self._root, 0)]
        seen_hash: set[tuple[int, int]] = set()  # (id(node), index) of '#' states (rule 4)
        pop = stack.pop
        push = stack.append
        while stack:
            node, i = pop()
            hash_node = node.hash
            if hash_node is not None:
                # '#' absorbs words i..j-1 for every j in i..n, then continues at index j.
                hid = id(hash_node)
                for j in range(i, n + 1):
                    state = (hid, j)
                    if state not in seen_hash:
                        seen_hash.add(state)
                        push((hash_node, j))
            if i == n:
                if node.values:
                    result.update(node.values)
                continue
            child = node.children.get(words[i])
            if child is not None:
                push((child, i + 1))
            if node.star is not None:
                push((node.star, i + 1))
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
