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
9. Alternate exchanges: a message that ``x.ae`` (and the exchanges bound to it) routes to no
   queue goes on to its alternate exchange ``x.topic``; a mandatory message is returned only
   when that reaches no queue either. Exchange-to-exchange bindings are made and removed,
   and ``x.direct`` is deleted (its bindings with it, as source or destination) and declared
   again: a publish to it meanwhile is refused (404), the whole batch with it.
10. ``qp`` has ``x-max-priority`` 2: its ready messages are ordered by priority (3 counts as 2),
    then in publish order; a requeued message goes back to its place within its priority.
"""

from __future__ import annotations

import itertools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from minibroker.core import commands as c
from minibroker.core.effects import (
    CancelOk,
    Confirm,
    ConsumeOk,
    ConsumerCancelled,
    GetEmpty,
    GetOk,
    QueueDeclareOk,
    QueueDeleteOk,
    QueuePurgeOk,
)
from tests.property.broker_model import (
    ALTERNATES,
    BATCH,
    BIND_QUEUE_ARG,
    BINDING_KEYS,
    DELETABLE,
    DLQ,
    E2E,
    EDGES,
    EXCHANGES,
    EXPIRES,
    LEASED,
    PICK,
    PRIORITIZED,
    PUBLISH_TO,
    QUEUE_ARG,
    QUEUE_ARGS,
    QUEUES,
    REFUSING,
    ROUTING_KEYS,
    SINGLE,
    TTL_QUEUE,
    Expected,
    MChannel,
    MConsumer,
    MQueue,
    MTx,
    comparable,
)
from tests.property.broker_model_base import BrokerModel


class BrokerMachine(BrokerModel):
    # -- rules ------------------------------------------------------------------------------

    @initialize(prefetch=st.sampled_from([1, 2, 3, 0]), global_prefetch=st.sampled_from([0, 3, 2]),
                no_ack=st.booleans(), messages=st.integers(2, 5), second=st.booleans(),
                priority=st.sampled_from([None, None, 1, -1]), single=st.booleans(),
                rotate=st.booleans())
    def setup(self, prefetch: int, global_prefetch: int, no_ack: bool, messages: int,
              second: bool, priority: int | None, single: bool, rotate: bool) -> None:
        self.send(c.OpenConnection(0))
        self.send(c.OpenChannel(0, 1))
        for name, kind in EXCHANGES.items():
            alternate = ALTERNATES.get(name)
            self.send(c.DeclareExchange(0, 1, name, kind, arguments=alternate and {
                "alternate-exchange": alternate}))
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
        if rotate:  # the last consumer of q0 leaves and comes back (rule 3)
            self.resubscribe(0, 0)

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
        if (not name and chan.last_queue == DLQ) or exchange not in self.exchanges:
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
    @rule(ch=PICK, edge=st.sampled_from(EDGES), unbind=st.booleans())
    def bind_exchange(self, ch: int, edge: tuple[str, str, str], unbind: bool) -> None:
        key, _ = self.pick_channel(ch)
        source, destination, binding_key = edge
        if not {source, destination} <= self.exchanges:
            return
        command = (c.UnbindExchange if unbind else c.BindExchange)(
            *key, destination, source, binding_key)
        assert self.attempt(command, key, None) is not None
        (self.e2e.discard if unbind else self.e2e.add)(edge)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, delete=st.booleans(), if_unused=st.booleans())
    def exchange_lifecycle(self, ch: int, delete: bool, if_unused: bool) -> None:
        key, _ = self.pick_channel(ch)
        if not delete:
            self.attempt(c.DeclareExchange(*key, DELETABLE, EXCHANGES[DELETABLE]), key, None)
            self.exchanges.add(DELETABLE)
            return
        used = any(x == DELETABLE for x, _, _ in self.bindings | self.e2e)
        predict = 406 if if_unused and used and DELETABLE in self.exchanges else None
        if self.attempt(c.DeleteExchange(*key, DELETABLE, if_unused), key, predict) is None:
            return
        self.exchanges.discard(DELETABLE)
        self.bindings = {b for b in self.bindings if b[0] != DELETABLE}
        self.e2e = {edge for edge in self.e2e if DELETABLE not in edge[:2]}

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, exchange=PUBLISH_TO,
          routing_key=ROUTING_KEYS,
          mandatory=st.booleans(), count=st.integers(1, 3))
    def publish(self, ch: int, exchange: str, routing_key: str, mandatory: bool, count: int
                ) -> None:
        for _ in range(count):
            self.publish_one(ch, exchange, routing_key, mandatory)

    @precondition(lambda self: self.channels)
    @rule(ch=PICK, batch=BATCH)
    def publish_many(self, ch: int, batch: list[tuple[str, str, bool]]) -> None:  # rule 4
        key, chan = self.pick_channel(ch)
        if self.refused_publish(key, batch):
            return
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
        self.batch = [message.properties.message_id or "" for message, _ in messages]
        try:
            self.apply(outcome.effects, returns=tuple(returns), confirm=confirm)
        finally:
            self.batch = []

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
        """Select, publish, settle, commit or roll back, on one channel (rule 8)."""
        holding = sorted(k for k, chan in self.channels.items() if chan.unacked)
        key = holding[ch % len(holding)] if holding else self.pick_channel(ch)[0]
        if self.channels[key].confirm_seq is not None:
            return
        self.tx_select(sorted(self.channels).index(key))
        self.publish_many(sorted(self.channels).index(key), batch)
        if self.channels[key].tx is None:
            return  # the channel was closed by a refused publish
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
    def tx_end(self, ch: int, commit: bool) -> None:  # tx.commit or tx.rollback, rule 8
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
        assert outcome.reply == CancelOk(tag)
        if tag in chan.consumers:
            self.remove_consumer(chan.consumers.pop(tag))
        self.apply(outcome.effects)  # qs hands over to its next consumer

    @precondition(lambda self: any(chan.consumers for chan in self.channels.values()))
    @rule(ch=PICK, pick=PICK)
    def resubscribe(self, ch: int, pick: int) -> None:
        """Cancel (mostly a queue's last consumer), subscribe again, publish (rule 3)."""
        holding = sorted(k for k, chan in self.channels.items() if chan.consumers)
        key = holding[ch % len(holding)]
        chan = self.channels[key]
        consumer = chan.consumers[sorted(chan.consumers)[pick % len(chan.consumers)]]
        if pick < 6:
            consumer = self.queues[consumer.queue].consumers[-1]
            key, chan = consumer.channel, self.channels[consumer.channel]
        outcome = self.send(c.Cancel(*key, consumer.tag))
        assert outcome.reply == CancelOk(consumer.tag)
        self.remove_consumer(chan.consumers.pop(consumer.tag))
        self.apply(outcome.effects)
        if consumer.queue in self.queues:
            self.consume(sorted(self.channels).index(key), consumer.queue, "", consumer.no_ack,
                         exclusive=False, priority=consumer.priority)
            self.publish_one(ch, "", consumer.queue, mandatory=False)

    @precondition(lambda self: any(chan.unacked for chan in self.channels.values()))
    @rule(ch=PICK, picks=st.lists(PICK, min_size=1, max_size=4, unique=True))
    def ack_many(self, ch: int, picks: list[int]) -> None:  # rule 4
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
        if not copy.redelivered and copy.queue != PRIORITIZED:
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


# Inherits the suite's profile (max_examples from tests/conftest.py); a short run per example.
BrokerMachine.TestCase.settings = settings(stateful_step_count=50)
TestBrokerStateMachine = BrokerMachine.TestCase
