"""The broker server: one core, one event loop, the listeners and the sessions.

Rules:

1. One loop, run to completion (``docs/architecture.md``): one input — a frame or a timer — is
   processed completely, and every write it causes is queued, before the next input. No locks,
   no task per queue or consumer.
2. ``execute(command)`` runs one command in the core with the server clock's ``now``;
   ``apply_effects(effects)`` hands each effect to the session of the connection it names.
   Sessions send their reply between the two.
3. One timer: after every input, the core's ``next_deadline()`` re-arms a single clock timer.
   Heartbeats and handshake timeouts are checked by one periodic sweep over the sockets.
4. Shutdown: stop accepting, tell every client the broker is closing (320 CONNECTION_FORCED),
   give them ``shutdown_grace`` seconds to close, then drop what is left.
5. Overload (``flow.py``): the flow controller checks the core's ready meter after every input
   and blocks publishers during a resource alarm; the periodic sweep re-measures the meter, and
   counts a connection we do not read as heard (its silence is ours). ``start`` raises the
   file-descriptor limit and names it when ``accept`` runs out.
6. Hooks for the test toolkit cost nothing when unused: ``input_hooks`` run after every processed
   input (a read, a timer, a lost socket) only when the list is not empty; an ``interceptor``
   (``adapter.py``), while one is set, sees every command and reply of every session.
7. Protocols plug in through ``adapters``: protocol name -> the class of its
   :class:`~minibroker.server.adapter.ProtocolAdapter`; ``protocols.detect`` names the
   protocol a socket's first bytes ask for.
8. Storage (``durability.py``): with ``config.data_dir`` the core gets a journal, the store
   is opened and recovered in ``start`` before the listeners, every input that recorded a
   durable intent schedules one flush, the periodic sweep runs reclaim and the disk check,
   ``close`` stops the store cleanly and ``abort`` abandons it as a crash would.
9. Management (``management.py``): with ``config.management_port`` the HTTP API, metrics and
   web page listen on a port of their own, started after the protocol listeners and closed
   with them; the periodic sweep samples its message rates.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from minibroker.accounts import build_access
from minibroker.clock import Clock, LoopClock
from minibroker.config import ServerConfig
from minibroker.core.access import AccessControl
from minibroker.core.broker import Broker
from minibroker.core.commands import Command
from minibroker.core.effects import Effect, Outcome
from minibroker.core.journal import Journal
from minibroker.core.tenants import TenantCounters
from minibroker.core.timers import consumer_timeout_text, overdue_channels
from minibroker.errors import AMQPError
from minibroker.server.adapter import AdapterFactory, Interceptor
from minibroker.server.amqp_adapter import AMQPAdapter
from minibroker.server.closelog import CloseLog
from minibroker.server.flow import (
    FlowController,
    install_accept_error_handler,
    raise_open_file_limit,
)
from minibroker.server.native_adapter import NativeAdapter
from minibroker.server.protocol import BrokerProtocol
from minibroker.server.vhosts import VHostCores

if TYPE_CHECKING:
    from minibroker.server.durability import Durability
    from minibroker.server.management import ManagementListener
    from minibroker.server.session import Session

__all__ = ["BrokerServer"]

log = logging.getLogger("minibroker.server")

#: How often heartbeats are checked, in seconds of the server clock.
HEARTBEAT_SWEEP_INTERVAL = 0.5


def random_name(prefix: str) -> str:
    """RabbitMQ-style generated names: prefix + 22 URL-safe base64 characters."""
    return prefix + secrets.token_urlsafe(16)


def _access_from(config: ServerConfig) -> AccessControl:
    return build_access(config.users, vhosts=config.vhosts, user_vhosts=config.user_vhosts,
                        loopback_users=config.loopback_users, rabbitmq=config.rabbitmq)


def _default_adapters() -> dict[str, AdapterFactory]:
    return {"native": NativeAdapter, "amqp": AMQPAdapter}


class BrokerServer:
    """Serve one :class:`~minibroker.core.broker.Broker` over TCP."""

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        broker: Broker | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.broker = broker or self.new_broker()
        #: Resource alarms: blocks flooding publishers (``flow.py``).
        self.flow = FlowController(self)
        self._clock = clock
        self.sessions: dict[int, Session] = {}
        self.protocols: set[BrokerProtocol] = set()
        #: Protocol name -> its adapter (rule 7).
        self.adapters = _default_adapters()
        #: Internal errors logged so far (the test toolkit fails a test that caused one).
        self.internal_errors = 0
        #: Called after every processed input when not empty (the toolkit's waiters).
        self.input_hooks: list[Callable[[], None]] = []
        #: Sees every session's commands and replies while set (rule 6; fault injection).
        self.interceptor: Interceptor | None = None
        self._next_id = 0
        self._listeners: list[asyncio.Server] = []
        self._cancel_timer: Callable[[], None] | None = None
        self._timer_at: float | None = None
        self._sweep: asyncio.TimerHandle | None = None
        #: Rate-limited log lines for closes caused by a peer (``closelog.py``).
        self.close_log = CloseLog(log)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        #: Wall-clock seconds minus server-clock seconds, fixed at start (see ``wall_time``).
        self._wall_offset = 0.0
        #: The data directory behind the core (rule 8), once started with ``data_dir``.
        self.durability: Durability | None = None
        #: What the start found on disk and loaded (lines for the start-up output).
        self.storage_lines: list[str] = []
        #: The management listener (rule 9), once started with ``management_port``.
        self.management: ManagementListener | None = None
        #: Users, vhosts and permissions (``accounts.py``), and the open connections and
        #: channels per tenant that their limits count.
        self.access = self.config.access or _access_from(self.config)
        self.counters = TenantCounters()
        #: The cores of the vhosts other than ``/`` (``vhosts.py``).
        self.vhosts = VHostCores(self)

    # -- lifecycle ----------------------------------------------------------------------------

    def new_broker(self) -> Broker:
        """A fresh core wired to this server: random names, wall time for ``x-death``, the
        RabbitMQ version of ``config.rabbitmq``, and a journal when there is a data directory."""
        journal = None if self.config.data_dir is None else Journal()
        return Broker(make_name=random_name, wall_time=self.wall_time,
                      rabbitmq=self.config.rabbitmq, journal=journal)

    def wall_time(self, now: float) -> float:
        """Epoch seconds for a server-clock reading (the core records dead-letter times with it;
        under a manual clock, wall time moves with the clock)."""
        return now + self._wall_offset

    def open_storage(self) -> None:
        """Open the data directory behind the core (rule 8): recover the definitions now,
        the messages lazily. Raises ``DataDirLocked`` for a directory in use."""
        # Imported here: an in-memory broker never loads the storage code (about 8 ms of a
        # start, docs/benchmarks.md "Start-up").
        from minibroker.server.durability import Durability

        durability = Durability(self)
        try:
            self.storage_lines = durability.recover()
        except BaseException:
            durability.close()
            raise
        self.durability = durability

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the server is not started"
        return self._loop

    @property
    def clock(self) -> Clock:
        assert self._clock is not None, "the server is not started"
        return self._clock

    async def start(self) -> None:
        """Listen; returns once the sockets accept connections."""
        self._loop = asyncio.get_running_loop()
        if self._clock is None:
            self._clock = LoopClock(self._loop)
        self._wall_offset = time.time() - self._clock.now()
        config = self.config
        raise_open_file_limit(config.open_files)
        install_accept_error_handler(self._loop)
        if config.data_dir is not None and self.durability is None:
            self.open_storage()
        elif config.data_dir is None and config.definitions_file is not None:
            from minibroker.server.durability import load_definitions_file

            self.storage_lines = load_definitions_file(self)
        self._listeners.append(
            await self._loop.create_server(
                lambda: BrokerProtocol(self), config.host, config.port, reuse_address=True,
                backlog=1024,
            )
        )
        if config.amqp_port is not None:
            self._listeners.append(
                await self._loop.create_server(
                    lambda: BrokerProtocol(self, only="amqp"), config.host, config.amqp_port,
                    reuse_address=True, backlog=1024,
                )
            )
        if config.tls_port is not None and config.tls is not None:
            from minibroker.tls import server_context

            self._listeners.append(
                await self._loop.create_server(
                    lambda: BrokerProtocol(self), config.host, config.tls_port,
                    reuse_address=True, backlog=1024, ssl=server_context(config.tls),
                )
            )
        if config.management_port is not None:
            # Imported here: without a management port the HTTP code is never loaded.
            from minibroker.server.management import ManagementListener

            management = ManagementListener(self, config.management_port)
            await management.start()
            self.management = management
        self._schedule_sweep()

    def _bound_port(self, index: int) -> int | None:
        if len(self._listeners) <= index:
            return None
        sockets = self._listeners[index].sockets
        port: int = sockets[0].getsockname()[1]
        return port

    @property
    def port(self) -> int:
        port = self._bound_port(0)
        assert port is not None, "the server is not started"
        return port

    @property
    def amqp_port(self) -> int:
        """The port AMQP clients use: the dedicated one if configured, else the shared one."""
        return self._bound_port(1) or self.port

    @property
    def tls_port(self) -> int:
        """The TLS port (``config.tls_port``; the bound one when that was 0)."""
        assert self.config.tls_port is not None, "no TLS port configured"
        port = self._bound_port(len(self._listeners) - 1)
        assert port is not None, "the server is not started"
        return port

    @property
    def url(self) -> str:
        return f"minibroker://{self.config.host}:{self.port}"

    @property
    def amqp_url(self) -> str:
        """With guest/guest's credentials while that user is the configured one (RabbitMQ's
        default); other users' passwords are never printed."""
        guest = self.config.access is None and self.config.users.get("guest") == "guest"
        return f"amqp://{'guest:guest@' if guest else ''}{self.config.host}:{self.amqp_port}/"

    @property
    def management_url(self) -> str | None:
        """The management API and web page (``http://host:port/``), ``None`` when not served."""
        return None if self.management is None else self.management.url

    def delete_vhost(self, name: str) -> None:
        """Delete a vhost with everything in it (``LookupError`` if there is none); its
        connections are closed with RabbitMQ 3.10's 320 ``vhost 'X' is down``."""
        self.access.delete_vhost(name)
        for session in list(self.sessions.values()):
            if session.tenancy.vhost == name:
                session.shutdown(320, f"vhost '{name}' is down")
        self.vhosts.delete(name)

    def delete_user(self, name: str) -> None:
        """Delete a user (``LookupError`` if there is none); its connections are closed with
        320 ``user 'U' is deleted``."""
        self.access.delete_user(name)
        for session in list(self.sessions.values()):
            if session.tenancy.user == name:
                session.shutdown(320, f"user '{name}' is deleted")

    async def close(self, reply_code: int = 320, reply_text: str = "broker shutdown") -> None:
        """Graceful shutdown: stop accepting, tell clients, wait briefly, drop the rest."""
        if self.closing:
            return
        self.closing = True
        for listener in self._listeners:
            listener.close()
        if self.management is not None:
            self.management.close()
        for session in list(self.sessions.values()):
            session.shutdown(reply_code, reply_text)
        deadline = self.loop.time() + self.config.shutdown_grace
        while self.protocols and self.loop.time() < deadline:
            await asyncio.sleep(0.01)  # waiting on peers' sockets, not on our own readiness
        for protocol in list(self.protocols):
            if protocol.transport is not None:
                protocol.transport.abort()
        for listener in self._listeners:
            await listener.wait_closed()
        if self.management is not None:
            await self.management.wait_closed()
        if self._sweep is not None:
            self._sweep.cancel()
        if self._cancel_timer is not None:
            self._cancel_timer()
        if self.durability is not None:
            await asyncio.sleep(0)  # the aborted sockets' requeues are recorded, then written
            self.durability.close()

    async def abort(self) -> None:
        """Stop at once, like a killed process: no close frames, every socket reset."""
        self.closing = True
        for listener in self._listeners:
            listener.close()
        if self.management is not None:
            self.management.close()
        for protocol in list(self.protocols):
            if protocol.transport is not None:
                protocol.transport.abort()
        for listener in self._listeners:
            await listener.wait_closed()
        if self.management is not None:
            await self.management.wait_closed()
        if self._sweep is not None:
            self._sweep.cancel()
        if self._cancel_timer is not None:
            self._cancel_timer()
            self._cancel_timer = None
        if self.durability is not None:
            # As a killed process: what the aborted connections change is never written.
            self.durability.abandon()
        await asyncio.sleep(0)  # let the aborted sockets' connection_lost callbacks run

    def replace_broker(self, broker: Broker) -> None:
        """Serve ``broker`` from now on (the toolkit's reset); the old core's timer is dropped."""
        if self._cancel_timer is not None:
            self._cancel_timer()
            self._cancel_timer = None
        self._timer_at = None
        self.broker = broker
        self.flow.replace_broker()
        self._rearm()

    def run_input_hooks(self) -> None:
        for hook in list(self.input_hooks):
            hook()

    # -- sessions -----------------------------------------------------------------------------

    def next_connection_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def register(self, session: Session) -> None:
        self.sessions[session.id] = session

    def unregister(self, session: Session) -> None:
        self.sessions.pop(session.id, None)

    def default_header(self, only: str | None) -> bytes:
        """What an unknown protocol header is answered with before the socket closes."""
        if only == "amqp" or "native" not in self.adapters:
            from minibroker.protocols import AMQP_HEADER

            return AMQP_HEADER
        from minibroker.protocols import NATIVE_HEADER

        return NATIVE_HEADER

    # -- the core -------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def execute(self, command: Command) -> Outcome:
        """Run one command in the core (raises its ``AMQPError``); effects are *not* applied."""
        routes = self.vhosts.routes
        if routes:  # a connection outside "/" runs in its vhost's core (vhosts.py)
            connection = getattr(command, "connection", 0)
            core = routes.get(connection)
            if core is not None:
                outcome = self.vhosts.execute(core, command, connection)
                self._rearm()
                return outcome
        durability = self.durability
        if durability is None:
            outcome = self.broker.handle(command, now=self.clock.now())
        else:
            if durability.loader is not None:
                durability.before_command(command)
            outcome = self.broker.handle(command, now=self.clock.now())
            durability.after_input()
        self._rearm()
        return outcome

    def apply_effects(self, effects: list[Effect]) -> None:
        sessions = self.sessions
        for effect in effects:
            session = sessions.get(effect.connection)
            if session is None:
                continue
            try:
                session.on_effect(effect)
            except AMQPError as err:
                # The receiving connection cannot take this effect (e.g. a message larger than
                # the frame size it negotiated): close *it*, not the connection whose input
                # caused the effect; closing requeues what it had unacked.
                log.warning("%s: connection %d cannot take %s: %s", session.peer, session.id,
                            type(effect).__name__, err)
                session.shutdown(err.reply_code, err.text)
            except Exception as exc:
                session.internal_error(exc)
                session.shutdown(541, "INTERNAL_ERROR")

    # -- timers ---------------------------------------------------------------------------------

    def _rearm(self) -> None:
        deadline = self.broker.next_deadline()
        if self.vhosts.cores:
            deadline = self.vhosts.next_deadline(deadline)
        if deadline == self._timer_at:
            return
        if self._cancel_timer is not None:
            self._cancel_timer()
            self._cancel_timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._cancel_timer = self.clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        """The core's own deadline (TTL, queue expiry) is due: only the core's timers run.
        (Sweeping every socket here too made each TTL deadline walk every connection.)"""
        self._cancel_timer = None
        self._timer_at = None
        self._fire(sweep=False)

    def fire_timers(self) -> None:
        """Run everything due on the clock: the core's deadlines, heartbeats, handshake
        timeouts (what ``ManualClock.advance`` calls)."""
        self._fire(sweep=True)

    def _fire(self, *, sweep: bool) -> None:
        now = self.clock.now()
        effects = self.broker.handle_timeout(now=now)
        if self.vhosts.cores:
            effects = [*effects, *self.vhosts.handle_timeouts(now)]
        if self.durability is not None:
            self.durability.after_input()
        self.apply_effects(effects)
        # Expiry and dead-lettering move queues too: the flow controller looks after this
        # input as after a read (so credit flow never blames the next publisher for them).
        self.flow.check()
        if sweep:
            self._sweep_sockets(now)
        self._rearm()
        if self.input_hooks:
            self.run_input_hooks()

    def _schedule_sweep(self) -> None:
        self._sweep = self.loop.call_later(HEARTBEAT_SWEEP_INTERVAL, self._on_sweep)

    def _on_sweep(self) -> None:
        self._sweep_sockets(self.clock.now())
        if self.durability is not None:
            self.durability.after_input()  # what was recorded outside any input (toolkit)
            self.durability.maintain()
        if self.management is not None:
            self.management.tick()
        if not self.closing:
            self._schedule_sweep()

    def _sweep_sockets(self, now: float) -> None:
        for protocol in list(self.protocols):
            protocol.handshake_expired(now)
        for session in list(self.sessions.values()):
            # Blocked sessions too: they keep sending heartbeats, and do not count the silence
            # we impose by not reading them (Session.reading_held).
            try:
                session.check_heartbeat(now)
            except Exception as exc:
                session.internal_error(exc)
        self.close_log.flush(now)
        if self.config.consumer_timeout:
            self._close_overdue_channels(now)
        self.flow.recount()

    def _close_overdue_channels(self, now: float) -> None:
        """RabbitMQ's ``consumer_timeout`` (``core/timers.py`` rule 4): 406 on the channel."""
        timeout = self.config.consumer_timeout
        cores = [self.broker, *self.vhosts.cores.values()]
        connections = [c for core in cores for c in core.connections.values()]
        for channel in overdue_channels(connections, now, timeout):
            session = self.sessions.get(channel.connection.id)
            if session is not None:
                session.close_channel(channel.number, 406,
                                      consumer_timeout_text(channel.number, timeout))
