"""Streams in the native client: where to start reading, the pull model, stored offsets and
batched publishing. ``Channel`` (``channel.py``) offers them as methods; this module holds what
they share.

Rules:

1. An offset is what ``x-stream-offset`` takes: ``"first"``, ``"last"``, ``"next"``, an
   ``int``, a ``datetime`` (the first chunk stamped at or after it) or a ``timedelta`` (that long
   ago, sent as whole seconds: ``"90s"``); :func:`offset_argument` converts and refuses
   anything else before a frame is sent.
2. :meth:`Channel.read` returns a :class:`StreamBatch`: the messages (each with its offset)
   and ``next_offset``, where the next read continues. No consumer, no acks.
3. :meth:`Channel.publish_batch` sends one ``PublishBatch`` frame; in confirm mode it returns
   once the broker confirmed every message of it (one confirm covers a whole batch the broker
   took; a refused message fails the call with :class:`~minibroker.errors.PublishNacked`).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from minibroker.client.delivery import MessageFields
from minibroker.message import FieldTable, FieldValue, Properties
from minibroker.protocols.building import frozen_builder

__all__ = ["Offset", "StreamBatch", "StreamMessage", "batch_messages", "build_stream_message",
           "messages_of", "offset_argument", "read_arguments"]

#: What a stream position may be given as (rule 1).
Offset = str | int | datetime.datetime | datetime.timedelta


def offset_argument(offset: Offset) -> FieldValue:
    """The ``x-stream-offset`` value for ``offset`` (rule 1)."""
    if isinstance(offset, bool):
        raise TypeError("offset must be first, last, next, an int, a datetime or a timedelta")
    if isinstance(offset, datetime.timedelta):
        seconds = int(offset.total_seconds())
        if seconds <= 0:
            raise ValueError(f"offset {offset!r}: an interval must be at least one second")
        return f"{seconds}s"
    if isinstance(offset, datetime.datetime):
        return offset if offset.tzinfo else offset.replace(tzinfo=datetime.UTC)
    if isinstance(offset, int | str):
        return offset
    raise TypeError(f"offset must be first, last, next, an int, a datetime or a timedelta, "
                    f"not {type(offset).__name__}")


def read_arguments(offset: Offset, filter: str | Iterable[str] | None,
                   match_unfiltered: bool) -> FieldTable:
    """The arguments of a stream consumer or read: offset and filter."""
    arguments: FieldTable = {"x-stream-offset": offset_argument(offset)}
    if filter is not None:
        arguments["x-stream-filter"] = [filter] if isinstance(filter, str) else list(filter)
        arguments["x-stream-match-unfiltered"] = match_unfiltered
    return arguments


@dataclass(frozen=True, slots=True)
class StreamMessage(MessageFields):
    """A message read from a stream with :meth:`Channel.read`."""

    offset: int
    exchange: str
    routing_key: str
    properties: Properties
    body: bytes


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """What one read returned (rule 2)."""

    messages: list[StreamMessage]
    #: Where the next read continues.
    next_offset: int

    def __len__(self) -> int:
        return len(self.messages)


#: ``StreamMessage(...)`` for decoded reads (``protocols/building.py``: a quarter of the cost).
build_stream_message = frozen_builder(StreamMessage)


def messages_of(chunks: list[list[Any]]) -> list[StreamMessage]:
    """The messages of a ``StreamFetchOk``'s runs, decoded and checked by the codec
    (``protocols/native/runs.py``): each run's entries at consecutive offsets."""
    messages: list[StreamMessage] = []
    for first, entries in chunks:
        messages += [build_stream_message(offset, *entry)
                     for offset, entry in enumerate(entries, first)]
    return messages


def batch_messages(
    messages: Iterable[bytes | str | tuple[bytes | str, Properties]], properties: Properties,
) -> list[tuple[Properties, bytes]]:
    """``publish_batch``'s messages as the frame carries them: a body alone takes the call's
    ``properties``, a (body, properties) pair its own; a ``str`` body is sent as UTF-8."""
    batch: list[tuple[Properties, bytes]] = []
    for item in messages:
        body, own = item if isinstance(item, tuple) else (item, properties)
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            raise TypeError(f"a message body must be bytes or str, not {type(body).__name__}")
        batch.append((own, body))
    return batch
