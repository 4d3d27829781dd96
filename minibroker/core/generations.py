"""RabbitMQ generations: the answers that changed between RabbitMQ releases, in one table.

A broker is built for one RabbitMQ version (``Broker(rabbitmq="3.10")``, ``ServerConfig.rabbitmq``,
``--rabbitmq-version``); by default the newest one modelled, :data:`NEWEST` (4.2). Where
RabbitMQ changed an answer between 3.10 and 4.2, the core asks its :class:`Profile` which
answer to give.

Rules:

1. Every such difference is one :class:`Row` of :data:`ROWS`, and nowhere else: its value under
   RabbitMQ 3.10 (``old``), its value from the release that changed it on (``new``,
   ``since``), and where in RabbitMQ's source or history the change is (``source``). Code never
   compares versions; it reads ``profile[ROW]``.
2. A version between 3.10 and 4.2 takes each row's ``new`` value from its ``since`` release
   on. ``"X.Y"`` means the newest patch release of that series (``"3.13"`` is 3.13.x with
   every 3.13 change), ``"X.Y.Z"`` that very release. Versions outside 3.10..4.2 are refused:
   nothing about them is modelled.
3. The profile is read when a queue is declared or an error is raised, never per message: a
   queue keeps what the profile said when it was declared.
4. Each row has a differential scenario in ``tests/compat/`` (the access-control rows: in
   ``tests/compat/access_scenarios.json``): under the 3.10 profile minibroker
   must give what the local RabbitMQ 3.10 gives; under the newest profile, what the release
   notes and source say the newest release gives (``docs/compatibility.md`` lists the rows).

Answers that did *not* change between 3.10 and 4.2 though they look as if they had, checked
in the source of both: the inequivalent-argument texts (``rabbit_misc:assert_args_equivalence``
is the same function in 3.10.8 and 4.2: ``received '11' but current is '10'`` when both sides
carry the argument, ``received the value '3' of type 'signedint' but current is none`` when one
side lacks it), the default ``consumer_timeout`` (1800000 ms in both ``deps/rabbit/Makefile``),
and an unknown ``x-queue-type`` (406 ``unsupported queue type`` in both).
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

from minibroker.valueclass import valueclass

__all__ = [
    "ACCESS_ROWS",
    "NEWEST",
    "OLDEST",
    "PASSIVE_DECLARE_NEEDS_PERMISSION",
    "QUEUE_LIMIT_AFTER_DEAD_LETTER_CHECK",
    "QUORUM_DEFAULT_DELIVERY_LIMIT",
    "QUORUM_FIRST_GET_DELIVERY_COUNT",
    "QUORUM_NEGATIVE_DELIVERY_LIMIT_UNLIMITED",
    "RESOURCE_REFUSED_TEXT",
    "ROWS",
    "STREAM_AUTO_ACK_TEXT",
    "STREAM_FILTERING",
    "STREAM_PREFETCH_TEXT",
    "STREAM_SETTLES_ANY_OUTCOME",
    "TOPIC_CHECK_COVERS_CC_BCC",
    "TOPIC_REFUSED_TEXT",
    "UNKNOWN_EXCHANGE_TYPE_CLOSES_CONNECTION",
    "USER_CHANNEL_LIMIT_TEXT",
    "Profile",
    "Row",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: The oldest and the newest RabbitMQ series modelled.
OLDEST = "3.10"
NEWEST = "4.2"
_OLDEST = (3, 10, 0)
_NEWEST_SERIES = (4, 2)
#: A two-part version means the newest patch release of its series (rule 2).
_LAST_PATCH = 1_000


@valueclass(frozen=True)
class Row(Generic[T_co]):
    """One answer that changed: RabbitMQ 3.10's value and the value since ``since``."""

    name: str
    summary: str
    old: T_co
    new: T_co
    since: tuple[int, int, int]
    source: str

    @property
    def since_text(self) -> str:
        return ".".join(map(str, self.since))


# -- the table (rule 1) -----------------------------------------------------------------------

UNKNOWN_EXCHANGE_TYPE_CLOSES_CONNECTION = Row(
    "unknown exchange type",
    "exchange.declare with a type the broker does not know: 503 COMMAND_INVALID closes the "
    "connection (3.10), 406 PRECONDITION_FAILED closes the channel (since 3.13.3); the text "
    "is \"unknown exchange type 'T'\" in both",
    old=True, new=False, since=(3, 13, 3),
    source="rabbit_exchange:check_type/1, command_invalid -> precondition_failed "
           "(commit b6aacb7, PR #11214)",
)

QUORUM_DEFAULT_DELIVERY_LIMIT: Row[int | None] = Row(
    "quorum queue default delivery limit",
    "a quorum queue declared without x-delivery-limit: no limit (3.10), 20 (since 4.0: a "
    "message returned more than 20 times is dead-lettered or dropped)",
    old=None, new=20, since=(4, 0, 0),
    source="rabbit_quorum_queue ?DEFAULT_DELIVERY_LIMIT (PR #11937, 4.0.1 release notes)",
)

QUORUM_NEGATIVE_DELIVERY_LIMIT_UNLIMITED = Row(
    "quorum queue negative delivery limit",
    "x-delivery-limit below 0: the message is dead-lettered at its first return (3.10: the "
    "count 1 exceeds it), no limit at all (since 4.0)",
    old=False, new=True, since=(4, 0, 0),
    source="rabbit_fifo:init/1 (4.0): a negative delivery_limit becomes undefined",
)

QUORUM_FIRST_GET_DELIVERY_COUNT = Row(
    "quorum queue x-delivery-count on a first basic.get",
    "basic.get of a message never returned before: x-delivery-count 0 (3.10), no "
    "x-delivery-count header (since 4.0; consumers never saw one on a first delivery)",
    old=True, new=False, since=(4, 0, 0),
    source="rabbit_fifo_client:dequeue/4 and add_delivery_count_header/2 (3.10.8 vs 4.0.0)",
)

# Stream queues (x-queue-type: stream).

STREAM_PREFETCH_TEXT = Row(
    "stream consumer without a prefetch count",
    "basic.consume on a stream without a prefetch count: 406 with the queue quoted once more "
    "(3.10) or named a stream queue (since 4.0)",
    old="consumer prefetch count is not set for '{queue}'",
    new="consumer prefetch count is not set for stream {queue}",
    since=(4, 0, 0),
    source="rabbit_stream_queue:consume/3 (3.13.x still has the 3.10 text)",
)

STREAM_AUTO_ACK_TEXT = Row(
    "stream consumer with automatic acknowledgement",
    "basic.consume on a stream with no-ack: 540, the text says 'stream queues' (3.10) or "
    "'stream' (since 4.0) before the queue",
    old="automatic acknowledgement not supported by stream queues {queue}",
    new="automatic acknowledgement not supported by stream {queue}",
    since=(4, 0, 0),
    source="rabbit_stream_queue:consume/3 (3.13.x still has the 3.10 text)",
)

STREAM_SETTLES_ANY_OUTCOME = Row(
    "stream nack and reject give credit",
    "basic.nack, basic.reject (and basic.recover) of a stream delivery: 540 NOT_IMPLEMENTED "
    "closes the connection (3.10); treated like an ack, the consumer's credit comes back "
    "(since 3.13)",
    old=False, new=True, since=(3, 13, 0),
    source="rabbit_stream_queue:settle/5, \"treat discard and return like settle\" (PR #9644)",
)

STREAM_FILTERING = Row(
    "stream filtering",
    "x-stream-filter / x-stream-match-unfiltered on basic.consume and "
    "x-stream-filter-size-bytes on queue.declare: ignored (3.10); a consumer reads only the "
    "chunks whose Bloom filter may hold its values, the filter size must be 16..255 "
    "(since 3.13)",
    old=False, new=True, since=(3, 13, 0),
    source="rabbit_stream_queue:filter_spec/1, check_filter_size/1 (3.13 release notes: "
           "stream filtering)",
)

# Access control (users, permissions, limits): the texts and the order of the checks.

RESOURCE_REFUSED_TEXT = Row(
    "resource refusal text",
    "a refused operation on an exchange or queue: the 403 text names the refused permission "
    "since 3.12",
    old="access to {resource} refused for user '{user}'",
    new="{permission} access to {resource} refused for user '{user}'",
    since=(3, 12, 0),
    source="rabbit_access_control:check_resource_access/4 (3.12 release notes)",
)

TOPIC_REFUSED_TEXT = Row(
    "topic refusal text",
    "a refused topic permission: the 403 text names the refused permission since 3.12",
    old="access to topic '{routing_key}' in exchange {resource} refused for user '{user}'",
    new="{permission} access to topic '{routing_key}' in exchange {resource} refused for "
        "user '{user}'",
    since=(3, 12, 0),
    source="rabbit_access_control:check_topic_access/4 (3.12 release notes)",
)

PASSIVE_DECLARE_NEEDS_PERMISSION = Row(
    "passive declare needs a permission",
    "a passive exchange.declare / queue.declare needs no permission (3.10); it needs any one "
    "of read, write, configure on the resource, the refusal naming configure (since 4.2.9)",
    old=False, new=True, since=(4, 2, 9),
    source="rabbit_channel handle_method queue.declare/exchange.declare passive (4.2.9, 4.3.1)",
)

TOPIC_CHECK_COVERS_CC_BCC = Row(
    "topic permission covers CC and BCC",
    "a publish to a topic exchange checks the topic permission of the routing key only "
    "(3.10); every routing key, the CC and BCC entries too (since 4.0)",
    old=False, new=True, since=(4, 0, 0),
    source="rabbit_channel:check_topic_authorisation (4.0 release notes)",
)

QUEUE_LIMIT_AFTER_DEAD_LETTER_CHECK = Row(
    "max-queues checked after the dead-letter permissions",
    "queue.declare of a new queue checks the vhost's max-queues, then the dead-letter "
    "exchange permissions (3.10); the permissions first, max-queues when it creates "
    "(since 3.13.3)",
    old=False, new=True, since=(3, 13, 3),
    source="rabbit_channel handle_method queue.declare (3.13.3)",
)

USER_CHANNEL_LIMIT_TEXT = Row(
    "user channel limit text",
    "channel.open over the user's max-channels: the limit in parentheses (3.10), plain "
    "(since 4.2.9)",
    old="number of channels opened for user '{user}' has reached the maximum allowed user "
        "limit of ({limit})",
    new="number of channels opened for user '{user}' has reached the maximum allowed user "
        "limit of {limit}",
    since=(4, 2, 9),
    source="rabbit_channel_tracking:is_over_user_limit (4.2.9, 4.3.2)",
)

#: The rows of the access checks, exercised by the access-control scenarios (rule 4).
ACCESS_ROWS: tuple[Row[object], ...] = (
    RESOURCE_REFUSED_TEXT,
    TOPIC_REFUSED_TEXT,
    PASSIVE_DECLARE_NEEDS_PERMISSION,
    TOPIC_CHECK_COVERS_CC_BCC,
    QUEUE_LIMIT_AFTER_DEAD_LETTER_CHECK,
    USER_CHANNEL_LIMIT_TEXT,
)

#: Every row, in the order ``docs/compatibility.md`` lists them.
ROWS: tuple[Row[object], ...] = (
    UNKNOWN_EXCHANGE_TYPE_CLOSES_CONNECTION,
    QUORUM_DEFAULT_DELIVERY_LIMIT,
    QUORUM_NEGATIVE_DELIVERY_LIMIT_UNLIMITED,
    QUORUM_FIRST_GET_DELIVERY_COUNT,
    STREAM_PREFETCH_TEXT,
    STREAM_AUTO_ACK_TEXT,
    STREAM_SETTLES_ANY_OUTCOME,
    STREAM_FILTERING,
    *ACCESS_ROWS,
)


# -- profiles (rule 2) ------------------------------------------------------------------------

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


class Profile:
    """The RabbitMQ version a broker answers as; ``profile[ROW]`` is that row's answer."""

    __slots__ = ("name", "version")

    def __init__(self, version: str = NEWEST) -> None:
        match = _VERSION.fullmatch(version.strip())
        if match is None:
            raise ValueError(
                f"RabbitMQ version {version!r} is not a version: write it as 3.10 or 3.13.3"
            )
        major, minor, patch = match.groups()
        parsed = (int(major), int(minor), _LAST_PATCH if patch is None else int(patch))
        if not parsed >= _OLDEST or parsed[:2] > _NEWEST_SERIES:
            raise ValueError(
                f"RabbitMQ {version} is not modelled: minibroker answers as RabbitMQ "
                f"{OLDEST} to {NEWEST} (default {NEWEST})"
            )
        #: The version as given (``"3.10"``), for texts.
        self.name = version.strip()
        self.version = parsed

    def __getitem__(self, row: Row[T]) -> T:
        return row.new if self.version >= row.since else row.old

    def __repr__(self) -> str:
        return f"Profile({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Profile) and other.version == self.version

    def __hash__(self) -> int:
        return hash(self.version)
