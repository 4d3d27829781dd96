"""The broker model's vocabulary: its queues, exchanges and strategies, and what it records.

The state machine in ``test_broker_state_machine.py`` (whose docstring states the rules) keeps
one ``Copy`` per routed copy of a message and follows it to where the broker must have it.
Nothing here talks to the broker.
"""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field, replace

from hypothesis import strategies as st

from minibroker.message import FieldTable, Message

ChannelKey = tuple[int, int]
EXCHANGES = {"x.direct": "direct", "x.fanout": "fanout", "x.topic": "topic", "x.ae": "direct"}
#: Exchanges with an alternate exchange: what they route nowhere goes there (rule 9).
ALTERNATES = {"x.ae": "x.topic"}
#: What the publish rules publish to ("" is the default exchange).
PUBLISH_TO = st.sampled_from(["x.topic", "x.fanout", "x.direct", "x.ae", ""])
#: Exchange-to-exchange bindings, source -> [(destination, binding key)]: a cycle on purpose.
E2E = {"x.topic": [("x.fanout", "a.#")], "x.fanout": [("x.topic", "")]}
#: Exchange-to-exchange bindings the rules make and remove: (source, destination, key).
EDGES = [("x.topic", "x.fanout", "a.#"), ("x.fanout", "x.topic", ""), ("x.direct", "x.fanout", "b"),
         ("x.ae", "x.direct", "a"), ("x.direct", "x.topic", "a.b")]
#: The exchange the rules delete and declare again (rule 9).
DELETABLE = "x.direct"
#: Queue name -> (exclusive, auto_delete) it is normally declared with.
QUEUES = {"q0": (False, False), "q1": (False, True), "q2": (True, False), "q3": (False, False),
          "dlq": (False, False), "qx": (False, False), "qs": (False, False),
          "qr": (False, False), "qp": (False, False)}
#: The queue with features, its arguments and where it dead-letters to (rule 5).
TTL_QUEUE, DLQ, TTL, MAX_LENGTH = "q3", "dlq", 1.0, 3
#: The queue with an ``x-expires`` lease (rule 6) and its length in seconds.
LEASED, EXPIRES = "qx", 2.0
QUEUE_ARGS: dict[str, FieldTable] = {TTL_QUEUE: {
    "x-message-ttl": int(TTL * 1000), "x-max-length": MAX_LENGTH,
    "x-dead-letter-exchange": "", "x-dead-letter-routing-key": DLQ,
}, LEASED: {"x-expires": int(EXPIRES * 1000)}, "qs": {"x-single-active-consumer": True}}
#: The queue with a single active consumer (rule 3).
SINGLE = "qs"
#: The queue that refuses publishes when full (rule 7), and its length limit.
REFUSING, REFUSE_AT = "qr", 2
QUEUE_ARGS[REFUSING] = {"x-max-length": REFUSE_AT, "x-overflow": "reject-publish"}
#: The queue with priorities (rule 10) and its ``x-max-priority``.
PRIORITIZED, MAX_PRIORITY = "qp", 2
QUEUE_ARGS[PRIORITIZED] = {"x-max-priority": MAX_PRIORITY}
#: Queues messages are routed to directly (dlq only receives dead letters, so its order is known).
ROUTED = [name for name in QUEUES if name != DLQ]
QUEUE_ARG = st.sampled_from([*QUEUES, *QUEUES, ""])  # "" = the channel's last declared queue
BIND_QUEUE_ARG = st.sampled_from([*ROUTED, ""])
BINDING_KEYS = st.sampled_from(["a", "b", "a.b", "#", "a.*", "*.b", "a.#"])
ROUTING_KEYS = st.sampled_from(["a.b", "a", "b", "", "b.a", *ROUTED])
PICK = st.integers(0, 9)
#: (exchange, routing key, mandatory) of each publish of a batch.
BATCH = st.lists(st.tuples(PUBLISH_TO,
                           ROUTING_KEYS, st.booleans()), min_size=1, max_size=4)
#: The exchanges every vhost has (AMQP 0-9-1 section 3.1.3: "amq." exchanges are predeclared).
DEFAULT_EXCHANGES = {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match",
                     "amq.rabbitmq.trace"}


@dataclass(eq=False)
class Copy:
    """One routed copy of a message in one incarnation of a queue."""

    seq: int
    #: The message as its consumer must receive it (``x-death`` time aside); copies are told
    #: apart by message id, their bodies repeat.
    message: Message
    queue: str
    incarnation: int
    redelivered: bool = False
    expires_at: float | None = None

    @property
    def id(self) -> str | None:
        return self.message.properties.message_id

    def place(self) -> tuple[int, int]:
        """Its place in its queue's ready order: by priority in ``qp`` (one above the maximum
        counts as the maximum), then in publish order (rule 10)."""
        if self.queue != PRIORITIZED:
            return (0, self.seq)
        return (-min(self.message.properties.priority or 0, MAX_PRIORITY), self.seq)


@dataclass(eq=False)
class MConsumer:
    tag: str
    queue: str
    channel: ChannelKey
    no_ack: bool
    exclusive: bool
    limit: int
    #: Its place in the queue's subscription order, and its ``x-priority`` (rule 3).
    number: int = 0
    priority: int = 0


@dataclass(eq=False)
class MQueue:
    incarnation: int
    owner: int | None
    auto_delete: bool
    ready: list[Copy] = field(default_factory=list)
    consumers: list[MConsumer] = field(default_factory=list)
    last_first_seq: int = 0
    #: Round-robin (rule 3): subscription numbers handed out, and the number the next turn
    #: starts from (the consumer after the last one that took a message).
    next_number: int = 0
    starts: dict[int, int] = field(default_factory=dict)  # priority -> turn start
    #: The ``x-expires`` lease (rule 6): when the queue was last used.
    last_used: float = 0.0
    #: Per-queue statistics (rule 4): published, delivered, acked, redelivered.
    counts: Counter[str] = field(default_factory=Counter)


@dataclass(eq=False)
class MChannel:
    prefetch: int = 0
    global_prefetch: int = 0
    last_tag: int = 0
    last_queue: str | None = None
    confirm_seq: int | None = None
    consumers: dict[str, MConsumer] = field(default_factory=dict)
    unacked: dict[int, tuple[Copy, MConsumer | None]] = field(default_factory=dict)
    #: Transactional (rule 8): publishes (message, mandatory, queues routed to at publish)
    #: and settlements (tag, copy, consumer, action) waiting for the commit.
    tx: MTx | None = None

    def holders(self) -> list[MConsumer | None]:
        """Who holds each delivery not yet settled for good (a settlement waiting for its
        commit keeps its credit taken)."""
        pending = [owner for _, _, owner, _ in self.tx.settlements] if self.tx else []
        return [owner for _, owner in self.unacked.values()] + pending

    def outstanding(self) -> list[tuple[int, Copy]]:
        """Every delivery still owned by its queue: unacked, or settled in the open tx."""
        pending = [(tag, copy) for tag, copy, _, _ in self.tx.settlements] if self.tx else []
        return sorted([(tag, copy) for tag, (copy, _) in self.unacked.items()] + pending,
                      key=lambda item: item[0])


@dataclass(eq=False)
class MTx:
    publishes: list[tuple[Message, bool, list[str]]] = field(default_factory=list)
    settlements: list[tuple[int, Copy, MConsumer | None, str]] = field(default_factory=list)


def dead_lettered(message: Message, reason: str) -> Message:
    """What a message of q3 becomes in dlq (RabbitMQ's dlx docs: the ``x-death`` array and the
    ``x-first-death-*`` headers; routed with the dead-letter routing key)."""
    headers: FieldTable = dict(message.properties.headers or {})
    headers["x-death"] = [{
        "count": 1, "reason": reason, "queue": TTL_QUEUE, "time": None,
        "exchange": message.exchange, "routing-keys": [message.routing_key],
    }]
    headers.update({"x-first-death-reason": reason, "x-first-death-queue": TTL_QUEUE,
                    "x-first-death-exchange": message.exchange})
    return Message("", DLQ, message.body, replace(message.properties, headers=headers))


def comparable(message: Message, *, model: bool = False) -> Message:
    """``message`` with each ``x-death`` time, which must be a timestamp (``None`` in the
    model's own messages), set to ``None``."""
    headers = message.properties.headers
    deaths = headers.get("x-death") if headers else None
    if headers is None or deaths is None:
        return message
    assert isinstance(deaths, list)
    for death in deaths:
        assert isinstance(death, dict)
        assert death["time"] is None if model else isinstance(death["time"], datetime.datetime)
    timeless: FieldTable = {**headers, "x-death": [
        {**death, "time": None} for death in deaths if isinstance(death, dict)]}
    return replace(message, properties=replace(message.properties, headers=timeless))


class Expected(Exception):
    """The model predicts that the command is refused with this reply code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code
