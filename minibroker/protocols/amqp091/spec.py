"""AMQP 0-9-1 as data: constants, the method table and the basic content properties.

This module is the single source of truth for the wire vocabulary. The codec compiles its
decoders and encoders from :data:`METHODS`; the method dataclasses in ``methods.py`` are
checked against it by a unit test.

Rules:

1. The table follows ``amqp0-9-1.xml`` as extended by RabbitMQ (``amqp0-9-1.extended.xml``):
   ``connection.blocked``/``unblocked``/``update-secret``, ``exchange.bind``/``unbind``,
   ``basic.nack`` and the ``confirm`` class. Deprecated classes (access, file, stream, dtx,
   tunnel, test) are absent: RabbitMQ implements none of them.
2. Argument names are the XML names with ``-`` turned into ``_``. Three differ because the XML
   name is a Python builtin/keyword or is reserved: ``exchange.declare``'s ``type`` is
   ``exchange_type``, ``basic.qos``'s ``global`` is ``global_``, and every ``reserved-1``
   short is ``ticket`` (its 0-8 name; pamqp, pika and py-amqp use the same names).
3. Argument types are the AMQP primitive types: ``bit octet short long longlong shortstr
   longstr timestamp table``. Consecutive ``bit`` arguments share octets (AMQP §4.2.5.2).
4. ``synchronous`` means "the peer answers with one of ``responses``" (the XML's
   ``<response>`` elements). ``content`` marks the four methods followed by a content header
   and body frames (AMQP §4.2.6).
"""

from __future__ import annotations

from minibroker.errors import REPLY_NAMES
from minibroker.valueclass import valueclass

__all__ = [
    "BASIC_PROPERTIES",
    "CLASS_NAMES",
    "FRAME_BODY",
    "FRAME_END",
    "FRAME_END_BYTE",
    "FRAME_HEADER",
    "FRAME_HEARTBEAT",
    "FRAME_METHOD",
    "FRAME_MIN_SIZE",
    "FRAME_OVERHEAD",
    "METHODS",
    "METHODS_BY_ID",
    "METHODS_BY_NAME",
    "PROTOCOL_HEADER",
    "PROTOCOL_HEADER_0_9",
    "REPLY_NAMES",
    "Argument",
    "MethodSpec",
    "method_key",
]

# -- framing constants (AMQP §4.2.3; frame-heartbeat is 8 per the XML, ERRATA #29) --------------
FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
#: "The minimum size of a frame" — both peers accept frames this large before tune-ok.
FRAME_MIN_SIZE = 4096
#: type(1) + channel(2) + size(4) + frame-end(1): frame-max counts these too.
FRAME_OVERHEAD = 8
#: AMQP §4.2.2: "AMQP" 0 0 9 1.
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
#: What AMQP 0-9 clients send; RabbitMQ accepts it and speaks 0-9-1 (the same wire protocol).
PROTOCOL_HEADER_0_9 = b"AMQP\x01\x01\x00\x09"

# -- reply codes (AMQP §1.2 constants; names in minibroker.errors.REPLY_NAMES) ------------------
REPLY_SUCCESS = 200
CONTENT_TOO_LARGE = 311
NO_ROUTE = 312
NO_CONSUMERS = 313
CONNECTION_FORCED = 320
INVALID_PATH = 402
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
RESOURCE_ERROR = 506
NOT_ALLOWED = 530
NOT_IMPLEMENTED = 540
INTERNAL_ERROR = 541

CLASS_NAMES: dict[int, str] = {
    10: "connection", 20: "channel", 40: "exchange", 50: "queue", 60: "basic", 85: "confirm",
    90: "tx",
}


@valueclass(frozen=True)
class Argument:
    """One method argument. ``binary`` marks a longstr carrying opaque octets (SASL data,
    secrets): it decodes to ``bytes`` instead of ``str``."""

    name: str
    type: str
    binary: bool = False


@valueclass(frozen=True)
class MethodSpec:
    class_id: int
    method_id: int
    name: str  #: e.g. "basic.publish"
    arguments: tuple[Argument, ...]
    content: bool = False
    synchronous: bool = False
    responses: tuple[str, ...] = ()

    @property
    def key(self) -> int:
        return method_key(self.class_id, self.method_id)


def method_key(class_id: int, method_id: int) -> int:
    """One int for a (class, method) pair: what the frame's first four octets say."""
    return (class_id << 16) | method_id


def _args(text: str) -> tuple[Argument, ...]:
    """Parse ``"name:type name:type"``; ``longstr!`` marks a binary longstr."""
    out = []
    for item in text.split():
        name, type_ = item.split(":")
        binary = type_.endswith("!")
        out.append(Argument(name, type_.rstrip("!"), binary))
    return tuple(out)


def _m(
    cid: int, mid: int, name: str, args: str = "", *responses: str, content: bool = False
) -> MethodSpec:
    return MethodSpec(
        cid, mid, name, _args(args), content=content, synchronous=bool(responses),
        responses=responses,
    )


_CLOSE = "reply_code:short reply_text:shortstr class_id:short method_id:short"
_E2E = "ticket:short destination:shortstr source:shortstr routing_key:shortstr nowait:bit"

METHODS: tuple[MethodSpec, ...] = (
    # connection (10)
    _m(10, 10, "connection.start",
       "version_major:octet version_minor:octet server_properties:table mechanisms:longstr"
       " locales:longstr", "connection.start-ok"),
    _m(10, 11, "connection.start-ok",
       "client_properties:table mechanism:shortstr response:longstr! locale:shortstr"),
    _m(10, 20, "connection.secure", "challenge:longstr!", "connection.secure-ok"),
    _m(10, 21, "connection.secure-ok", "response:longstr!"),
    _m(10, 30, "connection.tune", "channel_max:short frame_max:long heartbeat:short",
       "connection.tune-ok"),
    _m(10, 31, "connection.tune-ok", "channel_max:short frame_max:long heartbeat:short"),
    _m(10, 40, "connection.open", "virtual_host:shortstr capabilities:shortstr insist:bit",
       "connection.open-ok"),
    _m(10, 41, "connection.open-ok", "known_hosts:shortstr"),
    _m(10, 50, "connection.close", _CLOSE, "connection.close-ok"),
    _m(10, 51, "connection.close-ok"),
    _m(10, 60, "connection.blocked", "reason:shortstr"),
    _m(10, 61, "connection.unblocked"),
    _m(10, 70, "connection.update-secret", "new_secret:longstr! reason:shortstr",
       "connection.update-secret-ok"),
    _m(10, 71, "connection.update-secret-ok"),
    # channel (20)
    _m(20, 10, "channel.open", "out_of_band:shortstr", "channel.open-ok"),
    _m(20, 11, "channel.open-ok", "channel_id:longstr"),
    _m(20, 20, "channel.flow", "active:bit", "channel.flow-ok"),
    _m(20, 21, "channel.flow-ok", "active:bit"),
    _m(20, 40, "channel.close", _CLOSE, "channel.close-ok"),
    _m(20, 41, "channel.close-ok"),
    # exchange (40)
    _m(40, 10, "exchange.declare",
       "ticket:short exchange:shortstr exchange_type:shortstr passive:bit durable:bit"
       " auto_delete:bit internal:bit nowait:bit arguments:table", "exchange.declare-ok"),
    _m(40, 11, "exchange.declare-ok"),
    _m(40, 20, "exchange.delete", "ticket:short exchange:shortstr if_unused:bit nowait:bit",
       "exchange.delete-ok"),
    _m(40, 21, "exchange.delete-ok"),
    _m(40, 30, "exchange.bind", _E2E + " arguments:table", "exchange.bind-ok"),
    _m(40, 31, "exchange.bind-ok"),
    _m(40, 40, "exchange.unbind", _E2E + " arguments:table", "exchange.unbind-ok"),
    _m(40, 51, "exchange.unbind-ok"),  # 51, not 41: RabbitMQ's extended XML
    # queue (50)
    _m(50, 10, "queue.declare",
       "ticket:short queue:shortstr passive:bit durable:bit exclusive:bit auto_delete:bit"
       " nowait:bit arguments:table", "queue.declare-ok"),
    _m(50, 11, "queue.declare-ok", "queue:shortstr message_count:long consumer_count:long"),
    _m(50, 20, "queue.bind",
       "ticket:short queue:shortstr exchange:shortstr routing_key:shortstr nowait:bit"
       " arguments:table", "queue.bind-ok"),
    _m(50, 21, "queue.bind-ok"),
    _m(50, 30, "queue.purge", "ticket:short queue:shortstr nowait:bit", "queue.purge-ok"),
    _m(50, 31, "queue.purge-ok", "message_count:long"),
    _m(50, 40, "queue.delete",
       "ticket:short queue:shortstr if_unused:bit if_empty:bit nowait:bit", "queue.delete-ok"),
    _m(50, 41, "queue.delete-ok", "message_count:long"),
    _m(50, 50, "queue.unbind",
       "ticket:short queue:shortstr exchange:shortstr routing_key:shortstr arguments:table",
       "queue.unbind-ok"),
    _m(50, 51, "queue.unbind-ok"),
    # basic (60)
    _m(60, 10, "basic.qos", "prefetch_size:long prefetch_count:short global_:bit",
       "basic.qos-ok"),
    _m(60, 11, "basic.qos-ok"),
    _m(60, 20, "basic.consume",
       "ticket:short queue:shortstr consumer_tag:shortstr no_local:bit no_ack:bit"
       " exclusive:bit nowait:bit arguments:table", "basic.consume-ok"),
    _m(60, 21, "basic.consume-ok", "consumer_tag:shortstr"),
    _m(60, 30, "basic.cancel", "consumer_tag:shortstr nowait:bit", "basic.cancel-ok"),
    _m(60, 31, "basic.cancel-ok", "consumer_tag:shortstr"),
    _m(60, 40, "basic.publish",
       "ticket:short exchange:shortstr routing_key:shortstr mandatory:bit immediate:bit",
       content=True),
    _m(60, 50, "basic.return",
       "reply_code:short reply_text:shortstr exchange:shortstr routing_key:shortstr",
       content=True),
    _m(60, 60, "basic.deliver",
       "consumer_tag:shortstr delivery_tag:longlong redelivered:bit exchange:shortstr"
       " routing_key:shortstr", content=True),
    _m(60, 70, "basic.get", "ticket:short queue:shortstr no_ack:bit",
       "basic.get-ok", "basic.get-empty"),
    _m(60, 71, "basic.get-ok",
       "delivery_tag:longlong redelivered:bit exchange:shortstr routing_key:shortstr"
       " message_count:long", content=True),
    _m(60, 72, "basic.get-empty", "cluster_id:shortstr"),
    _m(60, 80, "basic.ack", "delivery_tag:longlong multiple:bit"),
    _m(60, 90, "basic.reject", "delivery_tag:longlong requeue:bit"),
    _m(60, 100, "basic.recover-async", "requeue:bit"),
    _m(60, 110, "basic.recover", "requeue:bit", "basic.recover-ok"),
    _m(60, 111, "basic.recover-ok"),
    _m(60, 120, "basic.nack", "delivery_tag:longlong multiple:bit requeue:bit"),
    # confirm (85), RabbitMQ extension
    _m(85, 10, "confirm.select", "nowait:bit", "confirm.select-ok"),
    _m(85, 11, "confirm.select-ok"),
    # tx (90)
    _m(90, 10, "tx.select", "", "tx.select-ok"),
    _m(90, 11, "tx.select-ok"),
    _m(90, 20, "tx.commit", "", "tx.commit-ok"),
    _m(90, 21, "tx.commit-ok"),
    _m(90, 30, "tx.rollback", "", "tx.rollback-ok"),
    _m(90, 31, "tx.rollback-ok"),
)

METHODS_BY_ID: dict[int, MethodSpec] = {m.key: m for m in METHODS}
METHODS_BY_NAME: dict[str, MethodSpec] = {m.name: m for m in METHODS}

#: The 14 properties of class basic in spec order (AMQP §4.2.6.1): property i (0-based) is
#: flagged by bit 15 - i of the property-flags word.
BASIC_PROPERTIES: tuple[Argument, ...] = _args(
    "content_type:shortstr content_encoding:shortstr headers:table delivery_mode:octet"
    " priority:octet correlation_id:shortstr reply_to:shortstr expiration:shortstr"
    " message_id:shortstr timestamp:timestamp type:shortstr user_id:shortstr app_id:shortstr"
    " cluster_id:shortstr"
)
