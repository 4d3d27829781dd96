"""Publisher confirms on the native wire, server side: runs of acks sent as one frame.

RabbitMQ's publisher-confirms extension lets ``multiple`` cover "all messages up to and
including the one with the delivery tag". :class:`ConfirmCoalescer` uses that to send a run of
positive confirms of one channel as one ``ConfirmAck(multiple=True)``.

Rules:

1. A confirm is held only when it extends the channel's confirmed prefix: every tag up to the
   run's last one is settled, so one ``multiple`` frame means exactly what the single ones did.
   Anything else (a nack, a tag out of order) goes out at once, as its own frame.
2. The owner sends ``take(channel)`` before any other frame of that channel (``take(0)``: every
   channel), and at the latest when it writes to the socket, so nothing is reordered or late.
3. A channel opened again numbers its publishes from 1: :meth:`reset` forgets it.
"""

from __future__ import annotations

from minibroker.protocols.native import frames as f

__all__ = ["ConfirmCoalescer"]


class ConfirmCoalescer:
    """Per-channel runs of consecutive positive confirms, held back to be sent as one frame."""

    __slots__ = ("_next", "pending")

    def __init__(self) -> None:
        #: Channel -> the tag whose confirm would extend the settled prefix 1..tag-1.
        self._next: dict[int, int] = {}
        #: Channel -> (first, last) tag of the run held back.
        self.pending: dict[int, tuple[int, int]] = {}

    def reset(self, channel: int) -> None:
        """A channel was (re)opened (rule 3)."""
        self._next.pop(channel, None)
        self.pending.pop(channel, None)

    def add(self, channel: int, tag: int, multiple: bool, ack: bool) -> f.Frame | None:
        """The frame to send now, or None when the confirm joined a held run (rule 1)."""
        expected = self._next.get(channel, 1)
        if ack and (tag == expected or (multiple and tag > expected)):
            # It extends the confirmed prefix (a multiple confirm covers every tag up to its
            # own, and every tag before ``expected`` is confirmed already): hold it in the run.
            self._next[channel] = tag + 1
            run = self.pending.get(channel)
            self.pending[channel] = (run[0] if run else expected, tag)
            return None
        if tag >= expected and (multiple or tag == expected):
            self._next[channel] = tag + 1
        confirm = f.ConfirmAck if ack else f.ConfirmNack
        return confirm(channel, tag, multiple)

    def take(self, channel: int) -> list[f.Frame]:
        """The held runs of ``channel`` (of every channel when it is 0) as frames (rule 2)."""
        pending = self.pending
        frames: list[f.Frame] = []
        for number in list(pending) if channel == 0 else [channel] if channel in pending else []:
            first, last = pending.pop(number)
            frames.append(f.ConfirmAck(number, last, multiple=last != first))
        return frames
