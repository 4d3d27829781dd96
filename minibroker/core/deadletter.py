"""Dead-lettering: the message a queue republishes to its dead-letter exchange. Pure functions.

RabbitMQ (dlx docs, ``rabbit_dead_letter``): "Messages from a queue can be 'dead-lettered';
that is, republished to an exchange when [...] the message is negatively acknowledged [...]
with requeue set to false, the message expires due to per-message TTL, the message is dropped
because its queue exceeded a length limit, or the message is returned more times to a quorum
queue than the delivery-limit."

Rules:

1. The dead-lettered copy is a new :class:`Message` (the body object is reused, never copied),
   published to the dead-letter exchange with the queue's dead-letter routing key if it has
   one, else with the message's own routing keys (its routing key and its ``CC`` keys). With a
   dead-letter routing key the ``CC`` header is removed (RabbitMQ does the same).
2. The ``x-death`` header is an array of tables ``{count, reason, queue, time, exchange,
   routing-keys}`` (+ ``original-expiration`` when the message had an ``expiration``, which is
   removed from the copy so it does not expire again). There is one entry per (queue, reason):
   a repeated death increments ``count`` and moves the entry to the front, so the most recent
   death is first. ``x-first-death-reason/-queue/-exchange`` are set once, at the first death.
3. Cycles: a copy is not delivered to a queue it already died in when no death since then was
   a rejection, i.e. when the cycle is fully automatic (``rabbit_dead_letter:is_cycle``);
   a client rejecting the message at any point in the cycle lets it go round again.
"""

from __future__ import annotations

import datetime
from dataclasses import replace

from minibroker.message import FieldTable, FieldValue, Message

__all__ = ["dead_letter", "header_keys", "is_cycle", "routing_keys"]


def header_keys(value: object) -> list[str]:
    """The routing keys a ``CC`` or ``BCC`` header carries: an array's ``longstr`` entries,
    as RabbitMQ takes them (``[Route || {longstr, Route} <- Routes]``); other entries, and a
    header that is not an array (refused at publish), give none."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def routing_keys(message: Message) -> list[str]:
    """The routing key plus the ``CC`` keys (``BCC`` keys are never recorded)."""
    headers = message.properties.headers
    return [message.routing_key, *header_keys(headers.get("CC") if headers else None)]


def dead_letter(
    message: Message, reason: str, queue: str, exchange: str, routing_key: str | None,
    time: datetime.datetime,
) -> tuple[Message, list[str]]:
    """The copy to publish to ``exchange`` and the routing keys to publish it with (rules 1-2)."""
    properties = message.properties
    headers: FieldTable = dict(properties.headers or {})
    death: dict[str, FieldValue] = {
        "count": 1, "reason": reason, "queue": queue, "time": time,
        "exchange": message.exchange, "routing-keys": list(routing_keys(message)),
    }
    if properties.expiration is not None:
        death["original-expiration"] = properties.expiration
    deaths: list[FieldValue] = []
    old = headers.get("x-death")
    for entry in old if isinstance(old, list) else []:
        if isinstance(entry, dict) and entry.get("queue") == queue and (
                entry.get("reason") == reason):
            count = entry.get("count")
            death = dict(entry)
            # RabbitMQ increments the count and keeps the rest (the first time included).
            death["count"] = (count if isinstance(count, int) else 0) + 1
        else:
            deaths.append(entry)
    headers["x-death"] = [death, *deaths]
    for key, value in (("x-first-death-reason", reason), ("x-first-death-queue", queue),
                       ("x-first-death-exchange", message.exchange)):
        headers.setdefault(key, value)
    if routing_key is not None:
        keys = [routing_key]
        headers.pop("CC", None)
    else:
        keys = routing_keys(message)
    copy = Message(
        exchange, keys[0], message.body,
        replace(properties, headers=headers, expiration=None),
    )
    return copy, keys


def is_cycle(message: Message, queue: str) -> bool:
    """Whether delivering the dead-lettered ``message`` to ``queue`` closes an automatic cycle
    (rule 3). ``message`` carries its updated ``x-death`` (most recent first)."""
    headers = message.properties.headers
    deaths = headers.get("x-death") if headers else None
    if not isinstance(deaths, list):
        return False
    for entry in deaths:
        if not isinstance(entry, dict):
            continue
        if entry.get("reason") == "rejected":
            return False
        if entry.get("queue") == queue:
            return True
    return False
