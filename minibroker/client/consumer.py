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
   another consumer should get them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from minibroker.errors import ClientError
from minibroker.message import FieldTable
from minibroker.protocols.native import frames as f

if TYPE_CHECKING:
    from minibroker.client.channel import Channel
    from minibroker.client.delivery import Delivery

__all__ = ["Consumer", "ConsumerStatistics"]


@dataclass(frozen=True, slots=True)
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
        self._waiter: asyncio.Future[None] | None = None
        self._started = False
        self._active = False
        self._finished = False  # no delivery will ever be added again
        self._error: BaseException | None = None
        self._received = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> Consumer:
        """Send ``basic.consume`` and wait for consume-ok (once)."""
        if self._started:
            return self
        self._started = True
        frame = f.Consume(self.channel.number, self.queue, self.consumer_tag, self.no_ack,
                          self.exclusive, self.arguments)
        await self.channel._call(frame, (f.ConsumeOk,), self._on_consume_ok)
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
        """``basic.cancel``: the broker stops delivering; buffered deliveries stay iterable."""
        if not self._active or self.channel.is_closed:
            return
        await self.channel._call(
            f.Cancel(self.channel.number, self.consumer_tag), (f.CancelOk,), self._on_cancel_ok
        )

    async def aclose(self) -> None:
        """Cancel, then requeue the deliveries the application has not taken (rule 5)."""
        await self.cancel()
        leftover, self._buffer = self._buffer, deque()
        if leftover and not self.no_ack and not self.channel.is_closed:
            for delivery in leftover:
                await delivery.reject(requeue=True)

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
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

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

    def _on_cancel_ok(self, frame: f.Frame) -> None:
        self.channel._consumers.pop(self.consumer_tag, None)
        self._end(None)

    def _push(self, delivery: Delivery) -> None:
        self._buffer.append(delivery)
        self._received += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __repr__(self) -> str:
        return (f"<Consumer {self.consumer_tag!r} on queue {self.queue!r} "
                f"channel={self.channel.number} buffered={len(self._buffer)}>")
