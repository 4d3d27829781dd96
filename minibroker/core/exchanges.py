"""Exchanges: where a published message goes. The ABC, the four AMQP types, and the registry.

AMQP 0-9-1 §3.1.3: "An exchange accepts messages from a producer application and routes these to
message queues according to pre-arranged criteria [...] called bindings."

Rules:

1. A binding is identified by (destination, binding_key, arguments), as RabbitMQ identifies it by
   source, destination, key and arguments. Binding an identical triple again is a no-op
   (``bind`` returns False); unbinding a missing one is not an error (``unbind`` returns False).
   Arguments compare by value and type (``True`` is not ``1``; see ``headers.table_key``).
2. ``route`` returns each matching destination once, however many of its bindings match
   (AMQP §3.1.3.1: a message reaches a queue once). The returned collection may be internal
   state: callers must not mutate it or keep it across a bind/unbind.
3. Routing cost: direct and fanout are one dict lookup; topic walks a trie (``topic.py``) whose
   cost depends on the routing key, not on the number of bindings; headers checks every binding,
   like RabbitMQ.
4. ``validate_binding`` raises before any state changes (``errors.py`` rule 5); ``bind`` does not
   validate, the broker calls both.
5. A new exchange type is one subclass (``_add``/``_remove``/``route``) and one registry line.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Collection, Hashable
from typing import ClassVar, NamedTuple

from minibroker.core.headers import HeadersMatcher, parse_x_match, table_key
from minibroker.core.topic import TopicTrie
from minibroker.message import FieldTable
from minibroker.valueclass import valueclass

__all__ = [
    "EXCHANGE_TYPES",
    "Binding",
    "Destination",
    "DestinationKind",
    "DirectExchange",
    "Exchange",
    "FanoutExchange",
    "HeadersExchange",
    "TopicExchange",
    "exchange_class",
]


class DestinationKind(enum.Enum):
    #: A queue: the message is enqueued there.
    QUEUE = "queue"
    #: Another exchange (RabbitMQ's exchange-to-exchange bindings): the broker routes again.
    EXCHANGE = "exchange"


class Destination(NamedTuple):
    """Where a binding leads; a plain tuple, so hashing and comparing are cheap."""

    kind: DestinationKind
    name: str


@valueclass(frozen=True)
class Binding:
    """A binding as introspection shows it (``arguments`` is a copy; treat it as read-only)."""

    source: str
    destination: Destination
    binding_key: str
    arguments: FieldTable


_BindingId = tuple[Destination, str, Hashable]
_NO_DESTINATIONS: frozenset[Destination] = frozenset()


class Exchange(ABC):
    """Bookkeeping shared by every exchange type; each subclass indexes bindings for routing."""

    type_name: ClassVar[str]

    def __init__(
        self,
        name: str,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: FieldTable | None = None,
    ) -> None:
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments: FieldTable = dict(arguments) if arguments else {}
        # Insertion-ordered: bindings() lists them in binding order.
        self._bindings: dict[_BindingId, Binding] = {}
        # destination -> ids of its bindings here (ordered), for unbind_destination.
        self._by_destination: dict[Destination, dict[_BindingId, None]] = {}
        self._init_index()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} bindings={len(self._bindings)}>"

    # -- the verbs the broker calls ---------------------------------------------------------

    def validate_binding(  # noqa: B027 - deliberately a no-op: most types accept any binding
        self, binding_key: str, arguments: FieldTable
    ) -> None:
        """Raise PreconditionFailed (406) if this type refuses the binding; most accept all."""

    def bind(self, destination: Destination, binding_key: str, arguments: FieldTable) -> bool:
        """Add a binding; False if an identical one exists (rule 1)."""
        binding_id = (destination, binding_key, table_key(arguments))
        if binding_id in self._bindings:
            return False
        binding = Binding(self.name, destination, binding_key, dict(arguments))
        self._add(binding_id, binding)
        self._bindings[binding_id] = binding
        self._by_destination.setdefault(destination, {})[binding_id] = None
        return True

    def unbind(self, destination: Destination, binding_key: str, arguments: FieldTable) -> bool:
        """Remove a binding; False if there was none (rule 1)."""
        return self._unbind_id((destination, binding_key, table_key(arguments)))

    def unbind_destination(self, destination: Destination) -> int:
        """Remove every binding to ``destination`` (it was deleted); return how many."""
        ids = self._by_destination.get(destination)
        if not ids:
            return 0
        removed = 0
        for binding_id in list(ids):
            removed += self._unbind_id(binding_id)
        return removed

    def has_binding(
        self, destination: Destination, binding_key: str, arguments: FieldTable
    ) -> bool:
        return (destination, binding_key, table_key(arguments)) in self._bindings

    def has_destination(self, destination: Destination) -> bool:
        return destination in self._by_destination

    def bindings(self) -> list[Binding]:
        """Every binding of this exchange, in binding order."""
        return list(self._bindings.values())

    @property
    def binding_count(self) -> int:
        return len(self._bindings)

    @abstractmethod
    def route(self, routing_key: str, headers: FieldTable | None) -> Collection[Destination]:
        """The destinations whose bindings match, each once (rule 2)."""

    # -- what a type implements ---------------------------------------------------------------

    @abstractmethod
    def _init_index(self) -> None:
        """Create the empty routing index (called by ``__init__``)."""

    @abstractmethod
    def _add(self, binding_id: _BindingId, binding: Binding) -> None:
        """Index a new binding for routing."""

    @abstractmethod
    def _remove(self, binding_id: _BindingId, binding: Binding) -> None:
        """Forget a binding that ``_add`` indexed."""

    def _unbind_id(self, binding_id: _BindingId) -> bool:
        binding = self._bindings.pop(binding_id, None)
        if binding is None:
            return False
        self._remove(binding_id, binding)
        ids = self._by_destination[binding.destination]
        del ids[binding_id]
        if not ids:
            del self._by_destination[binding.destination]
        return True


def _count_add(counts: dict[Destination, int], destination: Destination) -> None:
    counts[destination] = counts.get(destination, 0) + 1


def _count_remove(counts: dict[Destination, int], destination: Destination) -> None:
    # A destination can hold several bindings (same key, different arguments): route to it
    # until the last one goes.
    left = counts[destination] - 1
    if left:
        counts[destination] = left
    else:
        del counts[destination]


class DirectExchange(Exchange):
    """AMQP §3.1.3.1: "A message queue binds to the exchange using a routing key, K. A publisher
    sends the exchange a message with the routing key R. The message is passed to the message
    queue if K = R." Exact, case-sensitive string equality."""

    type_name = "direct"

    def _init_index(self) -> None:
        self._by_key: dict[str, dict[Destination, int]] = {}

    def _add(self, binding_id: _BindingId, binding: Binding) -> None:
        _count_add(self._by_key.setdefault(binding.binding_key, {}), binding.destination)

    def _remove(self, binding_id: _BindingId, binding: Binding) -> None:
        counts = self._by_key[binding.binding_key]
        _count_remove(counts, binding.destination)
        if not counts:
            del self._by_key[binding.binding_key]

    def route(self, routing_key: str, headers: FieldTable | None) -> Collection[Destination]:
        counts = self._by_key.get(routing_key)
        return counts.keys() if counts is not None else _NO_DESTINATIONS


class FanoutExchange(Exchange):
    """AMQP §3.1.3.2: "The fanout exchange type routes messages to all bound queues regardless
    of the message's routing key." The binding key is kept but ignored."""

    type_name = "fanout"

    def _init_index(self) -> None:
        self._destinations: dict[Destination, int] = {}

    def _add(self, binding_id: _BindingId, binding: Binding) -> None:
        _count_add(self._destinations, binding.destination)

    def _remove(self, binding_id: _BindingId, binding: Binding) -> None:
        _count_remove(self._destinations, binding.destination)

    def route(self, routing_key: str, headers: FieldTable | None) -> Collection[Destination]:
        return self._destinations.keys()


class TopicExchange(Exchange):
    """AMQP §3.1.3.3: routes on a pattern match between binding key and routing key; the
    word rules and the trie are in ``topic.py``."""

    type_name = "topic"

    def _init_index(self) -> None:
        self._trie: TopicTrie[Destination] = TopicTrie()

    @property
    def trie_node_count(self) -> int:
        """Size of the compiled trie (1 when there are no bindings): for leak tests."""
        return self._trie.node_count

    def _add(self, binding_id: _BindingId, binding: Binding) -> None:
        self._trie.add(binding.binding_key, binding.destination)

    def _remove(self, binding_id: _BindingId, binding: Binding) -> None:
        self._trie.remove(binding.binding_key, binding.destination)

    def route(self, routing_key: str, headers: FieldTable | None) -> Collection[Destination]:
        return self._trie.match(routing_key)


class HeadersExchange(Exchange):
    """AMQP §3.1.3.4 as RabbitMQ implements it: routes on the message's ``headers`` property
    against each binding's arguments; ``x-match`` picks the rule (``headers.py``). The routing
    key and binding key are ignored."""

    type_name = "headers"

    def _init_index(self) -> None:
        self._matchers: dict[_BindingId, tuple[Destination, HeadersMatcher]] = {}

    def validate_binding(self, binding_key: str, arguments: FieldTable) -> None:
        parse_x_match(arguments)

    def _add(self, binding_id: _BindingId, binding: Binding) -> None:
        self._matchers[binding_id] = (binding.destination, HeadersMatcher(binding.arguments))

    def _remove(self, binding_id: _BindingId, binding: Binding) -> None:
        del self._matchers[binding_id]

    def route(self, routing_key: str, headers: FieldTable | None) -> Collection[Destination]:
        result: set[Destination] = set()
        for destination, matcher in self._matchers.values():
            if destination not in result and matcher.matches(headers):
                result.add(destination)
        return result


#: exchange type name -> class. A new type is one line here.
EXCHANGE_TYPES: dict[str, type[Exchange]] = {
    cls.type_name: cls for cls in (DirectExchange, FanoutExchange, TopicExchange, HeadersExchange)
}


def exchange_class(type_name: str) -> type[Exchange] | None:
    """The class for an exchange type name, or None if minibroker does not know the type."""
    return EXCHANGE_TYPES.get(type_name)
