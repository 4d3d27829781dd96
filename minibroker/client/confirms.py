"""Publisher confirms on the client side: which publish each ``ConfirmAck``/``Nack`` settles.

Rules:

1. After ``confirm.select`` the broker numbers the channel's publishes 1, 2, 3 ... in the order
   it receives them; a ``ConfirmAck``/``ConfirmNack`` names one number, or every number up to it
   when ``multiple`` (RabbitMQ's publisher-confirms extension; the native session coalesces runs
   of acks that way). Unsettled publishes are kept in number order, so settling a ``multiple``
   confirm pops from the front.
2. RabbitMQ's docs: "If the message is also published as mandatory, the basic.return is sent to
   the client before basic.ack". A ``Return`` carries no publish number and confirms may be
   coalesced, so a return is matched to the *oldest* unconfirmed mandatory publish with the same
   exchange, routing key and body (the broker returns messages in publish order). That publish
   then fails with :class:`MessageReturned` when its confirm arrives.
3. A publish whose waiting task was cancelled is still settled (and forgotten) normally.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable

from minibroker.client.delivery import ReturnedMessage
from minibroker.errors import MessageReturned, PublishNacked

__all__ = ["ConfirmTracker"]


class ConfirmTracker:
    """The unconfirmed publishes of one channel in confirm mode."""

    __slots__ = ("_loop", "_mandatory", "_returned", "_unconfirmed", "next_seq")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        #: The number the broker will give our next publish.
        self.next_seq = 1
        self._unconfirmed: OrderedDict[int, asyncio.Future[None] | _Batch] = OrderedDict()
        # Unconfirmed mandatory publishes (rule 2): seq -> (exchange, routing_key, body).
        self._mandatory: OrderedDict[int, tuple[str, str, bytes]] = OrderedDict()
        self._returned: dict[int, ReturnedMessage] = {}

    def track(self, exchange: str, routing_key: str, body: bytes,
              mandatory: bool) -> asyncio.Future[None]:
        """Number the publish about to be written; the future settles with its confirm."""
        seq = self.next_seq
        self.next_seq = seq + 1
        confirmed: asyncio.Future[None] = self._loop.create_future()
        self._unconfirmed[seq] = confirmed
        if mandatory:
            self._mandatory[seq] = (exchange, routing_key, body)
        return confirmed

    def track_batch(self, count: int) -> asyncio.Future[None]:
        """Number the ``count`` publishes of a batch; the future settles when all are
        confirmed (with ``PublishNacked`` naming the first refused one)."""
        first = self.next_seq
        self.next_seq = first + count
        confirmed: asyncio.Future[None] = self._loop.create_future()
        batch = _Batch(confirmed, count)
        unconfirmed = self._unconfirmed
        for seq in range(first, first + count):
            unconfirmed[seq] = batch
        return confirmed

    def on_confirm(self, tag: int, *, multiple: bool, ack: bool) -> None:
        unconfirmed = self._unconfirmed
        settled: list[tuple[int, asyncio.Future[None] | _Batch]] = []
        if multiple:
            while unconfirmed:
                seq = next(iter(unconfirmed))
                if seq > tag:
                    break
                settled.append((seq, unconfirmed.popitem(last=False)[1]))
        else:
            future = unconfirmed.pop(tag, None)
            if future is not None:
                settled.append((tag, future))
        mandatory, returned = self._mandatory, self._returned
        for seq, future in settled:
            if mandatory:
                mandatory.pop(seq, None)
            message = returned.pop(seq, None) if returned else None
            if isinstance(future, _Batch):
                future.settle(seq, ack)
                continue
            if future.done():  # rule 3
                continue
            if not ack:
                future.set_exception(PublishNacked(seq))
            elif message is not None:
                future.set_exception(MessageReturned(message))
            else:
                future.set_result(None)

    def on_return(self, message: ReturnedMessage) -> bool:
        """Attach a returned message to its publish (rule 2); False when none matches."""
        key = (message.exchange, message.routing_key, message.body)
        for seq, published in self._mandatory.items():
            if published == key:
                del self._mandatory[seq]
                self._returned[seq] = message
                return True
        return False

    def fail_all(self, make_error: Callable[[], BaseException]) -> None:
        """The channel closed: every unconfirmed publish fails."""
        unconfirmed, self._unconfirmed = self._unconfirmed, OrderedDict()
        self._mandatory.clear()
        self._returned.clear()
        for future in unconfirmed.values():
            if not future.done():
                future.set_exception(make_error())

    def __len__(self) -> int:
        return len(self._unconfirmed)


class _Batch:
    """The publishes of one ``PublishBatch``: one future for all of them."""

    __slots__ = ("future", "left", "refused")

    def __init__(self, future: asyncio.Future[None], count: int) -> None:
        self.future = future
        self.left = count
        self.refused: int | None = None

    def settle(self, seq: int, ack: bool) -> None:
        if not ack and self.refused is None:
            self.refused = seq
        self.left -= 1
        if self.left == 0 and not self.future.done():
            if self.refused is None:
                self.future.set_result(None)
            else:
                self.future.set_exception(PublishNacked(self.refused))

    def done(self) -> bool:
        return self.future.done()

    def set_exception(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)
