"""The broker model's transitions and invariants, under the rules of the state machine.

``BrokerModel`` drives ``Broker.handle``, follows the effects, and after every step checks the
invariants; ``test_broker_state_machine.py`` adds the rules (the commands a client sends) and
states the rules this module checks, numbered as there.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter

from hypothesis.stateful import RuleBasedStateMachine, invariant

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import (
    Confirm,
    Deliver,
    Effect,
    Outcome,
    Return,
    singles,
)
from minibroker.core.topic import reference_match
from minibroker.errors import ChannelError, ConnectionLevelError
from minibroker.message import Message, Properties
from tests.property.broker_model import (
    ALTERNATES,
    DEFAULT_EXCHANGES,
    DLQ,
    E2E,
    EXCHANGES,
    EXPIRES,
    LEASED,
    MAX_LENGTH,
    PRIORITIZED,
    REFUSE_AT,
    REFUSING,
    SINGLE,
    TTL,
    TTL_QUEUE,
    ChannelKey,
    Copy,
    Expected,
    MChannel,
    MConsumer,
    MQueue,
    comparable,
    dead_lettered,
)
from tests.unit.core.helpers import fingerprint


class BrokerModel(RuleBasedStateMachine):
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
        self.homes: dict[int, MQueue] = {}
        #: The message ids of the PublishMany being applied, in publish order (else empty).
        self.batch: list[str] = []
        self.exchanges = set(EXCHANGES)
        self.e2e = {(source, destination, key) for source, edges in E2E.items()
                    for destination, key in edges}  # incarnation -> its queue, deleted or not
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
        bisect.insort(queue.ready, copy, key=Copy.place)

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
        effects = singles(effects)  # every delivery of a run, checked as a single one
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
        message_id = effect.message.properties.message_id
        if strict_head:
            # A PublishMany is its publishes one by one: a message delivered as it arrives
            # was the head before the batch's later messages came (on ``qp`` they may now be
            # ahead of it, by priority).
            later = set(self.batch[self.batch.index(message_id) + 1:]) if (
                message_id in self.batch) else set()
            position = next((i for i, id_ in enumerate(ids) if id_ not in later), 0)
        else:
            position = ids.index(message_id)
        assert ids[position] == effect.message.properties.message_id, (
            "delivery did not take the queue head")
        copy = queue.ready.pop(position)
        assert comparable(effect.message) == comparable(copy.message, model=True), (
            "message changed")
        assert effect.redelivered == copy.redelivered
        if not copy.redelivered and copy.queue != PRIORITIZED:
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
        seen = {exchange}
        found = self.reach(exchange, routing_key)
        while not found and ALTERNATES.get(exchange, exchange) not in seen | (
                set(EXCHANGES) - self.exchanges):
            exchange = ALTERNATES[exchange]  # rule 9
            seen.add(exchange)
            found = self.reach(exchange, routing_key)
        return found

    def refused_publish(self, key: ChannelKey, batch: list[tuple[str, str, bool]]) -> bool:
        """Publishing to a deleted exchange: 404 for the publish, or the whole batch."""
        if all(exchange in self.exchanges or not exchange for exchange, _, _ in batch):
            return False
        messages = tuple((self.new_message(exchange, routing_key), mandatory)
                         for exchange, routing_key, mandatory in batch)
        self.attempt(c.Publish(*key, *messages[0]) if len(messages) == 1
                     else c.PublishMany(*key, messages), key, 404)
        return True

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

    def publish_one(self, ch: int, exchange: str, routing_key: str, mandatory: bool) -> None:
        key, chan = self.pick_channel(ch)
        if self.refused_publish(key, [(exchange, routing_key, mandatory)]):
            return
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

    def pick_tag(self, chan: MChannel, pick: int) -> int:
        tags = sorted(chan.unacked)
        if pick == 8:
            return 0  # "all outstanding" with multiple, else unknown
        if pick == 9 or not tags:
            return chan.last_tag + pick  # not outstanding (never given out, or already settled)
        return tags[pick % len(tags)]

    def open_connection(self, connection: int) -> None:
        if connection not in self.connections:
            self.send(c.OpenConnection(connection))
            self.connections.add(connection)

    def reach(self, exchange: str, routing_key: str) -> set[str]:
        """The queues ``exchange`` and the exchanges bound to it route ``routing_key`` to."""
        found: set[str] = set()
        visited, pending = {exchange}, [exchange]
        while pending:
            source = pending.pop()
            kind = EXCHANGES[source]

            def matches(binding_key: str, kind: str = kind) -> bool:
                return kind == "fanout" or (kind == "direct" and binding_key == routing_key) or (
                    kind == "topic" and reference_match(binding_key, routing_key))
            found |= {q for x, q, k in self.bindings if x == source and matches(k)}
            for _, destination, key in [edge for edge in self.e2e if edge[0] == source]:
                if matches(key) and destination not in visited:
                    visited.add(destination)
                    pending.append(destination)
        return found

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
            delivery_mode=1 + number % 2, priority=number % 4 or None, message_id=f"m{number}",
            app_id="machine"))

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
            bisect.insort(queue.ready, copy, key=Copy.place)
            queue.counts["published"] += 1
        self.sweep()
        return accepted

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
            assert [(e.message.properties.message_id, e.redelivered) for e in real.entries()] == [
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
        assert stats.exchanges == len(DEFAULT_EXCHANGES) + len(self.exchanges)
        for exchange in self.exchanges:  # bindings from an exchange: to queues and exchanges
            assert self.broker.exchange_info(exchange).bindings == sum(
                1 for x, _, _ in self.bindings | self.e2e if x == exchange), f"{exchange} bindings"
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
