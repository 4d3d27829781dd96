"""Stream arguments: what ``queue.declare`` and ``basic.consume`` may say to a stream queue, with
RabbitMQ's answers. No I/O.

Rules:

1. A stream is declared with ``x-queue-type: stream`` (a ``longstr``; RabbitMQ refuses a
   ``binary`` one: ``{unacceptable_type,binary}``). :func:`stream_limits` checks a new stream's
   arguments in RabbitMQ 3.10's order and raises ``PreconditionFailed`` (406) with its texts:
   first the values of the arguments streams support (``x-max-length-bytes``, ``x-max-age``,
   ``x-stream-max-segment-size-bytes``, ``x-initial-cluster-size``,
   ``x-queue-leader-locator``), then any argument streams do not support, in the order the
   client sent them ("invalid arg 'x-message-ttl' for queue 'q' in vhost '/' of queue type
   rabbit_stream_queue"), then the stream's own checks in ``rabbit_stream_queue:declare``'s
   order: not auto-delete, not exclusive, durable, a segment size of at most 3,000,000,000,
   and (with filtering, RabbitMQ 3.13) ``x-stream-filter-size-bytes`` in 16..255. Unknown
   arguments are accepted and ignored.
2. ``x-max-age`` is a positive integer and one unit: ``Y`` (365 days), ``M`` (30 days), ``D``,
   ``h``, ``m``, ``s`` (RabbitMQ's ``check_max_age``). Anything else is ``invalid_max_age`` —
   also where RabbitMQ 3.10 fails with 541 INTERNAL_ERROR (a string not starting with a
   digit, such as ``""`` or ``"-1D"``): the broker answers every bad value the same way.
3. Consumer arguments (:func:`consumer_spec`), checked before the consumer's window:
   ``x-stream-offset`` (``first``, ``last``, ``next``, an integer, an AMQP timestamp, or an
   interval string like ``x-max-age``) with RabbitMQ's ``{invalid_stream_offset_arg,...}``;
   then ``x-priority`` and ``x-cancel-on-ha-failover``, which streams refuse. Where RabbitMQ
   3.10 fails with 541 (a string that starts with no digit, a boolean, a decimal, a table),
   the broker refuses with the same 406 shape instead.
4. Filtering (the profile row ``STREAM_FILTERING``: RabbitMQ 3.13 on; 3.10 ignores these
   arguments): ``x-stream-filter`` is a string or an array of strings (other array items are
   ignored, as RabbitMQ does); ``x-stream-match-unfiltered`` is read only with it (default
   false). Without ``x-stream-filter`` the consumer reads everything.
5. Durations are kept in seconds, the ``now`` scale.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from minibroker.core.equivalence import wire_type
from minibroker.core.topology import queue_text
from minibroker.errors import PreconditionFailed
from minibroker.message import FieldTable, FieldValue

__all__ = [
    "DEFAULT_FILTER_SIZE", "DEFAULT_SEGMENT_SIZE", "ConsumerSpec", "OffsetSpec", "StreamLimits",
    "consumer_spec", "is_stream", "parse_interval", "stream_limits",
]

#: RabbitMQ's default segment size (``x-stream-max-segment-size-bytes``): 500 MB.
DEFAULT_SEGMENT_SIZE = 500_000_000
#: RabbitMQ's largest accepted segment size (``?MAX_STREAM_MAX_SEGMENT_SIZE``).
MAX_SEGMENT_SIZE = 3_000_000_000
#: RabbitMQ 3.13's default and bounds for ``x-stream-filter-size-bytes``.
DEFAULT_FILTER_SIZE = 16
_FILTER_SIZES = range(16, 256)

_UNITS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}
_INTERVAL = re.compile(r"([0-9]+)([YMDhms])")
_LOCATORS = ("client-local", "random", "least-leaders", "balanced")
#: What streams support: everything else starting ``x-`` that a queue type knows is refused.
_STREAM_ARGUMENTS = frozenset({
    "x-queue-type", "x-max-length-bytes", "x-max-age", "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size", "x-queue-leader-locator", "x-stream-filter-size-bytes",
})
#: Arguments of other queue types that a stream refuses (RabbitMQ's ``rabbit_queue_type``
#: knows them; unknown ``x-`` arguments are ignored instead).
_REFUSED = frozenset({
    "x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
    "x-max-length", "x-max-in-memory-length", "x-max-in-memory-bytes", "x-max-priority",
    "x-overflow", "x-queue-mode", "x-single-active-consumer", "x-queue-master-locator",
    "x-delivery-limit", "x-quorum-initial-group-size", "x-dead-letter-strategy",
    "x-queue-version",
})
_REFUSED_CONSUMER = ("x-priority", "x-cancel-on-ha-failover")


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """The validated arguments of one stream (``None`` = not set)."""

    max_length_bytes: int | None = None
    max_age: int | None = None  #: seconds
    max_segment_size: int = DEFAULT_SEGMENT_SIZE
    filter_size: int = DEFAULT_FILTER_SIZE


@dataclass(frozen=True, slots=True)
class OffsetSpec:
    """Where a consumer starts: ``kind`` is ``first``, ``last``, ``next``, ``offset`` (an
    integer ``value``), ``timestamp`` (``value``: Unix seconds) or ``interval`` (``value``:
    seconds before now)."""

    kind: str
    value: float = 0


NEXT = OffsetSpec("next")


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """A stream consumer's arguments (rules 3-4)."""

    offset: OffsetSpec = NEXT
    #: The filter values (``None``: no filtering).
    filter: tuple[str, ...] | None = None
    match_unfiltered: bool = False


def _text(value: FieldValue) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


def is_stream(arguments: FieldTable | None) -> bool:
    """Does a declaration ask for a stream? (Its validity is :func:`stream_limits`' business.)"""
    return bool(arguments) and arguments.get("x-queue-type") == "stream"  # type: ignore[union-attr]


def _invalid(queue: str, key: str, detail: str) -> PreconditionFailed:
    return PreconditionFailed(f"invalid arg '{key}' for {queue_text(queue)}: {detail}")


def _integer(queue: str, arguments: FieldTable, key: str, *, zero: bool = True) -> int | None:
    if key not in arguments:
        return None
    value = arguments[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(queue, key, f'"expected integer, got {wire_type(value)}"')
    if value < 0:
        raise _invalid(queue, key, f"{{value_negative,{value}}}")
    if value == 0 and not zero:
        raise _invalid(queue, key, "{value_zero,0}")
    return value


def parse_interval(text: str) -> int | None:
    """``x-max-age`` / interval seconds of ``"7D"``, ``"12h"``…; ``None`` if invalid (rule 2)."""
    match = _INTERVAL.fullmatch(text)
    if match is None or int(match.group(1)) <= 0:
        return None
    return int(match.group(1)) * _UNITS[match.group(2)]


def stream_limits(
    name: str, arguments: FieldTable, *, durable: bool, exclusive: bool, auto_delete: bool,
    filtering: bool = True,
) -> StreamLimits:
    """Validate a new stream's declaration (rule 1); ``filtering``: the profile's
    ``STREAM_FILTERING`` (rule 4)."""
    max_bytes = _integer(name, arguments, "x-max-length-bytes")
    max_age = None
    if "x-max-age" in arguments:
        value = arguments["x-max-age"]
        if not isinstance(value, str):
            raise _invalid(name, "x-max-age", f"{{unacceptable_type,{wire_type(value)}}}")
        max_age = parse_interval(value)
        if max_age is None:
            raise _invalid(name, "x-max-age", "invalid_max_age")
    segment = _integer(name, arguments, "x-stream-max-segment-size-bytes")
    _integer(name, arguments, "x-initial-cluster-size", zero=False)
    if "x-queue-leader-locator" in arguments:
        locator = arguments["x-queue-leader-locator"]
        if not isinstance(locator, str):
            raise _invalid(name, "x-queue-leader-locator",
                           f"{{unacceptable_type,{wire_type(locator)}}}")
        if locator not in _LOCATORS:
            raise _invalid(name, "x-queue-leader-locator", "invalid_queue_locator_arg")
    for key in arguments:
        if key in _REFUSED:
            raise PreconditionFailed(
                f"invalid arg '{key}' for {queue_text(name)} of queue type rabbit_stream_queue"
            )
    for bad, prop in ((auto_delete, "auto-delete"), (exclusive, "exclusive-owner"),
                      (not durable, "non-durable")):
        if bad:
            raise PreconditionFailed(f"invalid property '{prop}' for {queue_text(name)}")
    if segment is not None and segment > MAX_SEGMENT_SIZE:
        # Values too large overflow the position field of osiris's index (PR #5020, 3.10.5).
        raise PreconditionFailed("Exceeded max value for x-stream-max-segment-size-bytes")
    filter_size = arguments.get("x-stream-filter-size-bytes", DEFAULT_FILTER_SIZE)
    if not filtering:
        filter_size = DEFAULT_FILTER_SIZE
    elif "x-stream-filter-size-bytes" in arguments and (
            not isinstance(filter_size, int) or isinstance(filter_size, bool)
            or filter_size not in _FILTER_SIZES):
        # RabbitMQ 3.13's text, two spaces included.
        raise PreconditionFailed("Invalid value for  x-stream-filter-size-bytes")
    assert isinstance(filter_size, int)
    return StreamLimits(
        max_length_bytes=max_bytes, max_age=max_age,
        max_segment_size=DEFAULT_SEGMENT_SIZE if segment is None else segment,
        filter_size=filter_size,
    )


def _offset_term(value: FieldValue) -> str:
    """RabbitMQ's rendering of a bad ``x-stream-offset`` value: ``{longstr,<<"0s">>}``."""
    if isinstance(value, str | bytes):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        kind = "longstr" if isinstance(value, str) else "binary"
        return f'{{{kind},<<"{text}">>}}'
    shown = str(value).lower() if isinstance(value, bool) else str(value)
    return f"{{{wire_type(value)},{shown}}}"


def parse_offset(queue: str, value: FieldValue, present: bool) -> OffsetSpec:
    """The ``x-stream-offset`` consumer argument (rule 3)."""
    if not present:
        return NEXT
    if isinstance(value, datetime.datetime):
        return OffsetSpec("timestamp", value.timestamp())
    if isinstance(value, int) and not isinstance(value, bool):
        return OffsetSpec("offset", max(value, 0))
    text = _text(value)
    if text in ("first", "last", "next"):
        return OffsetSpec(text)
    seconds = None if text is None else parse_interval(text)
    if seconds is None:
        raise _invalid(queue, "x-stream-offset",
                       f"{{invalid_stream_offset_arg,{_offset_term(value)}}}")
    return OffsetSpec("interval", seconds)


def consumer_spec(
    queue: str, arguments: FieldTable | None, *, filtering: bool = True,
) -> ConsumerSpec:
    """Validate a stream consumer's arguments (rules 3-4), in RabbitMQ's order; without
    ``filtering`` (RabbitMQ 3.10) the filter arguments are ignored."""
    arguments = arguments or {}
    offset = parse_offset(queue, arguments.get("x-stream-offset"), "x-stream-offset" in arguments)
    for key in _REFUSED_CONSUMER:
        if key in arguments:
            raise PreconditionFailed(
                f"invalid arg '{key}' for {queue_text(queue)} of queue type rabbit_stream_queue"
            )
    raw = arguments.get("x-stream-filter") if filtering else None
    values: tuple[str, ...] | None
    if isinstance(raw, list):
        values = tuple(text for text in map(_text, raw) if text is not None)
    else:
        single = None if raw is None else _text(raw)
        values = None if single is None else (single,)
    unfiltered = arguments.get("x-stream-match-unfiltered", False)
    return ConsumerSpec(
        offset=offset, filter=values,
        match_unfiltered=values is not None and unfiltered is True,
    )
