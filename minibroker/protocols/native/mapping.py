"""The native protocol's mapping: frames to core commands, core replies and effects to frames.

Pure functions, no state and no I/O: the server's native adapter (``server/native_adapter.py``)
runs them around ``Broker.handle``. Connection and channel lifecycle frames (``Hello``,
``Tune``, ``ChannelOpen``, ``ChannelClose`` ...) are the business of the protocol's
connection object (``connection.py``) and do not appear here.

Rules:

1. Each request frame maps to exactly one core command (:func:`command_for`) and its answer to
   exactly one reply frame, or none (:func:`reply_for`). Field names are the same on both sides
   (AMQP vocabulary), so the mapping is a copy; an empty ``arguments`` table becomes ``None``.
2. ``Publish`` builds the core :class:`~minibroker.message.Message` around the very
   ``bytes`` object the codec produced: the body is never copied (the hot path).
3. Every effect maps to one frame (:func:`frame_for_effect`); a ``Confirm`` becomes
   ``ConfirmAck`` or ``ConfirmNack`` (runs of them may leave as one frame: ``confirms.py``).
   A ``DeliverRun`` is not one frame but the ``Deliver`` frames of its single deliveries
   (``DeliverRun.deliveries()``), which the connection encodes and writes at once
   (``NativeConnection.send_deliver_run``).
4. Texts that travel as ``ShortStr`` are cut to 255 UTF-8 bytes (``connection.short``), never
   refused: an error text must not turn into a second error.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any

from minibroker.core import commands as c
from minibroker.core import effects as e
from minibroker.message import Message
from minibroker.protocols.native import frames as f
from minibroker.protocols.native import streamframes as sf
from minibroker.protocols.native.connection import short
from minibroker.protocols.tracing import frame_text
from minibroker.valueclass import frozen_builder, mutable_twin

__all__ = ["COMMANDS", "build_message", "command_for", "describe", "frame_for_effect", "reply_for"]

# --- frame -> command ----------------------------------------------------------------------

_ToCommand = Callable[[Any, int], c.Command]


def _publish(frame: f.Publish, connection: int) -> c.Publish:
    message = Message(frame.exchange, frame.routing_key, frame.body, frame.properties)
    return c.Publish(connection, frame.channel, message, frame.mandatory)


def _publish_batch(frame: sf.PublishBatch, connection: int) -> c.PublishMany:
    """A batch's messages, each made as :func:`~minibroker.valueclass.mutable_twin` and its
    stores inline, then relabelled ``Message``: no call a message (native batched append,
    in one process: 465 -> 153 ns a message, ``docs/benchmarks.md``, "Native stream
    speed")."""
    exchange, routing_key, mandatory = frame.exchange, frame.routing_key, frame.mandatory
    messages: list[Message] = []
    append, twin, new = messages.append, _MESSAGE_TWIN, object.__new__
    for properties, body in frame.messages:
        message = new(twin)
        message.exchange = exchange
        message.routing_key = routing_key
        message.body = body
        message.properties = properties
        message.__class__ = Message
        append(message)
    return c.PublishMany(connection, frame.channel, tuple(zip(messages, repeat(mandatory))))


_MESSAGE_TWIN = mutable_twin(Message)

#: ``Message(...)`` without the frozen ``__init__``'s checked stores, for the adapter's
#: publishes (``valueclass.frozen_builder``).
build_message = frozen_builder(Message)


#: Request frame type -> builder of the core command (the connection id is the session's).
COMMANDS: dict[type[f.Frame], _ToCommand] = {
    f.ExchangeDeclare: lambda fr, cid: c.DeclareExchange(
        cid, fr.channel, fr.exchange, fr.type, fr.passive, fr.durable, fr.auto_delete,
        fr.internal, fr.arguments or None,
    ),
    f.ExchangeDelete: lambda fr, cid: c.DeleteExchange(cid, fr.channel, fr.exchange, fr.if_unused),
    f.ExchangeBind: lambda fr, cid: c.BindExchange(
        cid, fr.channel, fr.destination, fr.source, fr.routing_key, fr.arguments or None
    ),
    f.ExchangeUnbind: lambda fr, cid: c.UnbindExchange(
        cid, fr.channel, fr.destination, fr.source, fr.routing_key, fr.arguments or None
    ),
    f.QueueDeclare: lambda fr, cid: c.DeclareQueue(
        cid, fr.channel, fr.queue, fr.passive, fr.durable, fr.exclusive, fr.auto_delete,
        fr.arguments or None,
    ),
    f.QueueBind: lambda fr, cid: c.BindQueue(
        cid, fr.channel, fr.queue, fr.exchange, fr.routing_key, fr.arguments or None
    ),
    f.QueueUnbind: lambda fr, cid: c.UnbindQueue(
        cid, fr.channel, fr.queue, fr.exchange, fr.routing_key, fr.arguments or None
    ),
    f.QueuePurge: lambda fr, cid: c.PurgeQueue(cid, fr.channel, fr.queue),
    f.QueueDelete: lambda fr, cid: c.DeleteQueue(
        cid, fr.channel, fr.queue, fr.if_unused, fr.if_empty
    ),
    f.Qos: lambda fr, cid: c.Qos(cid, fr.channel, fr.prefetch_count, fr.global_),
    f.Consume: lambda fr, cid: c.Consume(
        cid, fr.channel, fr.queue, fr.consumer_tag, fr.no_ack, fr.exclusive,
        fr.arguments or None,
    ),
    f.Cancel: lambda fr, cid: c.Cancel(cid, fr.channel, fr.consumer_tag),
    f.Publish: _publish,
    f.Get: lambda fr, cid: c.Get(cid, fr.channel, fr.queue, fr.no_ack),
    f.Ack: lambda fr, cid: c.Ack(cid, fr.channel, fr.delivery_tag, fr.multiple),
    f.Nack: lambda fr, cid: c.Nack(cid, fr.channel, fr.delivery_tag, fr.multiple, fr.requeue),
    f.Reject: lambda fr, cid: c.Reject(cid, fr.channel, fr.delivery_tag, fr.requeue),
    f.Recover: lambda fr, cid: c.Recover(cid, fr.channel, fr.requeue),
    f.ConfirmSelect: lambda fr, cid: c.ConfirmSelect(cid, fr.channel),
    sf.PublishBatch: _publish_batch,
    sf.StreamRead: lambda fr, cid: c.ReadStream(
        cid, fr.channel, fr.queue, fr.arguments or None, fr.max_messages, fr.max_bytes
    ),
    sf.StreamFetch: lambda fr, cid: c.ReadStream(
        cid, fr.channel, fr.queue, fr.arguments or None, fr.max_messages, fr.max_bytes,
        packed=True,
    ),
    sf.OffsetCommit: lambda fr, cid: c.CommitOffset(cid, fr.channel, fr.queue, fr.name,
                                                   fr.offset),
    sf.OffsetQuery: lambda fr, cid: c.QueryOffset(cid, fr.channel, fr.queue, fr.name),
}


def command_for(frame: f.Frame, connection: int) -> c.Command:
    """The core command a channel request frame asks for (KeyError: not a request frame)."""
    return COMMANDS[type(frame)](frame, connection)


# --- reply -> frame --------------------------------------------------------------------------

# Requests whose answer carries nothing but the channel number.
_PLAIN_REPLIES: dict[type[f.Frame], Callable[[int], f.Frame]] = {
    f.ExchangeDeclare: f.ExchangeDeclareOk,
    f.ExchangeDelete: f.ExchangeDeleteOk,
    f.ExchangeBind: f.ExchangeBindOk,
    f.ExchangeUnbind: f.ExchangeUnbindOk,
    f.QueueBind: f.QueueBindOk,
    f.QueueUnbind: f.QueueUnbindOk,
    f.Qos: f.QosOk,
    f.Recover: f.RecoverOk,
    f.ConfirmSelect: f.ConfirmSelectOk,
}


def reply_for(frame: f.Frame, reply: e.Reply | None) -> f.Frame | None:
    """The frame answering ``frame`` given the core's reply; None for frames with no answer."""
    plain = _PLAIN_REPLIES.get(type(frame))
    if plain is not None:
        return plain(frame.channel)
    channel = frame.channel
    match reply:
        case e.QueueDeclareOk(queue, message_count, consumer_count):
            return f.QueueDeclareOk(channel, queue, message_count, consumer_count)
        case e.QueuePurgeOk(message_count):
            return f.QueuePurgeOk(channel, message_count)
        case e.QueueDeleteOk(message_count):
            return f.QueueDeleteOk(channel, message_count)
        case e.ConsumeOk(consumer_tag):
            return f.ConsumeOk(channel, consumer_tag)
        case e.CancelOk(consumer_tag):
            return f.CancelOk(channel, consumer_tag)
        case e.GetOk(delivery_tag, redelivered, exchange, routing_key, message_count, message):
            return f.GetOk(
                channel, delivery_tag, redelivered, exchange, routing_key, message_count,
                message.properties, message.body,
            )
        case e.GetEmpty():
            return f.GetEmpty(channel)
        case e.StreamReadOk(next_offset, messages):
            return sf.StreamReadOk(channel, next_offset, [
                (offset, m.exchange, m.routing_key, m.properties, m.body)
                for offset, m in messages
            ])
        case e.OffsetOk(offset):
            if type(frame) is sf.OffsetCommit:
                return sf.OffsetCommitOk(channel)
            return sf.OffsetQueryOk(channel, offset is not None, offset or 0)
    return None  # Publish, Ack, Nack, Reject: no reply


# --- effect -> frame -------------------------------------------------------------------------


def frame_for_effect(effect: e.Effect) -> f.Frame:
    """The frame that carries out ``effect`` on its connection."""
    if type(effect) is e.Deliver:  # the hot path first
        message = effect.message if effect.offset is None else effect.wire_message
        return f.Deliver(
            effect.channel, effect.consumer_tag, effect.delivery_tag, effect.redelivered,
            message.exchange, message.routing_key, message.properties, message.body,
        )
    if isinstance(effect, e.Confirm):
        confirm = f.ConfirmAck if effect.ack else f.ConfirmNack
        return confirm(effect.channel, effect.delivery_tag, effect.multiple)
    if isinstance(effect, e.Return):
        message = effect.message
        return f.Return(
            effect.channel, effect.reply_code, short(effect.reply_text), message.exchange,
            message.routing_key, message.properties, message.body,
        )
    if isinstance(effect, e.ConsumerCancelled):
        return f.ConsumerCancelled(effect.channel, effect.consumer_tag)
    raise TypeError(f"no native frame for effect {effect!r}")


# --- tracing ---------------------------------------------------------------------------------


def describe(frame: f.Frame) -> str:
    """The trace log's rendering of a frame (``protocols/tracing.py``): its name and fields,
    without the channel, which the trace line shows on its own."""
    # (every frame class is a dataclass; mypy cannot see it through ``type[Frame]``)
    names = type(frame).__dataclass_fields__  # type: ignore[attr-defined]
    return frame_text(type(frame).__name__,
                      ((name, getattr(frame, name)) for name in names if name != "channel"))
