"""The session pipeline: one client connection, whatever its protocol, glued to the core.

A :class:`Session` is created by ``protocol.py`` once the first bytes chose the protocol; the
protocol's :class:`~minibroker.server.adapter.ProtocolAdapter` (``adapter.py``) supplies the
wire, and this class runs the one pipeline every protocol shares: bytes → the adapter's events
→ core commands → replies and effects → bytes.

Rules:

1. Run to completion: each work frame becomes one command, run in the core; then its reply is
   written, *then* the effects it caused are applied (a consume-ok before the first delivery, a
   return before its confirm: AMQP §4.6). An :class:`~minibroker.server.adapter.Interceptor`,
   when registered, runs the command and may hold the reply back.
2. A :class:`~minibroker.protocols.events.HotRun` (publishes, or single acks, of one channel)
   is one core input (``PublishMany``/``AckMany``). The core checks a whole batch before it
   changes anything; if it refuses one — any ``AMQPError`` — the run is replayed frame by frame,
   so what came before the faulty frame takes effect and the error then closes the channel or
   the connection, exactly as if the frames had come one by one.
3. A core ``ChannelError`` closes the channel: the protocol's channel close with its code, and
   the channel is released in the core at once (its unacked messages are requeued). Any other
   ``AMQPError`` closes the connection: the protocol's close, the connection leaves the core at
   once, and the socket closes after the peer's close-ok or ``ServerConfig.shutdown_grace``
   seconds. Other connections never notice.
4. Fairness: a read is processed at most :data:`FAIR_SHARE` frames per loop iteration; the
   rest waits for the next iterations with the socket not read meanwhile, so one flooding
   connection cannot keep the others (a consumer's acks, above all) waiting.
5. Output is buffered and written once per loop iteration (:meth:`write` schedules one
   :meth:`flush`), so a burst of deliveries becomes one ``transport.write``. After a write the
   session renews the core's delivery burst for window-less consumers (:meth:`_renew_burst`).
6. Reading may be held for several reasons at once — flow control, fairness, fault injection
   (:meth:`hold_reading`) — and resumes when the last one lets go. While it is held the peer's
   silence proves nothing: heartbeats count it as heard. Nor would we see it hang up: the
   server's sweep asks the socket (``liveness.py`` rule 2).
7. Closes caused by the peer (a channel error, a connection error) are logged one line each,
   rate-limited by the server's :class:`~minibroker.server.closelog.CloseLog`.
   An exception that is not an ``AMQPError`` is an internal error: it is logged with the
   connection id, counted by the server, and closes this connection only (541).
8. A peer that does not read cannot make us hold its answers without limit: while the
   transport's buffer is past its high-water mark (``pause_writing``) the connection is not
   read and its pending frames wait ("writing" hold), replies and deliveries alike; and a read
   whose replies pass :data:`OUTPUT_MARK` bytes stops there, flushes, and goes on later. So
   what one connection makes us buffer is about its high-water mark plus one frame's reply.
9. When the socket is gone the session drops its adapter (for a
   :class:`~minibroker.server.adapter.DetachedAdapter`): the adapter holds bound methods of the
   session, and that cycle would keep a reset connection's partial message alive until the
   cyclic garbage collector ran. Reference counting frees it at once.
10. Slow senders: a connection that began a frame and has not completed it within
    ``ServerConfig.frame_timeout`` seconds is closed by the server's sweep
    (:meth:`check_heartbeat`; ``liveness.py`` rule 1). An adapter that can tell offers
    ``buffered_input()`` (bytes received but not yet frames).
11. Every command, batches included, passes the session's permission gate before it runs
    (``tenancy.py``): a refusal is a ``ChannelError`` like any other (rule 3).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from minibroker.core.channels import DELIVERY_BURST
from minibroker.core.commands import (
    CloseChannel,
    CloseConnection,
    Command,
    OpenChannel,
    OpenConnection,
    SetWritable,
)
from minibroker.core.effects import Outcome
from minibroker.errors import AMQPError, ChannelError, ConnectionForced
from minibroker.message import FieldTable
from minibroker.protocols import events as ev
from minibroker.server.adapter import DetachedAdapter
from minibroker.server.liveness import FrameWatch, peer_hung_up
from minibroker.server.tenancy import Tenancy

if TYPE_CHECKING:
    from minibroker.server.adapter import AdapterFactory, ProtocolAdapter
    from minibroker.server.server import BrokerServer

__all__ = ["FAIR_SHARE", "OUTPUT_MARK", "Session"]

log = logging.getLogger("minibroker.server")

#: Frames one connection may have processed per loop iteration before others get their turn.
FAIR_SHARE = 1024
#: Bytes of output one read may queue before its remaining frames wait for a flush (rule 8).
OUTPUT_MARK = 256 * 1024


class Session:
    """One client connection, after its first bytes chose the protocol."""

    def __init__(self, server: BrokerServer, connection_id: int, transport: asyncio.Transport,
                 peer: str, adapter: AdapterFactory) -> None:
        self.server = server
        self.id = connection_id
        self.transport = transport
        self.peer = peer
        self._out: list[bytes] = []
        #: Bytes in ``_out`` (rule 8).
        self.out_size = 0
        self._flush_scheduled = False
        self.closed = False
        #: True once the core knows this connection (OpenConnection was executed).
        self.registered = False
        #: True once the handshake completed (stays True after the connection is released).
        self.handshake_done = False
        #: The name the client gave the connection, once open ("" when none).
        self.name = ""
        #: The transport's buffer is past its high-water mark (between pause/resume_writing).
        self._writing_paused = False
        #: Why reading is paused ("flow", "fault", "fairness"...): read only when empty.
        self._reading_holds: set[str] = set()
        #: The events of the read being processed, while a fair share at a time (rule 4).
        self._events: Iterator[Any] | None = None
        #: The part of a run beyond the last fair share.
        self._rest: Sequence[Any] = ()
        self._grace: asyncio.TimerHandle | None = None
        #: Its user and vhost, permission gate and tenant counts (``tenancy.py``).
        self.tenancy = Tenancy(server, connection_id)
        self.adapter: ProtocolAdapter = adapter(self)
        self.protocol_name = self.adapter.name
        #: The server hands this connection's effects here (rule 3 of ``adapter.py``).
        self.on_effect = self.adapter.send_effect
        #: Rule 10: is a frame in progress, and since when (``liveness.py``).
        self._buffered_input: Callable[[], int] | None = getattr(
            self.adapter, "buffered_input", None)
        self.frames = FrameWatch()
        #: Bytes held for messages not complete yet, as the flow controller last counted them
        #: (``flow.py`` rule 7); the adapter tells (``partial_input()``), if it can.
        self._partial_input: Callable[[], int] | None = getattr(
            self.adapter, "partial_input", None)
        self.partial_held = 0

    # -- input ------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.frames.received += len(data)
        self.adapter.receive(data)
        if self._events is None:  # else a held read's events take these bytes in turn
            self._events = self.adapter.events()
            try:
                self._pump()
            except BaseException:  # an internal error (rule 7): the next read starts afresh
                self._events, self._rest = None, ()
                raise
            if self._events is None and self._buffered_input is not None:
                self.frames.after_read(self._buffered_input(), self.server.now)

    def _pump(self) -> None:
        """Process the read's events, a fair share per loop iteration (rule 4)."""
        events = self._events
        assert events is not None
        budget = FAIR_SHARE
        rest = self._rest
        if rest:
            if self.adapter.channel_is_open(rest[0].channel):
                budget -= self._run_part(rest, budget)
            else:  # closed by the frames before the last share ended
                self._rest = ()
        run_one, run_part = self._run_one, self._run_part
        if budget > 0:
            for event in events:
                kind = type(event)
                if kind is _HOT_RUN:
                    budget -= run_part(event.frames, budget)
                elif kind in _CONTROL:
                    self._control(event)
                    budget -= 1
                else:
                    run_one(event)
                    budget -= 1
                if budget <= 0 or self.out_size > OUTPUT_MARK or self._writing_paused:
                    break
            else:  # every event of the read is done
                self._events = None
                if self._reading_holds:
                    self.release_reading("fairness")
                return
        if self.closed:
            self._events, self._rest = None, ()
            return
        # The share is used up: the rest in later loop iterations, reading nothing meanwhile.
        self.hold_reading("fairness")
        if self.out_size > OUTPUT_MARK:
            self.flush()  # may pause writing at once (rule 8)
        if self._writing_paused:
            self.hold_reading("writing")  # resume_writing continues (rule 8)
            return
        self.server.loop.call_soon(self._continue)

    def _continue(self) -> None:
        """The next share of a large read, run like any input: flow control and the toolkit's
        hooks look at it afterwards."""
        if self.closed or self._events is None:
            self._events, self._rest = None, ()
            return
        server = self.server
        core = server.vhosts.for_connection(self.id)
        published = core.published
        try:
            self._pump()
        except Exception as exc:  # rule 7
            self._events, self._rest = None, ()
            self.internal_error(exc)
            self.shutdown(541, "INTERNAL_ERROR")
        if self._events is None and self._buffered_input is not None and not self.closed:
            self.frames.after_read(self._buffered_input(), self.server.now)
        server.flow.after_input(self, core, published)
        if server.input_hooks:
            server.run_input_hooks()

    def _run_part(self, frames: Sequence[Any], budget: int) -> int:
        """Run as much of a run as the budget allows; keep the rest. Returns frames taken."""
        if len(frames) > budget:
            frames, self._rest = frames[:budget], frames[budget:]
        elif self._rest:
            self._rest = ()
        self._run_batch(frames)
        return len(frames)

    # -- running commands (rules 1-3) -------------------------------------------------------

    def execute(self, command: Command) -> Outcome:
        """Run one command of this connection in the core (through the interceptor, if any)."""
        interceptor = self.server.interceptor
        if interceptor is None:
            return self.server.execute(command)
        return interceptor.execute(self, command)

    def _run_one(self, frame: Any) -> None:
        """One work frame: command, reply, effects (rule 1)."""
        server = self.server
        try:
            command = self.adapter.command(frame)
            if command is None:
                return
            self.tenancy.check(command)
            interceptor = server.interceptor
            if interceptor is None:
                outcome = server.execute(command)
            else:
                outcome = interceptor.execute(self, command)
                if interceptor.hold_reply(self, command, partial(self._finish, frame, outcome)):
                    return
        except ChannelError as err:
            self.fail_channel(frame, err)
            return
        except AMQPError as err:
            self.fail_connection(err, frame)
            return
        if outcome.durable_at and self._hold_for_disk(frame, outcome):
            return
        self.adapter.send_reply(frame, outcome.reply)
        if outcome.effects:
            server.apply_effects(outcome.effects)

    def _hold_for_disk(self, frame: Any, outcome: Outcome) -> bool:
        """A ``tx.commit`` that recorded durable intents answers once they are on disk
        (``core/journal.py`` rule 5); its effects (deliveries) go now."""
        durability = self.server.durability
        if durability is None or durability.synced(outcome.durable_at, self.id):
            return False

        def send() -> None:
            if not self.closed and self.adapter.channel_is_open(frame.channel):
                self.adapter.send_reply(frame, outcome.reply)

        durability.hold_reply(outcome.durable_at, send, self.id)
        if outcome.effects:
            self.server.apply_effects(outcome.effects)
        return True

    def _finish(self, frame: Any, outcome: Outcome) -> None:
        """Send a reply and apply its effects (held back by an interceptor)."""
        if self.closed or not self.adapter.channel_is_open(frame.channel):
            return
        self.adapter.send_reply(frame, outcome.reply)
        if outcome.effects:
            self.server.apply_effects(outcome.effects)

    def _run_batch(self, frames: Sequence[Any]) -> None:
        """A run as one core input, else frame by frame (rule 2)."""
        server = self.server
        if len(frames) > 1 and server.interceptor is None:
            try:
                batch = self.adapter.batch_command(frames)
                self.tenancy.check(batch)
                outcome = server.execute(batch)
            except AMQPError:
                pass  # replayed below
            else:
                if outcome.effects:
                    server.apply_effects(outcome.effects)
                return
        channel_is_open = self.adapter.channel_is_open
        for frame in frames:
            if channel_is_open(frame.channel):  # else it closed on an earlier frame
                self._run_one(frame)

    def fail_channel(self, frame: Any, err: ChannelError) -> None:
        """Rule 3, for a channel error caused by ``frame``."""
        channel = frame.channel
        self.server.close_log.log(
            self.server.now(), logging.INFO, "%s: closing channel %d of %s connection %d: %d %s",
            self.peer, channel, self.protocol_name, self.id, err.reply_code, err.reply_text)
        self.adapter.close_channel(channel, err.reply_code, err.reply_text, frame=frame,
                                   error=err)
        self._release_channel(channel)

    def fail_connection(self, err: AMQPError, frame: Any = None) -> None:
        """Rule 3, for a connection error (caused by ``frame`` when given)."""
        closing = self.adapter.close_connection(err.reply_code, err.reply_text, frame=frame,
                                                error=err)
        if closing is not None:
            self._control(closing)

    def _release_channel(self, channel: int) -> None:
        """The channel is gone for the core right away: its unacked messages go back now."""
        self.tenancy.channel_closed()
        outcome = self.execute(CloseChannel(self.id, channel))
        if outcome.effects:
            self.server.apply_effects(outcome.effects)

    # -- control events ---------------------------------------------------------------------

    def _control(self, event: Any) -> None:
        kind = type(event)
        if kind is ev.ChannelOpened:
            self.execute(OpenChannel(self.id, event.channel))
            self.tenancy.channel_opened()
        elif kind is ev.ChannelEnded:
            self._release_channel(event.channel)
        elif kind is ev.ConnectionOpened:
            self._opened(event)
        elif kind is ev.ConnectionClosing:
            self.server.close_log.log(  # rate-limited: a client may do this in a loop
                self.server.now(), logging.WARNING, "%s: closing %s connection %d: %d %s",
                self.peer, self.protocol_name, self.id, event.reply_code, event.reply_text)
            self._closing()
        elif kind is ev.CloseSocket:
            log.debug("%s: %s connection %d: %s", self.peer, self.protocol_name, self.id,
                      event.reason)
            self._close_now()

    def _opened(self, event: ev.ConnectionOpened) -> None:
        if self.server.closing:
            self.fail_connection(ConnectionForced("broker shutdown"))
            return
        self.name = event.name or _connection_name(event.peer_properties)
        self.tenancy.opened()
        self.execute(OpenConnection(
            self.id, user=event.user, peer=self.peer, connection_name=self.name,
            client_properties=event.peer_properties,
        ))
        self.server.register(self)
        self.tenancy.registered()
        self.registered = self.handshake_done = True
        log.debug("%s: %s connection %d open (user %r)", self.peer, self.protocol_name, self.id,
                  event.user)

    def _closing(self) -> None:
        """We sent the protocol's connection close (rule 3)."""
        self._leave_core()
        if self._grace is not None:
            self._grace.cancel()
        self._grace = self.server.loop.call_later(self.server.config.shutdown_grace,
                                                  self._close_now)

    def _close_now(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self._leave_core()
        if not self.closed:
            self.close_transport()

    def _leave_core(self) -> None:
        """Forget the connection in the core: its unacked messages go back to their queues."""
        if not self.registered:
            return
        self.registered = False
        outcome = self.execute(CloseConnection(self.id))
        self.tenancy.left()
        self.server.unregister(self)
        self.server.apply_effects(outcome.effects)

    # -- what the server and the toolkit ask of a session -----------------------------------

    def shutdown(self, reply_code: int, reply_text: str) -> None:
        """Close this connection from the broker side (shutdown 320, fault injection...)."""
        if self.closed:
            return
        log.info("%s: closing %s connection %d: %d %s", self.peer, self.protocol_name, self.id,
                 reply_code, reply_text)
        result = self.adapter.close_connection(reply_code, reply_text)
        if type(result) is ev.ConnectionClosing:
            self._closing()
        elif result is not None:
            self._close_now()

    def close_channel(self, channel: int, reply_code: int, reply_text: str) -> bool:
        """Close an open channel from the broker side (fault injection): the protocol's
        channel close, and the channel is released in the core at once. False when
        ``channel`` is not open."""
        if not self.adapter.close_channel(channel, reply_code, reply_text):
            return False
        log.info("%s: closing channel %d of %s connection %d: %d %s", self.peer, channel,
                 self.protocol_name, self.id, reply_code, reply_text)
        self._release_channel(channel)
        return True

    def set_blocked(self, reason: str | None) -> bool:
        """Tell the peer that publishing is blocked (``reason``) or unblocked (``None``)."""
        return self.adapter.set_blocked(reason)

    def check_heartbeat(self, now: float) -> None:
        """Called by the server's sweep: send a heartbeat when idle, drop a silent peer, a
        slow one (rule 10), and one that hung up while we were not reading it (rule 6)."""
        if self.closed:
            return
        if self._reading_holds and self._events is None and peer_hung_up(self.transport):
            log.debug("%s: %s connection %d hung up while its reading was held", self.peer,
                      self.protocol_name, self.id)
            self._drop()
            return
        if self.frames.expired(now, self.server.config.frame_timeout, held=self.reading_held):
            self._frame_expired(now)
            return
        if self.adapter.tick(now, heard=self.reading_held):
            return
        self.server.close_log.log(
            now, logging.WARNING, "%s: %s connection %d missed heartbeats (interval %d s); "
            "closing", self.peer, self.protocol_name, self.id, self.adapter.heartbeat)
        self._close_now()

    def partial_input(self) -> int:
        """Bytes held for frames and messages not complete yet (0 when the adapter cannot
        tell)."""
        partial_input = self._partial_input
        return 0 if partial_input is None else partial_input()

    def _frame_expired(self, now: float) -> None:
        """Rule 10: close at once (a slow peer may not read either)."""
        self.server.close_log.log(
            now, logging.WARNING, "%s: %s connection %d sent part of a frame and did not "
            "complete it within %g s; closing", self.peer, self.protocol_name, self.id,
            self.server.config.frame_timeout)
        self._drop()

    def _drop(self) -> None:
        """Close at once, writing nothing more (the peer is gone, or would not read)."""
        self._leave_core()
        self.closed = True
        self.transport.abort()

    def connection_lost(self) -> None:
        """The socket is gone: release everything (the core requeues unacked messages)."""
        self._events, self._rest = None, ()
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        try:
            self._leave_core()
        finally:
            self.server.flow.forget(self)
            self._detach()

    def _detach(self) -> None:
        """Rule 9: break the session ↔ adapter cycle."""
        self._out.clear()
        self.out_size = 0
        detached = DetachedAdapter(self.adapter.name)
        self.adapter = detached
        self.on_effect = detached.send_effect
        self._buffered_input = None
        self._partial_input = None
        self.frames.forget()

    def internal_error(self, exc: BaseException) -> None:
        self.server.internal_errors += 1
        log.error("internal error on %s connection %d (%s): %r", self.protocol_name, self.id,
                  self.peer, exc, exc_info=exc)

    # -- output (rule 5) --------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes; they are written with everything else queued in this loop iteration."""
        if self.closed:
            return
        self._out.append(data)
        self.out_size += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.server.loop.call_soon(self.flush)

    def schedule_flush(self) -> None:
        """Make sure :meth:`flush` runs this loop iteration (for output an adapter holds)."""
        if not self._flush_scheduled and not self.closed:
            self._flush_scheduled = True
            self.server.loop.call_soon(self.flush)

    def flush(self) -> None:
        durability = self.server.durability
        if durability is not None and durability.pending():
            durability.flush()  # nothing leaves before what caused it is written
        self.adapter.before_flush()
        self._flush_scheduled = False
        self.out_size = 0
        if self._out and not self.transport.is_closing():
            out = self._out
            self._out = []
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            self.adapter.flushed()
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
        state = self.server.vhosts.for_connection(self.id).connections.get(self.id)
        if state is not None and state.burst >= DELIVERY_BURST:
            self.server.apply_effects(
                self.server.execute(SetWritable(self.id, writable=True)).effects
            )

    def close_transport(self) -> None:
        """Write what is queued, then close the socket."""
        self.flush()
        self.closed = True
        self.transport.close()

    # -- reading (rule 6) -------------------------------------------------------------------

    def hold_reading(self, reason: str) -> None:
        """Stop reading this socket for ``reason``; several reasons may hold it at once, and
        reading resumes when the last lets go."""
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
        self.hold_reading("writing")  # rule 8
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
        if self._events is not None and not self.closed:
            # Frames of a read wait for the drain (rule 8): go on with them, reading nothing
            # new until they are done.
            self._reading_holds.discard("writing")
            self._reading_holds.add("fairness")
            self.server.loop.call_soon(self._continue)
        else:
            self.release_reading("writing")


def _connection_name(properties: FieldTable) -> str:
    name = properties.get("connection_name")
    return name if isinstance(name, str) else ""


_HOT_RUN = ev.HotRun
_CONTROL = frozenset(ev.CONTROL_EVENTS)
