"""Arguments: validation of queue x-arguments, the ``expiration`` property and consumer
arguments, with RabbitMQ's texts.

Rules:

1. :func:`queue_limits` checks every argument RabbitMQ checks and raises ``PreconditionFailed``
   (406) with RabbitMQ's text (``invalid arg 'x-message-ttl' for queue 'q' in vhost '/':
   {value_negative,-5}``) before anything changes. Unknown ``x-`` arguments are accepted and
   ignored, as RabbitMQ does.
2. It returns ``None`` when no argument asks for a feature, so a plain queue stays plain
   (``features.needs_features`` decides which limits need the feature store).
3. Quorum queues are accepted with RabbitMQ's preconditions (durable, not exclusive, not
   auto-delete) and behave as classic queues plus ``x-delivery-limit`` and the
   ``x-delivery-count`` header. Streams are declared by ``streamargs.py``; a ``binary``
   ``x-queue-type`` that says "stream" is refused as RabbitMQ refuses it.
   What a quorum queue's delivery limit is without the argument or with a negative one, and
   whether a first ``basic.get`` carries ``x-delivery-count``, depends on the RabbitMQ
   version (``generations.py``): the profile is read here, once, when the queue is declared.
4. Times are in milliseconds on the wire and stay so here; ``features.py`` converts to the
   ``now`` scale (seconds).
"""

from __future__ import annotations

import re

from minibroker.core.equivalence import type_mismatch, wire_type
from minibroker.core.generations import (
    QUORUM_DEFAULT_DELIVERY_LIMIT,
    QUORUM_FIRST_GET_DELIVERY_COUNT,
    QUORUM_NEGATIVE_DELIVERY_LIMIT_UNLIMITED,
    Profile,
)
from minibroker.core.topology import queue_text
from minibroker.errors import PreconditionFailed
from minibroker.message import FieldTable, FieldValue
from minibroker.valueclass import valueclass

__all__ = [
    "OVERFLOW_MODES", "QueueLimits", "consumer_priority", "parse_expiration", "queue_limits",
]

#: RabbitMQ's ``?MAX_EXPIRY_TIMER``: the largest TTL/expiry it accepts (ms).
MAX_EXPIRY = 4294967295
OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
_QUEUE_TYPES = ("classic", "quorum", "stream")
#: Arguments of one queue type that the other refuses (RabbitMQ 3.10: "invalid arg
#: 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue").
_NOT_FOR_CLASSIC = ("x-delivery-limit", "x-max-in-memory-length", "x-max-in-memory-bytes")
_NOT_FOR_QUORUM = ("x-max-priority",)


@valueclass(frozen=True)
class QueueLimits:
    """The validated feature arguments of one queue (``None`` = not set)."""

    message_ttl: int | None = None  #: ms
    expires: int | None = None  #: ms
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: str = "drop-head"
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    max_priority: int | None = None
    single_active_consumer: bool = False
    quorum: bool = False
    #: Returns a quorum queue allows before it dead-letters (``None``: no limit).
    delivery_limit: int | None = None
    #: A quorum queue's first ``basic.get`` of a message carries ``x-delivery-count`` 0.
    count_first_get: bool = False


def _type_name(value: FieldValue) -> str:
    return wire_type(value)


def _invalid(queue: str, key: str, detail: str) -> PreconditionFailed:
    return PreconditionFailed(f"invalid arg '{key}' for {queue_text(queue)}: {detail}")


def _integer(queue: str, arguments: FieldTable, key: str, *, zero: bool = True,
             maximum: int | None = None, too_large: str = "value_too_large") -> int | None:
    value = arguments.get(key)
    if value is None and key not in arguments:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(queue, key, f'"expected integer, got {_type_name(value)}"')
    if value < 0:
        raise _invalid(queue, key, f"{{value_negative,{value}}}")
    if value == 0 and not zero:
        raise _invalid(queue, key, "{value_zero,0}")
    if maximum is not None and value > maximum:
        raise _invalid(queue, key, f"{{{too_large},{value}}}")
    return value


def _string(queue: str, arguments: FieldTable, key: str) -> str | None:
    value = arguments.get(key)
    if value is None and key not in arguments:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str):
        raise _invalid(queue, key, f"{{unacceptable_type,{_type_name(value)}}}")
    return value


def queue_limits(
    name: str, arguments: FieldTable, *, durable: bool, exclusive: bool, auto_delete: bool,
    profile: Profile | None = None,
) -> QueueLimits | None:
    """Validate the x-arguments of a new queue; ``None`` if it needs no feature (rule 2)."""
    if not arguments:
        return None
    queue_type = _string(name, arguments, "x-queue-type") or "classic"
    if queue_type not in _QUEUE_TYPES:
        raise _invalid(name, "x-queue-type", f"\"unsupported queue type '{queue_type}'\"")
    if queue_type != "classic":
        # RabbitMQ: "invalid property 'non-durable' for queue 'q' in vhost '/'".
        for bad, prop in ((not durable, "non-durable"), (exclusive, "exclusive-owner"),
                          (auto_delete, "auto-delete")):
            if bad:
                raise PreconditionFailed(f"invalid property '{prop}' for {queue_text(name)}")
        if queue_type == "stream":  # only a binary value gets here (``streamargs.is_stream``)
            raise _invalid(name, "x-queue-type", "{unacceptable_type,binary}")
    refused = _NOT_FOR_QUORUM if queue_type == "quorum" else _NOT_FOR_CLASSIC
    for key in refused:
        if key in arguments:
            kind = "rabbit_quorum_queue" if queue_type == "quorum" else "rabbit_classic_queue"
            raise PreconditionFailed(
                f"invalid arg '{key}' for {queue_text(name)} of queue type {kind}"
            )
    ttl = _integer(name, arguments, "x-message-ttl", maximum=MAX_EXPIRY)
    expires = _integer(name, arguments, "x-expires", zero=False, maximum=MAX_EXPIRY)
    max_length = _integer(name, arguments, "x-max-length")
    max_bytes = _integer(name, arguments, "x-max-length-bytes")
    max_priority = _integer(name, arguments, "x-max-priority", maximum=255,
                            too_large="max_value_exceeded")
    overflow = _string(name, arguments, "x-overflow") or "drop-head"
    if overflow not in OVERFLOW_MODES:
        raise _invalid(name, "x-overflow", "invalid_overflow")
    dlx = arguments.get("x-dead-letter-exchange")
    if dlx is not None and not isinstance(dlx, str | bytes):
        raise type_mismatch(dlx, "x-dead-letter-exchange", queue_text(name))
    dlx_name = dlx.decode(errors="replace") if isinstance(dlx, bytes) else dlx
    dlrk = _string(name, arguments, "x-dead-letter-routing-key")
    if dlrk is not None and dlx_name is None:
        raise _invalid(name, "x-dead-letter-routing-key", "routing_key_but_no_dlx_defined")
    sac = arguments.get("x-single-active-consumer", False)
    if not isinstance(sac, bool):
        raise _invalid(name, "x-single-active-consumer",
                       f"{{unacceptable_type,{_type_name(sac)}}}")
    mode = _string(name, arguments, "x-queue-mode")
    if mode is not None and mode not in ("default", "lazy"):
        raise _invalid(name, "x-queue-mode", f"\"unsupported queue mode '{mode}'\"")
    quorum = queue_type == "quorum"
    delivery_limit = _delivery_limit(arguments, profile or Profile()) if quorum else None
    limits = QueueLimits(
        message_ttl=ttl, expires=expires, max_length=max_length, max_length_bytes=max_bytes,
        overflow=overflow, dead_letter_exchange=dlx_name, dead_letter_routing_key=dlrk,
        max_priority=max_priority, single_active_consumer=sac,
        quorum=quorum, delivery_limit=delivery_limit,
        count_first_get=quorum and (profile or Profile())[QUORUM_FIRST_GET_DELIVERY_COUNT],
    )
    return None if limits == _PLAIN else limits


_PLAIN = QueueLimits()


def _delivery_limit(arguments: FieldTable, profile: Profile) -> int | None:
    """A quorum queue's delivery limit. RabbitMQ accepts any ``x-delivery-limit`` and never
    reaches one that is not an integer (Erlang orders every number below a binary); a missing
    one and a negative one are where versions differ (rule 3)."""
    if "x-delivery-limit" not in arguments:
        return profile[QUORUM_DEFAULT_DELIVERY_LIMIT]
    limit = arguments["x-delivery-limit"]
    if not isinstance(limit, int) or isinstance(limit, bool):
        return None
    if limit < 0 and profile[QUORUM_NEGATIVE_DELIVERY_LIMIT_UNLIMITED]:
        return None
    return limit  # 3.10: a negative limit is exceeded by the first return


def parse_expiration(expiration: str) -> int:
    """The ``expiration`` property in ms; RabbitMQ's 406 texts for anything else (the value
    quoted at most 64 characters long, so the reply text stays a short string)."""
    shown = expiration if len(expiration) <= 64 else expiration[:64] + "..."
    match = re.match(r"-?[0-9]+", expiration)
    if match is None:
        raise PreconditionFailed(f"invalid expiration '{shown}': no_integer")
    rest = expiration[match.end():]
    if rest:
        raise PreconditionFailed(
            f"invalid expiration '{shown}': {{leftover_string,\"{rest[:32]}\"}}"
        )
    digits = match.group()
    if len(digits.lstrip("-").lstrip("0")) > 20:
        # int() refuses strings of thousands of digits (ValueError), and anything this long
        # is far beyond MAX_EXPIRY anyway.
        raise PreconditionFailed(f"invalid expiration '{shown}': value_too_large")
    value = int(digits)
    if value < 0:
        raise PreconditionFailed(f"invalid expiration '{shown}': {{value_negative,{value}}}")
    if value > MAX_EXPIRY:
        raise PreconditionFailed(f"invalid expiration '{shown}': {{value_too_large,{value}}}")
    return value


def consumer_priority(arguments: FieldTable | None, queue: str) -> int:
    """The ``x-priority`` consumer argument (RabbitMQ: an integer, default 0). RabbitMQ's
    refusal names the queue consumed from: "invalid arg 'x-priority' for queue 'q' in vhost
    '/': \"expected integer, got longstr\""."""
    if not arguments:
        return 0
    value = arguments.get("x-priority", 0)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _invalid(queue, "x-priority", f'"expected integer, got {_type_name(value)}"')
