"""Is the peer still there, and still making progress? Two questions the event loop does not
answer by itself.

Rules:

1. Slow senders (:class:`FrameWatch`): a connection that began a frame and has not completed
   it within ``ServerConfig.frame_timeout`` seconds is closed by the server's sweep. Any byte
   is not progress; a completed frame is. After each processed read the session reports how
   many received bytes are not frames yet (``tail``); the frame in progress is dated from the
   first read that left a tail after completing a frame. While the broker itself holds the
   connection's reading, the wait is ours, not the peer's: the watch restarts.
2. Hung-up peers (:func:`peer_hung_up`): the event loop does not watch a socket whose reading
   is paused, so a blocked publisher that vanished would keep its bytes, and the alarm, until
   a heartbeat found out (never, with heartbeats off). The server's sweep asks such sockets
   with a zero-timeout ``poll``: reset (what it sent is lost anyway), or shut down with nothing
   left for us to read (``FIONREAD``), means gone.
3. No clock is read here: ``now`` is passed in (the server's clock).
"""

from __future__ import annotations

import asyncio
import select
import struct
from collections.abc import Callable

try:
    import fcntl
    import termios
except ImportError:  # pragma: no cover - not on Windows
    fcntl = termios = None  # type: ignore[assignment]

__all__ = ["FrameWatch", "peer_hung_up"]


class FrameWatch:
    """Rule 1, for one connection."""

    __slots__ = ("_consumed", "received", "stalled_since")

    def __init__(self) -> None:
        #: Bytes received in total.
        self.received = 0
        #: Bytes that had become frames at the last processed read.
        self._consumed = 0
        #: Since when a frame has been incomplete (None: no frame in progress).
        self.stalled_since: float | None = None

    def after_read(self, tail: int, now: Callable[[], float]) -> None:
        """A read was processed; ``tail`` received bytes are not a frame yet."""
        if not tail:
            self.stalled_since = None
            self._consumed = self.received
            return
        consumed = self.received - tail
        if consumed != self._consumed or self.stalled_since is None:
            self._consumed = consumed  # a frame completed: the next one starts now
            self.stalled_since = now()

    def expired(self, now: float, timeout: float, *, held: bool) -> bool:
        """Has the frame in progress taken longer than ``timeout`` seconds (0: never)?"""
        if self.stalled_since is None:
            return False
        if held:
            self.stalled_since = now  # its wait is ours
            return False
        return bool(timeout) and now - self.stalled_since > timeout

    def forget(self) -> None:
        self.stalled_since = None


_POLL = fcntl is not None and hasattr(select, "poll")
_RESET = select.POLLHUP | select.POLLERR if _POLL else 0
_SHUT = getattr(select, "POLLRDHUP", 0)


def peer_hung_up(transport: asyncio.BaseTransport) -> bool:
    """Rule 2: is the peer of a socket we do not read gone?"""
    sock = transport.get_extra_info("socket")
    if not _POLL or sock is None:
        return False
    fd = sock.fileno()
    if fd < 0:
        return False
    poller = select.poll()
    poller.register(fd, _RESET | _SHUT)
    ready = poller.poll(0)
    mask = ready[0][1] if ready else 0
    if mask & _RESET:
        return True
    if not mask & _SHUT:
        return False
    try:  # shut down: gone once we have read everything it sent
        unread = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return False
    return bool(unread == 0)
