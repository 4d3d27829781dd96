"""The two small interfaces around the session pipeline: protocol adapters and interceptors.

A wire protocol plugs into the server with one class that implements :class:`ProtocolAdapter`
(``native_adapter.py``, ``amqp_adapter.py``), registered under its name in
``BrokerServer.adapters``. The pipeline (``session.py``) creates one adapter per connection,
passes it the :class:`~minibroker.server.session.Session` it serves, and does everything else
itself: run commands in the core, batch runs and replay them, fail a channel or the connection,
enter and leave the core, fairness, heartbeats' timing, output buffering, backpressure.

Rules for an adapter:

1. Bytes in, events out: :meth:`~ProtocolAdapter.receive` takes the bytes of one read and
   :meth:`~ProtocolAdapter.events` yields, lazily, the protocol's work frames (any object with
   an ``int`` ``channel`` attribute), :class:`~minibroker.protocols.events.HotRun` batches and the
   control events of ``protocols/events.py``. The protocol's connection object decides what
   is valid on the wire and answers protocol-level frames itself (open-ok, close-ok...).
2. Frame → command: :meth:`~ProtocolAdapter.command` returns the core command a work frame asks
   for, or ``None`` when the core has nothing to do (an ignored frame, or a request the adapter
   answered itself, e.g. a read-only HTTP query). It may raise an ``AMQPError`` to refuse the
   frame. :meth:`~ProtocolAdapter.batch_command` turns a whole :class:`HotRun` into one command;
   the batch key — which frames may form a run — is the protocol connection's: frames of one
   open channel, all publishes or all acks of one delivery each.
3. Reply → bytes, effect → bytes: :meth:`~ProtocolAdapter.send_reply` writes the answer to a
   frame after its command ran (nothing when none is due); :meth:`~ProtocolAdapter.send_effect`
   writes what a core effect asks of this connection (a delivery, a confirm...). Both write
   through ``session.write``; the server hands effects to ``session.on_effect``, which *is*
   the adapter's ``send_effect`` (no extra call on the delivery path).
4. Closing: :meth:`~ProtocolAdapter.close_channel` and :meth:`~ProtocolAdapter.close_connection`
   write the protocol's close with the reply code and text (an ``error`` and the ``frame`` that
   caused it, when known, for protocols that name the offending method); the pipeline releases
   the channel or the connection in the core.
5. Time: :meth:`~ProtocolAdapter.tick` is called by the server's periodic sweep; it sends a
   heartbeat when due and returns False when the peer is dead. ``heard`` is True while the
   pipeline does not read the socket (its silence is ours).

An :class:`Interceptor` (``BrokerServer.interceptor``; the test toolkit's fault injector is
one) sees every command a session runs before the core does, and every reply before it is sent.
While one is registered, runs are handed to it frame by frame, as the client sent them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from minibroker.core.commands import Command
from minibroker.core.effects import Effect, Outcome, Reply
from minibroker.protocols.events import CloseSocket, ConnectionClosing

if TYPE_CHECKING:
    from minibroker.errors import AMQPError
    from minibroker.server.session import Session

__all__ = ["AdapterFactory", "DetachedAdapter", "Interceptor", "ProtocolAdapter"]


class ProtocolAdapter(Protocol):
    """One wire protocol, for one connection (see the module rules)."""

    #: The protocol's name in logs and in ``BrokerServer.adapters`` ("native", "amqp").
    name: ClassVar[str]

    @property
    def heartbeat(self) -> int:
        """The negotiated heartbeat interval in seconds (0: none), for logs."""
        ...

    def receive(self, data: bytes) -> None:
        """The bytes of one read (rule 1)."""

    def events(self) -> Iterator[Any]:
        """Work frames, runs and control events of everything received so far (rule 1)."""
        ...

    def command(self, frame: Any) -> Command | None:
        """The core command ``frame`` asks for (rule 2)."""

    def batch_command(self, frames: Sequence[Any]) -> Command:
        """One core command for a whole run (rule 2)."""
        ...

    def send_reply(self, frame: Any, reply: Reply | None) -> None:
        """Write the answer to ``frame``, whose command replied ``reply`` (rule 3)."""

    def send_effect(self, effect: Effect) -> None:
        """Write what ``effect`` asks of this connection (rule 3)."""

    def channel_is_open(self, channel: int) -> bool:
        """May work for ``channel`` still be done (the connection and the channel are open)?"""
        ...

    def close_channel(self, channel: int, reply_code: int, reply_text: str, *,
                      frame: Any = None, error: AMQPError | None = None) -> bool:
        """Write the protocol's channel close (rule 4); False when the channel is not open."""
        ...

    def close_connection(self, reply_code: int, reply_text: str, *, frame: Any = None,
                         error: AMQPError | None = None) -> ConnectionClosing | CloseSocket | None:
        """Write the protocol's connection close (rule 4): :class:`ConnectionClosing` when the
        peer may answer, :class:`CloseSocket` to close at once, None when already closing."""

    def tick(self, now: float, *, heard: bool) -> bool:
        """Heartbeats (rule 5)."""
        ...

    def before_flush(self) -> None:
        """Write anything held back; the session is about to write to the socket."""

    def flushed(self) -> None:
        """The session wrote bytes to the socket."""

    def set_blocked(self, reason: str | None) -> bool:
        """Tell the peer that publishing is blocked (``reason``) or unblocked (None); False
        when the protocol or the peer has no such notification."""
        ...


class DetachedAdapter:
    """What a session holds once its socket is gone: the protocol's adapter is dropped, so the
    session → adapter → bound ``session.write`` cycle ends and reference counting frees the
    adapter's buffers (a partial message) at once. Everything is a no-op: the connection is
    closed, no channel is open."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]  # (the protocol's name, for logs)

    name: ClassVar[str]

    @property
    def heartbeat(self) -> int:
        return 0

    def receive(self, data: bytes) -> None:
        pass

    def events(self) -> Iterator[Any]:
        return iter(())

    def command(self, frame: Any) -> Command | None:
        return None

    def batch_command(self, frames: Sequence[Any]) -> Command:
        raise RuntimeError("the connection is closed")

    def send_reply(self, frame: Any, reply: Reply | None) -> None:
        pass

    def send_effect(self, effect: Effect) -> None:
        pass

    def channel_is_open(self, channel: int) -> bool:
        return False

    def close_channel(self, channel: int, reply_code: int, reply_text: str, *,
                      frame: Any = None, error: AMQPError | None = None) -> bool:
        return False

    def close_connection(self, reply_code: int, reply_text: str, *, frame: Any = None,
                         error: AMQPError | None = None) -> ConnectionClosing | CloseSocket | None:
        return None

    def tick(self, now: float, *, heard: bool) -> bool:
        return True

    def before_flush(self) -> None:
        pass

    def flushed(self) -> None:
        pass

    def set_blocked(self, reason: str | None) -> bool:
        return False


#: What ``BrokerServer.adapters`` holds: a class (or function) making the adapter of a session.
AdapterFactory = Callable[["Session"], ProtocolAdapter]


class Interceptor(Protocol):
    """Sees the commands and replies of every session (the test toolkit's fault injection)."""

    def execute(self, session: Session, command: Command) -> Outcome:
        """Run ``command`` for ``session``: normally ``session.server.execute(command)``, but it
        may run another command instead or change the outcome."""
        ...

    def hold_reply(self, session: Session, command: Command, send: Callable[[], None]) -> bool:
        """True to take over sending the reply to ``command`` and its effects: ``send()`` does
        both, later or never. False lets the session send them now."""
        ...
