"""AMQP 0-9-1 methods ⇄ broker core commands, replies and effects.

Pure functions: a method frame in, a core command out; a core reply or effect in, octets out.
The session runs the command between the two.

Rules:

1. One builder per client method the core implements (:func:`command_for`); methods a client
   must never send (basic.deliver, *-ok replies...) are 503 COMMAND_INVALID "unimplemented
   method", as in RabbitMQ.
2. What RabbitMQ refuses before its channel logic sees it is refused here, before the core:
   ``basic.publish immediate=true`` and ``basic.qos prefetch_size != 0`` are connection errors
   540 NOT_IMPLEMENTED (RabbitMQ's texts ``immediate=true``, ``prefetch_size!=0 (N)``).
3. ``nowait=true`` means no reply frame (:func:`reply_bytes` returns ``None``); errors still
   close the channel.
4. Content leaves as one uninterrupted method + header + body sequence, bodies split at the
   negotiated frame-max (AMQP §4.2.6). Properties are the core's :class:`Properties` object,
   passed through untouched, so a message crosses protocols with every property and header
   type intact. A run of deliveries (``DeliverRun``) is the octets of its deliveries one
   after another (:func:`deliver_run_bytes`).
5. The hot path (basic.publish, basic.ack, basic.deliver, confirms) builds no intermediate
   dict or method object it can avoid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from minibroker.core import commands as c
from minibroker.core.effects import CancelOk as CoreCancelOk
from minibroker.core.effects import (
    Confirm,
    ConsumerCancelled,
    Deliver,
    DeliverRun,
    Effect,
    GetOk,
    QueueDeclareOk,
    QueueDeleteOk,
    QueuePurgeOk,
    Reply,
    Return,
)
from minibroker.core.effects import ConsumeOk as CoreConsumeOk
from minibroker.errors import CommandInvalid, NotImplementedFeature
from minibroker.message import Message
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.content import (
    encode_content,
    encode_deliver,
    encode_stream_deliver,
)
from minibroker.protocols.amqp091.frames import (
    ContentMethod,
    MethodFrame,
    encode_basic_ack,
    encode_basic_nack,
    encode_method,
)

__all__ = [
    "command_for", "deliver_bytes", "deliver_run_bytes", "effect_bytes", "publish_command",
    "publish_many", "published", "reply_bytes",
]

Builder = Callable[[int, int, Any], c.Command]


def published(frame: ContentMethod) -> tuple[Message, bool]:
    """basic.publish + content → the core's message and the ``mandatory`` flag (the hot path)."""
    method = frame.method
    if type(method) is not m.BasicPublish:
        raise CommandInvalid(f"unimplemented method {method.NAME}", class_id=method.CLASS_ID,
                             method_id=method.METHOD_ID)
    if method.immediate:
        # RabbitMQ: "NOT_IMPLEMENTED - immediate=true" (errata: immediate was removed in 3.0).
        raise NotImplementedFeature(
            "immediate=true", class_id=m.BasicPublish.CLASS_ID, method_id=m.BasicPublish.METHOD_ID
        )
    return (Message(method.exchange, method.routing_key, frame.body, frame.properties),
            method.mandatory)


def publish_command(connection: int, frame: ContentMethod) -> c.Publish:
    """basic.publish + content → core ``Publish``."""
    message, mandatory = published(frame)
    return c.Publish(connection, frame.channel, message, mandatory)


def publish_many(connection: int, frames: Sequence[ContentMethod]) -> c.PublishMany:
    """A run of basic.publish of one channel → one core ``PublishMany``."""
    return c.PublishMany(connection, frames[0].channel, tuple(map(published, frames)))


def _qos(connection: int, channel: int, method: m.BasicQos) -> c.Command:
    if method.prefetch_size:
        # AMQP lets a server ignore prefetch-size; RabbitMQ refuses it instead.
        raise NotImplementedFeature(f"prefetch_size!=0 ({method.prefetch_size})")
    return c.Qos(connection, channel, method.prefetch_count, method.global_)


_BUILDERS: dict[type[m.Method], Builder] = {
    m.ExchangeDeclare: lambda conn, ch, x: c.DeclareExchange(
        conn, ch, x.exchange, x.exchange_type, x.passive, x.durable, x.auto_delete, x.internal,
        x.arguments or None,
    ),
    m.ExchangeDelete: lambda conn, ch, x: c.DeleteExchange(conn, ch, x.exchange, x.if_unused),
    m.ExchangeBind: lambda conn, ch, x: c.BindExchange(
        conn, ch, x.destination, x.source, x.routing_key, x.arguments or None
    ),
    m.ExchangeUnbind: lambda conn, ch, x: c.UnbindExchange(
        conn, ch, x.destination, x.source, x.routing_key, x.arguments or None
    ),
    m.QueueDeclare: lambda conn, ch, x: c.DeclareQueue(
        conn, ch, x.queue, x.passive, x.durable, x.exclusive, x.auto_delete, x.arguments or None
    ),
    m.QueueBind: lambda conn, ch, x: c.BindQueue(
        conn, ch, x.queue, x.exchange, x.routing_key, x.arguments or None
    ),
    m.QueueUnbind: lambda conn, ch, x: c.UnbindQueue(
        conn, ch, x.queue, x.exchange, x.routing_key, x.arguments or None
    ),
    m.QueuePurge: lambda conn, ch, x: c.PurgeQueue(conn, ch, x.queue),
    m.QueueDelete: lambda conn, ch, x: c.DeleteQueue(conn, ch, x.queue, x.if_unused, x.if_empty),
    m.BasicQos: _qos,
    m.BasicConsume: lambda conn, ch, x: c.Consume(
        conn, ch, x.queue, x.consumer_tag, x.no_ack, x.exclusive, x.arguments or None
    ),
    m.BasicCancel: lambda conn, ch, x: c.Cancel(conn, ch, x.consumer_tag),
    m.BasicGet: lambda conn, ch, x: c.Get(conn, ch, x.queue, x.no_ack),
    m.BasicAck: lambda conn, ch, x: c.Ack(conn, ch, x.delivery_tag, x.multiple),
    m.BasicNack: lambda conn, ch, x: c.Nack(conn, ch, x.delivery_tag, x.multiple, x.requeue),
    m.BasicReject: lambda conn, ch, x: c.Reject(conn, ch, x.delivery_tag, x.requeue),
    m.BasicRecover: lambda conn, ch, x: c.Recover(conn, ch, x.requeue),
    m.BasicRecoverAsync: lambda conn, ch, x: c.Recover(conn, ch, x.requeue),
    m.ConfirmSelect: lambda conn, ch, x: c.ConfirmSelect(conn, ch),
    m.TxSelect: lambda conn, ch, x: c.TxSelect(conn, ch),
    m.TxCommit: lambda conn, ch, x: c.TxCommit(conn, ch),
    m.TxRollback: lambda conn, ch, x: c.TxRollback(conn, ch),
}

#: Client methods that need no core work: answers to things we never ask (aiormq may answer a
#: broker-sent basic.cancel with cancel-ok).
IGNORED: frozenset[type[m.Method]] = frozenset({m.BasicCancelOk})


def command_for(connection: int, frame: MethodFrame | ContentMethod) -> c.Command | None:
    """The core command for a client method on an open channel; ``None`` for nothing to do."""
    method = frame.method
    if isinstance(frame, ContentMethod):
        if type(method) is m.BasicPublish:
            return publish_command(connection, frame)
    else:
        builder = _BUILDERS.get(type(method))
        if builder is not None:
            return builder(connection, frame.channel, method)
        if type(method) in IGNORED:
            return None
    raise CommandInvalid(
        f"unimplemented method {method.NAME}", class_id=method.CLASS_ID,
        method_id=method.METHOD_ID,
    )


# -- replies -----------------------------------------------------------------------------------


def _nowait(ok: m.Method) -> Callable[[Any, Reply | None], m.Method | None]:
    return lambda method, reply: None if method.nowait else ok


def _declare_ok(method: m.QueueDeclare, reply: Reply | None) -> m.Method | None:
    if method.nowait:
        return None
    assert isinstance(reply, QueueDeclareOk)
    return m.QueueDeclareOk(reply.queue, reply.message_count, reply.consumer_count)


def _purge_ok(method: m.QueuePurge, reply: Reply | None) -> m.Method | None:
    assert isinstance(reply, QueuePurgeOk)
    return None if method.nowait else m.QueuePurgeOk(reply.message_count)


def _delete_ok(method: m.QueueDelete, reply: Reply | None) -> m.Method | None:
    assert isinstance(reply, QueueDeleteOk)
    return None if method.nowait else m.QueueDeleteOk(reply.message_count)


def _consume_ok(method: m.BasicConsume, reply: Reply | None) -> m.Method | None:
    assert isinstance(reply, CoreConsumeOk)
    return None if method.nowait else m.BasicConsumeOk(reply.consumer_tag)


def _cancel_ok(method: m.BasicCancel, reply: Reply | None) -> m.Method | None:
    assert isinstance(reply, CoreCancelOk)
    return None if method.nowait else m.BasicCancelOk(reply.consumer_tag)


def _always(ok: m.Method) -> Callable[[Any, Reply | None], m.Method | None]:
    return lambda method, reply: ok


_REPLIES: dict[type[m.Method], Callable[[Any, Reply | None], m.Method | None]] = {
    m.ExchangeDeclare: _nowait(m.ExchangeDeclareOk()),
    m.ExchangeDelete: _nowait(m.ExchangeDeleteOk()),
    m.ExchangeBind: _nowait(m.ExchangeBindOk()),
    m.ExchangeUnbind: _nowait(m.ExchangeUnbindOk()),
    m.QueueDeclare: _declare_ok,
    m.QueueBind: _nowait(m.QueueBindOk()),
    m.QueueUnbind: _always(m.QueueUnbindOk()),
    m.QueuePurge: _purge_ok,
    m.QueueDelete: _delete_ok,
    m.BasicQos: _always(m.BasicQosOk()),
    m.BasicConsume: _consume_ok,
    m.BasicCancel: _cancel_ok,
    m.BasicRecover: _always(m.BasicRecoverOk()),
    m.ConfirmSelect: _nowait(m.ConfirmSelectOk()),
    m.TxSelect: _always(m.TxSelectOk()),
    m.TxCommit: _always(m.TxCommitOk()),
    m.TxRollback: _always(m.TxRollbackOk()),
}
_GET_EMPTY = m.BasicGetEmpty("")


def reply_method(method: m.Method, reply: Reply | None) -> m.Method | None:
    """The reply method (without content) for ``method``; ``None`` when none is due."""
    build = _REPLIES.get(type(method))
    return None if build is None else build(method, reply)


def reply_bytes(
    channel: int, method: m.Method, reply: Reply | None, frame_max: int
) -> bytes | None:
    """The frames answering ``method`` after the core replied ``reply`` (rule 3)."""
    if type(method) is m.BasicGet:
        if isinstance(reply, GetOk):
            message = reply.message
            return encode_content(
                channel,
                m.BasicGetOk(reply.delivery_tag, reply.redelivered, reply.exchange,
                             reply.routing_key, reply.message_count),
                message.properties, message.body, frame_max,
            )
        return encode_method(channel, _GET_EMPTY)
    ok = reply_method(method, reply)
    return None if ok is None else encode_method(channel, ok)


# -- effects -----------------------------------------------------------------------------------


def deliver_bytes(effect: Deliver, frame_max: int) -> bytes:
    """basic.deliver + header + body: the per-delivery hot path."""
    message = effect.message
    if effect.offset is not None:  # a stream's: with its x-stream-offset (content.py rule 7)
        return encode_stream_deliver(
            effect.channel, effect.consumer_tag, effect.delivery_tag, message.exchange,
            message.routing_key, message.properties, message.body, frame_max, effect.offset,
        )
    return encode_deliver(
        effect.channel, effect.consumer_tag, effect.delivery_tag, effect.redelivered,
        message.exchange, message.routing_key, message.properties, message.body, frame_max,
    )


def deliver_run_bytes(effect: DeliverRun, frame_max: int) -> bytes:
    """The octets of :func:`deliver_bytes` for each delivery of the run in turn, joined once
    (rule 4; never a stream's delivery, ``core/effects.py`` rule 5). Raises as
    :func:`deliver_bytes` would for the first delivery that cannot be encoded."""
    channel, consumer_tag, redelivered = effect.channel, effect.consumer_tag, effect.redelivered
    tag = effect.first_tag
    out: list[bytes] = []
    for message in effect.messages:
        out.append(encode_deliver(
            channel, consumer_tag, tag, tag in redelivered, message.exchange,
            message.routing_key, message.properties, message.body, frame_max,
        ))
        tag += 1
    return b"".join(out)


def effect_bytes(effect: Effect, frame_max: int, cancel_notify: bool) -> bytes | None:
    """The frames carrying out a core effect; ``None`` when this client should not hear it."""
    if type(effect) is Deliver:
        return deliver_bytes(effect, frame_max)
    if type(effect) is DeliverRun:
        return deliver_run_bytes(effect, frame_max)
    if type(effect) is Confirm:
        if effect.ack:
            return encode_basic_ack(effect.channel, effect.delivery_tag, effect.multiple)
        return encode_basic_nack(effect.channel, effect.delivery_tag, effect.multiple, False)
    if type(effect) is Return:
        message = effect.message
        return encode_content(
            effect.channel,
            m.BasicReturn(effect.reply_code, effect.reply_text, message.exchange,
                          message.routing_key),
            message.properties, message.body, frame_max,
        )
    if type(effect) is ConsumerCancelled:
        if not cancel_notify:
            return None  # the client did not ask (capability consumer_cancel_notify)
        # RabbitMQ sends its basic.cancel with nowait=true: no cancel-ok expected.
        return encode_method(effect.channel, m.BasicCancel(effect.consumer_tag, True))
    raise TypeError(f"unknown effect {effect!r}")
