"""A channel of the native client: topology, publishing, consuming, acknowledgements.

Rules:

1. Synchronous requests are answered in order (the broker runs each channel's frames in order),
   so pending requests wait in a FIFO: each reply resolves the oldest request, after checking it
   is one of that request's reply types (``frames.REPLIES``). A reply that needs bookkeeping
   before the next frame is decoded (consume-ok, cancel-ok) carries a callback run at decode time.
2. ``publish`` pipelines: outside confirm mode it writes and returns, waiting only when the
   transport asked us to pause writing. In confirm mode it waits for the broker's confirm.
3. Publisher confirms: after ``confirm.select`` each publish waits for its confirm; which
   confirm or return settles which publish is ``confirms.py``'s business.
4. A broker ``channel.close`` (a soft error, 403/404/405/406) is answered with close-ok and
   closes this channel only: the request that caused it raises the matching ``AMQPError``, every
   later use raises :class:`ChannelClosed`. The connection keeps working.
5. AMQP §1.5.2.5 (channel.close): "After sending this method, any received methods except Close
   and Close-OK MUST be discarded."
6. The channel keeps the ledger the broker keeps (``ledger.py``): every delivery handed out with
   an acknowledgement pending, taken out exactly as the broker will take it by an ack, nack or
   reject; a tag the broker would call unknown raises :class:`ClientError` and sends nothing.
7. A request whose caller was cancelled still gets its reply handled: a consume-ok registers
   the consumer (which then cancels itself, ``consumer.py``), a get-ok's message is requeued at
   once with ``basic.reject``, so nothing stays unacknowledged for a caller that is gone.
8. Arguments are checked as the broker's codec checks them before anything is sent (names of
   at most 255 bytes, numbers in range, field values AMQP can carry): a bad one raises
   :class:`ClientError` naming it, where the broker would close the whole connection with 502.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar, Unpack

from minibroker.client.confirms import ConfirmTracker
from minibroker.client.consumer import Consumer
from minibroker.client.delivery import Delivery, ReturnedMessage
from minibroker.client.ledger import Ledger
from minibroker.client.publish import PublishProperties, encode_publish, message_properties
from minibroker.client.streams import (
    Offset,
    StreamBatch,
    batch_messages,
    messages_of,
    offset_argument,
    read_arguments,
)
from minibroker.errors import (
    AMQPError,
    ChannelClosed,
    ClientError,
    ConnectionClosed,
    ProtocolError,
    error_for_code,
)
from minibroker.message import FieldTable, Properties
from minibroker.protocols.events import ChannelEnded
from minibroker.protocols.native import frames as f
from minibroker.protocols.native import streamframes as sf

if TYPE_CHECKING:
    from minibroker.client.connection import Connection

__all__ = ["Channel", "QueueInfo"]

log = logging.getLogger("minibroker.client")

_F = TypeVar("_F", bound=f.Frame)
_OnReply = Callable[[f.Frame], None]


class ChannelState(Enum):
    OPENING = "opening"
    OPEN = "open"
    #: We sent channel.close and wait for close-ok (rule 5).
    CLOSING = "closing"
    CLOSED = "closed"


class QueueInfo:
    """What ``queue.declare-ok`` reports: the queue's name (server-generated for ``""``), its
    ready messages and its consumers."""

    __slots__ = ("consumer_count", "message_count", "name")

    def __init__(self, name: str, message_count: int, consumer_count: int) -> None:
        self.name = name
        self.message_count = message_count
        self.consumer_count = consumer_count

    def __repr__(self) -> str:
        return (f"QueueInfo(name={self.name!r}, message_count={self.message_count}, "
                f"consumer_count={self.consumer_count})")


class Channel:
    """One AMQP channel on a :class:`Connection`; create it with ``await conn.channel()``."""

    def __init__(self, connection: Connection, number: int) -> None:
        self.connection = connection
        self.number = number
        self.state = ChannelState.OPENING
        #: Called with each ``basic.return`` outside confirm mode (inside it, publish raises).
        self.on_return: Callable[[ReturnedMessage], object] | None = None
        self._loop = connection._loop
        self._pending: deque[tuple[tuple[type[f.Frame], ...], asyncio.Future[f.Frame],
                                   _OnReply | None]] = deque()
        self._consumers: dict[str, Consumer] = {}
        #: Deliveries awaiting ack/nack/reject (rule 6).
        self._ledger = Ledger(number)
        self._confirms: ConfirmTracker | None = None  # set by confirm_select
        self._closed: ClientError | None = None
        self._close_ok: asyncio.Future[None] | None = None

    # -- state --------------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self.state is ChannelState.CLOSED or self.state is ChannelState.CLOSING

    @property
    def confirm_mode(self) -> bool:
        return self._confirms is not None

    def _check_open(self) -> None:
        if self._closed is not None:
            raise _copy(self._closed)
        if self.state is ChannelState.CLOSING:
            raise ChannelClosed(f"channel {self.number} is closing")

    def _call(self, frame: f.Frame, replies: tuple[type[_F], ...],
              on_reply: _OnReply | None = None) -> asyncio.Future[_F]:
        """Send a synchronous request; the future resolves with its reply (rule 1). An
        argument the broker would refuse with 502 raises here (rule 8)."""
        self._check_open()
        try:
            self.connection.codec.check(frame)
        except ProtocolError as exc:
            raise ClientError(f"cannot send {type(frame).__name__}: {exc.text} (the broker "
                              f"would close the connection with {exc.reply_code})") from exc
        future: asyncio.Future[_F] = self._loop.create_future()
        # (``_on_reply`` checks the reply's type against ``replies`` before it resolves the
        # future, which mypy cannot follow through the FIFO of mixed requests.)
        self._pending.append((replies, future, on_reply))  # type: ignore[arg-type]
        if type(frame) is f.ChannelOpen:
            self.connection._conn.open_channel(self.number)
        else:
            self.connection._send(frame)
        return future

    async def _open(self) -> None:
        await self._call(f.ChannelOpen(self.number), (f.ChannelOpenOk,))
        self.state = ChannelState.OPEN

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the channel (``channel.close`` 200); the broker requeues its unacked messages."""
        if self.state is ChannelState.CLOSED:
            return
        if self._close_ok is None:
            self._close_ok = self._loop.create_future()
            self.state = ChannelState.CLOSING
            if not self.connection._conn.close_channel(self.number, 200, "Normal shutdown"):
                self._finish(ChannelClosed(f"channel {self.number} is closed"),
                             lambda: ChannelClosed(f"channel {self.number} was closed"))
        await asyncio.shield(self._close_ok)

    # -- exchanges ----------------------------------------------------------------------------

    async def declare_exchange(
        self, exchange: str, type: str = "direct", *, passive: bool = False,
        durable: bool = False, auto_delete: bool = False, internal: bool = False,
        arguments: FieldTable | None = None,
    ) -> None:
        await self._call(f.ExchangeDeclare(self.number, exchange, type, passive, durable,
                                           auto_delete, internal, arguments or {}),
                         (f.ExchangeDeclareOk,))

    async def delete_exchange(self, exchange: str, *, if_unused: bool = False) -> None:
        await self._call(f.ExchangeDelete(self.number, exchange, if_unused),
                         (f.ExchangeDeleteOk,))

    async def bind_exchange(self, destination: str, source: str, routing_key: str = "",
                            arguments: FieldTable | None = None) -> None:
        """Route what ``source`` routes with ``routing_key`` on to ``destination``."""
        await self._call(f.ExchangeBind(self.number, destination, source, routing_key,
                                        arguments or {}), (f.ExchangeBindOk,))

    async def unbind_exchange(self, destination: str, source: str, routing_key: str = "",
                              arguments: FieldTable | None = None) -> None:
        await self._call(f.ExchangeUnbind(self.number, destination, source, routing_key,
                                          arguments or {}), (f.ExchangeUnbindOk,))

    # -- queues -------------------------------------------------------------------------------

    async def declare_queue(
        self, queue: str = "", *, passive: bool = False, durable: bool = False,
        exclusive: bool = False, auto_delete: bool = False, arguments: FieldTable | None = None,
    ) -> QueueInfo:
        """Declare a queue; ``""`` asks the broker to name it (see ``QueueInfo.name``)."""
        ok = await self._call(f.QueueDeclare(self.number, queue, passive, durable, exclusive,
                                             auto_delete, arguments or {}), (f.QueueDeclareOk,))
        return QueueInfo(ok.queue, ok.message_count, ok.consumer_count)

    async def bind_queue(self, queue: str, exchange: str, routing_key: str = "",
                         arguments: FieldTable | None = None) -> None:
        await self._call(f.QueueBind(self.number, queue, exchange, routing_key, arguments or {}),
                         (f.QueueBindOk,))

    async def unbind_queue(self, queue: str, exchange: str, routing_key: str = "",
                           arguments: FieldTable | None = None) -> None:
        await self._call(f.QueueUnbind(self.number, queue, exchange, routing_key,
                                       arguments or {}), (f.QueueUnbindOk,))

    async def purge_queue(self, queue: str) -> int:
        """Drop the queue's ready messages; returns how many."""
        ok = await self._call(f.QueuePurge(self.number, queue), (f.QueuePurgeOk,))
        return ok.message_count

    async def delete_queue(self, queue: str, *, if_unused: bool = False,
                           if_empty: bool = False) -> int:
        """Delete the queue; returns how many messages it held."""
        ok = await self._call(f.QueueDelete(self.number, queue, if_unused, if_empty),
                              (f.QueueDeleteOk,))
        return ok.message_count

    # -- consuming ----------------------------------------------------------------------------

    async def qos(self, prefetch_count: int = 0, *, global_: bool = False) -> None:
        """At most ``prefetch_count`` unacked deliveries per consumer (per channel when
        ``global_``, RabbitMQ's reading of the flag); 0 means no limit."""
        await self._call(f.Qos(self.number, prefetch_count, global_), (f.QosOk,))

    def consume(self, queue: str, *, consumer_tag: str = "", no_ack: bool = False,
                exclusive: bool = False, arguments: FieldTable | None = None,
                offset: Offset | None = None) -> Consumer:
        """A consumer of ``queue``: use ``async with ch.consume(q) as consumer`` (cancels on
        exit) or ``consumer = await ch.consume(q)``. For a stream, ``offset`` says where to
        start (``streams.py`` rule 1; a prefetch window is required) and each delivery's
        ``offset`` is its position."""
        self._check_open()
        if offset is not None:
            arguments = {**(arguments or {}), "x-stream-offset": offset_argument(offset)}
        return Consumer(self, queue, consumer_tag=consumer_tag, no_ack=no_ack,
                        exclusive=exclusive, arguments=arguments)

    # -- streams (``streams.py``) ------------------------------------------------------------

    async def read(self, stream: str, offset: Offset, *, max_messages: int = 1000,
                   max_bytes: int = 1 << 20, filter: str | Iterable[str] | None = None,
                   match_unfiltered: bool = False) -> StreamBatch:
        """Read a stream without subscribing (Kafka's pull): at most ``max_messages``, and
        stopping after ``max_bytes`` of bodies, from ``offset``; ``next_offset`` of the
        result is where to go on."""
        ok = await self._call(sf.StreamFetch(
            self.number, stream, read_arguments(offset, filter, match_unfiltered), max_messages,
            max_bytes), (sf.StreamFetchOk,))
        return StreamBatch(messages_of(ok.chunks), ok.next_offset)

    async def commit_offset(self, stream: str, name: str, offset: int) -> None:
        """Store ``offset`` for the consumer ``name`` in the broker (a restarted consumer
        resumes from :meth:`committed_offset`)."""
        await self._call(sf.OffsetCommit(self.number, stream, name, offset),
                         (sf.OffsetCommitOk,))

    async def committed_offset(self, stream: str, name: str) -> int | None:
        """The offset stored for ``name``; ``None`` when none was."""
        ok = await self._call(sf.OffsetQuery(self.number, stream, name), (sf.OffsetQueryOk,))
        return ok.offset if ok.found else None

    async def cancel(self, consumer_tag: str) -> None:
        """Cancel a consumer by tag (``basic.cancel``); unknown tags are not an error."""
        consumer = self._consumers.get(consumer_tag)
        if consumer is not None:
            await consumer.cancel()
        else:
            await self._call(f.Cancel(self.number, consumer_tag), (f.CancelOk,))

    async def get(self, queue: str, *, no_ack: bool = False) -> Delivery | None:
        """Fetch one message (``basic.get``); None when the queue is empty. Cancelled while it
        waits, the message that comes all the same is requeued (rule 7)."""
        got: list[Delivery] = []

        def on_get_ok(frame: f.Frame) -> None:  # at decode time (rule 1)
            if type(frame) is not f.GetOk:
                return
            delivery = self._delivered(Delivery(
                self, "", frame.delivery_tag, frame.redelivered, frame.exchange,
                frame.routing_key, frame.properties, frame.body, no_ack=no_ack,
                message_count=frame.message_count))
            if future.cancelled():
                self._requeue_nowait(delivery, "requeued: its get() was cancelled")
            else:
                got.append(delivery)

        future = self._call(f.Get(self.number, queue, no_ack), (f.GetOk, f.GetEmpty),
                            on_get_ok)
        try:
            await future
        except asyncio.CancelledError:
            if got:  # the reply came, but our caller is gone
                self._requeue_nowait(got[0], "requeued: its get() was cancelled")
            raise
        return got[0] if got else None

    async def ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        """Acknowledge a delivery of this channel; with ``multiple``, every earlier one too
        (tag 0: all). An unknown or settled tag raises :class:`ClientError` (rule 6)."""
        self._settle(delivery_tag, multiple, "ack")
        await self.connection._send_and_drain(f.Ack(self.number, delivery_tag, multiple))

    async def nack(self, delivery_tag: int, *, requeue: bool = True,
                   multiple: bool = False) -> None:
        """Refuse a delivery (and every earlier one with ``multiple``), requeued or dropped."""
        self._settle(delivery_tag, multiple, "nack")
        await self.connection._send_and_drain(
            f.Nack(self.number, delivery_tag, multiple, requeue))

    async def reject(self, delivery_tag: int, *, requeue: bool = True) -> None:
        """Refuse one delivery (``basic.reject``), requeued or dropped."""
        self._settle(delivery_tag, False, "reject")
        await self.connection._send_and_drain(f.Reject(self.number, delivery_tag, requeue))

    async def recover(self, *, requeue: bool = True) -> None:
        """Requeue every unacked delivery of this channel (``basic.recover``). Their
        :class:`Delivery` objects can no longer be settled, and deliveries a consumer still
        buffers are dropped: the broker delivers them again, with new tags."""
        def on_recover_ok(frame: f.Frame) -> None:
            # Every delivery decoded before recover-ok was sent before the broker requeued
            # the channel's unacked messages (a channel's frames keep their order, and the
            # broker writes recover-ok before the redeliveries it causes).
            self._void("requeued by basic.recover")

        await self._call(f.Recover(self.number, requeue), (f.RecoverOk,), on_recover_ok)

    # -- the ledger of unsettled deliveries (rule 6, ``ledger.py``) --------------------------

    @property
    def unacked_count(self) -> int:
        """Deliveries of this channel waiting for an ack, nack or reject."""
        return len(self._ledger)

    def _delivered(self, delivery: Delivery) -> Delivery:
        """Record a delivery as the broker does: unacked until settled (unless ``no_ack``)."""
        return self._ledger.record(delivery)

    def _settle(self, delivery_tag: int, multiple: bool, verb: str) -> None:
        """Take what an ack/nack/reject of ``delivery_tag`` settles out of the ledger, or
        raise where the broker would close the channel (rule 6). Nothing is sent here."""
        self._check_open()
        self._ledger.settle(delivery_tag, multiple, verb)

    def _void(self, how: str) -> None:
        """The broker requeued every unacked delivery (``basic.recover``): they cannot be
        settled, and the copies consumers still buffer are dropped."""
        if self._ledger.void(how):
            for consumer in self._consumers.values():
                consumer._drop_settled()

    def _requeue_nowait(self, delivery: Delivery, how: str) -> None:
        """Give a delivery nobody will handle back to its queue now (``basic.reject``,
        requeue), without waiting for the socket (usable from a frame callback)."""
        if delivery.no_ack or self.is_closed:
            return  # nothing to give back, or the broker requeues it with the channel
        if self._ledger.take(delivery, how):
            self.connection._send(f.Reject(self.number, delivery.delivery_tag, True))

    # -- publishing ---------------------------------------------------------------------------

    async def confirm_select(self) -> None:
        """Enter confirm mode: from now on ``publish`` waits for the broker's confirm."""
        future = self._call(f.ConfirmSelect(self.number), (f.ConfirmSelectOk,))
        if self._confirms is None:
            # Publishes written after confirm.select are numbered by the broker, including
            # those other tasks write while we wait for select-ok.
            self._confirms = ConfirmTracker(self._loop)
        await future

    async def publish(
        self, exchange: str, routing_key: str, body: bytes | str, *, mandatory: bool = False,
        properties: Properties | None = None, **fields: Unpack[PublishProperties],
    ) -> None:
        """Publish ``body`` (a ``str`` is sent as UTF-8) to ``exchange`` with ``routing_key``.

        The message properties are keyword arguments (``PublishProperties``), or a whole
        ``properties`` object. A body of any size goes (in parts when it does not fit a
        frame, ``publish.py`` rule 3) up to the broker's ``max_message_size``. In confirm
        mode, returns once the broker confirmed (rule 3); else once the frame is written,
        waiting only while the socket's buffer is full."""
        self._check_open()
        properties = message_properties(properties, fields)
        connection = self.connection
        data, body = encode_publish(connection.codec, self.number, exchange, routing_key, body,
                                    mandatory, properties)
        confirms = self._confirms
        if confirms is None:
            connection._write(data)
            if not connection.writable:
                await connection.drain()
            return
        confirmed = confirms.track(exchange, routing_key, body, mandatory)
        connection._write(data)
        await confirmed

    async def publish_batch(
        self, exchange: str, routing_key: str,
        messages: Iterable[bytes | str | tuple[bytes | str, Properties]], *,
        mandatory: bool = False, properties: Properties | None = None,
        **fields: Unpack[PublishProperties],
    ) -> None:
        """Publish many messages in one frame (``streams.py`` rule 3): each a body, sent with
        the call's properties, or a (body, properties) pair. In confirm mode, returns once the
        broker confirmed all of them."""
        self._check_open()
        batch = batch_messages(messages, message_properties(properties, fields))
        if not batch:
            return
        connection = self.connection
        try:
            data = connection.codec.send(sf.PublishBatch(self.number, exchange, routing_key,
                                                        mandatory, batch))
        except ProtocolError as exc:  # too large, or a value the wire cannot carry
            raise ClientError(f"cannot publish: {exc.text}") from exc
        confirms = self._confirms
        if confirms is None:
            connection._write(data)
            if not connection.writable:
                await connection.drain()
            return
        confirmed = confirms.track_batch(len(batch))
        connection._write(data)
        await confirmed

    def publish_nowait(
        self, exchange: str, routing_key: str, body: bytes | str, *, mandatory: bool = False,
        properties: Properties | None = None, **fields: Unpack[PublishProperties],
    ) -> None:
        """``publish`` without waiting: the frame is queued for this loop iteration's write,
        even while the socket's buffer is full (check ``connection.writable`` and await
        ``connection.drain()`` to stay bounded). Not in confirm mode, where a publish must
        wait for its confirm."""
        self._check_open()
        if self._confirms is not None:
            raise ClientError("publish_nowait cannot wait for a confirm: use publish()")
        data, _ = encode_publish(self.connection.codec, self.number, exchange, routing_key,
                                 body, mandatory, message_properties(properties, fields))
        self.connection._write(data)

    def write_publish(self, data: bytes) -> bool:
        """Queue a Publish frame that :func:`~minibroker.client.publish.encode_publish` made
        for this channel (say, in another thread, with a codec of its own) if the channel is
        open at this moment; False (nothing written) when it is not, and the channel's next
        call raises why. Event-loop thread only; not in confirm mode."""
        if self.state is not ChannelState.OPEN or self._confirms is not None:
            return False
        self.connection._write(data)
        return True

    # -- frames from the broker (called by the connection, in wire order) ---------------------

    def _on_frame(self, frame: f.Frame) -> None:
        if type(frame) is f.Deliver:
            if self.state is ChannelState.CLOSING:
                return  # rule 5
            deliver = frame
            consumer = self._consumers.get(deliver.consumer_tag)
            delivery = self._delivered(Delivery(
                self, deliver.consumer_tag, deliver.delivery_tag, deliver.redelivered,
                deliver.exchange, deliver.routing_key, deliver.properties, deliver.body,
                no_ack=consumer.no_ack if consumer is not None else False))
            if consumer is None:
                # The broker delivers only to consumers it confirmed, and each is registered
                # from its consume-ok to its cancel-ok: this is a broker fault. The delivery
                # stays in the ledger (a multiple ack settles it, as on the broker).
                log.warning("channel %d: delivery for unknown consumer %r dropped",
                            self.number, deliver.consumer_tag)
                return
            consumer._push(delivery)
        elif type(frame) is f.ConfirmAck or type(frame) is f.ConfirmNack:
            if self._confirms is not None:
                self._confirms.on_confirm(frame.delivery_tag, multiple=frame.multiple,
                                          ack=type(frame) is f.ConfirmAck)
        elif type(frame) is f.Return:
            self._on_return(frame)
        elif type(frame) is f.ConsumerCancelled:
            consumer = self._consumers.pop(frame.consumer_tag, None)
            if consumer is not None:
                consumer._end(None)
        elif self.state is not ChannelState.CLOSING:
            self._on_reply(frame)

    def _on_reply(self, frame: f.Frame) -> None:
        if not self._pending:
            self.connection._protocol_violation(
                f"unexpected {type(frame).__name__} on channel {self.number}")
            return
        replies, future, on_reply = self._pending[0]
        if type(frame) not in replies:  # the request stays pending: the close fails it
            self.connection._protocol_violation(
                f"{type(frame).__name__} on channel {self.number} does not answer a "
                f"pending request (expected {' or '.join(r.__name__ for r in replies)})")
            return
        self._pending.popleft()
        if on_reply is not None:
            on_reply(frame)
        if not future.done():  # a request whose caller was cancelled still takes its reply
            future.set_result(frame)

    def _on_return(self, frame: f.Return) -> None:
        message = ReturnedMessage(frame.reply_code, frame.reply_text, frame.exchange,
                                  frame.routing_key, frame.properties, frame.body)
        if self._confirms is not None and self._confirms.on_return(message):
            return  # its publish raises MessageReturned
        if self.on_return is not None:
            self.on_return(message)
        else:
            log.warning("channel %d: message returned by the broker: %d %s (exchange %r, "
                        "routing key %r)", self.number, message.reply_code, message.reply_text,
                        message.exchange, message.routing_key)

    def _on_ended(self, event: ChannelEnded) -> None:
        """The channel is gone: the broker closed it (rule 4; the connection answered
        close-ok), or it answered our close."""
        if not event.by_peer:
            self._finish(ChannelClosed(f"channel {self.number} is closed"),
                         lambda: ChannelClosed(f"channel {self.number} was closed"))
            return
        code, text = event.reply_code, event.reply_text
        error = error_for_code(code, text)
        closed = ChannelClosed(f"channel {self.number} was closed by the broker: {error}", error)
        self._finish(closed, lambda: error_for_code(code, text), error=closed)

    def _finish(self, closed: ClientError, make_error: Callable[[], BaseException], *,
                error: BaseException | None = None) -> None:
        """The channel is closed: fail what waits, end the consumers, free the number."""
        if self.state is ChannelState.CLOSED:
            return
        self.state = ChannelState.CLOSED
        self._closed = closed
        self.connection._channels.pop(self.number, None)
        pending, self._pending = self._pending, deque()
        self._ledger.forget()  # the broker requeued them with the channel
        for _, future, _ in pending:
            if not future.done():
                future.set_exception(make_error())
        if self._confirms is not None:
            self._confirms.fail_all(make_error)
        consumers, self._consumers = self._consumers, {}
        for consumer in consumers.values():
            consumer._end(_copy(error) if error is not None else None, channel_closed=True)
        if self._close_ok is not None and not self._close_ok.done():
            self._close_ok.set_result(None)

    def _on_connection_closed(self, closed: ClientError, requested: bool) -> None:
        self._finish(closed, lambda: _copy(closed), error=None if requested else closed)

    def __repr__(self) -> str:
        return f"<Channel {self.number} {self.state.value}>"


def _copy(error: BaseException) -> BaseException:
    """A fresh instance of a stored error, so each raise gets its own traceback."""
    if isinstance(error, ConnectionClosed):
        return ConnectionClosed(str(error), error.error)
    if isinstance(error, ChannelClosed):
        return ChannelClosed(str(error), error.error)
    if isinstance(error, AMQPError):
        return error_for_code(error.reply_code, error.text)
    return error
