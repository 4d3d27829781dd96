"""The frames of the native protocol: one slotted dataclass per frame, with its opcode.

A frame travels as one msgpack array ``[opcode, channel, *fields]`` (``docs/protocol.md``). This
module only *declares* the frames; ``codec.py`` turns them into bytes and back.

Rules:

1. Field order in a class is wire order. Adding a field to a frame changes the protocol.
2. A field's annotation is its wire type, and the codec validates by it: :data:`UInt16`,
   :data:`UInt32`, :data:`UInt64` (msgpack ints in range), :data:`ShortStr` (str of at most 255
   UTF-8 bytes, AMQP's ``shortstr``), ``str | None``, ``bool``, ``bytes`` (msgpack ``bin``),
   :data:`FieldTable` (msgpack map), :class:`Properties` (msgpack array, see ``values.py``),
   ``Batch`` and ``Records`` (arrays of messages, ``streamframes.py``).
3. Frames of a channel carry ``channel`` as their first field. Connection frames (``Hello`` ...
   ``Heartbeat``) have no such field: they always travel on channel 0 and their ``channel``
   property says so.
4. ``sender`` says who may send a frame ("client", "server" or "both"); a codec refuses to
   decode a frame its peer may not send. A synchronous request gets exactly one reply, listed
   in :data:`REPLIES` (or a channel/connection close when it fails).
5. Frames are values: never mutate one. They are not frozen, for speed (the house rule and its
   measurement are in ``protocols/building.py``).
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, ClassVar, Literal, TypeAlias

from minibroker.message import FieldTable, Properties
from minibroker.valueclass import valueclass

__all__ = [
    "FRAME_TYPES", "MESSAGE_FRAMES", "REPLIES", "Ack", "Body", "Cancel", "CancelOk",
    "ChannelClose", "ChannelCloseOk", "ChannelOpen", "ChannelOpenOk", "ConfirmAck",
    "ConfirmNack", "ConfirmSelect",
    "ConfirmSelectOk", "ConnectionClose", "ConnectionCloseOk", "ConnectionFrame", "Consume",
    "ConsumeOk", "ConsumerCancelled", "Deliver", "ExchangeBind", "ExchangeBindOk",
    "ExchangeDeclare", "ExchangeDeclareOk", "ExchangeDelete", "ExchangeDeleteOk", "ExchangeUnbind",
    "ExchangeUnbindOk", "Frame", "Get", "GetEmpty", "GetOk", "Heartbeat", "Hello", "HelloOk",
    "Nack", "Publish", "Qos", "QosOk", "QueueBind", "QueueBindOk", "QueueDeclare",
    "QueueDeclareOk", "QueueDelete", "QueueDeleteOk", "QueuePurge", "QueuePurgeOk", "QueueUnbind",
    "QueueUnbindOk", "Recover", "RecoverOk", "Reject", "Return", "Sender", "ShortStr", "Tune",
    "TuneOk", "UInt16", "UInt32", "UInt64",
]

UInt16: TypeAlias = int  #: 0 .. 65535
UInt32: TypeAlias = int  #: 0 .. 2**32 - 1
UInt64: TypeAlias = int  #: 0 .. 2**64 - 1
ShortStr: TypeAlias = str  #: at most 255 bytes once UTF-8 encoded (AMQP shortstr)
Sender: TypeAlias = Literal["client", "server", "both"]


class Frame:
    """Base of every frame. ``opcode`` is the first element of the frame's msgpack array."""

    __slots__ = ()
    opcode: ClassVar[int]
    sender: ClassVar[Sender]

    def __init_subclass__(cls, *, opcode: int = -1, sender: Sender = "both") -> None:
        # ``@valueclass()`` re-creates each class without these keywords: keep the
        # values the first creation stored.
        super().__init_subclass__()
        if opcode >= 0:
            cls.opcode = opcode
            cls.sender = sender

    if TYPE_CHECKING:
        # Declared for type checkers only: a runtime attribute here would become the default
        # of every ``channel`` dataclass field below.
        @property
        def channel(self) -> int: ...


class ConnectionFrame(Frame):
    """A frame of the connection itself: no ``channel`` field, it always travels on channel 0."""

    __slots__ = ()

    @property
    def channel(self) -> int:
        return 0


# --- connection (channel 0) -------------------------------------------------------------

@valueclass()
class Hello(ConnectionFrame, opcode=0x01, sender="client"):
    """C→S, first frame after the preamble. Reply: HelloOk (or ConnectionClose 403)."""
    client_name: ShortStr
    username: str | None = None  #: credentials; None when the client sends none
    password: str | None = None
    client_properties: FieldTable = field(default_factory=dict)
    vhost: ShortStr = "/"  #: the virtual host to open (AMQP's connection.open virtual-host)


@valueclass()
class HelloOk(ConnectionFrame, opcode=0x02, sender="server"):
    """S→C: the server's limits. The client answers with Tune."""
    server_version: ShortStr
    max_frame_size: UInt32
    channel_max: UInt16
    heartbeat: UInt16  #: seconds; 0 disables heartbeats


@valueclass()
class Tune(ConnectionFrame, opcode=0x03, sender="client"):
    """C→S: the limits the client chose, each at most the server's. Reply: TuneOk."""
    max_frame_size: UInt32
    channel_max: UInt16
    heartbeat: UInt16


@valueclass()
class TuneOk(ConnectionFrame, opcode=0x04, sender="server"):
    """S→C: the connection is open."""


@valueclass()
class ConnectionClose(ConnectionFrame, opcode=0x05, sender="both"):
    """Either peer closes the connection. Reply: ConnectionCloseOk."""
    reply_code: UInt16
    reply_text: ShortStr


@valueclass()
class ConnectionCloseOk(ConnectionFrame, opcode=0x06, sender="both"):
    """The peer may now close the TCP connection."""


@valueclass()
class Heartbeat(ConnectionFrame, opcode=0x07, sender="both"):
    """Proof of life, sent when nothing else was sent for a heartbeat interval. No reply."""


# --- channel -----------------------------------------------------------------------------

@valueclass()
class ChannelOpen(Frame, opcode=0x10, sender="client"):
    """Reply: ChannelOpenOk."""
    channel: UInt16


@valueclass()
class ChannelOpenOk(Frame, opcode=0x11, sender="server"):
    channel: UInt16


@valueclass()
class ChannelClose(Frame, opcode=0x12, sender="both"):
    """Either peer closes a channel (the server with the error's code). Reply: ChannelCloseOk."""
    channel: UInt16
    reply_code: UInt16
    reply_text: ShortStr


@valueclass()
class ChannelCloseOk(Frame, opcode=0x13, sender="both"):
    channel: UInt16


# --- exchange ----------------------------------------------------------------------------

@valueclass()
class ExchangeDeclare(Frame, opcode=0x20, sender="client"):
    """Reply: ExchangeDeclareOk."""
    channel: UInt16
    exchange: ShortStr
    type: ShortStr
    passive: bool
    durable: bool
    auto_delete: bool
    internal: bool
    arguments: FieldTable


@valueclass()
class ExchangeDeclareOk(Frame, opcode=0x21, sender="server"):
    channel: UInt16


@valueclass()
class ExchangeDelete(Frame, opcode=0x22, sender="client"):
    """Reply: ExchangeDeleteOk."""
    channel: UInt16
    exchange: ShortStr
    if_unused: bool


@valueclass()
class ExchangeDeleteOk(Frame, opcode=0x23, sender="server"):
    channel: UInt16


@valueclass()
class ExchangeBind(Frame, opcode=0x24, sender="client"):
    """Exchange-to-exchange binding: messages routed by ``source`` flow on to ``destination``.
    Reply: ExchangeBindOk."""
    channel: UInt16
    destination: ShortStr
    source: ShortStr
    routing_key: ShortStr
    arguments: FieldTable


@valueclass()
class ExchangeBindOk(Frame, opcode=0x25, sender="server"):
    channel: UInt16


@valueclass()
class ExchangeUnbind(Frame, opcode=0x26, sender="client"):
    """Reply: ExchangeUnbindOk."""
    channel: UInt16
    destination: ShortStr
    source: ShortStr
    routing_key: ShortStr
    arguments: FieldTable


@valueclass()
class ExchangeUnbindOk(Frame, opcode=0x27, sender="server"):
    channel: UInt16


# --- queue -------------------------------------------------------------------------------

@valueclass()
class QueueDeclare(Frame, opcode=0x30, sender="client"):
    """An empty ``queue`` asks the server to name it. Reply: QueueDeclareOk."""
    channel: UInt16
    queue: ShortStr
    passive: bool
    durable: bool
    exclusive: bool
    auto_delete: bool
    arguments: FieldTable


@valueclass()
class QueueDeclareOk(Frame, opcode=0x31, sender="server"):
    channel: UInt16
    queue: ShortStr
    message_count: UInt32
    consumer_count: UInt32


@valueclass()
class QueueBind(Frame, opcode=0x32, sender="client"):
    """Reply: QueueBindOk."""
    channel: UInt16
    queue: ShortStr
    exchange: ShortStr
    routing_key: ShortStr
    arguments: FieldTable


@valueclass()
class QueueBindOk(Frame, opcode=0x33, sender="server"):
    channel: UInt16


@valueclass()
class QueueUnbind(Frame, opcode=0x34, sender="client"):
    """Reply: QueueUnbindOk."""
    channel: UInt16
    queue: ShortStr
    exchange: ShortStr
    routing_key: ShortStr
    arguments: FieldTable


@valueclass()
class QueueUnbindOk(Frame, opcode=0x35, sender="server"):
    channel: UInt16


@valueclass()
class QueuePurge(Frame, opcode=0x36, sender="client"):
    """Reply: QueuePurgeOk."""
    channel: UInt16
    queue: ShortStr


@valueclass()
class QueuePurgeOk(Frame, opcode=0x37, sender="server"):
    channel: UInt16
    message_count: UInt32


@valueclass()
class QueueDelete(Frame, opcode=0x38, sender="client"):
    """Reply: QueueDeleteOk."""
    channel: UInt16
    queue: ShortStr
    if_unused: bool
    if_empty: bool


@valueclass()
class QueueDeleteOk(Frame, opcode=0x39, sender="server"):
    channel: UInt16
    message_count: UInt32


# --- basic: consumers --------------------------------------------------------------------

@valueclass()
class Qos(Frame, opcode=0x40, sender="client"):
    """Reply: QosOk. ``global_`` is AMQP's ``global`` flag (a Python keyword)."""
    channel: UInt16
    prefetch_count: UInt16
    global_: bool


@valueclass()
class QosOk(Frame, opcode=0x41, sender="server"):
    channel: UInt16


@valueclass()
class Consume(Frame, opcode=0x42, sender="client"):
    """An empty ``consumer_tag`` asks the server to make one. Reply: ConsumeOk."""
    channel: UInt16
    queue: ShortStr
    consumer_tag: ShortStr
    no_ack: bool
    exclusive: bool
    arguments: FieldTable


@valueclass()
class ConsumeOk(Frame, opcode=0x43, sender="server"):
    channel: UInt16
    consumer_tag: ShortStr


@valueclass()
class Cancel(Frame, opcode=0x44, sender="client"):
    """Reply: CancelOk."""
    channel: UInt16
    consumer_tag: ShortStr


@valueclass()
class CancelOk(Frame, opcode=0x45, sender="server"):
    channel: UInt16
    consumer_tag: ShortStr


@valueclass()
class ConsumerCancelled(Frame, opcode=0x46, sender="server"):
    """S→C: the server cancelled a consumer (its queue was deleted, ...). No reply."""
    channel: UInt16
    consumer_tag: ShortStr


# --- basic: messages ---------------------------------------------------------------------

@valueclass()
class Publish(Frame, opcode=0x50, sender="client"):
    """No reply; in confirm mode the server answers ConfirmAck/ConfirmNack, and an unroutable
    ``mandatory`` message comes back as Return first."""
    channel: UInt16
    exchange: ShortStr
    routing_key: ShortStr
    mandatory: bool
    properties: Properties
    body: bytes


@valueclass()
class Deliver(Frame, opcode=0x51, sender="server"):
    channel: UInt16
    consumer_tag: ShortStr
    delivery_tag: UInt64
    redelivered: bool
    exchange: ShortStr
    routing_key: ShortStr
    properties: Properties
    body: bytes


@valueclass()
class Get(Frame, opcode=0x52, sender="client"):
    """Reply: GetOk or GetEmpty."""
    channel: UInt16
    queue: ShortStr
    no_ack: bool


@valueclass()
class GetOk(Frame, opcode=0x53, sender="server"):
    channel: UInt16
    delivery_tag: UInt64
    redelivered: bool
    exchange: ShortStr
    routing_key: ShortStr
    message_count: UInt32
    properties: Properties
    body: bytes


@valueclass()
class GetEmpty(Frame, opcode=0x54, sender="server"):
    channel: UInt16


@valueclass()
class Return(Frame, opcode=0x55, sender="server"):
    """S→C: an unroutable mandatory message (312 NO_ROUTE). No reply."""
    channel: UInt16
    reply_code: UInt16
    reply_text: ShortStr
    exchange: ShortStr
    routing_key: ShortStr
    properties: Properties
    body: bytes


@valueclass()
class Body(Frame, opcode=0x56, sender="both"):
    """A leading part of a message body too large for one frame (``docs/protocol.md`` section
    2.1): one or more Body frames precede the message frame — Publish, Deliver, GetOk or
    Return — whose ``body`` is the last part. The codec splits and joins them: its owner only
    ever sees whole messages."""
    channel: UInt16
    body_size: UInt64  #: the whole body's size, the same in every part of one message
    chunk: bytes


#: The frames that carry a message, and may follow Body frames.
MESSAGE_FRAMES: tuple[type[Frame], ...] = (Publish, Deliver, GetOk, Return)


@valueclass()
class Ack(Frame, opcode=0x58, sender="client"):
    channel: UInt16
    delivery_tag: UInt64
    multiple: bool = False


@valueclass()
class Nack(Frame, opcode=0x59, sender="client"):
    channel: UInt16
    delivery_tag: UInt64
    multiple: bool = False
    requeue: bool = True


@valueclass()
class Reject(Frame, opcode=0x5A, sender="client"):
    channel: UInt16
    delivery_tag: UInt64
    requeue: bool = True


@valueclass()
class Recover(Frame, opcode=0x5B, sender="client"):
    """Redeliver every unacked message of the channel. Reply: RecoverOk."""
    channel: UInt16
    requeue: bool = True


@valueclass()
class RecoverOk(Frame, opcode=0x5C, sender="server"):
    channel: UInt16


# --- publisher confirms ------------------------------------------------------------------

@valueclass()
class ConfirmSelect(Frame, opcode=0x60, sender="client"):
    """Reply: ConfirmSelectOk. From then on the server numbers publishes 1, 2, 3 ..."""
    channel: UInt16


@valueclass()
class ConfirmSelectOk(Frame, opcode=0x61, sender="server"):
    channel: UInt16


@valueclass()
class ConfirmAck(Frame, opcode=0x62, sender="server"):
    """S→C: the publish numbered ``delivery_tag`` (and all before it when ``multiple``) is safe."""
    channel: UInt16
    delivery_tag: UInt64
    multiple: bool = False


@valueclass()
class ConfirmNack(Frame, opcode=0x63, sender="server"):
    """S→C: the broker could not take responsibility for these publishes."""
    channel: UInt16
    delivery_tag: UInt64
    multiple: bool = False


# PublishBatch and the stream frames are declared on ``Frame`` in ``streamframes.py``.
from minibroker.protocols.native import streamframes  # noqa: E402 - needs Frame, above

#: Every frame type, in opcode order.
FRAME_TYPES: tuple[type[Frame], ...] = tuple(
    sorted(
        (cls for cls in [*globals().values(), *vars(streamframes).values()]
         if isinstance(cls, type) and issubclass(cls, Frame) and hasattr(cls, "opcode")),
        key=lambda cls: cls.opcode,
    )
)

#: Synchronous request -> the reply types that answer it (a close answers any of them on error):
#: ``X`` is answered by ``XOk``, and ``Get`` by ``GetOk`` or ``GetEmpty``.
REPLIES: dict[type[Frame], tuple[type[Frame], ...]] = {
    cls: (ok, GetEmpty) if cls is Get else (ok,)
    for cls in FRAME_TYPES
    if (ok := next((o for o in FRAME_TYPES if o.__name__ == cls.__name__ + "Ok"), None))
}
