"""Property: random command sequences against the broker core keep every message accounted for.

A hypothesis ``RuleBasedStateMachine`` drives ``Broker.handle`` with declare/bind/unbind/publish/
publish-many/consume/qos/ack/ack-many/nack/reject/cancel/resubscribe/get/recover/purge/delete,
transactions and channel/connection churn, over a few connections, channels, queues and
exchanges (direct, fanout, topic with ``#``, and an exchange-to-exchange cycle). A model follows
along, learning where each delivery went from the ``Deliver`` effects and ``GetOk`` replies,
and predicting every error.

Rules (the invariants, checked after every step):

1. Conservation: every routed copy (message, queue) is in exactly one place — ready in its
   queue, unacked on exactly one channel, or gone by a stated rule (acked, rejected without
   requeue, purged, queue deleted, no-ack delivery). The broker's queues and unacked maps
   hold exactly the model's copies, in the model's order.
2. Copies are told apart by message id (bodies repeat), and every delivery and ``basic.get``
   carries the message as published — properties, headers, exchange, routing key — or, from
   ``dlq``, as dead-lettered: ``x-death`` with its reason, queue, exchange and routing keys,
   and the ``x-first-death-*`` headers. Delivery tags strictly increase per channel; a
   delivery takes the head of its queue, so first deliveries (``redelivered=False``) leave
   each queue in publish order.
3. No consumer holds more unacked deliveries than its prefetch, nor a channel more than its
   global prefetch; and no queue keeps a ready message while one of its consumers has credit.
   Each delivery goes to the consumer whose turn it is: the first with credit in subscription
   order from the one after the last consumer that took a message, wrapping after the last
   (a turn past the last consumer left wraps when that consumer goes, so a newcomer waits).
   Consumers of the highest ``x-priority`` with credit come first, each priority keeping its
   own turn; on ``qs`` (single active consumer) only the first subscribed consumer receives.
4. ``statistics()`` and every queue's ``queue_statistics()`` (ready, unacked, consumers,
   published, delivered, acked, redelivered) agree with the model. A refused command changes
   nothing, and the adapter then closes the channel (channel error) or the connection
   (connection error). A mandatory message that routes nowhere comes back as itself; a
   ``PublishMany`` is the same as its publishes one by one, confirmed by one ``multiple``
   confirm; an ``AckMany`` with any tag not outstanding is refused whole.
5. Queue features: ``q3`` has a message TTL, a max length and a dead-letter exchange (the
   default exchange, to ``dlq``). The clock advances by rule; expired heads, heads dropped over
   the length limit and messages rejected without requeue leave ``q3`` only by dead-lettering
   into ``dlq`` (or are dropped when ``dlq`` is gone), and the broker's next deadline is never
   later than the model's oldest ``q3`` message. (``q3`` has no consumers in this machine: its
   deliveries would interleave with dead-lettering inside one command.)
6. ``qx`` has an ``x-expires`` lease: each declare, get, consume and cancel renews it; unused and
   without consumers for the whole lease, it is deleted at the model's clock, and the broker's
   next deadline is never later than the lease's end.
7. ``qr`` has a max length with ``reject-publish``: a publish routed to it while it holds that
   many ready messages is not enqueued there (other queues still take it) and is confirmed
   by a nack. (``qr`` has no consumers: a batch's deliveries would change its length between
   its publishes.)
8. Transactions: ``tx.select`` on a confirm channel, ``confirm.select`` on a transactional one,
   and ``tx.commit``/``tx.rollback`` on a plain one are refused (406). A transactional channel's
   publishes are routed when published and enqueued at commit (returned then if no routed
   queue is left), its settlements leave the unacked map at once but keep their credit and
   their copies until the commit, which applies them after the publishes, consecutive ones of
   a kind together in tag order; a rollback makes them unacked again.
"""

from __future__ import annotations

import bisect
import datetime
import itertools
from collections import Counter
from dataclasses import dataclass, field, replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import (
    CancelOk,
    Confirm,
    ConsumeOk,
    ConsumerCancelled,
    Deliver,
    Effect,
    GetEmpty,
    GetOk,
    Outcome,
    QueueDeclareOk,
    QueueDeleteOk,
    QueuePurgeOk,
    Return,
)
from minibroker.core.topic import reference_match
from minibroker.errors import ChannelError, ConnectionLevelError
from minibroker.message import FieldTable, Message, Properties
from tests.unit.core.helpers import fingerprint

ChannelKey = tuple[int, int]
EXCHANGES = {"x.direct": "direct", "x.fanout": "fanout", "x.topic": "topic"}
#: Exchange-to-exchange bindings, source -> [(destination, binding key)]: a cycle on purpose.
E2E = {"x.topic": [("x.fanout", "a.#")], "x.fanout": [("x.topic", "")]}
#: Queue name -> (exclusive, auto_delete) it is normally declared with.
QUEUES = {"q0": (False, False), "q1": (False, True), "q2": (True, False), "q3": (False, False),
          "dlq": (False, False), "qx": (False, False), "qs": (False, False),
          "qr": (False, False)}
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
#: Queues messages are routed to directly (dlq only receives dead letters, so its order is known).
ROUTED = [name for name in QUEUES if name != DLQ]
QUEUE_ARG = st.sampled_from([*QUEUES, *QUEUES, ""])  # "" = the channel's last declared queue
BIND_QUEUE_ARG = st.sampled_from([*ROUTED, ""])
BINDING_KEYS = st.sampled_from(["a", "b", "a.b", "#", "a.*", "*.b", "a.#"])
ROUTING_KEYS = st.sampled_from(["a.b", "a", "b", "", "b.a", *ROUTED])
PICK = st.integers(0, 9)
#: (exchange, routing key, mandatory) of each publish of a batch.
BATCH = st.lists(st.tuples(st.sampled_from(["x.topic", "x.fanout", "x.direct", ""]),
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


class BrokerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.broker = Broker()
        self.queues: dict[str, MQueue] = {}
        self.bindings: set[tuple[str, str, str]] = set()
        self.channels: dict[ChannelKey, MChannel] = {}
        self.connections: set[int] = set()
        self.copies: list[Copy] = []
        self.gone: dict[int, str] = {}  # id(copy) -> the rule that removed it
        self.incarnations = itertools.count(1)
        self.homes: dict[int, MQueue] = {}  # incarnation -> its queue, deleted or not
        self.counters = Counter[str]()
        self.now = 0.0

    # -- driving the broker -----------------------------------------------------------------

    def send(self, command: c.Command) -> Outcome:
        return self.broker.handle(command, now=self.now)

    def attempt(self, command: c.Command, key: ChannelKey, predict: int | None
                ) -> Outcome | None:
        """Run ``command`` from channel ``key``; a refusal must match ``predict``, change
        nothing, and is followed by the close an adapter would send."""
        before = fingerprint(self.broker)
        try:
            outcome = self.send(command)
        except (ChannelError, ConnectionLevelError) as err:
            assert predict == err.reply_code, f"{command}: got {err}, model expected {predict}"
            assert fingerprint(self.broker) == before, f"{command} changed state and failed"
            # The adapter closes; the client reopens (as aio-pika's robust channels do).
            if isinstance(err, ChannelError):
                self.close_channel(key)
            else:
                self.close_connection(key[0])
            self.open_channel(*key)
            return None
        assert predict is None, f"{command}: succeeded, model expected {predict}"
        return outcome

    def pick_channel(self, index: int) -> tuple[ChannelKey, MChannel]:
        key = sorted(self.channels)[index % len(self.channels)]
        return key, self.channels[key]

    def resolve(self, chan: MChannel, name: str, key: ChannelKey, *, must_exist: bool = True
                ) -> tuple[str, MQueue | None]:
        """The queue a command names, raising the error the broker should give."""
        if not name:
            if chan.last_queue is None:
                raise Expected(404)
            name = chan.last_queue
        queue = self.queues.get(name)
        if queue is None:
            if must_exist:
                raise Expected(404)
            return name, None
        if queue.owner is not None and queue.owner != key[0]:
            raise Expected(405)
        return name, queue

    # -- model transitions ------------------------------------------------------------------

    def drop(self, copy: Copy, reason: str) -> None:
        assert id(copy) not in self.gone
        self.gone[id(copy)] = reason

    def dead_letter(self, copy: Copy, reason: str) -> None:
        """``copy`` leaves q3 by dead-lettering: a new copy at the tail of dlq, if it exists."""
        self.drop(copy, f"dead-lettered ({reason})")
        dlq = self.queues.get(DLQ)
        if dlq is not None:
            new = Copy(len(self.copies) + 1, dead_lettered(copy.message, reason), DLQ,
                       dlq.incarnation)
            self.copies.append(new)
            dlq.ready.append(new)
            dlq.counts["published"] += 1

    def sweep(self) -> None:
        """What the broker does after each change to q3: expired heads, then drop-head."""
        queue = self.queues.get(TTL_QUEUE)
        if queue is None:
            return
        while queue.ready and (queue.ready[0].expires_at or 0.0) <= self.now:
            self.dead_letter(queue.ready.pop(0), "expired")
        while len(queue.ready) > MAX_LENGTH:
            self.dead_letter(queue.ready.pop(0), "maxlen")

    def in_live_queue(self, copy: Copy) -> bool:
        queue = self.queues.get(copy.queue)
        return queue is not None and queue.incarnation == copy.incarnation

    def requeue(self, copy: Copy) -> None:
        # Counted by the queue the delivery came from, even when it was deleted since.
        self.homes[copy.incarnation].counts["redelivered"] += 1
        queue = self.queues.get(copy.queue)
        if queue is None or queue.incarnation != copy.incarnation:
            self.drop(copy, "queue deleted")
            return
        copy.redelivered = True
        bisect.insort(queue.ready, copy, key=lambda entry: entry.seq)

    def delete_queue(self, name: str) -> tuple[int, set[tuple[int, int, str]]]:
        queue = self.queues.pop(name)
        for copy in queue.ready:
            self.drop(copy, "queue deleted")
        cancelled = set()
        for consumer in queue.consumers:
            del self.channels[consumer.channel].consumers[consumer.tag]
            cancelled.add((*consumer.channel, consumer.tag))
        self.bindings = {b for b in self.bindings if b[1] != name}
        return len(queue.ready), cancelled

    def unsubscribe(self, consumer: MConsumer) -> MQueue:
        """``consumer`` leaves its queue: a use of the queue (rule 6), and a turn that was
        past the last remaining consumer wraps to the first (rule 3)."""
        queue = self.queues[consumer.queue]
        queue.consumers.remove(consumer)
        queue.last_used = self.now
        level = [x.number for x in queue.consumers if x.priority == consumer.priority]
        if not level:
            queue.starts.pop(consumer.priority, None)
        elif queue.starts.get(consumer.priority, 0) > level[-1]:
            queue.starts[consumer.priority] = 0
        return queue

    def remove_consumer(self, consumer: MConsumer) -> None:
        queue = self.unsubscribe(consumer)
        if queue.auto_delete and not queue.consumers:
            self.delete_queue(consumer.queue)

    def close_channel(self, key: ChannelKey, *, send: bool = True) -> Outcome:
        outcome = self.send(c.CloseChannel(*key)) if send else Outcome()
        chan = self.channels.pop(key)
        emptied = []
        for consumer in chan.consumers.values():
            queue = self.unsubscribe(consumer)
            if queue.auto_delete and not queue.consumers:
                emptied.append(consumer.queue)
        for _, copy in chan.outstanding():
            self.requeue(copy)
        self.sweep()
        for name in emptied:
            self.delete_queue(name)
        if send:
            self.apply(outcome.effects)
        return outcome

    def close_connection(self, connection: int) -> None:
        outcome = self.send(c.CloseConnection(connection))
        for key in [k for k in sorted(self.channels) if k[0] == connection]:
            self.close_channel(key, send=False)
        for name in [n for n, q in self.queues.items() if q.owner == connection]:
            self.delete_queue(name)
        self.connections.discard(connection)
        # Several channels were requeued before the deliveries: heads may have moved on.
        self.apply(outcome.effects, strict_head=False)

    def settle(self, chan: MChannel, tag: int, multiple: bool, action: str) -> None:
        if multiple and tag == 0:
            tags = sorted(chan.unacked)
        elif tag not in chan.unacked:
            raise Expected(406)
        else:
            tags = [t for t in sorted(chan.unacked) if t <= tag] if multiple else [tag]
        for t in tags:
            copy, owner = chan.unacked.pop(t)
            if chan.tx is not None:  # rule 8: it waits for the commit
                chan.tx.settlements.append((t, copy, owner, action))
            else:
                self.settle_copy(copy, action)
        self.sweep()

    def settle_copy(self, copy: Copy, action: str) -> None:
        if action == "requeue":
            self.requeue(copy)
        elif action == "rejected" and copy.queue == TTL_QUEUE and self.in_live_queue(copy):
            self.dead_letter(copy, "rejected")
        else:
            self.drop(copy, action)
            self.counters["acked"] += action == "acked"
            self.homes[copy.incarnation].counts["acked"] += action == "acked"

    def apply(self, effects: list[Effect], *, strict_head: bool = True,
              returns: tuple[Message, ...] = (), confirm: tuple[Confirm, ...] = ()) -> None:
        """Follow the effects of a command; Return/Confirm must be exactly the expected ones
        (a return carries the very message published, to the channel that published it)."""
        seen_returns: list[Message] = []
        seen_confirms: list[Confirm] = []
        for index, effect in enumerate(effects):
            if isinstance(effect, Deliver):
                self.delivered(effect, strict_head)
            elif isinstance(effect, Return):
                assert (effect.reply_code, effect.reply_text) == (312, "NO_ROUTE")
                assert not confirm or (effect.connection, effect.channel) == (
                    confirm[0].connection, confirm[0].channel)
                seen_returns.append(effect.message)
            elif isinstance(effect, Confirm):
                assert index >= len(effects) - len(confirm), "confirms come last"
                seen_confirms.append(effect)
            else:
                raise AssertionError(f"unexpected effect {effect}")
        assert tuple(seen_returns) == returns, "returned messages differ"
        assert tuple(seen_confirms) == confirm, "confirms differ"

    def delivered(self, effect: Deliver, strict_head: bool) -> None:
        chan = self.channels[(effect.connection, effect.channel)]
        consumer = chan.consumers[effect.consumer_tag]
        queue = self.queues[consumer.queue]
        if strict_head:  # (requeues of several channels at once may reorder turns)
            expected = self.next_consumer(queue)
            assert expected is consumer, (
                f"{consumer.queue}: {consumer.tag} got a delivery, it was "
                f"{expected and expected.tag}'s turn")
        # Rule 3: the turn passes to the next consumer subscribed, wrapping after the last.
        level = [x for x in queue.consumers if x.priority == consumer.priority]
        queue.starts[consumer.priority] = 0 if consumer is level[-1] else consumer.number + 1
        queue.counts["delivered"] += 1
        ids = [copy.id for copy in queue.ready]
        position = 0 if strict_head else ids.index(effect.message.properties.message_id)
        assert ids[position] == effect.message.properties.message_id, (
            "delivery did not take the queue head")
        copy = queue.ready.pop(position)
        assert comparable(effect.message) == comparable(copy.message, model=True), (
            "message changed")
        assert effect.redelivered == copy.redelivered
        if not copy.redelivered:
            assert copy.seq > queue.last_first_seq, "first deliveries out of publish order"
            queue.last_first_seq = copy.seq
        assert effect.delivery_tag > chan.last_tag
        chan.last_tag = effect.delivery_tag
        self.counters["delivered"] += 1
        if consumer.no_ack:
            self.drop(copy, "no-ack delivery")
            queue.counts["acked"] += 1
            return
        # A delivery needs credit under both limits (a lowered global limit does not take
        # deliveries back, so the check is at delivery time).
        owners = chan.holders()
        assert not consumer.limit or sum(o is consumer for o in owners) < consumer.limit, (
            f"consumer {consumer.tag} over its prefetch {consumer.limit}")
        assert not chan.global_prefetch or sum(o is not None for o in owners) < (
            chan.global_prefetch), "channel over its global prefetch"
        chan.unacked[effect.delivery_tag] = (copy, consumer)

    def next_consumer(self, queue: MQueue) -> MConsumer | None:
        """Whose turn it is (rule 3): the first consumer with credit from the turn's start in
        subscription order, wrapping to the first."""
        if queue is self.queues.get(SINGLE):  # only the first subscribed, no priorities
            first = queue.consumers[0] if queue.consumers else None
            return first if first is not None and self.has_credit(first) else None
        able = [consumer for consumer in queue.consumers if self.has_credit(consumer)]
        if not able:
            return None
        top = max(consumer.priority for consumer in able)
        able = [consumer for consumer in able if consumer.priority == top]
        start = queue.starts.get(top, 0)
        return ([consumer for consumer in able if consumer.number >= start] or able)[0]

    def route(self, exchange: str, routing_key: str) -> set[str]:
        if exchange == "":
            return {routing_key} if routing_key in self.queues else set()
        found: set[str] = set()
        visited, pending = {exchange}, [exchange]
        while pending:
            source = pending.pop()
            kind = EXCHANGES[source]

            def matches(binding_key: str, kind: str = kind) -> bool:
                return kind == "fanout" or (kind == "direct" and binding_key == routing_key) or (
                    kind == "topic" and reference_match(binding_key, routing_key))
            found |= {q for x, q, k in self.bindings if x == source and matches(k)}
            for destination, key in E2E.get(source, []):
                if matches(key) and destination not in visited:
                    visited.add(destination)
                    pending.append(destination)
        return found

    # -- rules ------------------------------------------------------------------------------

    @initialize(prefetch=st.sampled_from([1, 2, 3, 0]), global_prefetch=st.sampled_from([0, 3, 2]),
                no_ack=st.booleans(), messages=st.integers(2, 5), second=st.booleans(),
                priority=st.sampled_from([None, 1, -1]), single=st.booleans())
    def setup(self, prefetch: int, global_prefetch: int, no_ack: bool, messages: int,
              second: bool, priority: int | None, single: bool) -> None:
        self.send(c.OpenConnection(0))
        self.send(c.OpenChannel(0, 1))
        for name, kind in EXCHANGES.items():
            self.send(c.DeclareExchange(0, 1, name, kind))
        for source, edges in E2E.items():
            for destination, key in edges:
                self.send(c.BindExchange(0, 1, destination, source, key))
        self.send(c.CloseConnection(0))
        for connection in (1, 2):
            self.open_channel(connection, 1)
        for index, name in enumerate(sorted(QUEUES)):
            self.declare_queue(0, name, passive=False, odd=9)
            if name != DLQ:
                self.bind(index, name, "x.topic", "a.#" if index else "#", unbind=False)
        # A consumer on another connection, so most runs start with traffic.
        self.qos(1, prefetch, global_=False)
        self.qos(1, global_prefetch, global_=True)
        self.consume(1, "q0", "c1", no_ack, exclusive=False)
        if second:  # a second consumer on another channel of the same connection
            self.open_channel(2, 2)
            self.qos(2, prefetch, global_=False)
            self.consume(2, "q0", "c2", False, exclusive=False, priority=priority)
        if single:  # two consumers on the single-active-consumer queue
            self.consume(0, SINGLE, "s1", False, exclusive=False)
            self.consume(1, SINGLE, "s2", no_ack, exclusive=False)
        for _ in range(messages):
            self.publish_one(0, "x.topic", "a.b", mandatory=False)

    def open_connection(self, connection: int) -> None:
        if connection not in self.connections:
            self.send(c.OpenConnection(connection))
            self.connections.add(connection)

    @rule(connection=st.integers(1, 2), number=st.integers(1, 2))
    def open_channel(self, connection: int, number: int) -> None:
        self.open_connection(connection)
        if (connection, number) not in self.channels:
            self.send(c.OpenChannel(connection, number))
            self.channels[(connection, number)] = MChannel()

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, whole_connection=st.booleans(), reopen=st.booleans())
    def close(self, ch: int, whole_connection: bool, reopen: bool) -> None:
        key = self.pick_channel(ch)[0]
        if whole_connection:
            self.close_connection(key[0])
        else:
            self.close_channel(key)
        if reopen:
            self.open_channel(*key)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, name=st.sampled_from(sorted(QUEUES)), passive=st.booleans(), odd=PICK)
    def declare_queue(self, ch: int, name: str, passive: bool, odd: int) -> None:
        key, chan = self.pick_channel(ch)
        exclusive, auto_delete = QUEUES[name]
        exclusive ^= odd == 7  # now and then a mismatching redeclare
        auto_delete ^= odd == 8
        queue = self.queues.get(name)
        predict = None
        if passive and queue is None:
            predict = 404
        elif queue is not None and queue.owner is not None and queue.owner != key[0]:
            predict = 405
        elif queue is not None and not passive and queue.owner != (key[0] if exclusive else None):
            predict = 405  # RabbitMQ checks the exclusive owner strictly on an active declare
        elif queue is not None and not passive and queue.auto_delete != auto_delete:
            predict = 406
        outcome = self.attempt(
            c.DeclareQueue(*key, name, passive, False, exclusive, auto_delete,
                           QUEUE_ARGS.get(name)), key, predict
        )
        if outcome is None:
            return
        if queue is None:
            queue = self.queues[name] = MQueue(
                next(self.incarnations), key[0] if exclusive else None, auto_delete
            )
            self.homes[queue.incarnation] = queue
        queue.last_used = self.now
        chan.last_queue = name
        assert outcome.reply == QueueDeclareOk(name, len(queue.ready), len(queue.consumers))

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, name=BIND_QUEUE_ARG, exchange=st.sampled_from(sorted(EXCHANGES)),
          binding_key=BINDING_KEYS, unbind=st.booleans())
    def bind(self, ch: int, name: str, exchange: str, binding_key: str, unbind: bool) -> None:
        key, chan = self.pick_channel(ch)
        if not name and chan.last_queue == DLQ:
            return  # dlq only receives dead letters (rule 5)
        try:
            name, _ = self.resolve(chan, name, key, must_exist=not unbind)
            predict = None
        except Expected as expected:
            predict = expected.code
            # Unbinding a binding that does not exist succeeds without asking for exclusive
            # access (RabbitMQ's rabbit_binding:remove).
            if unbind and predict == 405 and (exchange, name or chan.last_queue,
                                              binding_key) not in self.bindings:
                predict = None
        command = (c.UnbindQueue if unbind else c.BindQueue)(*key, name, exchange, binding_key)
        if self.attempt(command, key, predict) is not None:
            if unbind:
                self.bindings.discard((exchange, name, binding_key))
            else:
                self.bindings.add((exchange, name, binding_key))

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, exchange=st.sampled_from(["x.topic", "x.fanout", "x.direct", ""]),
          routing_key=ROUTING_KEYS,
          mandatory=st.booleans(), count=st.integers(1, 3))
    def publish(self, ch: int, exchange: str, routing_key: str, mandatory: bool, count: int
                ) -> None:
        for _ in range(count):
            self.publish_one(ch, exchange, routing_key, mandatory)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, batch=BATCH)
    def publish_many(self, ch: int, batch: list[tuple[str, str, bool]]) -> None:
        """A pipelining client's publishes as one ``PublishMany``: the same as one by one,
        except that an all-accepted batch is confirmed by one ``multiple`` confirm."""
        key, chan = self.pick_channel(ch)
        if chan.tx is not None:
            self.tx_publish(key, chan, batch)
            return
        messages, returns, accepted = [], [], []
        for exchange, routing_key, mandatory in batch:
            message, targets, taken = self.enqueue(exchange, routing_key)
            messages.append((message, mandatory))
            accepted.append(taken)
            if mandatory and not targets:
                returns.append(message)
        outcome = self.send(c.PublishMany(*key, tuple(messages)))
        confirm: tuple[Confirm, ...] = ()
        if chan.confirm_seq is not None:
            first = chan.confirm_seq + 1
            chan.confirm_seq += len(batch)
            if all(accepted):
                confirm = (Confirm(*key, chan.confirm_seq, True),)
            else:  # one confirm each, a nack for each refused publish
                confirm = tuple(Confirm(*key, first + index, False, taken)
                                for index, taken in enumerate(accepted))
        self.counters["returned"] += len(returns)
        self.apply(outcome.effects, returns=tuple(returns), confirm=confirm)

    def enqueue(self, exchange: str, routing_key: str) -> tuple[Message, list[str], bool]:
        """The model's side of one publish: its copies at the tails of the queues it routes
        to; the message (identified by its message id), those queues, and whether every one
        took it (a full ``qr`` refuses it, rule 7)."""
        message = self.new_message(exchange, routing_key)
        self.counters["published"] += 1
        targets = sorted(self.route(exchange, routing_key))
        return message, targets, self.enqueue_copies(message, targets)

    def new_message(self, exchange: str, routing_key: str) -> Message:
        number = self.counters["numbered"]
        self.counters["numbered"] += 1
        return Message(exchange, routing_key, b"ab"[: number % 3], Properties(
            content_type="text/plain", headers={"n": number} if number % 2 else None,
            delivery_mode=1 + number % 2, message_id=f"m{number}", app_id="machine"))

    def enqueue_copies(self, message: Message, targets: list[str]) -> bool:
        accepted = True
        for name in targets:
            queue = self.queues[name]
            if name == REFUSING and len(queue.ready) >= REFUSE_AT:
                accepted = False
                continue
            copy = Copy(len(self.copies) + 1, message, name, queue.incarnation)
            if name == TTL_QUEUE:
                copy.expires_at = self.now + TTL
            self.copies.append(copy)
            queue.ready.append(copy)
            queue.counts["published"] += 1
        self.sweep()
        return accepted

    def tx_publish(self, key: ChannelKey, chan: MChannel, batch: list[tuple[str, str, bool]]
                   ) -> None:
        """Publishes on a transactional channel (rule 8): routed now, enqueued at commit."""
        assert chan.tx is not None
        messages = []
        for exchange, routing_key, mandatory in batch:
            message = self.new_message(exchange, routing_key)
            messages.append((message, mandatory))
            # The default exchange routes by name, whether or not the queue exists yet.
            targets = [routing_key] if exchange == "" else sorted(
                self.route(exchange, routing_key))
            chan.tx.publishes.append((message, mandatory, targets))
        command: c.Command = (c.Publish(*key, *messages[0]) if len(messages) == 1
                              else c.PublishMany(*key, tuple(messages)))
        self.apply(self.send(command).effects)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK)
    def tx_select(self, ch: int) -> None:
        key, chan = self.pick_channel(ch)
        # "cannot switch from confirm to tx mode" (RabbitMQ).
        outcome = self.attempt(c.TxSelect(*key), key,
                               406 if chan.confirm_seq is not None else None)
        if outcome is not None:
            chan.tx = chan.tx or MTx()

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, batch=BATCH, settles=st.lists(st.tuples(
        PICK, st.sampled_from(["ack", "nack", "reject"]), st.booleans(), st.booleans()),
        max_size=3), commit=st.booleans())
    def transaction(self, ch: int, batch: list[tuple[str, str, bool]],
                    settles: list[tuple[int, str, bool, bool]], commit: bool) -> None:
        """A whole transaction on one channel: select, publish, settle, commit or roll back
        (mostly on a channel that holds deliveries)."""
        holding = sorted(k for k, chan in self.channels.items() if chan.unacked)
        key = holding[ch % len(holding)] if holding else self.pick_channel(ch)[0]
        if self.channels[key].confirm_seq is not None:
            return
        self.tx_select(sorted(self.channels).index(key))
        self.publish_many(sorted(self.channels).index(key), batch)
        for pick, verb, multiple, requeue in settles:
            holding = sorted(k for k, chan in self.channels.items() if chan.unacked)
            if key not in holding:
                break
            self.settle_rule(holding.index(key), pick % 8, verb, multiple, requeue)
            if key not in self.channels or self.channels[key].tx is None:
                return  # the channel was closed by a refused settlement
        self.tx_end(sorted(k for k, chan in self.channels.items() if chan.tx).index(key), commit)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, commit=st.booleans())
    def tx_end(self, ch: int, commit: bool) -> None:
        """``tx.commit``: the publishes enqueued in order, then the settlements, consecutive
        ones of a kind together in tag order; ``tx.rollback``: the publishes forgotten, the
        settlements unacked again."""
        transactional = sorted(k for k, chan in self.channels.items() if chan.tx)
        if transactional and ch < 8:  # mostly a transactional channel
            key = transactional[ch % len(transactional)]
        else:
            key = self.pick_channel(ch)[0]
        chan = self.channels[key]
        tx = chan.tx
        command = (c.TxCommit if commit else c.TxRollback)(*key)
        outcome = self.attempt(command, key, 406 if tx is None else None)
        if outcome is None or tx is None:
            return
        chan.tx = MTx()
        if not commit:
            for tag, copy, owner, _ in tx.settlements:
                chan.unacked[tag] = (copy, owner)
            chan.unacked = dict(sorted(chan.unacked.items()))
            assert outcome.effects == []
            return
        returns = []
        for message, mandatory, targets in tx.publishes:
            found = [name for name in targets if name in self.queues]
            self.counters["published"] += 1
            self.enqueue_copies(message, found)
            if mandatory and not found:
                returns.append(message)
        for action, run in itertools.groupby(tx.settlements, key=lambda item: item[3]):
            for _, copy, _, _ in sorted(run, key=lambda item: item[0]):
                self.settle_copy(copy, action)
            self.sweep()
        self.counters["returned"] += len(returns)
        # Deliveries interleave with the commit's steps: follow them by message id.
        self.apply(outcome.effects, strict_head=False, returns=tuple(returns))

    def publish_one(self, ch: int, exchange: str, routing_key: str, mandatory: bool) -> None:
        key, chan = self.pick_channel(ch)
        if chan.tx is not None:
            self.tx_publish(key, chan, [(exchange, routing_key, mandatory)])
            return
        message, targets, accepted = self.enqueue(exchange, routing_key)
        outcome = self.send(c.Publish(*key, message, mandatory))
        confirm: tuple[Confirm, ...] = ()
        if chan.confirm_seq is not None:
            chan.confirm_seq += 1
            confirm = (Confirm(*key, chan.confirm_seq, False, accepted),)
        returns = (message,) if mandatory and not targets else ()
        self.counters["returned"] += len(returns)
        self.apply(outcome.effects, returns=returns, confirm=confirm)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK)
    def confirm_select(self, ch: int) -> None:
        key, chan = self.pick_channel(ch)
        # "cannot switch from tx to confirm mode" (RabbitMQ).
        outcome = self.attempt(c.ConfirmSelect(*key), key, 406 if chan.tx else None)
        if outcome is not None and chan.confirm_seq is None:
            chan.confirm_seq = 0

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, count=st.sampled_from([1, 2, 0, 3]), global_=st.booleans())
    def qos(self, ch: int, count: int, global_: bool) -> None:
        key, chan = self.pick_channel(ch)
        outcome = self.send(c.Qos(*key, count, global_))
        if global_:
            chan.global_prefetch = count
        else:
            chan.prefetch = count
        self.apply(outcome.effects)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, name=QUEUE_ARG, tag=st.sampled_from(["", "c1", "c2"]), no_ack=st.booleans(),
          exclusive=st.sampled_from([False, False, False, True]),
          priority=st.sampled_from([None, None, None, 0, 1, -1]))
    def consume(self, ch: int, name: str, tag: str, no_ack: bool, exclusive: bool,
                priority: int | None = None) -> None:
        key, chan = self.pick_channel(ch)
        predict = None
        queue = None
        try:
            if tag in chan.consumers:
                raise Expected(530)
            name, queue = self.resolve(chan, name, key)
            assert queue is not None
            if name in (TTL_QUEUE, REFUSING):
                return  # rules 5 and 7: no consumers on q3 and qr
            if queue.consumers and (exclusive or any(x.exclusive for x in queue.consumers)):
                raise Expected(403)
        except Expected as expected:
            predict = expected.code
        arguments = None if priority is None else {"x-priority": priority}
        outcome = self.attempt(c.Consume(*key, name, tag, no_ack, exclusive, arguments), key,
                               predict)
        if outcome is None or queue is None:
            return
        assert isinstance(outcome.reply, ConsumeOk)
        tag = outcome.reply.consumer_tag
        assert tag and tag not in chan.consumers
        consumer = MConsumer(tag, name, key, no_ack, exclusive, chan.prefetch,
                             queue.next_number, priority or 0)
        queue.next_number += 1
        queue.last_used = self.now
        chan.consumers[tag] = consumer
        queue.consumers.append(consumer)
        self.apply(outcome.effects)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, pick=PICK)
    def cancel(self, ch: int, pick: int) -> None:
        key, chan = self.pick_channel(ch)
        tags = sorted(chan.consumers)
        tag = tags[pick % len(tags)] if tags and pick < 8 else "unknown"
        outcome = self.send(c.Cancel(*key, tag))
        assert outcome.reply == CancelOk(tag) and outcome.effects == []
        if tag in chan.consumers:
            self.remove_consumer(chan.consumers.pop(tag))

    @precondition(lambda self: any(chan.consumers for chan in self.channels.values()))
    @rule(ch=PICK, pick=PICK)
    def resubscribe(self, ch: int, pick: int) -> None:
        """A client cancels a consumer and subscribes again at once (round-robin turns must
        survive the change, rule 3)."""
        holding = sorted(k for k, chan in self.channels.items() if chan.consumers)
        key = holding[ch % len(holding)]
        chan = self.channels[key]
        consumer = chan.consumers[sorted(chan.consumers)[pick % len(chan.consumers)]]
        outcome = self.send(c.Cancel(*key, consumer.tag))
        assert outcome.reply == CancelOk(consumer.tag)
        self.remove_consumer(chan.consumers.pop(consumer.tag))
        if consumer.queue in self.queues:
            self.consume(sorted(self.channels).index(key), consumer.queue, "", consumer.no_ack,
                         exclusive=False, priority=consumer.priority)

    @precondition(lambda self: any(chan.unacked for chan in self.channels.values()))
    @rule(ch=PICK, picks=st.lists(PICK, min_size=1, max_size=4, unique=True))
    def ack_many(self, ch: int, picks: list[int]) -> None:
        """A pipelining client's single acks as one ``AckMany``: refused whole (406, nothing
        changed) when any tag is not outstanding."""
        holding = sorted(k for k, chan in self.channels.items() if chan.unacked)
        key = holding[ch % len(holding)]
        chan = self.channels[key]
        tags = sorted({self.pick_tag(chan, pick) if pick != 8 else chan.last_tag + 1
                       for pick in picks})
        predict = None if all(tag in chan.unacked for tag in tags) else 406
        outcome = self.attempt(c.AckMany(*key, tuple(tags)), key, predict)
        if outcome is None:
            return
        for tag in tags:
            self.settle(chan, tag, False, "acked")
        self.apply(outcome.effects)

    def pick_tag(self, chan: MChannel, pick: int) -> int:
        tags = sorted(chan.unacked)
        if pick == 8:
            return 0  # "all outstanding" with multiple, else unknown
        if pick == 9 or not tags:
            return chan.last_tag + pick  # not outstanding (never given out, or already settled)
        return tags[pick % len(tags)]

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, pick=PICK, verb=st.sampled_from(["ack", "nack", "reject"]),
          multiple=st.booleans(), requeue=st.booleans())
    def settle_rule(self, ch: int, pick: int, verb: str, multiple: bool, requeue: bool) -> None:
        holding = sorted(k for k, chan in self.channels.items() if chan.unacked)
        if holding and pick != 9:  # mostly a channel with something to settle
            key = holding[ch % len(holding)]
            chan = self.channels[key]
        else:
            key, chan = self.pick_channel(ch)
        tag = self.pick_tag(chan, pick)
        command: c.Command
        if verb == "ack":
            command, action = c.Ack(*key, tag, multiple), "acked"
        elif verb == "nack":
            command = c.Nack(*key, tag, multiple, requeue)
            action = "requeue" if requeue else "rejected"
        else:
            command, multiple = c.Reject(*key, tag, requeue), False
            action = "requeue" if requeue else "rejected"
        try:
            self.settle(chan, tag, multiple, action)
            predict = None
        except Expected as expected:
            predict = expected.code
        outcome = self.attempt(command, key, predict)
        if outcome is not None:
            self.apply(outcome.effects)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, name=QUEUE_ARG, no_ack=st.booleans())
    def get(self, ch: int, name: str, no_ack: bool) -> None:
        key, chan = self.pick_channel(ch)
        try:
            name, queue = self.resolve(chan, name, key)
            predict = None
        except Expected as expected:
            predict, queue = expected.code, None
        outcome = self.attempt(c.Get(*key, name, no_ack), key, predict)
        if outcome is None or queue is None:
            return
        queue.last_used = self.now
        if not queue.ready:
            assert isinstance(outcome.reply, GetEmpty)
            return
        copy = queue.ready.pop(0)
        reply = outcome.reply
        assert isinstance(reply, GetOk)
        assert (comparable(reply.message), reply.redelivered) == (
            comparable(copy.message, model=True), copy.redelivered)
        assert reply.message_count == len(queue.ready) and reply.delivery_tag > chan.last_tag
        if not copy.redelivered:
            assert copy.seq > queue.last_first_seq
            queue.last_first_seq = copy.seq
        chan.last_tag = reply.delivery_tag
        self.counters["delivered"] += 1
        queue.counts["delivered"] += 1
        if no_ack:
            self.drop(copy, "no-ack delivery")
            queue.counts["acked"] += 1
        else:
            chan.unacked[reply.delivery_tag] = (copy, None)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, requeue=st.sampled_from([True, True, True, False]))
    def recover(self, ch: int, requeue: bool) -> None:
        key, chan = self.pick_channel(ch)
        outcome = self.attempt(c.Recover(*key, requeue), key, None if requeue else 540)
        if outcome is not None:
            for tag in sorted(chan.unacked):
                self.requeue(chan.unacked.pop(tag)[0])
            self.sweep()
            self.apply(outcome.effects)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, name=QUEUE_ARG)
    def purge(self, ch: int, name: str) -> None:
        key, chan = self.pick_channel(ch)
        try:
            name, queue = self.resolve(chan, name, key)
            predict = None
        except Expected as expected:
            predict, queue = expected.code, None
        outcome = self.attempt(c.PurgeQueue(*key, name), key, predict)
        if outcome is not None and queue is not None:
            assert outcome.reply == QueuePurgeOk(len(queue.ready))
            for copy in queue.ready:
                self.drop(copy, "purged")
            queue.ready.clear()

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, name=QUEUE_ARG, if_unused=st.booleans(), if_empty=st.booleans())
    def delete_queue_rule(self, ch: int, name: str, if_unused: bool, if_empty: bool) -> None:
        key, chan = self.pick_channel(ch)
        predict = None
        queue = None
        try:
            name, queue = self.resolve(chan, name, key, must_exist=False)
            if queue is not None and if_unused and queue.consumers:
                raise Expected(406)
            if queue is not None and if_empty and queue.ready:
                raise Expected(406)
        except Expected as expected:
            predict = expected.code
        outcome = self.attempt(c.DeleteQueue(*key, name, if_unused, if_empty), key, predict)
        if outcome is None:
            return
        count, cancelled = self.delete_queue(name) if queue is not None else (0, set())
        assert outcome.reply == QueueDeleteOk(count)
        assert all(isinstance(e, ConsumerCancelled) for e in outcome.effects)
        assert {(e.connection, e.channel, e.consumer_tag) for e in outcome.effects
                if isinstance(e, ConsumerCancelled)} == cancelled
        assert len(outcome.effects) == len(cancelled)

    @rule(step=st.sampled_from([0.25, 0.5, 1.0, 1.5]))
    def advance_time(self, step: float) -> None:
        """The shell's timer fires: everything due at the new ``now`` happens."""
        self.now += step
        effects = self.broker.handle_timeout(now=self.now)
        self.sweep()
        leased = self.queues.get(LEASED)
        if leased is not None and not leased.consumers and (
                leased.last_used + EXPIRES <= self.now):
            self.delete_queue(LEASED)  # unused for its whole lease (rule 6)
        self.apply(effects, strict_head=True)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def deadlines(self) -> None:
        queue = self.queues.get(TTL_QUEUE)
        deadline = self.broker.next_deadline()
        leased = self.queues.get(LEASED)
        if leased is not None and not leased.consumers:
            assert deadline is not None and deadline <= leased.last_used + EXPIRES, (
                "the broker would expire the leased queue late")
        if queue is not None and queue.ready:
            head = queue.ready[0].expires_at
            assert head is not None and head > self.now, "an expired head outlived its sweep"
            assert deadline is not None and deadline <= head, "the broker would expire late"

    def has_credit(self, consumer: MConsumer) -> bool:
        chan = self.channels[consumer.channel]
        if consumer.no_ack:
            return True
        owners = chan.holders()
        if consumer.limit and sum(o is consumer for o in owners) >= consumer.limit:
            return False
        held = sum(o is not None for o in owners)
        return not (chan.global_prefetch and held >= chan.global_prefetch)

    @invariant()
    def conservation(self) -> None:
        places = Counter[int]()
        for queue in self.queues.values():
            places.update(id(copy) for copy in queue.ready)
        for chan in self.channels.values():
            places.update(id(copy) for _, copy in chan.outstanding())
        places.update(self.gone.keys())
        assert places == Counter(id(copy) for copy in self.copies), "a copy vanished or doubled"
        # The broker holds exactly the model's copies, in the model's order.
        assert set(self.broker.topology.queues) == set(self.queues)
        for name, real in self.broker.topology.queues.items():
            assert [(e.message.properties.message_id, e.redelivered) for e in real.ready] == [
                (copy.id, copy.redelivered) for copy in self.queues[name].ready
            ], f"ready messages of {name} differ"
            assert len(real.consumers) == len(self.queues[name].consumers)
        live = {
            (conn.id, ch.number): ch
            for conn in self.broker.connections.values() for ch in conn.channels.values()
        }
        assert set(live) == set(self.channels)
        for key, chan in self.channels.items():
            assert {t: (u.entry.message.properties.message_id, u.queue.name)
                    for t, u in live[key].unacked.items()
                    } == {t: (copy.id, copy.queue) for t, (copy, _) in chan.unacked.items()}

    @invariant()
    def credit_and_liveness(self) -> None:
        for chan in self.channels.values():
            for consumer in chan.consumers.values():
                held = sum(1 for owner in chan.holders() if owner is consumer)
                assert not consumer.limit or held <= consumer.limit
        for name, queue in self.queues.items():
            if queue.ready:
                stuck = [x.tag for x in queue.consumers[:1 if name == SINGLE else None]
                         if self.has_credit(x)]
                assert not stuck, f"{name} keeps ready messages from consumers {stuck}"

    @invariant()
    def statistics_agree(self) -> None:
        stats = self.broker.statistics()
        alive = {name: queue.incarnation for name, queue in self.queues.items()}
        unacked = sum(
            1 for chan in self.channels.values() for _, copy in chan.outstanding()
            if alive.get(copy.queue) == copy.incarnation
        )
        assert (stats.messages_ready, stats.messages_unacked) == (
            sum(len(queue.ready) for queue in self.queues.values()), unacked
        )
        assert (stats.published, stats.delivered, stats.acked, stats.returned) == (
            self.counters["published"], self.counters["delivered"], self.counters["acked"],
            self.counters["returned"],
        )
        assert (stats.connections, stats.channels, stats.queues) == (
            len(self.connections), len(self.channels), len(self.queues)
        )
        assert stats.consumers == sum(len(queue.consumers) for queue in self.queues.values())
        assert stats.exchanges == len(DEFAULT_EXCHANGES) + len(EXCHANGES)
        for exchange in EXCHANGES:  # bindings from an exchange: to queues and to exchanges
            assert self.broker.exchange_info(exchange).bindings == len(E2E.get(exchange, [])) + (
                sum(1 for x, _, _ in self.bindings if x == exchange)), f"{exchange} bindings"
        consumers = {
            (info.connection, info.channel, info.consumer_tag): (
                info.queue, info.unacked, info.no_ack, info.exclusive, info.prefetch_count)
            for info in self.broker.snapshot().consumers
        }
        assert consumers == {
            (*key, tag): (consumer.queue, sum(1 for owner in chan.holders()
                                              if owner is consumer),
                          consumer.no_ack, consumer.exclusive, consumer.limit)
            for key, chan in self.channels.items() for tag, consumer in chan.consumers.items()
        }, "consumers differ"
        for name, queue in self.queues.items():
            real = self.broker.queue_statistics(name)
            unacked = sum(1 for chan in self.channels.values()
                          for _, copy in chan.outstanding()
                          if copy.incarnation == queue.incarnation)
            assert (real.ready, real.unacked, real.consumers) == (
                len(queue.ready), unacked, len(queue.consumers)), f"{name}: counts differ"
            assert (real.published, real.delivered, real.acked, real.redelivered) == (
                queue.counts["published"], queue.counts["delivered"], queue.counts["acked"],
                queue.counts["redelivered"]), f"{name}: message counters differ"


# Inherits the suite's profile (max_examples from tests/conftest.py); a short run per example.
BrokerMachine.TestCase.settings = settings(stateful_step_count=50)
TestBrokerStateMachine = BrokerMachine.TestCase
