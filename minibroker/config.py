"""Configuration: frozen dataclasses, built once by the CLI or the test toolkit.

Rules:

1. Defaults are safe for a developer's machine: listen on 127.0.0.1 only, on a port that does not
   collide with a RabbitMQ on the same host (never 5672).
2. Limits that a peer can lower during the handshake (frame size, channels, heartbeat) are the
   server's proposal; the protocol sessions negotiate them.
3. Overload marks come in high/low pairs (``server/flow.py``): publishers are blocked above the
   high-water mark and resumed below the low one; a low mark left at ``None`` is 80% of its high
   mark. A pair that cannot work (low above high, marks below 1) is refused at construction.
4. ``rabbitmq`` is the RabbitMQ version whose answers the broker gives where RabbitMQ releases
   differ (``core/generations.py``); a version outside the modelled range is refused here.
5. Storage: ``data_dir`` ``None`` (the default here and in the test toolkit) keeps nothing;
   a directory makes durable queues, exchanges, bindings and persistent messages survive
   restarts (``server/durability.py``). The CLI resolves its own default
   (``storage.resolve_data_dir``).
6. Accounts (``accounts.py``): ``access``, when given, is the live registry of users, vhosts
   and permissions; otherwise one is built from ``users`` (plain-text passwords, each user an
   administrator with full permissions on ``/`` and on the vhosts ``user_vhosts`` lists for
   it) and ``vhosts``. ``loopback_users`` may log in from loopback addresses only.
7. TLS: ``tls_port`` serves both protocols over TLS with ``tls`` (``tls.py``); one without
   the other is refused here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Literal

from minibroker.core.access import AccessControl
from minibroker.core.generations import NEWEST, Profile
from minibroker.tls import TLSSettings
from minibroker.valueclass import valueclass

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MEMORY_HIGH_WATER",
    "DEFAULT_PORT",
    "DEFAULT_QUEUE_CREDIT",
    "MAX_MESSAGE_SIZE_LIMIT",
    "LoopKind",
    "ServerConfig",
]

#: The default listening port: next to RabbitMQ's 5672 without colliding with it.
DEFAULT_PORT = 5680

#: Ready messages may hold about this many bytes before publishers are blocked (256 MiB).
DEFAULT_MEMORY_HIGH_WATER = 256 * 1024 * 1024

#: Ready messages a queue with consumers holds before the connections publishing into it are
#: paused (per-queue credit flow, ``server/credit.py``).
DEFAULT_QUEUE_CREDIT = 20_000

#: RabbitMQ's default ``max_message_size``: a larger message is refused with 406 on its channel.
DEFAULT_MAX_MESSAGE_SIZE = 128 * 1024 * 1024
#: The largest ``max_message_size`` RabbitMQ lets an operator configure (512 MiB).
MAX_MESSAGE_SIZE_LIMIT = 512 * 1024 * 1024

LoopKind = Literal["auto", "asyncio", "uvloop"]


def _default_users() -> dict[str, str]:
    return {"guest": "guest"}


@valueclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    #: The port serving both protocols (chosen by the first 8 bytes); 0 = any free port.
    port: int = DEFAULT_PORT
    #: An optional second port that serves AMQP 0-9-1 only; ``None`` = no such port.
    amqp_port: int | None = None
    #: Largest frame the server accepts and proposes (AMQP frame-max, native max frame size).
    max_frame_size: int = 131072
    channel_max: int = 2047
    #: Largest message body accepted (RabbitMQ's ``max_message_size``, 128 MiB by default, at
    #: most 512 MiB). AMQP refuses a larger one as soon as its content header declares the
    #: size, before any body octet is kept: 406 ``message size N is larger than configured max
    #: size M`` on the channel; the native protocol refuses a larger Publish the same way.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Heartbeat interval the server proposes, in seconds (0 disables).
    heartbeat: int = 60
    #: Users allowed to log in, name -> plain-text password (rule 6; ignored with ``access``).
    users: dict[str, str] = field(default_factory=_default_users)
    #: Vhosts besides ``/`` (rule 6).
    vhosts: tuple[str, ...] = ()
    #: User name -> the vhosts it gets full permissions on (``/`` when not listed).
    user_vhosts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Users that may log in from loopback addresses only (RabbitMQ's ``loopback_users``).
    loopback_users: frozenset[str] = frozenset({"guest"})
    #: The registry of users, vhosts, permissions and limits itself (rule 6).
    access: AccessControl | None = None
    #: A port serving both protocols over TLS, with these settings (rule 7).
    tls_port: int | None = None
    tls: TLSSettings | None = None
    #: Log every frame in both directions, decoded (logger ``minibroker.trace``).
    trace: bool = False
    #: Seconds to wait for clients to close after telling them the broker is shutting down.
    shutdown_grace: float = 1.0
    #: Seconds a new socket has to complete its protocol handshake before it is dropped
    #: (RabbitMQ's ``handshake_timeout`` is 10 s): half-open connections must not pile up.
    handshake_timeout: float = 10.0
    #: Seconds a connection may take to complete a frame it began sending (slow-loris senders
    #: are closed; RabbitMQ has no such limit); 0 disables.
    frame_timeout: float = 60.0
    #: Seconds a delivery may stay unacknowledged before its channel is closed with 406
    #: (RabbitMQ's ``consumer_timeout``, 1800000 ms); 0 disables.
    consumer_timeout: float = 1800.0
    #: Block publishers when ready messages hold about this many bytes (bodies plus a fixed
    #: per-message overhead); resume them below ``memory_low_water`` (``None``: 80%).
    memory_high_water: int = DEFAULT_MEMORY_HIGH_WATER
    memory_low_water: int | None = None
    #: Block publishers when one queue has this many ready messages; resume them when it is
    #: at or below ``queue_low_water`` (``None``: 80%).
    queue_high_water: int = 1_000_000
    queue_low_water: int | None = None
    #: Per-queue credit flow: a connection publishing into a queue that has consumers and
    #: more ready messages than this is paused alone until the queue is down to half of it
    #: (``server/credit.py``); 0 turns it off.
    queue_credit: int = DEFAULT_QUEUE_CREDIT
    #: File descriptors wanted (the ``RLIMIT_NOFILE`` soft limit is raised towards the hard
    #: limit at start; a warning names the limit when it stays below this): 10,000 idle
    #: connections plus listeners and spares.
    open_files: int = 10_240
    #: The RabbitMQ version to answer as where releases differ: "3.10" to "4.2" (rule 4).
    rabbitmq: str = NEWEST
    #: Where durable state lives; ``None``: in memory only (rule 5).
    data_dir: str | None = None
    #: ``"always"``: a persistent message is confirmed once ``fdatasync`` returned;
    #: ``"never"``: once written to the OS (faster; a power cut may lose confirmed messages).
    sync: Literal["always", "never"] = "always"
    #: Publishers are blocked while the data directory's file system has less free space
    #: (RabbitMQ's ``disk_free_limit``, 50 MB); 0 disables the check.
    disk_free_limit: int = 50_000_000
    #: A RabbitMQ definitions JSON file loaded at start (RabbitMQ's ``load_definitions``).
    definitions_file: str | None = None
    #: The management HTTP API, metrics and web page on this port (0: any free port);
    #: ``None``: not served.
    management_port: int | None = None

    def __post_init__(self) -> None:
        if (self.tls_port is None) != (self.tls is None):
            raise ValueError("tls_port and tls (certfile, keyfile...) go together: "
                             f"tls_port={self.tls_port}, tls={self.tls}")
        Profile(self.rabbitmq)  # refuses a version outside the model, naming the range
        # Limits the handshakes send as 32/16-bit fields: refuse impossible ones here, with
        # the field's name, rather than fail every connection later.
        if not 4096 <= self.max_frame_size <= 0xFFFF_FFFF:
            raise ValueError(f"max_frame_size must be in 4096..{0xFFFF_FFFF}, "
                             f"not {self.max_frame_size}")
        if not 1 <= self.max_message_size <= MAX_MESSAGE_SIZE_LIMIT:
            raise ValueError(f"max_message_size must be in 1..{MAX_MESSAGE_SIZE_LIMIT} (512 MiB), "
                             f"not {self.max_message_size}")
        if self.sync not in ("always", "never"):
            raise ValueError(f"sync must be 'always' or 'never', not {self.sync!r}")
        if self.disk_free_limit < 0:
            raise ValueError(f"disk_free_limit must be at least 0, not {self.disk_free_limit}")
        if not 1 <= self.channel_max <= 0xFFFF:
            raise ValueError(f"channel_max must be in 1..65535, not {self.channel_max}")
        if self.management_port is not None and not 0 <= self.management_port <= 0xFFFF:
            raise ValueError(f"management_port must be in 0..65535, not {self.management_port}")
        if not 0 <= self.heartbeat <= 0xFFFF:
            raise ValueError(f"heartbeat must be in 0..65535 seconds, not {self.heartbeat}")
        if self.queue_credit < 0:
            raise ValueError(f"queue_credit must be at least 0, not {self.queue_credit}")
        for name in ("frame_timeout", "consumer_timeout"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be at least 0 seconds, not {getattr(self, name)}")
        for high, low, what in (
            (self.memory_high_water, self.memory_low_water, "memory"),
            (self.queue_high_water, self.queue_low_water, "queue"),
        ):
            if high < 1:
                raise ValueError(f"{what}_high_water must be at least 1, not {high}")
            if low is not None and not 0 <= low <= high:
                raise ValueError(f"{what}_low_water must be in 0..{what}_high_water ({high}), "
                                 f"not {low}")



def login_ok(users: Mapping[str, str], user: str, password: str | None) -> bool:
    """Does ``password`` log ``user`` in, by a plain-text ``users`` table? (The management
    API's basic auth; the protocols check logins through ``accounts.Login``.) Only a
    configured user with its own password does."""
    expected = users.get(user)
    return expected is not None and password is not None and expected == password
