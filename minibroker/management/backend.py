"""What the management API needs from the broker: the one interface the shell implements.

Rules:

1. The API reads the core through :class:`CoreView` (the read-only half of
   ``minibroker.core.broker.Broker``: frozen snapshots, never live state) and changes it only
   with core commands through :meth:`Backend.execute`, exactly as the other protocols do. A
   ``Broker`` is a ``CoreView`` as it is.
2. A virtual host is a parameter everywhere (``vhost``), even though the broker has one today:
   :meth:`Backend.core` answers ``None`` for a vhost that does not exist.
3. What only the shell knows — sockets (peer and local address, bytes counted, the client's
   properties, negotiated limits), listeners, resource alarms, users — arrives through the
   same interface, as frozen values defined here.
4. :class:`LocalBackend` implements it over ``Broker`` objects and a clock with no server: the
   tests use it, and a shell may wrap it, supplying the socket-level parts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from typing import Protocol

from minibroker.config import login_ok
from minibroker.core.access import AccessControl
from minibroker.core.broker import Broker
from minibroker.core.commands import Command
from minibroker.core.effects import Effect, Outcome
from minibroker.core.statistics import (
    BrokerStatistics,
    ExchangeInfo,
    QueueStatistics,
    TopologySnapshot,
)
from minibroker.message import FieldTable
from minibroker.valueclass import valueclass

__all__ = [
    "Backend", "ConnectionDetails", "CoreView", "Listener", "LocalBackend",
]


class CoreView(Protocol):
    """Read access to one vhost's core (``minibroker.core.statistics``)."""

    def statistics(self) -> BrokerStatistics: ...
    def snapshot(self) -> TopologySnapshot: ...
    def queue_statistics(self, name: str) -> QueueStatistics: ...  # raises NotFound
    def exchange_info(self, name: str) -> ExchangeInfo: ...  # raises NotFound


@valueclass(frozen=True)
class ConnectionDetails:
    """What the shell knows about a client connection that the core does not."""

    #: "AMQP 0-9-1" (RabbitMQ's text) or "minibroker native".
    protocol: str
    peer_host: str
    peer_port: int
    host: str  #: the local address the client connected to
    port: int
    connected_at: int  #: milliseconds since the epoch
    client_properties: FieldTable = field(default_factory=dict)
    frame_max: int = 0
    channel_max: int = 0
    heartbeat: int = 0  #: negotiated, in seconds (RabbitMQ's field is ``timeout``)
    auth_mechanism: str = "PLAIN"
    #: "running", or "blocked" / "blocking" during a resource alarm.
    state: str = "running"
    recv_oct: int = 0
    send_oct: int = 0
    recv_cnt: int = 0
    send_cnt: int = 0
    send_pend: int = 0  #: bytes waiting in the socket's write buffer

    @property
    def name(self) -> str:
        """RabbitMQ's connection name: ``"127.0.0.1:54321 -> 127.0.0.1:5672"``."""
        return f"{self.peer_host}:{self.peer_port} -> {self.host}:{self.port}"

    @property
    def user_provided_name(self) -> str | None:
        value = self.client_properties.get("connection_name")
        return value if isinstance(value, str) else None


@valueclass(frozen=True)
class Listener:
    #: RabbitMQ's words: "amqp", "http", "http/prometheus"; minibroker adds "minibroker".
    protocol: str
    ip_address: str
    port: int


class Backend(Protocol):
    """Everything the management API asks of the server."""

    #: The node name in every object ("minibroker@host").
    node: str

    def vhosts(self) -> Sequence[str]: ...

    def core(self, vhost: str) -> CoreView | None:
        """The vhost's core for reading, ``None`` when there is no such vhost."""

    def execute(self, vhost: str, command: Command) -> Outcome:
        """Run ``command`` in the vhost's core at the shell's ``now``; hand every effect to the
        session of the connection it names (effects for no session are dropped); return the
        outcome. The core's ``AMQPError`` propagates unchanged (state unchanged)."""

    def new_connection_id(self) -> int:
        """A core connection id no session uses: the API runs its commands on a short-lived
        connection of its own (opened and closed within one request)."""

    def connection_details(self, connection: int) -> ConnectionDetails | None:
        """The socket-level facts of a client connection (``None``: unknown to the shell)."""

    def close_connection(self, connection: int, reason: str) -> bool:
        """Close a client connection as RabbitMQ's ``DELETE /api/connections/{name}`` does
        (AMQP: ``connection.close`` 320 CONNECTION_FORCED with ``reason``); False if there
        is no such connection."""

    def listeners(self) -> Sequence[Listener]: ...

    def alarms(self) -> Sequence[str]:
        """Resource alarms in force ("memory", "disk"); empty when none."""

    def users(self) -> Mapping[str, str]:
        """User name -> password (``ServerConfig.users``), for a definitions export."""

    def login(self, user: str, password: str) -> bool:
        """HTTP basic auth: do these credentials log in?"""

    def access(self) -> AccessControl | None:
        """The broker's users, vhosts and permissions, for ``/api/users``, ``/api/vhosts`` and
        ``/api/permissions`` (``accounts.py``); ``None``: the backend has none to show."""

    def delete_vhost(self, name: str) -> None:
        """Delete a vhost with its contents, closing its connections (``LookupError``)."""

    def delete_user(self, name: str) -> None:
        """Delete a user, closing its connections (``LookupError``)."""

    def resident_memory(self) -> int | None:
        """The process's resident set size in bytes, ``None`` when unknown."""


@valueclass()
class LocalBackend:
    """A :class:`Backend` over in-process brokers: no sockets, time from ``clock``.

    ``details``, ``closer`` and ``on_effects`` stand in for the shell's sessions; by default
    there are no client connections to describe or close and effects go nowhere."""

    brokers: Mapping[str, Broker]
    clock: Callable[[], float]
    user_table: Mapping[str, str] = field(default_factory=lambda: {"guest": "guest"})
    node: str = "minibroker@localhost"
    listener_list: Sequence[Listener] = ()
    alarm_list: list[str] = field(default_factory=list)
    details: Callable[[int], ConnectionDetails | None] = lambda connection: None
    closer: Callable[[int, str], bool] = lambda connection, reason: False
    on_effects: Callable[[list[Effect]], None] = lambda effects: None
    memory: Callable[[], int | None] = lambda: None
    _next_id: int = 1 << 40  # far above the ids a test's own connections use

    def vhosts(self) -> Sequence[str]:
        return list(self.brokers)

    def core(self, vhost: str) -> CoreView | None:
        return self.brokers.get(vhost)

    def execute(self, vhost: str, command: Command) -> Outcome:
        outcome = self.brokers[vhost].handle(command, now=self.clock())
        self.on_effects(outcome.effects)
        return outcome

    def new_connection_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def connection_details(self, connection: int) -> ConnectionDetails | None:
        return self.details(connection)

    def close_connection(self, connection: int, reason: str) -> bool:
        return self.closer(connection, reason)

    def listeners(self) -> Sequence[Listener]:
        return self.listener_list

    def alarms(self) -> Sequence[str]:
        return self.alarm_list

    def users(self) -> Mapping[str, str]:
        return self.user_table

    def login(self, user: str, password: str) -> bool:
        return login_ok(self.users(), user, password)

    def access(self) -> AccessControl | None:
        return None

    def delete_vhost(self, name: str) -> None:
        raise LookupError(f"no vhost '{name}'")

    def delete_user(self, name: str) -> None:
        raise LookupError(f"no user '{name}'")

    def resident_memory(self) -> int | None:
        return self.memory()
