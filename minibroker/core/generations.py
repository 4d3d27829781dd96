"""RabbitMQ generations: where RabbitMQ's answers changed between releases, in one table.

Rules:

1. The newest released behaviour is the default (:attr:`Generation.CURRENT`); an explicit profile
   (:attr:`Generation.RABBITMQ_310`) selects RabbitMQ 3.10's, for users comparing against an old
   broker.
2. Every difference is one entry of :data:`DIFFERENCES`, named, with both answers and the
   release that changed it. Code asks :func:`uses_current` or calls :func:`text` instead of testing
   version numbers, so the table is the whole list.
3. Each entry has a differential scenario against the local RabbitMQ 3.10 (the security
   scenarios in ``tests/compat/access_scenarios.json`` name the entry they exercise).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["DIFFERENCES", "TEXTS", "Difference", "Generation", "text", "uses_current"]


class Generation(Enum):
    #: The newest released RabbitMQ (4.x); the default.
    CURRENT = "current"
    #: RabbitMQ 3.10, the reference broker the differential tests run against.
    RABBITMQ_310 = "3.10"


@dataclass(frozen=True, slots=True)
class Difference:
    rabbitmq_310: str
    current: str
    since: str


#: name -> what RabbitMQ 3.10 did, what current releases do, and since when.
DIFFERENCES: dict[str, Difference] = {
    "resource_refused_text": Difference(
        "access to queue 'q' in vhost '/' refused for user 'u'",
        "configure access to queue 'q' in vhost '/' refused for user 'u' (names the permission)",
        "3.12",
    ),
    "topic_refused_text": Difference(
        "access to topic 'k' in exchange 'amq.topic' in vhost '/' refused for user 'u'",
        "write access to topic 'k' in exchange ... (names the permission)",
        "3.12",
    ),
    "passive_declare_needs_permission": Difference(
        "a passive exchange.declare / queue.declare needs no permission",
        "it needs any one of read, write, configure on the resource (the refusal names configure)",
        "4.2.9, 4.3.1",
    ),
    "topic_check_covers_cc_bcc": Difference(
        "a publish to a topic exchange checks the topic permission of the routing key only",
        "it checks every routing key: the routing key and each CC and BCC header entry",
        "4.0",
    ),
    "queue_limit_after_dead_letter_check": Difference(
        "queue.declare of a new queue checks the vhost's max-queues, then the dead-letter"
        " exchange permissions",
        "it checks the dead-letter exchange permissions first, max-queues when it creates",
        "3.13.3",
    ),
    "user_channel_limit_text": Difference(
        "... the maximum allowed user limit of (2)",
        "... the maximum allowed user limit of 2",
        "4.2.9, 4.3.2",
    ),
}

#: Text templates that differ by generation: name -> {generation: template}.
TEXTS: dict[str, dict[Generation, str]] = {
    "resource_refused_text": {
        Generation.CURRENT: "{permission} access to {resource} refused for user '{user}'",
        Generation.RABBITMQ_310: "access to {resource} refused for user '{user}'",
    },
    "topic_refused_text": {
        Generation.CURRENT: (
            "{permission} access to topic '{routing_key}' in exchange {resource}"
            " refused for user '{user}'"
        ),
        Generation.RABBITMQ_310: (
            "access to topic '{routing_key}' in exchange {resource} refused for user '{user}'"
        ),
    },
    "user_channel_limit_text": {
        Generation.CURRENT: (
            "number of channels opened for user '{user}' has reached the maximum allowed user"
            " limit of {limit}"
        ),
        Generation.RABBITMQ_310: (
            "number of channels opened for user '{user}' has reached the maximum allowed user"
            " limit of ({limit})"
        ),
    },
}


def uses_current(name: str, generation: Generation) -> bool:
    """Does ``generation`` behave the current way for the difference ``name``?"""
    if name not in DIFFERENCES:
        raise KeyError(f"no generation difference named {name!r}")
    return generation is Generation.CURRENT


def text(name: str, generation: Generation, **values: object) -> str:
    """The template ``name`` of ``generation``, filled in."""
    return TEXTS[name][generation].format(**values)
