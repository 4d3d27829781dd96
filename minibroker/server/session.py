"""The base of a protocol session: one client connection speaking one wire protocol.

Rules:

1. A session turns bytes into core commands and core effects into bytes. It never holds broker
   state of its own beyond what its protocol needs (handshake state, open channels, frame sizes).
2. Output is buffered and written once per event-loop iteration (:meth:`write` schedules one
   :meth:`flush`), so a burst of deliveries becomes one ``transport.write``. After a write the
   session renews the core's delivery burst for window-less consumers (:meth:`_renew_burst`).
3. To run a command: ``outcome = self.server.execute(command)``; send the reply frame; *then*
   ``self.server.apply_effects(outcome.effects)`` — the reply must precede the effects it caused
   (a consume-ok before the first delivery, AMQP §4.6).
4. An exception that is not an ``AMQPError`` is an internal error: it is logged with the
   connection id, counted by the server, and closes this connection only (541).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from minibroker.core.channels import DELIVERY_BURST
from minibroker.core.commands import SetWritable
from minibroker.core.effects import Effect

if TYPE_CHECKING:
    from minibroker.server.server import BrokerServer

__all__ = ["Session"]

log = logging.getLogger("minibroker.server")


class Session(ABC):
    """One connection, after the protocol was chosen by its first 8 bytes."""

    #: Protocol name for logs and introspection ("native", "amqp").
    protocol_name = "?"

    def __init__(
        self, server: BrokerServer, connection_id: int, transport: asyncio.Transport, peer: str
    ) -> None:
        self.server = server
        self.id = connection_id
        self.transport = transport
        self.peer = peer
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self.closed = False
        #: True once the core knows this connection (OpenConnection was executed).
        self.registered = False
        #: True once the handshake completed (stays True after the connection is released).
        self.handshake_done = False
        #: The transport's buffer is past its high-water mark (between pause/resume_writing).
        self._writing_paused = False
        #: Why reading is paused ("flow", "fault", "fairness"...): read only when empty.
        self._reading_holds: set[str] = set()

    # -- output -----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes; they are written with everything else queued in this loop iteration."""
        if self.closed:
            return
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.server.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._out and not self.transport.is_closing():
            out = self._out
            self._out = []
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            self._renew_burst()
        else:
            self._out.clear()

    def _renew_burst(self) -> None:
        """After a write: if the core paused window-less consumers of this connection at their
        burst (``core/channels.py`` rule 5) and the socket still takes data, let the next burst
        go — at most one burst per loop iteration, so a consumer that stops reading is caught by
        ``pause_writing`` within one burst."""
        if not self.registered or self._writing_paused:
            return
        state = self.server.broker.connections.get(self.id)
        if state is not None and state.burst >= DELIVERY_BURST:
            self.server.apply_effects(
                self.server.execute(SetWritable(self.id, writable=True)).effects
            )

    def close_transport(self) -> None:
        """Write what is queued, then close the socket."""
        self.flush()
        self.closed = True
        self.transport.close()

    # -- reading --------------------------------------------------------------------------------

    def hold_reading(self, reason: str) -> None:
        """Stop reading this socket for ``reason``; several reasons may hold it at once (flow
        control, fault injection, fairness), and reading resumes when the last lets go."""
        if not self._reading_holds and not self.transport.is_closing():
            self.transport.pause_reading()
        self._reading_holds.add(reason)

    @property
    def reading_held(self) -> bool:
        """Is reading this socket paused by us (so the peer's silence proves nothing)?"""
        return bool(self._reading_holds)

    def release_reading(self, reason: str) -> None:
        if reason not in self._reading_holds:
            return
        self._reading_holds.discard(reason)
        if not self._reading_holds and not self.transport.is_closing():
            self.transport.resume_reading()

    # -- backpressure -----------------------------------------------------------------------

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self.registered:
            self.server.apply_effects(
                self.server.execute(SetWritable(self.id, writable=False)).effects
            )

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.registered:
            self.server.apply_effects(
                self.server.execute(SetWritable(self.id, writable=True)).effects
            )

    # -- what each protocol implements --------------------------------------------------------

    @abstractmethod
    def data_received(self, data: bytes) -> None:
        """Bytes from the peer, starting with the 8-byte preamble on the first call."""

    @abstractmethod
    def on_effect(self, effect: Effect) -> None:
        """Carry out an effect addressed to this connection (deliver, confirm, return...)."""

    @abstractmethod
    def connection_lost(self) -> None:
        """The socket is gone: release everything (the core requeues unacked messages)."""

    @abstractmethod
    def shutdown(self, reply_code: int, reply_text: str) -> None:
        """Close this connection from the broker side (shutdown 320, fault injection...)."""

    def check_heartbeat(self, now: float) -> None:  # noqa: B027 - optional hook
        """Called periodically: send a heartbeat when idle, drop a silent peer."""

    def close_channel(self, channel: int, reply_code: int, reply_text: str) -> bool:
        """Close an open channel from the broker side (fault injection): the protocol's
        channel-close with ``reply_code``, and the core channel is closed at once (its unacked
        messages are requeued). Returns False when ``channel`` is not open."""
        raise NotImplementedError(f"{type(self).__name__} cannot close a channel")

    def set_blocked(self, reason: str | None) -> bool:
        """Tell the peer that publishing is blocked (``reason``) or unblocked (``None``).
        Returns False when the protocol or the peer has no such notification."""
        return False

    # -- helpers ------------------------------------------------------------------------------

    def internal_error(self, exc: BaseException) -> None:
        self.server.internal_errors += 1
        log.error(
            "internal error on %s connection %d (%s): %r", self.protocol_name, self.id,
            self.peer, exc, exc_info=exc,
        )
