"""The access table: what one user, logged in to one vhost, may do — one method per AMQP
operation, each making RabbitMQ's checks in RabbitMQ's order.

Rules:

1. A handler calls the operation's method before it changes anything, and before it looks the
   resource up unless the method says otherwise: RabbitMQ checks permissions first, so a user
   learns nothing about resources it may not touch (publishing to a missing exchange without
   write permission is 403, not 404).
2. A refusal is 403 ACCESS_REFUSED ``configure access to queue 'q' in vhost '/' refused for user
   'u'`` (``write``/``read``; ``exchange``; RabbitMQ 3.10 left out the permission word, see
   ``generations.py``). The default exchange ``""`` is checked, and named, as ``amq.default``.
3. The name rules RabbitMQ checks between the permission checks — the default exchange cannot be
   declared, bound or deleted; a new name may not start with ``amq.``; an ``amq.*`` exchange
   cannot be deleted — are made here too, in their place, with RabbitMQ's texts (the topology
   keeps its own copies for callers without a principal).
4. Topic permissions restrict topic exchanges only, and only where the user has an entry for
   the exchange: a publish needs write on its routing keys, a bind or unbind read on its binding
   key.
5. Allowed answers are cached per principal in a bounded set, emptied whenever the registry's
   epoch moves, so the publish path costs one set lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

from minibroker.core.access import AccessControl, Permission
from minibroker.core.generations import (
    PASSIVE_DECLARE_NEEDS_PERMISSION,
    QUEUE_LIMIT_AFTER_DEAD_LETTER_CHECK,
    RESOURCE_REFUSED_TEXT,
    TOPIC_CHECK_COVERS_CC_BCC,
    TOPIC_REFUSED_TEXT,
)
from minibroker.core.tenants import (
    TenantCounters,
    UserLimits,
    check_channel_max,
    check_user_channels,
    check_vhost_queues,
)
from minibroker.errors import AccessRefused

__all__ = ["DIRECT_REPLY_TO", "Principal"]

CONFIGURE, WRITE, READ = Permission.CONFIGURE, Permission.WRITE, Permission.READ

#: The pseudo-queue of direct reply-to: consuming from it needs no permission.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"

_CACHE_SIZE = 256
_NO_LIMITS = UserLimits()


def _default_exchange() -> AccessRefused:
    return AccessRefused("operation not permitted on the default exchange")


class Principal:
    """One user logged in to one vhost: the checks every channel of its connection makes."""

    __slots__ = ("_access", "_allowed", "_epoch", "_variables", "user", "vhost")

    def __init__(
        self, access: AccessControl, user: str, vhost: str, *, client_id: str | None = None,
    ) -> None:
        self._access = access
        self.user = user
        self.vhost = vhost
        self._allowed: set[tuple[Permission, str, str]] = set()
        self._epoch = access.epoch
        #: Topic permission variables (``{username}``, ``{vhost}``, ``{client_id}``).
        self._variables = {"username": user, "vhost": vhost}
        if client_id is not None:
            self._variables["client_id"] = client_id

    @classmethod
    def open(
        cls, access: AccessControl, user: str, vhost: str, *, counters: TenantCounters,
        client_id: str | None = None,
    ) -> Principal:
        """connection.open: :meth:`AccessControl.check_vhost_access`, then the principal."""
        access.check_vhost_access(user, vhost, counters=counters)
        return cls(access, user, vhost, client_id=client_id)

    # -- the checks every operation is made of ----------------------------------------------

    def require(self, permission: Permission, kind: str, name: str) -> None:
        """``permission`` on the ``kind`` (``"exchange"`` or ``"queue"``) named ``name``."""
        if self._epoch != self._access.epoch:
            self._allowed.clear()
            self._epoch = self._access.epoch
        key = (permission, kind, name)
        if key in self._allowed:
            return
        if kind == "exchange" and name == "":
            name = "amq.default"  # rabbit_access_control:check_resource_access/4
        permissions = self._access.permissions(self.user, self.vhost)
        if permissions is None or not permissions.allows(permission, name):
            raise AccessRefused(self._access.profile[RESOURCE_REFUSED_TEXT].format(
                permission=permission.value,
                resource=f"{kind} '{name}' in vhost '{self.vhost}'", user=self.user))
        if len(self._allowed) >= _CACHE_SIZE:
            self._allowed.clear()
        self._allowed.add(key)

    def require_any(self, kind: str, name: str) -> None:
        """Any one of read, write, configure (passive declares since RabbitMQ 4.2.9/4.3.1);
        configure is tried last so that the refusal reads like a declare's."""
        for permission in (READ, WRITE):
            try:
                self.require(permission, kind, name)
            except AccessRefused:
                continue
            return
        self.require(CONFIGURE, kind, name)

    def require_topic(self, permission: Permission, exchange: str, routing_key: str) -> None:
        """Rule 4, for an exchange known to be of type topic."""
        topic = self._access.topic_permissions(self.user, self.vhost).get(exchange)
        if topic is not None and not topic.allows(permission, routing_key, self._variables):
            raise AccessRefused(self._access.profile[TOPIC_REFUSED_TEXT].format(
                permission=permission.value,
                routing_key=routing_key, resource=f"'{exchange}' in vhost '{self.vhost}'",
                user=self.user))

    # -- the access table -------------------------------------------------------------------

    def exchange_declare(
        self, exchange: str, *, passive: bool, exists: bool,
        alternate_exchange: str | None = None,
    ) -> None:
        """exchange.declare, after the exchange type was found valid. ``exists``: the exchange
        is already declared (then nothing more than configure is checked)."""
        if exchange == "":
            raise _default_exchange()
        if passive:
            if self._access.profile[PASSIVE_DECLARE_NEEDS_PERMISSION]:
                self.require_any("exchange", exchange)
            return
        self.require(CONFIGURE, "exchange", exchange)
        if exists:
            return
        if exchange.startswith("amq."):
            raise AccessRefused(f"exchange name '{exchange}' contains reserved prefix 'amq.*'")
        if alternate_exchange is not None:
            self.require(READ, "exchange", exchange)
            self.require(WRITE, "exchange", alternate_exchange)

    def exchange_delete(self, exchange: str) -> None:
        """exchange.delete (before the lookup: deleting a missing exchange is still checked)."""
        if exchange == "":
            raise _default_exchange()
        if exchange.startswith("amq."):
            raise AccessRefused(
                f"deletion of system exchange '{exchange}' in vhost '{self.vhost}' not allowed")
        self.require(CONFIGURE, "exchange", exchange)

    def queue_declare(
        self, queue: str, *, passive: bool, exists: bool, server_named: bool = False,
        dead_letter_exchange: str | None = None, queue_count: int = 0,
    ) -> None:
        """queue.declare, with ``queue`` the actual name (a server-named queue's generated
        ``amq.gen-…`` name, with ``server_named=True``). ``queue_count``: queues in the vhost
        now, for its ``max-queues`` limit (checked for new queues only)."""
        if passive:
            if self._access.profile[PASSIVE_DECLARE_NEEDS_PERMISSION]:
                self.require_any("queue", queue)
            return
        if not server_named and queue.startswith("amq."):
            raise AccessRefused(f"queue name '{queue}' contains reserved prefix 'amq.*'")
        self.require(CONFIGURE, "queue", queue)
        if exists:
            return
        limit_last = self._access.profile[QUEUE_LIMIT_AFTER_DEAD_LETTER_CHECK]
        if not limit_last:
            self._check_queue_limit(queue, queue_count)
        if dead_letter_exchange is not None:
            self.require(READ, "queue", queue)
            self.require(WRITE, "exchange", dead_letter_exchange)
        if limit_last:
            self._check_queue_limit(queue, queue_count)

    def _check_queue_limit(self, queue: str, queue_count: int) -> None:
        vhost = self._access.vhosts.get(self.vhost)
        if vhost is not None:
            check_vhost_queues(self.vhost, queue, vhost.limits, queue_count)

    def queue_delete(self, queue: str) -> None:
        self.require(CONFIGURE, "queue", queue)

    def queue_purge(self, queue: str) -> None:
        self.require(READ, "queue", queue)

    def basic_get(self, queue: str) -> None:
        self.require(READ, "queue", queue)

    def basic_consume(self, queue: str) -> None:
        if queue == DIRECT_REPLY_TO:
            return  # the pseudo-queue belongs to the channel, not to the vhost
        self.require(READ, "queue", queue)

    def queue_bind(
        self, queue: str, exchange: str, binding_key: str, *, exchange_type: str | None,
    ) -> None:
        """queue.bind and queue.unbind. ``exchange_type``: the source exchange's type, ``None``
        when it does not exist (the bind then fails with 404 after these checks)."""
        self.require(WRITE, "queue", queue)
        if exchange == "":
            raise _default_exchange()
        self.require(READ, "exchange", exchange)
        if exchange_type == "topic":
            self.require_topic(READ, exchange, binding_key)

    queue_unbind = queue_bind

    def exchange_bind(
        self, destination: str, source: str, binding_key: str, *, source_type: str | None,
    ) -> None:
        """exchange.bind and exchange.unbind: write on the destination, read on the source."""
        self.require(WRITE, "exchange", destination)
        if destination == "" or source == "":
            raise _default_exchange()
        self.require(READ, "exchange", source)
        if source_type == "topic":
            self.require_topic(READ, source, binding_key)

    exchange_unbind = exchange_bind

    def basic_publish(self, exchange: str) -> None:
        """basic.publish, first step: write on the exchange, before it is looked up."""
        self.require(WRITE, "exchange", exchange)

    def publish_routing_keys(
        self, exchange: str, exchange_type: str, routing_key: str,
        cc_bcc: Sequence[str] = (),
    ) -> None:
        """basic.publish, second step, after the exchange was found and not internal: topic
        write permission on the routing key, and (current releases) on each CC and BCC key."""
        if exchange_type != "topic":
            return
        self.require_topic(WRITE, exchange, routing_key)
        if self._access.profile[TOPIC_CHECK_COVERS_CC_BCC]:
            for key in cc_bcc:
                self.require_topic(WRITE, exchange, key)

    def channel_open(self, *, open_channels: int, channel_max: int, user_channels: int) -> None:
        """channel.open: the connection's ``channel_max``, then the user's ``max-channels``
        (``user_channels``: the user's open channels over all its connections). 530."""
        check_channel_max(open_channels, channel_max)
        user = self._access.users.get(self.user)
        limits = user.limits if user is not None else _NO_LIMITS
        check_user_channels(self.user, limits, user_channels, self._access.profile)
