"""One session's tenant: its user and vhost, the permission gate its commands pass, and the
counts the per-tenant limits read.

Rules:

1. The protocol connection calls :meth:`Tenancy.open_vhost` at its handshake's end (AMQP
   connection.open, native Tune), before it answers: an unknown vhost, a vhost the user has
   no permission entry on, or a connection limit reached is the 530 RabbitMQ answers
   (``Principal.open``), and the connection never reaches the core.
2. :meth:`Tenancy.check` runs before every command of the session; a refusal is the
   principal's 403 and the command never runs (``core/authorize.py``).
3. Counts change only after success: the connection once the core knows it, a channel once
   it is admitted (the user's ``max-channels`` counts channels over all its connections), and
   both go when the connection leaves the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minibroker.core.authorize import Gate
from minibroker.core.principal import Principal
from minibroker.core.tenants import UserLimits, check_user_channels

if TYPE_CHECKING:
    from minibroker.server.server import BrokerServer

__all__ = ["Tenancy"]

_NO_LIMITS = UserLimits()


class Tenancy:
    """The tenant of one session (rules 1-3)."""

    __slots__ = ("_counted", "channels", "connection", "gate", "server", "user", "vhost")

    def __init__(self, server: BrokerServer, connection: int) -> None:
        self.server = server
        self.connection = connection
        self.user = ""
        self.vhost = "/"
        #: The permission gate, once the vhost opened (``None`` before).
        self.gate: Gate | None = None
        #: Channels of this connection counted for the user's ``max-channels``.
        self.channels = 0
        self._counted = False

    def open_vhost(self, user: str, vhost: str) -> None:
        """Rule 1: raises ``NotAllowed`` (530) with RabbitMQ's text."""
        access = self.server.access
        principal = Principal.open(access, user, vhost, counters=self.server.counters)
        self.user, self.vhost = user, vhost
        self.gate = Gate(access, principal, make_name=self.server.broker.state.make_name)

    def admit_channel(self) -> None:
        """channel.open: the user's ``max-channels`` over all its connections (530)."""
        access = self.server.access
        found = access.users.get(self.user)
        check_user_channels(self.user, found.limits if found is not None else _NO_LIMITS,
                            self.server.counters.user_channels.get(self.user, 0),
                            access.profile)

    def check(self, command: object) -> None:
        """Rule 2."""
        gate = self.gate
        if gate is not None and not gate.passes(command):
            server = self.server
            core = server.vhosts.routes.get(self.connection) or server.broker
            gate.check(command, core.topology)

    # -- counts (rule 3) --------------------------------------------------------------------

    def opened(self) -> None:
        """Before the core hears of the connection: route it to its vhost's core."""
        self.server.vhosts.attach(self.connection, self.vhost)

    def registered(self) -> None:
        self.server.counters.connection_opened(self.user, self.vhost)
        self._counted = True

    def channel_opened(self) -> None:
        if self._counted:
            self.channels += 1
            self.server.counters.channel_opened(self.user)

    def channel_closed(self) -> None:
        if self.channels:
            self.channels -= 1
            self.server.counters.channel_closed(self.user)

    def left(self) -> None:
        """The connection left the core."""
        if self._counted:
            self.server.counters.connection_closed(self.user, self.vhost,
                                                   open_channels=self.channels)
            self._counted = False
            self.channels = 0
        self.server.vhosts.detach(self.connection)
