"""What a native server says first, so a client can tell a stranger at once (``codec.py``
rule 8).

A native server's first frame is HelloOk or ConnectionClose: a small msgpack array, well under
the minimum frame size. Or it answers with its preamble, refusing our version. Anything else —
an HTTP response, an SSH banner, an AMQP protocol header — means the port belongs to something
else, and the client says so, quoting what it sent, instead of reporting a nonsense frame size
or waiting for a frame that never completes.

Rules:

1. Four bytes decide, five at most: ``MBRK`` (our preamble: a minibroker refusing our version),
   ``AMQP`` (an AMQP 0-9-1 port), a length prefix above the minimum frame size, or a fifth
   byte that cannot begin a msgpack array are each a :class:`FrameError`.
2. The error quotes the first bytes (48: their ``repr`` still fits a ShortStr reply text).
"""

from __future__ import annotations

from minibroker.errors import FrameError

__all__ = ["QUOTED", "check_greeting"]

#: The bytes a msgpack array can begin with: fixarray, array 16, array 32.
_ARRAY_HEADS = frozenset((*range(0x90, 0xA0), 0xDC, 0xDD))
#: How many of a stranger's bytes an error quotes (rule 2).
QUOTED = 48


def check_greeting(received: bytes, more: bool, *, preamble: bytes,
                   min_frame_size: int) -> None:
    """Raise unless ``received`` (at least 4 of the first bytes; ``more``: there are more
    than these) can begin what a native server sends first (rule 1)."""
    head = received[:5]
    size = int.from_bytes(head[:4], "big")
    if head[:4] == preamble[:4]:
        raise FrameError(f"the server refused our protocol version and answered with "
                         f"{received[:8]!r}")
    if head[:4] == b"AMQP":
        raise FrameError(f"this is not a minibroker: it sent the AMQP protocol header "
                         f"{received[:8]!r}, so it is an AMQP 0-9-1 port (RabbitMQ's, or "
                         f"minibroker's AMQP-only port): use an AMQP client there, or "
                         f"minibroker's native port")
    if size > min_frame_size or (len(head) == 5 and head[4] not in _ARRAY_HEADS):
        raise FrameError(f"this is not a minibroker: it sent {received[:QUOTED]!r}"
                         f"{'...' if more or len(received) > QUOTED else ''}")
