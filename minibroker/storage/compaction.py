"""Rewriting a message segment without its garbage: bytes in, bytes out, no I/O.

The worker thread runs this on a sealed segment with a :class:`~minibroker.storage.segments.
Compaction` decided on the loop thread, then installs the result (write-temp, sync, rename,
sync directory).

Rules:

1. A PUBLISH entry is copied when its ``msg_id`` is in the keep-set of its incarnation. If the
   message was requeued, its delivery count is folded into the copy, which marks it
   redelivered: the REQUEUE tombstone is then no longer needed for it.
2. A tombstone group is copied when the segment it names still exists, is not this one, and
   its floor is not above the generation the tombstone names (``segments.py`` rules 2, 4).
3. Records keep their sequence numbers and their order; a record left empty is dropped.
4. Damaged stretches (already reported by recovery) are not copied.
"""

from __future__ import annotations

from typing import Any

import msgpack

from minibroker.storage.intents import PUBLISH, TYPES
from minibroker.storage.records import (
    FILE_HEADER,
    KIND_MESSAGES,
    RecordScanner,
    encode_file_header,
    encode_record,
)
from minibroker.storage.segments import Compaction

__all__ = ["compact_segment"]

_GONE = 1 << 64  # the floor of a segment that no longer exists: no tombstone reaches it


def compact_segment(data: bytes, job: Compaction) -> bytes:
    """The compacted image of segment ``job.number`` (whose current bytes are ``data``)."""
    out = [encode_file_header(KIND_MESSAGES, job.number, job.generation)]
    for _offset, kind, seq, payload in RecordScanner(data, FILE_HEADER.size, types=TYPES):
        groups: list[Any] = msgpack.unpackb(payload)
        if kind == PUBLISH:
            kept = _publishes(groups, job)
        else:
            kept = [group for group in groups
                    if group[1] != job.number and group[2] >= job.floors.get(group[1], _GONE)]
        if kept:
            out.append(encode_record(kind, seq, msgpack.packb(kept)))
    return b"".join(out)


def _publishes(groups: list[Any], job: Compaction) -> list[Any]:
    kept_groups = []
    for incarnation, entries in groups:
        keep = job.keep.get(incarnation)
        if not keep:
            continue
        requeued = job.requeued.get(incarnation, {})
        kept = []
        for entry in entries:
            msg_id = entry[0]
            if msg_id not in keep:
                continue
            count = requeued.get(msg_id)
            if count is not None:  # rule 1: fold the requeue into the copy
                entry = [*entry[:5], entry[5] if len(entry) > 5 else None, count]
            kept.append(entry)
        if kept:
            kept_groups.append([incarnation, kept])
    return kept_groups
