"""A consumer: deliveries the broker pushes for one ``basic.consume``, as an async iterator.

Rules:

1. Deliveries are pushed by the broker (no polling). The channel hands each ``Deliver`` frame to
   :meth:`Consumer._push` synchronously, in wire order, so the buffer holds them in order.
2. The buffer is bounded by the broker: it never sends more than ``prefetch_count`` unacked
   deliveries to a channel (AMQP ``basic.qos``). With ``no_ack=True`` there is no such bound;
   consume with acknowledgements when the application can fall behind.
3. The consumer is registered on its channel when ``consume-ok`` is *decoded*, not when the
   awaiting task resumes: the first delivery may follow the consume-ok in the same read.
4. Iteration ends (``StopAsyncIteration``) once the consumer is cancelled — by us, or by the
   broker when its queue is deleted — and the buffer is drained, or when the channel or
   connection was closed on purpose. It raises when they were closed by an error. Buffered
   deliveries of a closed channel are dropped (the broker requeued them), unless ``no_ack``.
5. Leaving ``async with`` (or :meth:`aclose`) cancels the consumer and requeues, with
   ``basic.reject``, the deliveries still in the buffer: the application never saw them, so
   another consumer should get them. They are rejected without waiting in between, so even
   a cancelled ``aclose`` leaves none of them unacknowledged.
6. Any number of tasks may iterate one consumer: each delivery goes to one of them, waiting
   tasks are served first come, first served, and all of them see the end.
7. Cancelling the task that starts the consumer (``await ch.consume(q)``, ``async with``)
   abandons it: once the broker confirmed it (at once if it did already), the consumer is
   cancelled with ``basic.cancel`` and every delivery it received is requeued, so the broker
   keeps no consumer and no unacknowledged message for a task that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from minibroker.errors import ClientError
from minibroker.message import FieldTable
from minibroker.protocols.native import frames as f
from minibroker.valueclass import valueclass

if TYPE_CHECKING:
    from minibroker.client.channel import Channel
    from minibroker.client.delivery import Delivery

__all__ = ["Consumer", "ConsumerStatistics"]


@valueclass(frozen=True)
class ConsumerStatistics:
    consumer_tag: str
    #: Deliveries received and not yet handed to the application.
    buffered: int
    #: Deliveries received since the consumer started.
    received: int
    #: True between consume-ok and the cancellation (by us or by the broker).
    active: bool


class Consumer:
    """Created by :meth:`Channel.consume`; start it with ``async with`` or ``await``."""

    def __init__(
        self,
        channel: Channel,
        queue: str,
        *,
        consumer_tag: str = "",
        no_ack: bool = False,
        exclusive: bool = False,
        arguments: FieldTable | None = None,
    ) -> None:
        self.channel = channel
        self.queue = queue
        #: The tag asked for until consume-ok, then the tag the broker confirmed.
        self.consumer_tag = consumer_tag
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.arguments: FieldTable = arguments or {}
        self._buffer: deque[Delivery] = deque()
        #: Tasks waiting in ``__anext__``, oldest first (rule 6).
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: The consume request's reply, once sent.
        self._consume_ok: asyncio.Future[f.Frame] | None = None
        self._started = False
        self._abandoned = False  # rule 7
        self._active = False
        self._finished = False  # no delivery will ever be added again
        self._error: BaseException | None = None
        self._received = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> Consumer:
        """Send ``basic.consume`` (once) and wait for consume-ok. Cancelled while it waits,
        the consumer is abandoned (rule 7)."""
        if self._abandoned:
            raise ClientError(f"the consumer of {self.queue!r} was abandoned: its start was "
                              "cancelled")
        if self._consume_ok is None:
            self._started = True
            frame = f.Consume(self.channel.number, self.queue, self.consumer_tag, self.no_ack,
                              self.exclusive, self.arguments)
            self._consume_ok = self.channel._call(frame, (f.ConsumeOk,), self._on_consume_ok)
            # An abandoned start's failure (its channel closing) has no one to raise it to.
            self._consume_ok.add_done_callback(_retrieve)
        try:
            await asyncio.shield(self._consume_ok)
        except asyncio.CancelledError:
            self._abandon()
            raise
        return self

    def __await__(self) -> Generator[Any, None, Consumer]:
        return self.start().__await__()

    async def __aenter__(self) -> Consumer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def cancel(self) -> None:
        """``basic.cancel``: the broker stops delivering; buffered deliveries stay iterable.
        Called while the consumer is starting, it waits for consume-ok first."""
        starting = self._consume_ok
        if starting is not None and not starting.done():
            try:
                await asyncio.shield(starting)
            except Exception:  # the consume failed: there is nothing to cancel
                return
        if not self._active or self.channel.is_closed:
            return
        await self.channel._call(
            f.Cancel(self.channel.number, self.consumer_tag), (f.CancelOk,), self._on_cancel_ok
        )

    async def aclose(self) -> None:
        """Cancel, then requeue the deliveries the application has not taken (rule 5)."""
        try:
            await self.cancel()
        finally:
            self._requeue_buffered("requeued: its consumer closed before the application "
                                   "took it")
        connection = self.channel.connection
        if not connection.writable and not connection.is_closed:
            await connection.drain()

    def _requeue_buffered(self, how: str) -> None:
        leftover, self._buffer = self._buffer, deque()
        for delivery in leftover:
            self.channel._requeue_nowait(delivery, how)

    def _abandon(self) -> None:
        """The task starting this consumer was cancelled (rule 7)."""
        self._abandoned = True
        if self._active:  # consume-ok is decoded already: undo it now
            self._cancel_nowait()
        # else _on_consume_ok does it, when (if) the consume-ok comes

    def _cancel_nowait(self) -> None:
        """Send ``basic.cancel`` from a frame callback, and requeue what was delivered."""
        self._requeue_buffered("requeued: its consumer was abandoned")
        if self.channel.is_closed:
            return
        future = self.channel._call(f.Cancel(self.channel.number, self.consumer_tag),
                                    (f.CancelOk,), self._on_cancel_ok)
        # Nobody awaits it: a failure (the channel closing) must not be logged as unretrieved.
        future.add_done_callback(_retrieve)

    # -- iteration ----------------------------------------------------------------------------

    def __aiter__(self) -> Consumer:
        return self

    async def __anext__(self) -> Delivery:
        while True:
            if self._buffer:
                return self._buffer.popleft()
            if self._error is not None:
                raise self._error
            if self._finished or not self._started:
                if not self._started:
                    raise ClientError("start the consumer first (async with / await)")
                raise StopAsyncIteration
            if self._abandoned:
                raise ClientError(f"the consumer of {self.queue!r} was abandoned: its start "
                                  "was cancelled")
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)  # rule 6: first come, first served
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken for a delivery we will not take: pass it on
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise

    async def receive(self) -> Delivery:
        """The next delivery; raises :class:`~minibroker.errors.ClientError` when the consumer
        has ended (cancelled and drained) instead of stopping an iteration."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise ClientError(f"consumer {self.consumer_tag!r} has ended") from None

    def statistics(self) -> ConsumerStatistics:
        return ConsumerStatistics(self.consumer_tag, len(self._buffer), self._received,
                                  self._active)

    # -- called by the channel, synchronously while frames are decoded ------------------------

    def _on_consume_ok(self, frame: f.Frame) -> None:
        assert isinstance(frame, f.ConsumeOk)
        self.consumer_tag = frame.consumer_tag
        self._active = True
        self.channel._consumers[frame.consumer_tag] = self
        if self._abandoned:  # rule 7
            self._cancel_nowait()

    def _on_cancel_ok(self, frame: f.Frame) -> None:
        self.channel._consumers.pop(self.consumer_tag, None)
        self._end(None)

    def _push(self, delivery: Delivery) -> None:
        self._received += 1
        if self._abandoned:  # in flight before our cancel reached the broker (rule 7)
            self.channel._requeue_nowait(delivery, "requeued: its consumer was abandoned")
            return
        self._buffer.append(delivery)
        self._wake_one()

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _drop_settled(self) -> None:
        """Forget buffered deliveries the broker took back (``basic.recover``)."""
        if not self.no_ack:
            self._buffer = deque(d for d in self._buffer if not d.settled)

    def _end(self, error: BaseException | None, *, channel_closed: bool = False) -> None:
        """No more deliveries: cancelled, or the channel/connection closed (with ``error``)."""
        self._active = False
        self._finished = True
        if channel_closed and not self.no_ack:
            # The broker requeued every unacked delivery of the channel; handing these out now
            # would only produce duplicates whose ack must fail.
            self._buffer.clear()
        if error is not None and self._error is None:
            self._error = error
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:  # rule 6: every waiting task sees the end
            if not waiter.done():
                waiter.set_result(None)

    def __repr__(self) -> str:
        return (f"<Consumer {self.consumer_tag!r} on queue {self.queue!r} "
                f"channel={self.channel.number} buffered={len(self._buffer)}>")


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
