"""Commands: what a protocol adapter asks the broker core to do.

Rules:

1. One frozen value per AMQP method the core implements, named imperatively after it
   (``DeclareQueue`` for ``queue.declare``). ``Broker.handle`` takes any of them.
2. Every command names the ``connection`` (an id the shell chose) and the ``channel`` (the
   channel number on that connection) it came from; connection-level commands have no channel.
3. ``arguments`` is ``None`` when the peer sent no table; the core treats ``None`` and ``{}``
   alike. Commands never carry protocol details (frame sizes, class ids, nowait flags).
"""

from __future__ import annotations

from minibroker.message import FieldTable, Message
from minibroker.valueclass import valueclass

__all__ = [
    "Ack", "AckMany", "BindExchange", "BindQueue", "Cancel", "CloseChannel", "CloseConnection",
    "Command", "CommitOffset", "ConfirmSelect", "Consume", "DeclareExchange", "DeclareQueue",
    "DeleteExchange", "DeleteQueue", "Get", "Nack", "OpenChannel", "OpenConnection", "Publish",
    "PublishMany", "PurgeQueue", "Qos", "QueryOffset", "ReadStream", "Recover", "Reject",
    "SetWritable", "Synced", "TxCommit", "TxRollback", "TxSelect", "UnbindExchange",
    "UnbindQueue",
]


@valueclass(frozen=True)
class OpenConnection:
    connection: int
    user: str = "guest"
    #: Free-form description for introspection (peer address, client name).
    peer: str = ""
    #: The name the client gave its connection (AMQP's ``connection_name`` client property,
    #: the native hello's client name); "" when it gave none. For introspection only.
    connection_name: str = ""
    #: The client properties the client announced (product, version, capabilities...).
    client_properties: FieldTable | None = None


@valueclass(frozen=True)
class CloseConnection:
    connection: int


@valueclass(frozen=True)
class SetWritable:
    """Backpressure from the shell: stop (``writable=False``) or resume pushing deliveries to
    this connection's consumers while its socket buffer is full. ``writable=True`` also says
    "what was delivered has been flushed": it renews the connection's delivery burst
    (``channels.py`` rule 5)."""

    connection: int
    writable: bool


@valueclass(frozen=True)
class Synced:
    """From the shell's storage writer: every journal intent up to ``upto`` (the journal's
    ``count``) is on disk (``journal.py`` rule 3); the confirms waiting for it may go."""

    upto: int


@valueclass(frozen=True)
class OpenChannel:
    connection: int
    channel: int


@valueclass(frozen=True)
class CloseChannel:
    connection: int
    channel: int


@valueclass(frozen=True)
class DeclareExchange:
    connection: int
    channel: int
    exchange: str
    type: str = "direct"
    passive: bool = False
    durable: bool = False
    auto_delete: bool = False
    internal: bool = False
    arguments: FieldTable | None = None


@valueclass(frozen=True)
class DeleteExchange:
    connection: int
    channel: int
    exchange: str
    if_unused: bool = False


@valueclass(frozen=True)
class BindExchange:
    connection: int
    channel: int
    destination: str
    source: str
    routing_key: str = ""
    arguments: FieldTable | None = None


@valueclass(frozen=True)
class UnbindExchange:
    connection: int
    channel: int
    destination: str
    source: str
    routing_key: str = ""
    arguments: FieldTable | None = None


@valueclass(frozen=True)
class DeclareQueue:
    connection: int
    channel: int
    queue: str = ""
    passive: bool = False
    durable: bool = False
    exclusive: bool = False
    auto_delete: bool = False
    arguments: FieldTable | None = None


@valueclass(frozen=True)
class DeleteQueue:
    connection: int
    channel: int
    queue: str
    if_unused: bool = False
    if_empty: bool = False


@valueclass(frozen=True)
class BindQueue:
    connection: int
    channel: int
    queue: str
    exchange: str
    routing_key: str = ""
    arguments: FieldTable | None = None


@valueclass(frozen=True)
class UnbindQueue:
    connection: int
    channel: int
    queue: str
    exchange: str
    routing_key: str = ""
    arguments: FieldTable | None = None


@valueclass(frozen=True)
class PurgeQueue:
    connection: int
    channel: int
    queue: str


@valueclass(frozen=True)
class Qos:
    connection: int
    channel: int
    prefetch_count: int
    global_: bool = False


@valueclass(frozen=True)
class Consume:
    connection: int
    channel: int
    queue: str
    consumer_tag: str = ""
    no_ack: bool = False
    exclusive: bool = False
    arguments: FieldTable | None = None


@valueclass(frozen=True)
class Cancel:
    connection: int
    channel: int
    consumer_tag: str


@valueclass(frozen=True)
class Publish:
    connection: int
    channel: int
    message: Message
    mandatory: bool = False


@valueclass(frozen=True)
class PublishMany:
    """Consecutive publishes of one channel, handled as one input: the same outcome as the
    ``Publish`` commands one after another, except that a batch with a refused publish is
    refused whole, before anything changes (adapters replay it one by one)."""

    connection: int
    channel: int
    messages: tuple[tuple[Message, bool], ...]  #: (message, mandatory) pairs
    #: The adapter made every message of one exchange name, routing key and properties object
    #: and gave them one mandatory flag (a native lane's run): the core checks, routes and
    #: authorizes the first alone (``publishing.py`` rule 6).
    uniform: bool = False


@valueclass(frozen=True)
class Get:
    connection: int
    channel: int
    queue: str
    no_ack: bool = False


@valueclass(frozen=True)
class Ack:
    connection: int
    channel: int
    delivery_tag: int
    multiple: bool = False


@valueclass(frozen=True)
class AckMany:
    """Consecutive single (``multiple=False``) acks of one channel as one input: settled
    together, then one dispatch. Refused whole if any tag is not outstanding (adapters then
    replay the acks one by one, to apply those before the bad one)."""

    connection: int
    channel: int
    delivery_tags: tuple[int, ...]


@valueclass(frozen=True)
class Nack:
    connection: int
    channel: int
    delivery_tag: int
    multiple: bool = False
    requeue: bool = True


@valueclass(frozen=True)
class Reject:
    connection: int
    channel: int
    delivery_tag: int
    requeue: bool = True


@valueclass(frozen=True)
class Recover:
    connection: int
    channel: int
    requeue: bool = True


@valueclass(frozen=True)
class ConfirmSelect:
    connection: int
    channel: int


@valueclass(frozen=True)
class TxSelect:
    connection: int
    channel: int


@valueclass(frozen=True)
class TxCommit:
    connection: int
    channel: int


@valueclass(frozen=True)
class TxRollback:
    connection: int
    channel: int


# -- streams: the pull model and stored offsets (``streamreads.py``; native protocol only) ---


@valueclass(frozen=True)
class ReadStream:
    """Read a stream without a subscription: the messages from where ``arguments`` say
    (``x-stream-offset`` and the filter arguments, as ``basic.consume`` takes them), at most
    ``max_messages`` and stopping once ``max_bytes`` of bodies are read. A positive
    ``reply_bytes`` also stops before the reply's estimated size would pass it: each message
    counted as its body, exchange and routing key plus ``record_bytes`` (a protocol's
    envelope), so that a reply meant for one frame is not read only to be cut. ``packed``:
    the reply may carry runs of a durable stream's stored encoding (``streamreads.py``)."""

    connection: int
    channel: int
    queue: str
    arguments: FieldTable | None = None
    max_messages: int = 1000
    max_bytes: int = 1 << 20
    reply_bytes: int = 0
    record_bytes: int = 0
    packed: bool = False


@valueclass(frozen=True)
class CommitOffset:
    """Store ``offset`` for the consumer ``name`` of a stream (Kafka's committed offset)."""

    connection: int
    channel: int
    queue: str
    name: str
    offset: int


@valueclass(frozen=True)
class QueryOffset:
    connection: int
    channel: int
    queue: str
    name: str


Command = (
    OpenConnection | CloseConnection | SetWritable | Synced | OpenChannel | CloseChannel
    | DeclareExchange | DeleteExchange | BindExchange | UnbindExchange
    | DeclareQueue | DeleteQueue | BindQueue | UnbindQueue | PurgeQueue
    | Qos | Consume | Cancel | Publish | PublishMany | Get | Ack | AckMany | Nack | Reject | Recover
    | ConfirmSelect | TxSelect | TxCommit | TxRollback | ReadStream | CommitOffset | QueryOffset
)
