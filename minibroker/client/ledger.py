"""The ledger of unsettled deliveries: what a channel has received and not yet settled, kept as
the broker keeps it.

Rules:

1. Every delivery handed out with an acknowledgement pending (``basic.deliver`` and
   ``basic.get-ok``) is recorded by its delivery tag when its frame is decoded; a dict keeps
   them in tag order (the broker hands out tags in increasing order on a channel).
2. An ack, nack or reject takes exactly what the broker will take: one tag, every tag up to and
   including it (``multiple``), or all of them (tag 0 with ``multiple``). Each taken delivery is
   marked settled, saying how, so a later settle of it is refused on the spot.
3. A tag that is not in the ledger — never delivered on this channel, already settled (perhaps
   by a ``multiple`` of a later one), requeued by ``basic.recover`` — raises
   :class:`ClientError` where the broker would close the channel with 406 PRECONDITION_FAILED
   "unknown delivery tag" (RabbitMQ does so for a ``multiple`` whose own tag is settled, too).
4. The ledger only records; sending the frames is the channel's work.
"""

from __future__ import annotations

from minibroker.client.delivery import Delivery
from minibroker.errors import ClientError

__all__ = ["Ledger"]

_PAST = {"ack": "acked", "nack": "nacked", "reject": "rejected"}


class Ledger:
    """The unsettled deliveries of one channel (``channel.py`` rule 6)."""

    __slots__ = ("_channel", "_unacked")

    def __init__(self, channel: int) -> None:
        self._channel = channel
        self._unacked: dict[int, Delivery] = {}

    def __len__(self) -> int:
        return len(self._unacked)

    def record(self, delivery: Delivery) -> Delivery:
        """Rule 1: unsettled until acked, nacked or rejected (unless ``no_ack``)."""
        if not delivery.no_ack:
            self._unacked[delivery.delivery_tag] = delivery
        return delivery

    def settle(self, delivery_tag: int, multiple: bool, verb: str) -> None:
        """Rule 2-3: take what an ack/nack/reject of ``delivery_tag`` settles, or raise."""
        unacked = self._unacked
        past = _PAST[verb]
        if multiple and delivery_tag == 0:
            # "If the multiple field is 1, and the delivery tag is zero, this indicates
            # acknowledgement of all outstanding messages."
            settled = list(unacked.values())
            unacked.clear()
            for delivery in settled:
                delivery._settled = f"{past} by {verb}(0, multiple=True)"
            return
        named = unacked.pop(delivery_tag, None)
        if named is None:
            raise ClientError(
                f"cannot {verb} delivery tag {delivery_tag}: no delivery with that tag awaits "
                f"settlement on channel {self._channel} (the broker would close the channel "
                f"with 406 PRECONDITION_FAILED - unknown delivery tag {delivery_tag})")
        named._settled = past
        if multiple:
            earlier = []
            for tag in unacked:  # insertion order is tag order (rule 1)
                if tag > delivery_tag:
                    break
                earlier.append(tag)
            how = f"{past} by {verb}(multiple=True) of delivery {delivery_tag}"
            for tag in earlier:
                unacked.pop(tag)._settled = how

    def take(self, delivery: Delivery, how: str) -> bool:
        """Settle one delivery the channel gives back itself; False if it was not unsettled."""
        if self._unacked.pop(delivery.delivery_tag, None) is None:
            return False
        delivery._settled = how
        return True

    def void(self, how: str) -> int:
        """Every unsettled delivery was requeued by the broker: none can be settled any more.
        Returns how many there were."""
        voided, self._unacked = self._unacked, {}
        for delivery in voided.values():
            delivery._settled = how
        return len(voided)

    def forget(self) -> None:
        """The channel is closed: the broker requeued them with it."""
        self._unacked.clear()
