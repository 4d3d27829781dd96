"""Streams without subscriptions: the pull model (Kafka's fetch) and the offsets named consumers
store in the broker. No I/O. The native protocol's ``StreamRead``, ``OffsetCommit`` and
``OffsetQuery`` frames reach these handlers; AMQP 0-9-1 has no such methods.

Rules:

1. ``ReadStream`` returns at most ``max_messages`` messages from where its arguments say
   (``x-stream-offset``, ``x-stream-filter`` and ``x-stream-match-unfiltered``, read as a
   consumer's: ``streamargs.py``), stopping after the message that reaches ``max_bytes`` of
   bodies, and the offset to read from next. It changes nothing but the counters: no
   consumer, no delivery tag, nothing to acknowledge. A read past the end returns nothing and
   the offset it was given (or the end, when it was given ``next``). A positive
   ``reply_bytes`` also stops it before the estimated reply (bodies, exchanges, routing keys
   and ``record_bytes`` a message) would pass that budget, the first message excepted.
   A ``packed`` read of a stream that stores its messages encoded (a durable stream's
   files, ``streamlog.py`` rule 8) answers with runs of that encoding instead, under the
   same limits (the runs' encoded size against ``reply_bytes``), and ends where they end:
   the messages not yet written, if any, are the next read's.
2. A stream stores at most :data:`MAX_NAMES` consumer offsets (``CommitOffset``); a commit
   replaces the name's offset, whatever it was. ``QueryOffset`` answers ``None`` for a name
   never committed. The offsets live and die with the stream; a durable stream's log keeps
   them across restarts (``streamlog.py`` rule 7).
3. A queue that is not a stream is refused with 406, naming it.
"""

from __future__ import annotations

from minibroker.core import commands as c
from minibroker.core.effects import OffsetOk, Outcome, StreamReadOk
from minibroker.core.generations import STREAM_FILTERING
from minibroker.core.queues import Queue
from minibroker.core.state import BrokerState
from minibroker.core.streamargs import consumer_spec
from minibroker.core.streams import StreamQueue, Streams
from minibroker.core.topology import queue_text
from minibroker.errors import PreconditionFailed
from minibroker.message import Message

__all__ = ["MAX_NAMES", "StreamReads"]

#: Consumer offsets a stream keeps (rule 2).
MAX_NAMES = 4096
#: ``reply_bytes`` of 0: no budget (rule 1).
_NO_BUDGET = 1 << 62


class StreamReads:
    """``ReadStream``, ``CommitOffset`` and ``QueryOffset``."""

    def __init__(self, state: BrokerState, streams: Streams) -> None:
        self.state = state
        self.streams = streams

    def _stream(self, command: c.ReadStream | c.CommitOffset | c.QueryOffset) -> StreamQueue:
        queue: Queue = self.state.usable_queue(self.state.channel(command), command.queue)
        if not isinstance(queue, StreamQueue):
            raise PreconditionFailed(f"{queue_text(queue.name)} is not a stream")  # rule 3
        return queue

    def read(self, command: c.ReadStream, now: float) -> Outcome:
        """Rule 1."""
        queue = self._stream(command)
        spec = consumer_spec(queue.name, command.arguments,
                             filtering=self.state.profile[STREAM_FILTERING])
        log = queue.stream
        reader = log.reader(log.seek(spec.offset, self.streams.wall_time(now)), spec.filter,
                            spec.match_unfiltered)
        messages: list[tuple[int, Message]] = []
        size = 0
        limit, max_bytes = command.max_messages, command.max_bytes
        # Rule 1's reply budget: a message that would pass it stays for the next read (never
        # the first, so a read always moves on). Reading only what the frame takes doubled the
        # native pull replay: the adapter used to cut half of each 5,000-message read.
        budget = command.reply_bytes if command.reply_bytes > 0 else _NO_BUDGET
        envelope = command.record_bytes
        wire = 0
        full = False
        if command.packed and spec.filter is None:
            runs = reader.take_packed(limit, max_bytes, budget)
            if runs:  # rule 1: the stored encoding, passed on undecoded
                count = sum(run[1] for run in runs)
                queue.delivered += count
                self.state.delivered += count
                return Outcome(StreamReadOk(reader.offset, (), tuple(runs)))
        while len(messages) < limit and size < max_bytes and not full:
            if spec.filter is None:  # whole runs of a segment at a time
                offset, run = reader.take_run(limit - len(messages))
                if not run:
                    break
                for message in run:
                    body = len(message.body)
                    wire += body + envelope + len(message.exchange) + len(message.routing_key)
                    if wire > budget and messages:
                        full = True
                        break
                    messages.append((offset, message))
                    offset += 1
                    size += body
                    if size >= max_bytes:
                        break
                reader.offset = offset
                continue
            item = reader.take()
            if item is None:
                break
            message = item[1]
            wire += (len(message.body) + envelope + len(message.exchange)
                     + len(message.routing_key))
            if wire > budget and messages:
                reader.offset = item[0]  # not taken: the next read starts with it
                break
            messages.append(item)
            size += len(message.body)
        queue.delivered += len(messages)
        self.state.delivered += len(messages)
        return Outcome(StreamReadOk(reader.offset, tuple(messages)))

    def commit(self, command: c.CommitOffset, now: float) -> Outcome:
        """Rule 2."""
        queue = self._stream(command)
        committed = queue.committed
        if command.name not in committed and len(committed) >= MAX_NAMES:
            raise PreconditionFailed(
                f"{queue_text(queue.name)} stores at most {MAX_NAMES} consumer offsets"
            )
        committed[command.name] = command.offset
        queue.stream.store_offset(command.name, command.offset)  # a durable log keeps it
        return Outcome(OffsetOk(command.offset))

    def query(self, command: c.QueryOffset, now: float) -> Outcome:
        queue = self._stream(command)
        return Outcome(OffsetOk(queue.committed.get(command.name)))
