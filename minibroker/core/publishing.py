"""Publishing: ``basic.publish`` from the checks to the confirm — the hot path's first half.

Rules:

1. Every check a publish must pass (exchange, internal flag, ``user_id``, ``expiration``,
   direct reply-to) runs before anything changes; a ``PublishMany`` batch is checked whole
   before its first message is routed, so a refused batch changes nothing (the adapter then
   replays it one publish at a time to fail at the right one).
2. A message is routed to a *set* of queues (``Topology.route``) and enqueued once in each
   through the one enqueue loop (``lifecycle.py`` rule 1). Messages with headers (CC/BCC), an
   expiration, or no queue (direct reply-to, alternate exchange, mandatory return) take
   :meth:`Publishing._route_special` first, then the same loop.
3. A mandatory message that reaches no queue is returned (312 NO_ROUTE); an alternate exchange
   or a direct reply-to address that takes it counts as a route.
4. Confirms are made in one place, :meth:`Publishing.confirm`: an ack for a message every
   queue took, a nack when a ``reject-publish`` queue refused it. A confirm goes out with the
   outcome of the publish — unless the publish recorded a durable intent (a persistent
   message in a durable queue) or an earlier confirm of the channel waits: then it waits
   for the disk, in order (``journal.py`` rule 4), and :meth:`Publishing.synced` (the input
   ``Synced(N)``) releases it.
5. A transactional publish is routed when it is published and enqueued when the transaction
   commits (:meth:`Publishing.route_now`, :meth:`Publishing.commit`), as RabbitMQ does
   (``transactions.py`` rule 2).
6. A ``PublishMany`` whose messages share one exchange, routing key, properties object and
   mandatory flag (a native ``PublishBatch``, or a run of native publishes read by one lane),
   without CC/BCC, expiration or reply-to, is checked and routed once when it reaches only
   streams — appended to each in one call (``Streams.append_many``) — or one plain queue
   that no journal must hear about it (not durable, or the messages not persistent) — put in
   its store in one call (``QueueLifecycle.enqueue_run``) — with one confirm: the same
   outcome as the publishes one by one, without the per-message route and enqueue (the
   native batched append with confirms, broker CPU a message: see ``docs/benchmarks.md``,
   "Native stream speed"; the run into a plain queue: "Publishes as runs").
7. In a batch, a message made of the very objects of the one before it — exchange and
   properties, routing key — is neither checked nor routed again: the checks and the route
   would give the same answer (a native publisher's run of one prefix shares them,
   ``protocols/native/lanes.py``; so do AMQP publishes through the publish cache).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from operator import attrgetter, itemgetter

from minibroker.core import commands as c
from minibroker.core import deadletter
from minibroker.core.arguments import parse_expiration
from minibroker.core.channels import BrokerChannel, TxPublish
from minibroker.core.effects import Confirm, Effect, Outcome, Return
from minibroker.core.exchanges import Exchange
from minibroker.core.fates import Fate
from minibroker.core.lifecycle import QueueLifecycle
from minibroker.core.queues import Queue
from minibroker.core.replyto import REPLY_PREFIX, REPLY_QUEUE, DirectReplyTo
from minibroker.core.state import BrokerState
from minibroker.errors import AccessRefused, NotFound, PreconditionFailed
from minibroker.message import FieldTable, Message, Properties, field_type_name

__all__ = ["Publishing"]

_message = itemgetter(0)
_mandatory = itemgetter(1)
_properties = attrgetter("properties")
_routing_key = attrgetter("routing_key")
_exchange = attrgetter("exchange")


class Publishing:
    """``basic.publish`` (one or a batch) and ``confirm.select``."""

    def __init__(
        self, state: BrokerState, lifecycle: QueueLifecycle, reply_to: DirectReplyTo
    ) -> None:
        self.state = state
        self.topology = state.topology
        self.exchanges = state.topology.exchanges
        self.lifecycle = lifecycle
        self.reply_to = reply_to

    # -- handlers ----------------------------------------------------------------------------

    def publish(self, command: c.Publish, now: float) -> Outcome:
        """``basic.publish``: route, enqueue, deliver, confirm."""
        channel = self.state.channel(command)
        message = self.accept(channel, command.message)
        effects: list[Effect] = []
        if channel.tx is not None:
            channel.tx.publishes.append(self.route_now(message, command.mandatory, effects))
        else:
            self.state.published += 1
            journal = self.state.journal
            mark = -1 if journal is None else journal.count
            accepted = self.route(channel, message, command.mandatory, now, effects)
            if channel.confirm:
                self.confirm(channel, 1, accepted, effects, mark=mark)
        return Outcome(None, effects)

    def publish_many(self, command: c.PublishMany, now: float) -> Outcome:
        """Several publishes on one channel as one input (rules 1, 6 and 7)."""
        channel = self.state.channel(command)
        if channel.tx is None and len(command.messages) > 1:
            outcome = self._publish_run(channel, command.messages, now, command.uniform)
            if outcome is not None:
                return outcome
        accepted = self._accept_many(channel, command.messages)
        effects: list[Effect] = []
        if channel.tx is not None:
            channel.tx.publishes.extend(
                self.route_now(message, mandatory, effects) for message, mandatory in accepted
            )
            return Outcome(None, effects)
        self.state.published += len(accepted)
        journal = self.state.journal
        mark = -1 if journal is None else journal.count
        results = self._route_many(channel, accepted, now, effects)
        if not channel.confirm:
            return Outcome(None, effects)
        if all(results):
            self.confirm(channel, len(results), True, effects, multiple=True, mark=mark)
        else:
            for taken in results:
                self.confirm(channel, 1, taken, effects, mark=mark)
        return Outcome(None, effects)

    def _publish_run(self, channel: BrokerChannel, batch: tuple[tuple[Message, bool], ...],
                     now: float, uniform: bool) -> Outcome | None:
        """Rule 6; ``None`` when ``batch`` is not such a run (nothing changed then). The
        tests of sameness are C loops (``set(map(...))``), not a Python step a message, and
        run only once the first message is known to reach streams or one plain queue: a
        batch for other queues pays one check and one route, not five passes over its
        messages (callgrind native ack 82,297 -> 79,921, no-ack 55,954 -> 53,837
        instructions a message). A ``uniform`` batch (``PublishMany.uniform``: the adapter
        made it so) skips them: they cost about 1,900 instructions a message of a native
        run into a plain queue (callgrind native --backlog 72,024 with them, 70,085 without;
        with the permission gate's check of the first message alone, 69,796)."""
        first = batch[0][0]
        properties = first.properties
        headers = properties.headers
        if ((headers and ("CC" in headers or "BCC" in headers))
                or properties.expiration is not None or properties.reply_to is not None
                or self.state.observer is not None):
            return None
        self.accept(channel, first)  # rule 1: the same checks hold for every message
        queues = self.topology.route(self.exchanges[first.exchange], first.routing_key, headers)
        if not queues:
            return None
        plain: Queue | None = None
        if len(queues) == 1:
            (plain,) = queues
            if plain.stream is not None:
                plain = None
            elif plain.features is not None or (
                    plain.journal is not None and properties.delivery_mode == 2):
                return None  # (the feature path, or a journal to hear every message)
        if plain is None and any(queue.stream is None for queue in queues):
            return None
        messages = list(map(_message, batch))
        if not uniform and (len(set(map(id, map(_properties, messages)))) != 1
                or len(set(map(_routing_key, messages))) != 1
                or len(set(map(_exchange, messages))) != 1
                or len(set(map(_mandatory, batch))) != 1):
            return None
        self.state.published += len(messages)
        journal = self.state.journal
        mark = -1 if journal is None else journal.count
        effects: list[Effect] = []
        if plain is not None:
            self.lifecycle.enqueue_run(plain, messages, now, effects)
        else:
            append = self.lifecycle.streams.append_many
            for queue in queues:
                append(queue, messages, now, effects)
        if channel.confirm:
            self.confirm(channel, len(messages), True, effects, multiple=True, mark=mark)
        return Outcome(None, effects)

    def _accept_many(
        self, channel: BrokerChannel, messages: tuple[tuple[Message, bool], ...],
    ) -> list[tuple[Message, bool]]:
        """:meth:`accept` for each message of a batch (rule 7): what it checks is the exchange
        and the properties, so a message with the very objects of the one before passes.
        With :meth:`_route_many`, bench/instructions.py (callgrind, instructions a message):
        native ack 95,179 -> 92,377, no-ack 67,953 -> 64,845; AMQP ack 131,509 -> 128,512,
        no-ack 103,400 -> 100,703."""
        accept = self.accept
        accepted = []
        exchange: str | None = None
        properties: Properties | None = None
        for message, mandatory in messages:
            if message.properties is properties and message.exchange is exchange:
                accepted.append((message, mandatory))
                continue
            checked = accept(channel, message)
            accepted.append((checked, mandatory))
            if checked is message:  # (a direct reply-to publish gets its own address)
                exchange, properties = message.exchange, message.properties
        return accepted

    def _route_many(
        self, channel: BrokerChannel, accepted: list[tuple[Message, bool]], now: float,
        effects: list[Effect],
    ) -> list[bool]:
        """:meth:`route` for each accepted message of a batch (rule 7): a message without
        headers or expiration that has the exchange and routing key objects of the one before
        reaches the same queues, which are not looked up again (one batch is one input: the
        topology cannot change within it)."""
        route, enqueue = self.route, self.lifecycle.enqueue
        results = []
        exchange: str | None = None
        routing_key: str | None = None
        queues: Collection[Queue] = ()
        for message, mandatory in accepted:
            if (message.routing_key is routing_key and message.exchange is exchange
                    and queues):
                properties = message.properties
                if not properties.headers and properties.expiration is None:
                    results.append(enqueue(message, queues, None, now, effects, channel))
                    continue
            properties = message.properties
            if properties.headers or properties.expiration is not None:
                results.append(route(channel, message, mandatory, now, effects))
                continue
            exchange, routing_key = message.exchange, message.routing_key
            queues = self.topology.route(self.exchanges[exchange], routing_key,
                                         properties.headers)
            if queues:
                results.append(enqueue(message, queues, None, now, effects, channel))
            else:
                results.append(route(channel, message, mandatory, now, effects))
        return results

    def confirm_select(self, command: c.ConfirmSelect, now: float) -> Outcome:
        channel = self.state.channel(command)
        if channel.tx is not None:
            raise PreconditionFailed("cannot switch from tx to confirm mode")
        channel.confirm = True
        return Outcome()

    # -- confirms (rule 4) -------------------------------------------------------------------

    def confirm(
        self, channel: BrokerChannel, count: int, ack: bool, effects: list[Effect],
        multiple: bool = False, mark: int = -1,
    ) -> None:
        """Confirm the channel's next ``count`` publishes: an ack, or a nack when a queue
        refused the message. A whole accepted batch gets one ``multiple`` confirm: every
        earlier publish of the channel is confirmed (or held) already, so it covers exactly
        the batch (broker CPU 10.5 -> 8.5 us/message in bench/suite.py --only native: 49 of
        50 confirm effects less per batch). ``mark``: the journal's count before the publish;
        if it moved, or the channel holds confirms, this one waits for the disk (rule 4)."""
        last = channel.next_publish_seq + count - 1
        channel.next_publish_seq = last + 1
        confirm = Confirm(channel.connection.id, channel.number, last, multiple, ack)
        journal = self.state.journal
        if journal is None or (journal.count == mark and not channel.held):
            effects.append(confirm)
        else:
            journal.hold(channel, confirm)

    def synced(self, command: c.Synced, now: float) -> Outcome:
        """The shell wrote everything up to the journal's count ``command.upto`` to disk:
        release the confirms that waited for it (rule 4)."""
        journal = self.state.journal
        if journal is None:
            return Outcome()
        return Outcome(None, journal.release(command.upto))

    # -- checks (rule 1) ---------------------------------------------------------------------

    def accept(self, channel: BrokerChannel, message: Message) -> Message:
        """Every check a publish must pass, before anything changes; the message to route
        (with its direct reply-to address filled in)."""
        exchange = self.exchanges.get(message.exchange)
        if exchange is None:
            raise NotFound(f"no exchange '{message.exchange}' in vhost '/'")
        if exchange.internal:
            raise AccessRefused(
                f"cannot publish to internal exchange '{message.exchange}' in vhost '/'"
            )
        properties = message.properties
        user_id = properties.user_id
        if user_id is not None and user_id != channel.connection.user:
            raise PreconditionFailed(
                f"user_id property set to '{user_id}' but authenticated user was "
                f"'{channel.connection.user}'"
            )
        if properties.expiration is not None or properties.reply_to is not None:
            if properties.expiration is not None:
                parse_expiration(properties.expiration)  # RabbitMQ refuses a bad one: 406
            if properties.reply_to == REPLY_QUEUE:
                message = self.reply_to.address(channel, message)
        headers = properties.headers
        if headers and ("CC" in headers or "BCC" in headers):
            _check_routing_headers(headers)
        return message

    # -- routing (rules 2-3) -----------------------------------------------------------------

    def route(
        self, channel: BrokerChannel, message: Message, mandatory: bool, now: float,
        effects: list[Effect],
    ) -> bool:
        """Route and enqueue an accepted message; False if a queue refused it
        (``reject-publish``). The caller counts it as published."""
        exchange = self.exchanges[message.exchange]
        properties = message.properties
        headers = properties.headers
        if headers or properties.expiration is not None:
            return self._route_special(channel, exchange, message, mandatory, now, effects)
        queues = self.topology.route(exchange, message.routing_key, headers)
        if not queues:
            return self._route_special(channel, exchange, message, mandatory, now, effects)
        return self.lifecycle.enqueue(message, queues, None, now, effects, channel)

    def _route_special(
        self, channel: BrokerChannel, exchange: Exchange, message: Message, mandatory: bool,
        now: float, effects: list[Effect],
    ) -> bool:
        """:meth:`route` for messages with headers (CC/BCC), an expiration, or no queue."""
        properties = message.properties
        headers = properties.headers
        queues: Collection[Queue]
        if headers and ("CC" in headers or "BCC" in headers):
            message, queues = self._route_cc(exchange, message)
        else:
            queues = self.topology.route(exchange, message.routing_key, headers)
            if not queues:
                if message.exchange == "" and message.routing_key.startswith(REPLY_PREFIX) and (
                        self.reply_to.deliver(message, effects)):
                    return True
                if "alternate-exchange" in exchange.arguments:
                    queues = self.topology.route_keys(exchange, (message.routing_key,), headers)
        ttl = None
        if properties.expiration is not None:
            ttl = parse_expiration(properties.expiration) / 1000
        accepted = self.lifecycle.enqueue(message, queues, ttl, now, effects, channel)
        if not queues and mandatory:
            self._return(channel, message, effects)
        return accepted

    def _return(self, channel: BrokerChannel, message: Message, effects: list[Effect]) -> None:
        # AMQP: "This flag tells the server how to react if the message cannot be routed to
        # a queue. If this flag is set, the server will return an unroutable message."
        self.state.returned += 1
        effects.append(Return(channel.connection.id, channel.number, 312, "NO_ROUTE", message))
        observer = self.state.observer
        if observer is not None:
            observer(Fate("returned", message, connection=channel.connection.id,
                          channel=channel.number, reason="312 NO_ROUTE"))

    # -- transactional publishes (rule 5) ------------------------------------------------------

    def route_now(self, message: Message, mandatory: bool, effects: list[Effect]) -> TxPublish:
        """Route an accepted transactional publish now; it is enqueued at commit. RabbitMQ
        (``rabbit_channel``, basic.publish): ``QNames = rabbit_exchange:route(...)`` at
        publish, the delivery kept in the tx until ``tx.commit``. The default exchange routes
        by name whether or not the queue exists yet; a direct reply goes out at once."""
        exchange = self.exchanges[message.exchange]
        headers = message.properties.headers
        if headers and ("CC" in headers or "BCC" in headers):
            keys = [message.routing_key, *deadletter.routing_keys(message)[1:],
                    *deadletter.header_keys(headers.get("BCC"))]
            if "BCC" in headers:
                kept = {key: value for key, value in headers.items() if key != "BCC"}
                message = replace(message, properties=replace(message.properties, headers=kept))
        else:
            keys = [message.routing_key]
        if exchange.name != "":
            found = self.topology.route_keys(exchange, keys, headers)
            return TxPublish(message, mandatory, tuple(queue.name for queue in found))
        replied = message.routing_key.startswith(REPLY_PREFIX) and (
            self.reply_to.deliver(message, effects))
        names = dict.fromkeys(key for key in keys if not key.startswith(REPLY_PREFIX))
        return TxPublish(message, mandatory, tuple(names), replied)

    def commit(
        self, channel: BrokerChannel, publish: TxPublish, now: float, effects: list[Effect],
    ) -> None:
        """Enqueue a transactional publish in those of its queues that still exist, or return
        it (mandatory) when none does."""
        queues = self.topology.queues
        found = [queues[name] for name in publish.queues if name in queues]
        message = publish.message
        if not found and publish.replied:
            return
        ttl = None
        if message.properties.expiration is not None:
            ttl = parse_expiration(message.properties.expiration) / 1000
        self.lifecycle.enqueue(message, found, ttl, now, effects, channel)
        if not found and publish.mandatory:
            self._return(channel, message, effects)

    def _route_cc(self, exchange: Exchange, message: Message) -> tuple[Message, list[Queue]]:
        """Sender-selected distribution (RabbitMQ): "CC" and "BCC" headers add routing keys
        on the same exchange; "BCC" is removed before delivery."""
        headers = message.properties.headers
        assert headers is not None
        keys = [message.routing_key, *deadletter.routing_keys(message)[1:],
                *deadletter.header_keys(headers.get("BCC"))]
        queues = list(self.topology.route_keys(exchange, keys, headers))
        if "BCC" in headers:
            kept = {key: value for key, value in headers.items() if key != "BCC"}
            message = replace(message, properties=replace(message.properties, headers=kept))
        return message, queues


def _check_routing_headers(headers: FieldTable) -> None:
    """``CC`` and ``BCC`` must be arrays: RabbitMQ refuses the message otherwise
    (``rabbit_basic:header_routes``: ``{Type, _Val} -> throw({error,
    {unacceptable_type_in_header, ...}})``, which the channel answers with
    ``precondition_failed("invalid message: ~p", [Reason])``)."""
    for name in ("CC", "BCC"):
        value = headers.get(name, [])
        if not isinstance(value, list):
            raise PreconditionFailed(
                f'invalid message: {{unacceptable_type_in_header,"{name}",'
                f"{field_type_name(value, integer=None)}}}")

