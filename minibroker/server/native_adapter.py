"""The native protocol's adapter: plugs ``protocols/native/`` into the session pipeline.

The wire rules — handshake, channel states, closing, heartbeats, confirm coalescing — are the
sans-IO :class:`~minibroker.protocols.native.connection.NativeConnection`'s; frames ⇄ commands
are ``protocols/native/mapping.py``'s. This class only joins them to a
:class:`~minibroker.server.session.Session` (``adapter.py`` describes the interface).

Rules:

1. The connection is told the server clock's time of every read and every write, so its
   heartbeat rules see when bytes really moved.
2. Exchange names and routing keys of publishes are interned per connection (:meth:`_name`):
   the codec makes a new ``str`` per frame, and a queued message keeps its own for as long as it
   lives, so a backlog of one routing key would otherwise hold one copy per message.
3. A delivery is encoded straight from the core's effect (no frame object): the hot path. A
   stream's delivery is encoded from the copy of its message with ``x-stream-offset``
   (``Deliver.wire_message``, ``core/effects.py`` rule 4). A run of deliveries
   (``DeliverRun``, ``core/effects.py`` rule 5) is encoded in one codec call and written once
   (``NativeConnection.send_deliver_run``).
4. A stream read asks the core for at most a frame's worth of bodies and of estimated records
   (``_RECORD_ENVELOPE`` bytes a message besides its body, exchange and routing key; the
   properties are not counted), and a ``StreamReadOk`` that still does not fit the negotiated
   frame size is cut to the messages that fit, ``next_offset`` pointing at the first one left
   out: a read never fails for asking too much.
5. A ``StreamFetch`` is the same read, asked ``packed``: its ``StreamFetchOk`` is written
   straight from the core's reply (no frame object), the runs of a durable stream's files
   as they are stored, and the messages of the reply (an in-memory stream, messages not
   written yet, a filtered read) packed into runs of the same layout (``runs.py``). A reply
   that does not fit the frame loses messages by halves, as rule 4's.
6. A run a codec lane read (``lanes.py`` rule 5) becomes its batch command from the bodies
   or tags themselves: one exchange name, routing key and properties object for every
   message of a ``PublishRun``, no frame object a message, and the batch says so
   (``PublishMany.uniform``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar

from minibroker.accounts import session_login
from minibroker.core import commands as c
from minibroker.core import effects as e
from minibroker.errors import AMQPError, ProtocolError
from minibroker.protocols.events import CloseSocket, ConnectionClosing
from minibroker.protocols.native import frames as f
from minibroker.protocols.native import mapping
from minibroker.protocols.native import streamframes as sf
from minibroker.protocols.native.connection import NativeConnection
from minibroker.protocols.native.lanes import AckRun, PublishRun
from minibroker.protocols.native.mapping import build_message
from minibroker.protocols.native.runs import entries_of
from minibroker.protocols.tracing import log_frame

if TYPE_CHECKING:
    from minibroker.server.session import Session

__all__ = ["NativeAdapter"]

#: Distinct exchange names and routing keys a connection keeps shared (rule 2).
_NAME_CACHE_SIZE = 1024
#: A ``StreamReadOk`` record's msgpack bytes besides its body, exchange, routing key and
#: properties: the array header, an offset of up to 9 bytes, two string headers, an empty
#: properties array and a bin header (rule 4).
_RECORD_ENVELOPE = 20
#: The frame's own bytes around the records: its header, channel, next offset, array header.
_READ_OK_FRAME = 64


_delivery_tag = attrgetter("delivery_tag")


class _Names(dict[str, str]):
    """Rule 2's cache: ``names[text]`` is the shared ``str``. A hit is a plain dict subscript,
    done in C; only a miss calls Python (two method calls a message less; bench/instructions.py
    native, callgrind: 101,073 -> 99,949 instructions a message)."""

    def __missing__(self, text: str) -> str:
        if len(self) >= _NAME_CACHE_SIZE:
            self.clear()  # bounded: ever new keys gain nothing and cost nothing
        self[text] = text
        return text


class NativeAdapter:
    """The native msgpack protocol, for one session."""

    name: ClassVar[str] = "native"

    def __init__(self, session: Session) -> None:
        self.session = session
        server = session.server
        config = server.config
        self._clock = server.clock
        self.connection = NativeConnection(
            "server", session.write, max_frame_size=config.max_frame_size,
            channel_max=config.channel_max, heartbeat=config.heartbeat,
            login=session_login(session),
            open_vhost=session.tenancy.open_vhost, admit_channel=session.tenancy.admit_channel,
            now=self._clock.now(),
        )
        # ServerConfig.max_message_size (the codec's default is RabbitMQ's 128 MiB).
        self.connection.codec.max_message_size = config.max_message_size
        if config.trace:
            self.connection.trace = self._trace
        self._names = _Names()

    @property
    def heartbeat(self) -> int:
        return self.connection.heartbeat

    # -- input ------------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        self.connection.receive_data(data, now=self._clock.now())

    def buffered_input(self) -> int:
        """Bytes received but not yet frames (the session's frame timeout watches them)."""
        return self.connection.codec.buffered

    def partial_input(self) -> int:
        """Bytes held for frames and messages not complete yet (flow control counts them)."""
        return self.connection.codec.partial_bytes

    def events(self) -> Iterator[Any]:
        return self.connection.events()

    def command(self, frame: Any) -> c.Command | None:
        if type(frame) is f.Publish:  # the hot path first
            name = self._name
            return c.Publish(self.session.id, frame.channel, build_message(
                name(frame.exchange), name(frame.routing_key), frame.body, frame.properties,
            ), frame.mandatory)
        command = mapping.COMMANDS[type(frame)](frame, self.session.id)
        if type(command) is c.ReadStream:  # rule 4
            limit = self.connection.codec.max_frame_size
            command = dataclasses.replace(
                command, max_bytes=min(command.max_bytes, limit),
                reply_bytes=limit - _READ_OK_FRAME, record_bytes=_RECORD_ENVELOPE,
            )
        return command

    def batch_command(self, frames: Sequence[Any]) -> c.Command:
        kind = type(frames)
        if kind is PublishRun:  # rule 6
            lane = frames.lane  # type: ignore[attr-defined]
            names = self._names
            exchange, routing_key = names[lane.exchange], names[lane.routing_key]
            properties, mandatory = lane.properties, lane.mandatory
            return c.PublishMany(self.session.id, lane.channel, tuple([
                (build_message(exchange, routing_key, body, properties), mandatory)
                for body in frames.bodies  # type: ignore[attr-defined]
            ]), uniform=True)
        if kind is AckRun:  # rule 6
            return c.AckMany(self.session.id, frames.channel,  # type: ignore[attr-defined]
                             tuple(frames.tags))  # type: ignore[attr-defined]
        first = frames[0]
        if type(first) is f.Publish:
            names = self._names  # subscripts, not calls (rule 2)
            # build_message: the frozen Message without its __init__'s checked stores
            # (protocols/building.py); with core/delivery.py's _deliver, callgrind native ack
            # 92,377 -> 84,181 instructions a message.
            # (A list comprehension, not a generator: no generator frame resumed a message.)
            return c.PublishMany(self.session.id, first.channel, tuple([
                (build_message(names[frame.exchange], names[frame.routing_key], frame.body,
                               frame.properties), frame.mandatory)
                for frame in frames
            ]))
        # The tags in C (attrgetter), not a generator resumed per ack. With the list
        # comprehension above, acks.py's map(pop) and codec.send_deliver's inlined empty
        # properties: callgrind native ack 82,114 -> 81,278, no-ack 55,433 -> 55,062.
        return c.AckMany(self.session.id, first.channel, tuple(map(_delivery_tag, frames)))

    def _name(self, text: str) -> str:
        """The one ``str`` object this connection uses for an exchange or routing key
        (rule 2)."""
        return self._names[text]

    # -- output -----------------------------------------------------------------------------

    def send_reply(self, frame: Any, reply: e.Reply | None) -> None:
        if type(frame) is sf.StreamFetch and type(reply) is e.StreamReadOk:  # rule 5
            self._send_fetch_ok(frame.channel, reply)
            return
        answer = mapping.reply_for(frame, reply)
        if type(answer) is sf.StreamReadOk:
            self._send_fitting(answer)
        elif answer is not None:
            self.connection.send(answer)

    def _send_fitting(self, answer: sf.StreamReadOk) -> None:
        """Rule 4: halve the messages until the frame fits (the codec refuses an oversized
        frame before anything is written)."""
        while True:
            try:
                self.connection.send(answer)
                return
            except ProtocolError:
                if len(answer.messages) <= 1:
                    raise
                keep = len(answer.messages) // 2
                answer = sf.StreamReadOk(answer.channel, answer.messages[keep][0],
                                        answer.messages[:keep])

    def _send_fetch_ok(self, channel: int, reply: e.StreamReadOk) -> None:
        """Rule 5."""
        connection = self.connection
        pack = connection.codec.pack_entries
        messages, next_offset = reply.messages, reply.next_offset
        while True:
            runs = [*reply.runs, *((first, len(entries), pack(entries))
                                   for first, entries in entries_of(messages))]
            try:
                connection.send_fetch_ok(channel, next_offset, runs)
                return
            except ProtocolError:
                if len(messages) <= 1:
                    raise
                keep = len(messages) // 2
                next_offset = messages[keep][0]
                messages = messages[:keep]

    def send_effect(self, effect: e.Effect) -> None:
        if type(effect) is e.Deliver:  # rule 3
            message = effect.message if effect.offset is None else effect.wire_message
            self.connection.send_deliver(
                effect.channel, effect.consumer_tag, effect.delivery_tag, effect.redelivered,
                message.exchange, message.routing_key, message.properties, message.body,
            )
        elif type(effect) is e.DeliverRun:  # rule 3
            self.connection.send_deliver_run(effect.channel, effect.consumer_tag,
                                             effect.first_tag, effect.messages,
                                             effect.redelivered)
        elif isinstance(effect, e.Confirm):
            if not self.connection.send_confirm(effect.channel, effect.delivery_tag,
                                                effect.multiple, effect.ack):
                self.session.schedule_flush()  # held back: it goes out this iteration
        else:
            self.connection.send(mapping.frame_for_effect(effect))

    def before_flush(self) -> None:
        self.connection.flush_held()

    def flushed(self) -> None:
        self.connection.note_sent(self._clock.now())

    def _trace(self, direction: str, frame: f.Frame) -> None:
        log_frame(self.session.peer, self.session.id, direction, frame.channel,
                  mapping.describe(frame))

    # -- state, closing, time ---------------------------------------------------------------

    def channel_is_open(self, channel: int) -> bool:
        return self.connection.channel_is_open(channel)

    def close_channel(self, channel: int, reply_code: int, reply_text: str, *,
                      frame: Any = None, error: AMQPError | None = None) -> bool:
        return self.connection.close_channel(channel, reply_code, reply_text)

    def close_connection(self, reply_code: int, reply_text: str, *, frame: Any = None,
                         error: AMQPError | None = None) -> ConnectionClosing | CloseSocket | None:
        return self.connection.close(reply_code, reply_text)

    def tick(self, now: float, *, heard: bool) -> bool:
        return self.connection.tick(now, heard=heard)

    def set_blocked(self, reason: str | None) -> bool:
        return False  # the native protocol has no such notification
