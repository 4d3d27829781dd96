"""How ``--trace`` shows frames: one compact line per frame, the same for every protocol.

Rules:

1. A line is ``<peer> #<connection id> <- ch<N> <frame>`` for a frame received, ``->`` for one
   sent. ``<frame>`` is the frame's name as its protocol spells it — AMQP 0-9-1's wire names
   (``basic.deliver``, ``confirm.select-ok``), the native protocol's frame names (``Deliver``)
   — then its fields, ``name=value``, in wire order.
2. A body shows its size and its first 64 bytes; message properties only those present; a
   secret (a native Hello's password, an AMQP login response) only as ``'***'``.
3. Nothing here runs unless tracing is on: the untraced hot path never builds a line.
4. A native message sent in Body frames shows as its one message frame, whole: the codec
   joins the parts before anyone sees them (``protocols/native/parts.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from minibroker.message import EMPTY_PROPERTIES, Properties

__all__ = ["BODY_PREVIEW", "body_text", "frame_text", "log_frame", "properties_text", "trace_log"]

trace_log = logging.getLogger("minibroker.trace")

#: Bytes of a body shown in a trace line (rule 2).
BODY_PREVIEW = 64
_ARROWS = {"in": "<-", "out": "->"}


def log_frame(peer: str, connection_id: int, direction: str, channel: int, text: str) -> None:
    """Log one frame (rule 1); ``direction`` is ``"in"`` or ``"out"``."""
    trace_log.info("%s #%d %s ch%d %s", peer, connection_id, _ARROWS[direction], channel, text)


def frame_text(name: str, fields: Iterable[tuple[str, object]]) -> str:
    """``name(field=value, ...)`` with bodies, properties and secrets shown by rule 2."""
    parts: list[str] = []
    for field, value in fields:
        if field == "body" and isinstance(value, bytes | bytearray | memoryview):
            parts.append(f"body={body_text(bytes(value))}")
        elif field == "properties" and isinstance(value, Properties):
            if value is not EMPTY_PROPERTIES:
                parts.append(f"properties={properties_text(value)}")
        elif field in ("password", "response") and value:
            parts.append(f"{field}='***'")
        else:
            parts.append(f"{field}={value!r}")
    return f"{name}({', '.join(parts)})"


def body_text(body: bytes) -> str:
    more = "..." if len(body) > BODY_PREVIEW else ""
    return f"<{len(body)} bytes {body[:BODY_PREVIEW]!r}{more}>"


def properties_text(properties: Properties) -> str:
    present = (f"{name}={getattr(properties, name)!r}"
               for name in properties.__dataclass_fields__
               if getattr(properties, name) is not None)
    return f"({', '.join(present)})"
