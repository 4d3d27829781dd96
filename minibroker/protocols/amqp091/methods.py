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

from dataclasses import dataclass, field
from typing import ClassVar

from minibroker.message import FieldTable
from minibroker.protocols.amqp091.spec import METHODS, MethodSpec

__all__ = ["METHOD_CLASSES", "Method", "class_name"]


@dataclass(slots=True)
class Method:
    """Base of every method class."""

    SPEC: ClassVar[MethodSpec]
    NAME: ClassVar[str]
    CLASS_ID: ClassVar[int]
    METHOD_ID: ClassVar[int]
    KEY: ClassVar[int]


# -- connection (10) ----------------------------------------------------------------------------

@dataclass(slots=True)
class ConnectionStart(Method):
    version_major: int = 0
    version_minor: int = 9
    server_properties: FieldTable = field(default_factory=dict)
    mechanisms: str = "PLAIN"
    locales: str = "en_US"

@dataclass(slots=True)
class ConnectionStartOk(Method):
    client_properties: FieldTable = field(default_factory=dict)
    mechanism: str = "PLAIN"
    response: bytes = b""
    locale: str = "en_US"

@dataclass(slots=True)
class ConnectionSecure(Method):
    challenge: bytes = b""

@dataclass(slots=True)
class ConnectionSecureOk(Method):
    response: bytes = b""

@dataclass(slots=True)
class ConnectionTune(Method):
    channel_max: int = 0
    frame_max: int = 0
    heartbeat: int = 0

@dataclass(slots=True)
class ConnectionTuneOk(Method):
    channel_max: int = 0
    frame_max: int = 0
    heartbeat: int = 0

@dataclass(slots=True)
class ConnectionOpen(Method):
    virtual_host: str = "/"
    capabilities: str = ""
    insist: bool = False

@dataclass(slots=True)
class ConnectionOpenOk(Method):
    known_hosts: str = ""

@dataclass(slots=True)
class ConnectionClose(Method):
    reply_code: int = 0
    reply_text: str = ""
    class_id: int = 0
    method_id: int = 0

@dataclass(slots=True)
class ConnectionCloseOk(Method):
    pass

@dataclass(slots=True)
class ConnectionBlocked(Method):
    reason: str = ""

@dataclass(slots=True)
class ConnectionUnblocked(Method):
    pass

@dataclass(slots=True)
class ConnectionUpdateSecret(Method):
    new_secret: bytes = b""
    reason: str = ""

@dataclass(slots=True)
class ConnectionUpdateSecretOk(Method):
    pass

# -- channel (20) -------------------------------------------------------------------------------

@dataclass(slots=True)
class ChannelOpen(Method):
    out_of_band: str = ""

@dataclass(slots=True)
class ChannelOpenOk(Method):
    channel_id: str = ""

@dataclass(slots=True)
class ChannelFlow(Method):
    active: bool = False

@dataclass(slots=True)
class ChannelFlowOk(Method):
    active: bool = False

@dataclass(slots=True)
class ChannelClose(Method):
    reply_code: int = 0
    reply_text: str = ""
    class_id: int = 0
    method_id: int = 0

@dataclass(slots=True)
class ChannelCloseOk(Method):
    pass

# -- exchange (40) ------------------------------------------------------------------------------

@dataclass(slots=True)
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

@dataclass(slots=True)
class ExchangeDeclareOk(Method):
    pass

@dataclass(slots=True)
class ExchangeDelete(Method):
    ticket: int = 0
    exchange: str = ""
    if_unused: bool = False
    nowait: bool = False

@dataclass(slots=True)
class ExchangeDeleteOk(Method):
    pass

@dataclass(slots=True)
class ExchangeBind(Method):
    ticket: int = 0
    destination: str = ""
    source: str = ""
    routing_key: str = ""
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@dataclass(slots=True)
class ExchangeBindOk(Method):
    pass

@dataclass(slots=True)
class ExchangeUnbind(Method):
    ticket: int = 0
    destination: str = ""
    source: str = ""
    routing_key: str = ""
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@dataclass(slots=True)
class ExchangeUnbindOk(Method):
    pass

# -- queue (50) ---------------------------------------------------------------------------------

@dataclass(slots=True)
class QueueDeclare(Method):
    ticket: int = 0
    queue: str = ""
    passive: bool = False
    durable: bool = False
    exclusive: bool = False
    auto_delete: bool = False
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@dataclass(slots=True)
class QueueDeclareOk(Method):
    queue: str = ""
    message_count: int = 0
    consumer_count: int = 0

@dataclass(slots=True)
class QueueBind(Method):
    ticket: int = 0
    queue: str = ""
    exchange: str = ""
    routing_key: str = ""
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@dataclass(slots=True)
class QueueBindOk(Method):
    pass

@dataclass(slots=True)
class QueuePurge(Method):
    ticket: int = 0
    queue: str = ""
    nowait: bool = False

@dataclass(slots=True)
class QueuePurgeOk(Method):
    message_count: int = 0

@dataclass(slots=True)
class QueueDelete(Method):
    ticket: int = 0
    queue: str = ""
    if_unused: bool = False
    if_empty: bool = False
    nowait: bool = False

@dataclass(slots=True)
class QueueDeleteOk(Method):
    message_count: int = 0

@dataclass(slots=True)
class QueueUnbind(Method):
    ticket: int = 0
    queue: str = ""
    exchange: str = ""
    routing_key: str = ""
    arguments: FieldTable = field(default_factory=dict)

@dataclass(slots=True)
class QueueUnbindOk(Method):
    pass

# -- basic (60) ---------------------------------------------------------------------------------

@dataclass(slots=True)
class BasicQos(Method):
    prefetch_size: int = 0
    prefetch_count: int = 0
    global_: bool = False

@dataclass(slots=True)
class BasicQosOk(Method):
    pass

@dataclass(slots=True)
class BasicConsume(Method):
    ticket: int = 0
    queue: str = ""
    consumer_tag: str = ""
    no_local: bool = False
    no_ack: bool = False
    exclusive: bool = False
    nowait: bool = False
    arguments: FieldTable = field(default_factory=dict)

@dataclass(slots=True)
class BasicConsumeOk(Method):
    consumer_tag: str = ""

@dataclass(slots=True)
class BasicCancel(Method):
    consumer_tag: str = ""
    nowait: bool = False

@dataclass(slots=True)
class BasicCancelOk(Method):
    consumer_tag: str = ""

@dataclass(slots=True)
class BasicPublish(Method):
    ticket: int = 0
    exchange: str = ""
    routing_key: str = ""
    mandatory: bool = False
    immediate: bool = False

@dataclass(slots=True)
class BasicReturn(Method):
    reply_code: int = 0
    reply_text: str = ""
    exchange: str = ""
    routing_key: str = ""

@dataclass(slots=True)
class BasicDeliver(Method):
    consumer_tag: str = ""
    delivery_tag: int = 0
    redelivered: bool = False
    exchange: str = ""
    routing_key: str = ""

@dataclass(slots=True)
class BasicGet(Method):
    ticket: int = 0
    queue: str = ""
    no_ack: bool = False

@dataclass(slots=True)
class BasicGetOk(Method):
    delivery_tag: int = 0
    redelivered: bool = False
    exchange: str = ""
    routing_key: str = ""
    message_count: int = 0

@dataclass(slots=True)
class BasicGetEmpty(Method):
    cluster_id: str = ""

@dataclass(slots=True)
class BasicAck(Method):
    delivery_tag: int = 0
    multiple: bool = False

@dataclass(slots=True)
class BasicReject(Method):
    delivery_tag: int = 0
    requeue: bool = False

@dataclass(slots=True)
class BasicRecoverAsync(Method):
    requeue: bool = False

@dataclass(slots=True)
class BasicRecover(Method):
    requeue: bool = False

@dataclass(slots=True)
class BasicRecoverOk(Method):
    pass

@dataclass(slots=True)
class BasicNack(Method):
    delivery_tag: int = 0
    multiple: bool = False
    requeue: bool = False

# -- confirm (85) -------------------------------------------------------------------------------

@dataclass(slots=True)
class ConfirmSelect(Method):
    nowait: bool = False

@dataclass(slots=True)
class ConfirmSelectOk(Method):
    pass

# -- tx (90) ------------------------------------------------------------------------------------

@dataclass(slots=True)
class TxSelect(Method):
    pass

@dataclass(slots=True)
class TxSelectOk(Method):
    pass

@dataclass(slots=True)
class TxCommit(Method):
    pass

@dataclass(slots=True)
class TxCommitOk(Method):
    pass

@dataclass(slots=True)
class TxRollback(Method):
    pass

@dataclass(slots=True)
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
