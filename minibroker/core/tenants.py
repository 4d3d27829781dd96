"""Limits per tenant: connections per vhost and per user, channels per user and per connection,
queues per vhost — the counters and the checks, with RabbitMQ's codes and texts.

Rules:

1. ``None`` is "no limit". RabbitMQ stores a negative limit as "no limit" too, so negative values
   become ``None`` at construction; ``0`` refuses every new item.
2. A check compares the count *before* the new item with the limit, ``count >= limit`` refusing
   (``max-connections`` 2 admits two connections), and raises before anything is counted: the
   caller counts only what was admitted (:class:`TenantCounters`).
3. The answers are RabbitMQ's: a vhost's or user's connection limit and a user's channel limit are
   530 NOT_ALLOWED (the connection closes); a vhost's queue limit is 406 PRECONDITION_FAILED (the
   channel closes) and applies only to queues that do not exist yet; more channels than the
   negotiated ``channel_max`` is 530.
4. Counters forget a tenant whose count drops to zero, so they hold only live tenants.
5. ``channel_max`` and ``frame_max`` in a client's connection.tune-ok may lower the server's
   proposal but not raise it (and ``0``, "no limit", is higher than any limit); RabbitMQ logs the
   :func:`negotiate_tune` text and closes the socket without a connection.close.
"""

from __future__ import annotations

from collections.abc import Mapping

from minibroker.core.generations import USER_CHANNEL_LIMIT_TEXT, Profile
from minibroker.errors import NotAllowed, PreconditionFailed
from minibroker.valueclass import valueclass

__all__ = [
    "TenantCounters",
    "UserLimits",
    "VHostLimits",
    "check_channel_max",
    "check_user_channels",
    "check_user_connections",
    "check_vhost_connections",
    "check_vhost_queues",
    "negotiate_tune",
]


def _limit(owner: str, key: str, value: object) -> int | None:
    # bool is an int subclass: refuse it, as RabbitMQ's validation refuses true/false.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner} limit '{key}' must be an integer, not {value!r}")
    return None if value < 0 else value


def _from_definition(
    owner: str, value: Mapping[str, object], keys: tuple[str, ...],
) -> dict[str, int | None]:
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ValueError(f"unknown {owner} limit {unknown[0]!r} (known: {', '.join(keys)})")
    return {key.replace("-", "_"): _limit(owner, key, value.get(key)) for key in keys}


def _to_definition(pairs: tuple[tuple[str, int | None], ...]) -> dict[str, int]:
    return {key: limit for key, limit in pairs if limit is not None}


@valueclass(frozen=True)
class VHostLimits:
    """``rabbitmqctl set_vhost_limits``: ``max-connections``, ``max-queues``."""

    max_connections: int | None = None
    max_queues: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_connections",
                           _limit("vhost", "max-connections", self.max_connections))
        object.__setattr__(self, "max_queues", _limit("vhost", "max-queues", self.max_queues))

    @classmethod
    def from_definition(cls, value: Mapping[str, object]) -> VHostLimits:
        """From the JSON object of a definitions file (``{"max-queues": 10}``)."""
        return cls(**_from_definition("vhost", value, ("max-connections", "max-queues")))

    def to_definition(self) -> dict[str, int]:
        return _to_definition((("max-connections", self.max_connections),
                               ("max-queues", self.max_queues)))


@valueclass(frozen=True)
class UserLimits:
    """``rabbitmqctl set_user_limits``: ``max-connections``, ``max-channels``."""

    max_connections: int | None = None
    max_channels: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_connections",
                           _limit("user", "max-connections", self.max_connections))
        object.__setattr__(self, "max_channels",
                           _limit("user", "max-channels", self.max_channels))

    @classmethod
    def from_definition(cls, value: Mapping[str, object]) -> UserLimits:
        return cls(**_from_definition("user", value, ("max-connections", "max-channels")))

    def to_definition(self) -> dict[str, int]:
        return _to_definition((("max-connections", self.max_connections),
                               ("max-channels", self.max_channels)))


class TenantCounters:
    """Open connections per vhost and per user, open channels per user (across connections).

    The core holds one; it counts a connection after the vhost accepted it and a channel after
    it opened, and uncounts them when they close."""

    __slots__ = ("user_channels", "user_connections", "vhost_connections")

    def __init__(self) -> None:
        self.vhost_connections: dict[str, int] = {}
        self.user_connections: dict[str, int] = {}
        self.user_channels: dict[str, int] = {}

    def connection_opened(self, user: str, vhost: str) -> None:
        _increment(self.vhost_connections, vhost)
        _increment(self.user_connections, user)

    def connection_closed(self, user: str, vhost: str, *, open_channels: int = 0) -> None:
        """Uncount a connection and the channels that were still open on it."""
        _decrement(self.vhost_connections, vhost)
        _decrement(self.user_connections, user)
        _decrement(self.user_channels, user, open_channels)

    def channel_opened(self, user: str) -> None:
        _increment(self.user_channels, user)

    def channel_closed(self, user: str) -> None:
        _decrement(self.user_channels, user)


def _increment(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _decrement(counts: dict[str, int], key: str, by: int = 1) -> None:
    left = counts.get(key, 0) - by
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)  # rule 4


def check_vhost_connections(vhost: str, user: str, limits: VHostLimits, count: int) -> None:
    """connection.open: the vhost's ``max-connections`` (RabbitMQ checks it first of all)."""
    limit = limits.max_connections
    if limit is not None and count >= limit:
        raise NotAllowed(f"access to vhost '{vhost}' refused for user '{user}': "
                         f"connection limit ({limit}) is reached")


def check_user_connections(user: str, limits: UserLimits, count: int) -> None:
    """connection.open: the user's ``max-connections``, after the vhost's."""
    limit = limits.max_connections
    if limit is not None and count >= limit:
        raise NotAllowed(f"connection refused for user '{user}': "
                         f"user connection limit ({limit}) is reached")


def check_channel_max(open_channels: int, channel_max: int) -> None:
    """channel.open: the connection's negotiated ``channel_max`` (0 = no limit), checked before
    the user's channel limit. RabbitMQ counts open channels, not channel numbers: channel 5
    opens on a connection with ``channel_max`` 2 when fewer than 2 are open."""
    if channel_max and open_channels >= channel_max:
        raise NotAllowed(f"number of channels opened ({open_channels}) has reached the "
                         f"negotiated channel_max ({channel_max})")


def check_user_channels(
    user: str, limits: UserLimits, count: int, profile: Profile | None = None,
) -> None:
    """channel.open: the user's ``max-channels`` over all of the user's connections."""
    limit = limits.max_channels
    if limit is not None and count >= limit:
        template = (profile if profile is not None else Profile())[USER_CHANNEL_LIMIT_TEXT]
        raise NotAllowed(template.format(user=user, limit=limit))


def check_vhost_queues(vhost: str, queue: str, limits: VHostLimits, count: int) -> None:
    """queue.declare of a queue that does not exist yet: the vhost's ``max-queues``."""
    limit = limits.max_queues
    if limit is not None and count >= limit:
        raise PreconditionFailed(f"cannot declare queue '{queue}': "
                                 f"queue limit in vhost '{vhost}' ({limit}) is reached")


def negotiate_tune(field: str, client_value: int, server_value: int, minimum: int = 0) -> int:
    """The value a connection uses after the client's tune-ok (rule 5): the client's, when it is
    within ``minimum..server_value``; ``server_value`` 0 means the server has no limit.

    ``field`` is ``channel_max`` or ``frame_max``, as in RabbitMQ's text."""
    if client_value != 0 and client_value < minimum:
        raise NotAllowed(f"negotiated {field} = {client_value} is lower than the minimum "
                         f"allowed value ({minimum})")
    if server_value != 0 and (client_value == 0 or client_value > server_value):
        detail = " (no limit)" if field == "channel_max" and client_value == 0 else ""
        raise NotAllowed(f"negotiated {field} = {client_value}{detail} is higher than the "
                         f"maximum allowed value ({server_value})")
    return client_value
