"""The ``asyncio.Protocol`` of every client socket: pick the protocol by the first 8 bytes.

Rules:

1. The first 8 bytes choose the protocol (``minibroker.protocols.detect``): the socket gets a
   :class:`~minibroker.server.session.Session` with that protocol's adapter
   (``BrokerServer.adapters``). Bytes that name no protocol we speak are answered with our
   native preamble and the socket is closed. A listener of one protocol (``only``) takes only
   that one; for a protocol whose first bytes name nothing (HTTP), it takes whatever comes.
2. TCP_NODELAY is set on every socket: brokers send many small frames and must not wait.
3. ``pause_writing``/``resume_writing`` (the transport's buffer passed its high-water mark)
   become backpressure in the core: no deliveries to this connection until it drains.
4. After every input (a read, a lost socket, a drained output buffer) the server's flow
   controller checks the ready meter (``flow.py``); it is told whether the read published.
5. A socket that has not completed a handshake within ``handshake_timeout`` is dropped by the
   server's sweep (:meth:`handshake_expired`), whatever protocol it chose, if any.
6. The lines logged for sockets refused here go through the server's rate-limited
   ``close_log`` (``closelog.py``): a client that loops cannot flood the log.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, cast

from minibroker.protocols import HEADER_NAMED, PROTOCOL_HEADER_SIZE, detect
from minibroker.server.session import Session

if TYPE_CHECKING:
    from minibroker.server.server import BrokerServer

__all__ = ["BrokerProtocol"]

log = logging.getLogger("minibroker.server")


class BrokerProtocol(asyncio.Protocol):
    def __init__(self, server: BrokerServer, only: str | None = None) -> None:
        self.server = server
        #: Restrict this listener to one protocol (the optional AMQP-only port).
        self.only = only
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.peer = "?"
        self._head = b""
        #: When the socket was accepted, on the server clock (for the handshake timeout).
        self.opened_at = server.now()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peername = transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else "?"
        self.server.protocols.add(self)

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is not None:
            core = self.server.vhosts.for_connection(session.id)
            published = core.published
            try:
                session.data_received(data)
            except Exception as exc:  # an internal error closes this connection only
                session.internal_error(exc)
                session.shutdown(541, "INTERNAL_ERROR")
            self.server.flow.after_input(session, core, published)
            if self.server.input_hooks:
                self.server.run_input_hooks()
            return
        self._head += data
        if len(self._head) < PROTOCOL_HEADER_SIZE:
            return
        assert self.transport is not None
        name: str | None = detect(self._head[:PROTOCOL_HEADER_SIZE])
        if name is None and self.only is not None and self.only not in HEADER_NAMED:
            name = self.only  # a listener of its own, for a protocol without a header (rule 1)
        adapter = self.server.adapters.get(name) if name else None
        if adapter is None or (self.only is not None and name != self.only):
            self.server.close_log.log(  # rate-limited: a client may do this in a loop
                self.server.now(), logging.WARNING,
                "%s: unknown protocol header %r; answering with ours and closing",
                self.peer, self._head[:PROTOCOL_HEADER_SIZE],
            )
            self.transport.write(self.server.default_header(self.only))
            self.transport.close()
            return
        self.session = Session(self.server, self.server.next_connection_id(), self.transport,
                               self.peer, adapter)
        head, self._head = self._head, b""
        self.data_received(head)

    def handshake_expired(self, now: float) -> bool:
        """Drop this socket if it is still not a registered connection after the timeout."""
        if self.session is not None and self.session.handshake_done:
            return False
        if now - self.opened_at < self.server.config.handshake_timeout:
            return False
        self.server.close_log.log(
            now, logging.WARNING, "%s: handshake not completed within %.1f s; closing",
            self.peer, self.server.config.handshake_timeout,
        )
        if self.transport is not None:
            self.transport.abort()
        return True

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.protocols.discard(self)
        session = self.session
        if session is not None:
            session.closed = True
            try:
                session.connection_lost()
            except Exception as error:
                session.internal_error(error)
            self.server.flow.check()
        if self.server.input_hooks:
            self.server.run_input_hooks()

    def pause_writing(self) -> None:
        if self.session is not None:
            self.session.pause_writing()

    def resume_writing(self) -> None:
        if self.session is not None:
            self.session.resume_writing()
            self.server.flow.check()  # no-ack deliveries may have drained the backlog
