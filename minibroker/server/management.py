"""The management listener: RabbitMQ's HTTP API, metrics and web page, served by the broker.

:class:`ServerBackend` is the management app's
:class:`~minibroker.management.backend.Backend` over the running
:class:`~minibroker.server.server.BrokerServer`; :class:`ManagementListener` serves the app on a
port of its own with the sans-IO HTTP codec (``minibroker.protocols.http``).

Rules:

1. One loop, run to completion, like every other input (``server.py`` rule 1): a request is
   parsed, answered by :class:`~minibroker.management.ManagementApp` and its answer queued in
   the same callback. HTTP connections are not client connections of the core: they do not
   go through the session pipeline, never appear in ``/api/connections``, and have no heartbeat.
2. What the API changes, it changes with core commands through :meth:`ServerBackend.execute`,
   exactly as a protocol's session does: ``BrokerServer.execute`` (the journal, the core's timer),
   then ``apply_effects`` (deliveries to consumers that a publish or a purge caused). After each
   request the flow controller and the test toolkit's hooks look at the core, as after a read,
   and with a data directory the answer leaves only once what the request changed is written.
3. The API runs its commands on core connections of its own, numbered from the server's
   sequence, so they never collide with a session's.
4. Rates are sampled by the server's periodic sweep (:meth:`ManagementListener.tick`), never per
   message or per request: the hot path does nothing for the management API. A connection's
   octet and segment counts are the kernel's (``TCP_INFO``), read only when asked.
5. Requests are answered in order, one input processed completely before the next; a request
   the codec refuses (400/413/...) is answered and the socket closed. An HTTP connection idle
   for :data:`IDLE_TIMEOUT` seconds is closed by the sweep (keep-alive must not pin sockets);
   one whose answers fill the write buffer is not read until they drain.
6. On shutdown the listener stops accepting and its sockets are closed with the broker's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from minibroker.accounts import Login
from minibroker.core.access import AccessControl, LoginRefused
from minibroker.core.commands import CloseConnection, Command, OpenConnection
from minibroker.core.effects import Outcome
from minibroker.management import ConnectionDetails, Listener, ManagementApp, RateSampler
from minibroker.management.backend import CoreView
from minibroker.protocols.http import ExpectContinue, HTTPCodec, HTTPError, Response

if TYPE_CHECKING:
    from minibroker.server.server import BrokerServer

__all__ = ["IDLE_TIMEOUT", "ManagementListener", "ServerBackend"]

log = logging.getLogger("minibroker.management")

#: Seconds an HTTP connection may stay idle before the broker closes it.
IDLE_TIMEOUT = 120.0
#: The server's own core's vhost (the others' cores are in ``server.vhosts``).
DEFAULT_VHOST = "/"
_PROTOCOL_NAMES = {"amqp": "AMQP 0-9-1", "native": "minibroker native"}


class ServerBackend:
    """The management API's view of a running :class:`BrokerServer` (rules 2-3)."""

    def __init__(self, server: BrokerServer) -> None:
        self.server = server
        self.node = f"minibroker@{socket.gethostname().split('.')[0] or 'localhost'}"

    def vhosts(self) -> Sequence[str]:
        return sorted(self.server.access.vhosts)

    def core(self, vhost: str) -> CoreView | None:
        if vhost == DEFAULT_VHOST:
            return self.server.broker
        return self.server.vhosts.core(vhost) if vhost in self.server.access.vhosts else None

    def execute(self, vhost: str, command: Command) -> Outcome:
        server = self.server
        if vhost == DEFAULT_VHOST:
            outcome = server.execute(command)
        else:
            # The API's short-lived connection runs in the vhost's own core, named after it in
            # the core's texts (``vhosts.py``), as a client connection to that vhost would.
            vhosts = server.vhosts
            connection: int = getattr(command, "connection", 0)
            if isinstance(command, OpenConnection):
                vhosts.attach(connection, vhost)
            try:
                outcome = vhosts.execute(vhosts.core(vhost), command, connection)
            finally:
                if isinstance(command, CloseConnection):
                    vhosts.detach(connection)
        if outcome.effects:
            server.apply_effects(outcome.effects)
        return outcome

    def access(self) -> AccessControl | None:
        return self.server.access

    def delete_vhost(self, name: str) -> None:
        self.server.delete_vhost(name)

    def delete_user(self, name: str) -> None:
        self.server.delete_user(name)

    def new_connection_id(self) -> int:
        return self.server.next_connection_id()

    def connection_details(self, connection: int) -> ConnectionDetails | None:
        session = self.server.sessions.get(connection)
        if session is None:
            return None
        transport = session.transport
        peer = _address(transport.get_extra_info("peername"))
        local = _address(transport.get_extra_info("sockname"))
        wire: Any = getattr(session.adapter, "connection", None)
        opened_at = getattr(transport.get_protocol(), "opened_at", None)
        connected_at = (time.time() if opened_at is None
                        else self.server.wall_time(opened_at))
        counts = tcp_counts(transport.get_extra_info("socket"))
        core = self.server.vhosts.for_connection(connection).connections.get(connection)
        properties = getattr(core, "client_properties", None) or {}
        return ConnectionDetails(
            protocol=_PROTOCOL_NAMES.get(session.protocol_name, session.protocol_name),
            peer_host=peer[0], peer_port=peer[1], host=local[0], port=local[1],
            connected_at=int(connected_at * 1000),
            client_properties=properties,
            frame_max=int(getattr(wire, "frame_max", 0) or 0),
            channel_max=int(getattr(wire, "channel_max", 0) or 0),
            heartbeat=int(session.adapter.heartbeat or 0),
            auth_mechanism=str(getattr(wire, "mechanism", "") or "PLAIN"),
            state=("blocked" if session in self.server.flow.blocked
                   else "flow" if session in self.server.flow.credit.paused else "running"),
            recv_oct=counts[0], send_oct=counts[1], recv_cnt=counts[2], send_cnt=counts[3],
            send_pend=transport.get_write_buffer_size(),
        )

    def close_connection(self, connection: int, reason: str) -> bool:
        session = self.server.sessions.get(connection)
        if session is None or session.closed:
            return False
        # RabbitMQ closes it with connection.close 320 CONNECTION_FORCED and the reason given.
        session.shutdown(320, reason)
        return True

    def listeners(self) -> Sequence[Listener]:
        server = self.server
        host = server.config.host
        out = [Listener("amqp", host, server.amqp_port)]
        if "native" in server.adapters:
            out.append(Listener("minibroker", host, server.port))
        if server.management is not None and server.management.port:
            out.append(Listener("http", host, server.management.port))
        return out

    def alarms(self) -> Sequence[str]:
        # RabbitMQ knows two resources; our queue-length alarm guards memory, so it shows as it.
        flow = self.server.flow
        out = []
        if flow.alarm is not None and flow.disk is None:
            out.append("memory")
        if flow.disk is not None:
            out.append("disk")
        return out

    def users(self) -> Mapping[str, str]:
        return self.server.config.users

    def login(self, user: str, password: str) -> bool:
        """The broker's own accounts (``--user``, definitions files, the toolkit). The peer's
        address is not known here: a loopback-only user such as ``guest`` may log in while the
        listener itself is bound to a loopback address, as only local clients reach it then."""
        try:
            Login(self.server.access, self.server.config.host)(user, password, "PLAIN")
        except LoginRefused:
            return False
        return True

    def resident_memory(self) -> int | None:
        return resident_memory()


def resident_memory() -> int | None:
    """The process's resident set size in bytes (Linux ``/proc``), ``None`` elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as file:
            pages = int(file.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


#: ``struct tcp_info`` (Linux ``<linux/tcp.h>``): ``tcpi_bytes_acked`` and
#: ``tcpi_bytes_received`` (u64) at offset 120, ``tcpi_segs_out`` and ``tcpi_segs_in`` (u32)
#: after them; present since Linux 4.2.
_TCP_INFO_COUNTS = struct.Struct("=QQII")
_TCP_INFO_OFFSET = 120
_TCP_INFO_SIZE = _TCP_INFO_OFFSET + _TCP_INFO_COUNTS.size


def tcp_counts(sock: Any) -> tuple[int, int, int, int]:
    """(octets received, octets sent, segments in, segments out) of a TCP socket, read from the
    kernel when asked (rule 4: the session counts nothing per read or write); zeros where the
    kernel does not tell."""
    option = getattr(socket, "TCP_INFO", None)
    if sock is None or option is None:
        return 0, 0, 0, 0
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_SIZE)
    except (OSError, TypeError, ValueError):
        return 0, 0, 0, 0
    if not isinstance(info, bytes) or len(info) < _TCP_INFO_SIZE:
        return 0, 0, 0, 0
    sent, received, segments_out, segments_in = _TCP_INFO_COUNTS.unpack_from(
        info, _TCP_INFO_OFFSET)
    return received, sent, segments_in, segments_out


def _address(value: object) -> tuple[str, int]:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return "?", 0


class HTTPConnection(asyncio.Protocol):
    """One HTTP socket of the management listener (rules 1 and 5)."""

    def __init__(self, listener: ManagementListener) -> None:
        self.listener = listener
        self.codec = HTTPCodec()
        self.transport: asyncio.Transport | None = None
        self.last_input = listener.server.now()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.listener.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_input = self.listener.server.now()
        self.codec.receive_data(data)
        self._answer()

    def eof_received(self) -> bool:
        self.codec.receive_data(b"")
        self._answer()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)

    def pause_writing(self) -> None:
        # A client that sends requests without reading the answers: stop reading it until
        # its answers drain, so nothing it asks for piles up in memory.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _answer(self) -> None:
        transport = self.transport
        assert transport is not None
        codec, app = self.codec, self.listener.app
        server = self.listener.server
        out: list[bytes] = []
        answered = False
        try:
            while (event := codec.next_frame()) is not None:
                if isinstance(event, ExpectContinue):
                    out.append(codec.send(Response(100)))
                else:
                    out.append(codec.send(app.handle(event)))
                    answered = True
        except HTTPError as err:
            out.append(codec.send(app.error_response(err)))
        durability = server.durability
        if answered and durability is not None and durability.pending():
            durability.flush()  # as a session's: nothing leaves before what caused it is written
        if out and not transport.is_closing():
            transport.write(b"".join(out))
        if codec.must_close or codec.closed:
            transport.close()
        if answered:  # after an input, as a session's read (rule 2)
            server.flow.check()
            if server.input_hooks:
                server.run_input_hooks()


class ManagementListener:
    """The management app on ``host:port`` (0: any free port) of a running server."""

    def __init__(self, server: BrokerServer, port: int) -> None:
        self.server = server
        self.requested_port = port
        self.backend = ServerBackend(server)
        self.sampler = RateSampler(self.backend)
        self.app = ManagementApp(self.backend, sampler=self.sampler)
        self.connections: set[HTTPConnection] = set()
        self._listener: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; raises ``OSError`` (naming the address) when the port cannot be bound."""
        self._listener = await self.server.loop.create_server(
            lambda: HTTPConnection(self), self.server.config.host, self.requested_port,
            reuse_address=True, backlog=128,
        )
        self.sampler.sample(time.time())

    @property
    def port(self) -> int:
        if self._listener is None or not self._listener.sockets:
            return 0
        port: int = self._listener.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self.server.config.host}:{self.port}/"

    def tick(self) -> None:
        """The server's periodic sweep (rules 4-5): sample rates, drop idle sockets."""
        self.sampler.tick(time.time())
        deadline = self.server.now() - IDLE_TIMEOUT
        for connection in list(self.connections):
            if connection.last_input < deadline and connection.transport is not None:
                connection.transport.close()

    def close(self) -> None:
        """Stop accepting and close every HTTP socket (rule 6)."""
        if self._listener is not None:
            self._listener.close()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()

    async def wait_closed(self) -> None:
        if self._listener is not None:
            await self._listener.wait_closed()
