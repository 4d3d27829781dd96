"""One frozen dataclass per AMQP 0-9-1 method, named after it (``basic.publish`` →
:class:`BasicPublish`).

Rules:

1. Fields are the method's arguments in wire order, named as in :mod:`.spec` (a unit test
   checks every class against the table). Values use plain Python types: ``bit`` → ``bool``,
   integers → ``int``, ``shortstr``/``longstr`` → ``str`` (``bytes`` for SASL data and
   secrets), ``table`` → ``dict``.
2. Every class carries its table entry as class attributes: ``SPEC``, ``NAME``, ``CLASS_ID``,
   ``METHOD_ID``, ``KEY`` (``class_id << 16 | method_id``). The codec finds classes through
   :data:`METHOD_CLASSES`.
3. Defaults are the values a peer sends when it has nothing to say (0, ``False``, ``""``,
   ``{}``) plus a few conventional ones (``version_minor=9``, ``locales="en_US"``,
   ``virtual_host="/"``, ``exchange_type="direct"``), so ``BasicAck(delivery_tag=5)`` is a
   complete method.
4. Methods are values: never mutate one. The classes are slotted but deliberately *not*
   ``frozen``: a frozen dataclass's ``__init__`` goes through ``object.__setattr__`` per field
   and made decoding a basic.publish ~1 µs slower (measured; one is built per frame).
"""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar

from minibroker.message import FieldTable
from minibroker.protocols.amqp091.spec import METHODS, MethodSpec
from minibroker.valueclass import valueclass

__all__ = ["METHOD_CLASSES", "Method", "class_name"]


@valueclass()
class Method:
    """Base of every method class."""

    SPEC: ClassVar[MethodSpec]
    NAME: ClassVar[str]
    CLASS_ID: ClassVar[int]
    METHOD_ID: ClassVar[int]
    KEY: ClassVar[int]


# -- connection (10) ----------------------------------------------------------------------------

@valueclass()
class ConnectionStart(Method):
    version_major: int = 0
    version_minor: int = 9
    server_properties: FieldTable = field(default_factory=dict)
    mechanisms: str = "PLAIN"
    locales: str = "en_US"

@valueclass()
class ConnectionStartOk(Method):
    client_properties: FieldTable = field(default_factory=dict)
    mechanism: str = "PLAIN"
    response: bytes = b""
    locale: str = "en_US"

@valueclass()
class ConnectionSecure(Method):
    challenge: bytes = b""

@valueclass()
class ConnectionSecureOk(Method):
    response: bytes = b""

@valueclass()
class ConnectionTune(Method):
    channel_max: int = 0
    frame_max: int = 0
    heartbeat: int = 0

@valueclass()
class ConnectionTuneOk(Method):
    channel_max: int = 0
    frame_max: int = 0
    heartbeat: int = 0

@valueclass()
class ConnectionOpen(Method):
    virtual_host: str = "/"
    capabilities: str = ""
    insist: bool = False

@valueclass()
class ConnectionOpenOk(Method):
    known_hosts: str = ""

@valueclass()
class ConnectionClose(Method):
    reply_code: int = 0
    reply_text: str = ""
    class_id: int = 0
    method_id: int = 0

@valueclass()
class ConnectionCloseOk(Method):
    pass

@valueclass()
class ConnectionBlocked(Method):
    reason: str = ""

@valueclass()
class ConnectionUnblocked(Method):
    pass

@valueclass()
class ConnectionUpdateSecret(Method):
    new_secret: bytes = b""
    reason: str = ""

@valueclass()
class ConnectionUpdateSecretOk(Method):
    pass

# -- channel (20) -------------------------------------------------------------------------------

@valueclass()
class ChannelOpen(Method):
    out_of_band: str = ""

@valueclass()
class ChannelOpenOk(Method):
    channel_id: str = ""

@valueclass()
class ChannelFlow(Method):
    active: bool = False

@valueclass()
class ChannelFlowOk(Method):
    active: bool = False

@valueclass()
class ChannelClose(Method):
    reply_code: int = 0
    reply_text: str = ""
    class_id: int = 0
    method_id: int = 0

@valueclass()
class ChannelCloseOk(Method):
    pass

# -- exchange (40) ------------------------------------------------------------------------------

@valueclass()
class ExchangeDeclare(Method):
    ticket: int = 0
    exchange: str = ""
    exchange_type: str = "direct"
    passive: bool = False
    durable: bool = False
    auto_delete: bool = False
    internal: bool = False
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@valueclass()
class ExchangeDeclareOk(Method):
    pass

@valueclass()
class ExchangeDelete(Method):
    ticket: int = 0
    exchange: str = ""
    if_unused: bool = False
    nowait: bool = False

@valueclass()
class ExchangeDeleteOk(Method):
    pass

@valueclass()
class ExchangeBind(Method):
    ticket: int = 0
    destination: str = ""
    source: str = ""
    routing_key: str = ""
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@valueclass()
class ExchangeBindOk(Method):
    pass

@valueclass()
class ExchangeUnbind(Method):
    ticket: int = 0
    destination: str = ""
    source: str = ""
    routing_key: str = ""
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@valueclass()
class ExchangeUnbindOk(Method):
    pass

# -- queue (50) ---------------------------------------------------------------------------------

@valueclass()
class QueueDeclare(Method):
    ticket: int = 0
    queue: str = ""
    passive: bool = False
    durable: bool = False
    exclusive: bool = False
    auto_delete: bool = False
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@valueclass()
class QueueDeclareOk(Method):
    queue: str = ""
    message_count: int = 0
    consumer_count: int = 0

@valueclass()
class QueueBind(Method):
    ticket: int = 0
    queue: str = ""
    exchange: str = ""
    routing_key: str = ""
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@valueclass()
class QueueBindOk(Method):
    pass

@valueclass()
class QueuePurge(Method):
    ticket: int = 0
    queue: str = ""
    nowait: bool = False

@valueclass()
class QueuePurgeOk(Method):
    message_count: int = 0

@valueclass()
class QueueDelete(Method):
    ticket: int = 0
    queue: str = ""
    if_unused: bool = False
    if_empty: bool = False
    nowait: bool = False

@valueclass()
class QueueDeleteOk(Method):
    message_count: int = 0

@valueclass()
class QueueUnbind(Method):
    ticket: int = 0
    queue: str = ""
    exchange: str = ""
    routing_key: str = ""
    arguments: FieldTable = field(default_factory=dict)

@valueclass()
class QueueUnbindOk(Method):
    pass

# -- basic (60) ---------------------------------------------------------------------------------

@valueclass()
class BasicQos(Method):
    prefetch_size: int = 0
    prefetch_count: int = 0
    global_: bool = False

@valueclass()
class BasicQosOk(Method):
    pass

@valueclass()
class BasicConsume(Method):
    ticket: int = 0
    queue: str = ""
    consumer_tag: str = ""
    no_local: bool = False
    no_ack: bool = False
    exclusive: bool = False
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@valueclass()
class BasicConsumeOk(Method):
    consumer_tag: str = ""

@valueclass()
class BasicCancel(Method):
    consumer_tag: str = ""
    nowait: bool = False

@valueclass()
class BasicCancelOk(Method):
    consumer_tag: str = ""

@valueclass()
class BasicPublish(Method):
    ticket: int = 0
    exchange: str = ""
    routing_key: str = ""
    mandatory: bool = False
    immediate: bool = False

@valueclass()
class BasicReturn(Method):
    reply_code: int = 0
    reply_text: str = ""
    exchange: str = ""
    routing_key: str = ""

@valueclass()
class BasicDeliver(Method):
    consumer_tag: str = ""
    delivery_tag: int = 0
    redelivered: bool = False
    exchange: str = ""
    routing_key: str = ""

@valueclass()
class BasicGet(Method):
    ticket: int = 0
    queue: str = ""
    no_ack: bool = False

@valueclass()
class BasicGetOk(Method):
    delivery_tag: int = 0
    redelivered: bool = False
    exchange: str = ""
    routing_key: str = ""
    message_count: int = 0

@valueclass()
class BasicGetEmpty(Method):
    cluster_id: str = ""

@valueclass()
class BasicAck(Method):
    delivery_tag: int = 0
    multiple: bool = False

@valueclass()
class BasicReject(Method):
    delivery_tag: int = 0
    requeue: bool = False

@valueclass()
class BasicRecoverAsync(Method):
    requeue: bool = False

@valueclass()
class BasicRecover(Method):
    requeue: bool = False

@valueclass()
class BasicRecoverOk(Method):
    pass

@valueclass()
class BasicNack(Method):
    delivery_tag: int = 0
    multiple: bool = False
    requeue: bool = False

# -- confirm (85) -------------------------------------------------------------------------------

@valueclass()
class ConfirmSelect(Method):
    nowait: bool = False

@valueclass()
class ConfirmSelectOk(Method):
    pass

# -- tx (90) ------------------------------------------------------------------------------------

@valueclass()
class TxSelect(Method):
    pass

@valueclass()
class TxSelectOk(Method):
    pass

@valueclass()
class TxCommit(Method):
    pass

@valueclass()
class TxCommitOk(Method):
    pass

@valueclass()
class TxRollback(Method):
    pass

@valueclass()
class TxRollbackOk(Method):
    pass


def class_name(method_name: str) -> str:
    """``"exchange.unbind-ok"`` → ``"ExchangeUnbindOk"``."""
    return "".join(part.capitalize() for part in method_name.replace(".", "-").split("-"))


#: method key (``class_id << 16 | method_id``) → method class.
METHOD_CLASSES: dict[int, type[Method]] = {}


def _register() -> None:
    namespace = globals()
    for spec in METHODS:
        cls = namespace[class_name(spec.name)]
        cls.SPEC, cls.NAME, cls.KEY = spec, spec.name, spec.key
        cls.CLASS_ID, cls.METHOD_ID = spec.class_id, spec.method_id
        METHOD_CLASSES[spec.key] = cls
        __all__.append(cls.__name__)


_register()
