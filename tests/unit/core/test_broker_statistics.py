"""Broker core: introspection (statistics, queue_statistics, snapshot) and the rule that a
refused command leaves the broker exactly as it was."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from minibroker.core import commands as c
from minibroker.errors import (
    AccessRefused,
    AMQPError,
    ChannelStateError,
    NotAllowed,
    NotFound,
    NotImplementedFeature,
    PreconditionFailed,
    ResourceLocked,
)
from minibroker.message import Message, Properties

from .helpers import Chan, Harness, fingerprint


def test_a_fresh_broker_has_only_the_predeclared_exchanges() -> None:
    stats = Harness().broker.statistics()
    # "", amq.direct, amq.fanout, amq.topic, amq.headers, amq.match, amq.rabbitmq.trace
    assert (stats.connections, stats.channels, stats.exchanges, stats.queues) == (0, 0, 7, 0)
    assert (stats.messages_ready, stats.messages_unacked, stats.published) == (0, 0, 0)


def test_statistics_count_everything() -> None:
    harness = Harness()
    a = harness.open(1, 1)
    harness.open(1, 2)
    b = harness.open(2, 1)
    a.declare_queue("q")
    a.declare_queue("r")
    a.declare_exchange("x", "fanout")
    a.bind("q", "x")
    a.bind("r", "x")
    b.consume("q", "c")
    a.publish("x", "", b"1")  # q: delivered to c; r: ready
    a.publish("x", "", b"2")
    a.publish("amq.direct", "nowhere", b"3", mandatory=True)
    b.ack(1)
    a.get_ok("r", no_ack=True)
    stats = harness.broker.statistics()
    assert dataclasses.asdict(stats) == {
        "connections": 2, "channels": 3, "exchanges": 8, "queues": 2, "consumers": 1,
        "messages_ready": 1, "messages_unacked": 1, "published": 3, "delivered": 3,
        "acked": 1, "returned": 1,
    }


def test_queue_statistics_describe_one_queue() -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q", durable=True, arguments={"x-max-length": 5})
    ch.consume("q", "c")
    for body in (b"1", b"2", b"3"):
        ch.publish("", "q", body)
    ch.ack(1)
    ch.nack(2)
    s = harness.broker.queue_statistics("q")
    assert (s.name, s.durable, s.exclusive, s.auto_delete, s.arguments) == (
        "q", True, False, False, {"x-max-length": 5}
    )
    assert (s.ready, s.unacked, s.consumers) == (0, 2, 1)
    assert (s.published, s.delivered, s.acked, s.redelivered) == (3, 4, 1, 1)


def test_queue_statistics_of_a_missing_queue_is_not_found() -> None:
    with pytest.raises(NotFound):
        Harness().broker.queue_statistics("nope")


def test_snapshot_is_frozen_and_detached() -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q", arguments={"x-max-length": 5})
    ch.bind("q", "amq.headers", "", {"x-match": "any", "a": 1})
    ch.consume("q", "c", arguments={"x-priority": 1})
    before = harness.broker.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.queues[0].ready = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.bindings[0].binding_key = "k"  # type: ignore[misc]
    before.queues[0].arguments["x-max-length"] = 6
    before.consumers[0].arguments["x-priority"] = 2
    before.bindings[0].arguments["b"] = 2  # regression: this used to be the live table
    ch.publish("", "q", b"1")
    ch.cancel("c")
    after = harness.broker.snapshot()
    assert after.queues[0].arguments == {"x-max-length": 5}
    assert before.queues[0].unacked == 0 and after.queues[0].unacked == 1
    assert len(before.consumers) == 1 and after.consumers == ()
    (binding,) = after.bindings
    assert (binding.source, binding.destination.name) == ("amq.headers", "q")
    assert binding.arguments == {"x-match": "any", "a": 1}
    info = after.connections[0].channels[0]
    assert (info.connection, info.channel, info.unacked, info.consumers) == (1, 1, 1, 0)


# -- a refused command changes nothing --------------------------------------------------------


def _setup(harness: Harness) -> tuple[Chan, Chan]:
    """Two connections with queues, bindings, consumers, unacked and ready messages."""
    a = harness.open(1, 1)
    b = harness.open(2, 1)
    a.declare_queue("q")
    a.declare_queue("ex", exclusive=True)
    a.declare_exchange("x", "topic")
    a.bind("q", "x", "a.#")
    a.bind("ex", "x", "k")
    a.declare_exchange("ad", "fanout", auto_delete=True)
    a.bind("q", "ad")
    a.qos(2)
    a.consume("q", "c1")
    b.qos(2)
    b.consume("q", "c2")
    for i in range(6):
        a.publish("x", "a.b", bytes([i]))  # 2 to each consumer, 2 left ready
    a.publish("", "ex", b"e1")
    a.publish("", "ex", b"e2")
    a.get_ok("ex")
    a.confirm_select()
    return a, b


MSG = Message("x", "a.b", b"m")
FAILING: dict[str, Callable[[Chan, Chan], c.Command]] = {
    "ack-unknown": lambda a, b: c.Ack(1, 1, 99),
    "ack-multiple-unknown": lambda a, b: c.Ack(2, 1, 99, True),
    "nack-unknown": lambda a, b: c.Nack(1, 1, 42, True, False),
    "reject-unknown": lambda a, b: c.Reject(2, 1, 0),
    "exchange-redeclare": lambda a, b: c.DeclareExchange(1, 1, "x", "direct"),
    "exchange-amq": lambda a, b: c.DeclareExchange(1, 1, "amq.new", "direct"),
    "exchange-passive": lambda a, b: c.DeclareExchange(1, 1, "nope", passive=True),
    "exchange-type": lambda a, b: c.DeclareExchange(1, 1, "new", "bogus"),
    "exchange-delete-in-use": lambda a, b: c.DeleteExchange(1, 1, "x", True),
    "queue-redeclare": lambda a, b: c.DeclareQueue(1, 1, "q", durable=True),
    "queue-passive": lambda a, b: c.DeclareQueue(2, 1, "nope", passive=True),
    "queue-exclusive": lambda a, b: c.DeclareQueue(2, 1, "ex", passive=True),
    "queue-amq": lambda a, b: c.DeclareQueue(1, 1, "amq.q"),
    "delete-if-unused": lambda a, b: c.DeleteQueue(1, 1, "q", if_unused=True),
    "delete-if-empty": lambda a, b: c.DeleteQueue(1, 1, "q", if_empty=True),
    "delete-exclusive": lambda a, b: c.DeleteQueue(2, 1, "ex"),
    "purge-exclusive": lambda a, b: c.PurgeQueue(2, 1, "ex"),
    "bind-missing-queue": lambda a, b: c.BindQueue(1, 1, "nope", "x", "k"),
    "bind-default": lambda a, b: c.BindQueue(1, 1, "q", "", "k"),
    "unbind-exclusive": lambda a, b: c.UnbindQueue(2, 1, "ex", "x", "k"),
    "consume-exclusive-queue": lambda a, b: c.Consume(2, 1, "ex", "t"),
    "consume-exclusive-consumer": lambda a, b: c.Consume(2, 1, "q", "t", exclusive=True),
    "consume-duplicate-tag": lambda a, b: c.Consume(1, 1, "q", "c1"),
    "consume-missing": lambda a, b: c.Consume(1, 1, "nope"),
    "consume-no-last-queue": lambda a, b: c.Consume(2, 1, ""),
    "get-exclusive": lambda a, b: c.Get(2, 1, "ex"),
    "publish-missing-exchange": lambda a, b: c.Publish(1, 1, Message("nope", "k", b"m")),
    "publish-internal": lambda a, b: c.Publish(1, 1, Message("amq.rabbitmq.trace", "k", b"")),
    "publish-user-id": lambda a, b: c.Publish(
        1, 1, Message("x", "a.b", b"m", Properties(user_id="mallory"))
    ),
    "tx-on-confirm": lambda a, b: c.TxSelect(1, 1),
    "commit-without-tx": lambda a, b: c.TxCommit(2, 1),
    "recover-no-requeue": lambda a, b: c.Recover(1, 1, False),
    "qos-out-of-range": lambda a, b: c.Qos(1, 1, 70000),
    "channel-not-open": lambda a, b: c.Publish(1, 9, MSG),
    "second-channel-open": lambda a, b: c.OpenChannel(1, 1),
}


#: What each refusal is: its error class, reply code and text — RabbitMQ's where RabbitMQ has
#: the case (``exchange-type``: the newest profile's 406; RabbitMQ 3.10 closes the connection
#: with 503 instead).
LOCKED = ("cannot obtain exclusive access to locked queue 'ex' in vhost '/'. It could be "
          "originally declared on another connection or the exclusive property value does "
          "not match that of the original declaration.")
REFUSALS: dict[str, tuple[type[AMQPError], int, str]] = {
    "ack-multiple-unknown": (PreconditionFailed, 406, "unknown delivery tag 99"),
    "ack-unknown": (PreconditionFailed, 406, "unknown delivery tag 99"),
    "bind-default": (AccessRefused, 403, "operation not permitted on the default exchange"),
    "bind-missing-queue": (NotFound, 404, "no queue 'nope' in vhost '/'"),
    "channel-not-open": (ChannelStateError, 504, "expected 'channel.open' on channel 9"),
    "commit-without-tx": (PreconditionFailed, 406, "channel is not transactional"),
    "consume-duplicate-tag": (NotAllowed, 530, "attempt to reuse consumer tag 'c1'"),
    "consume-exclusive-consumer": (AccessRefused, 403, "queue 'q' in vhost '/' in exclusive use"),
    "consume-exclusive-queue": (ResourceLocked, 405, LOCKED),
    "consume-missing": (NotFound, 404, "no queue 'nope' in vhost '/'"),
    "consume-no-last-queue": (NotFound, 404, "no previously declared queue"),
    "delete-exclusive": (ResourceLocked, 405, LOCKED),
    "delete-if-empty": (PreconditionFailed, 406, "queue 'q' in vhost '/' not empty"),
    "delete-if-unused": (PreconditionFailed, 406, "queue 'q' in vhost '/' in use"),
    "exchange-amq": (AccessRefused, 403,
        "exchange name 'amq.new' contains reserved prefix 'amq.*'"),
    "exchange-delete-in-use": (PreconditionFailed, 406, "exchange 'x' in vhost '/' in use"),
    "exchange-passive": (NotFound, 404, "no exchange 'nope' in vhost '/'"),
    "exchange-redeclare": (PreconditionFailed, 406,
        "inequivalent arg 'type' for exchange 'x' in vhost '/': received 'direct' but "
        "current is 'topic'"),
    "exchange-type": (PreconditionFailed, 406, "unknown exchange type 'bogus'"),
    "get-exclusive": (ResourceLocked, 405, LOCKED),
    "nack-unknown": (PreconditionFailed, 406, "unknown delivery tag 42"),
    "publish-internal": (AccessRefused, 403,
        "cannot publish to internal exchange 'amq.rabbitmq.trace' in vhost '/'"),
    "publish-missing-exchange": (NotFound, 404, "no exchange 'nope' in vhost '/'"),
    "publish-user-id": (PreconditionFailed, 406,
        "user_id property set to 'mallory' but authenticated user was 'guest'"),
    "purge-exclusive": (ResourceLocked, 405, LOCKED),
    "qos-out-of-range": (PreconditionFailed, 406, "invalid prefetch_count 70000: must be 0..65535"),
    "queue-amq": (AccessRefused, 403, "queue name 'amq.q' contains reserved prefix 'amq.*'"),
    "queue-exclusive": (ResourceLocked, 405, LOCKED),
    "queue-passive": (NotFound, 404, "no queue 'nope' in vhost '/'"),
    "queue-redeclare": (PreconditionFailed, 406,
        "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but "
        "current is 'false'"),
    "recover-no-requeue": (NotImplementedFeature, 540, "requeue=false"),
    "reject-unknown": (PreconditionFailed, 406, "unknown delivery tag 0"),
    "second-channel-open": (ChannelStateError, 504, "second 'channel.open' seen"),
    "tx-on-confirm": (PreconditionFailed, 406, "cannot switch from confirm to tx mode"),
    "unbind-exclusive": (ResourceLocked, 405, LOCKED),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_a_refused_command_leaves_the_broker_exactly_as_it_was(case: str) -> None:
    harness = Harness()
    a, b = _setup(harness)
    command = FAILING[case](a, b)
    before = fingerprint(harness.broker)
    kind, code, text = REFUSALS[case]
    with pytest.raises(kind) as info:
        harness.handle(command)
    assert (type(info.value), info.value.reply_code, info.value.text) == (kind, code, text)
    assert fingerprint(harness.broker) == before


def test_after_a_channel_error_the_broker_keeps_working() -> None:
    harness = Harness()
    a, b = _setup(harness)
    with pytest.raises(PreconditionFailed) as info:
        b.ack(99)
    assert (info.value.reply_code, info.value.text) == (406, "unknown delivery tag 99")
    b.close()  # as the adapter would after sending channel.close
    outcome = a.publish("x", "a.b", b"after")
    # c2's two unacked came back; c1 (prefetch 2) is full, so nothing is delivered.
    assert [type(e).__name__ for e in outcome.effects] == ["Confirm"]
    assert harness.broker.queue_statistics("q").ready == 5


def test_a_connection_snapshot_carries_the_clients_name_and_properties() -> None:
    harness = Harness()
    properties = {"product": "pika", "connection_name": "orders-worker"}
    harness.broker.handle(c.OpenConnection(7, user="ann", peer="10.0.0.1:4000",
                                           connection_name="orders-worker",
                                           client_properties=properties), now=0.0)
    harness.broker.handle(c.OpenConnection(8), now=0.0)
    named, anonymous = harness.broker.snapshot().connections
    assert (named.connection, named.user, named.connection_name) == (7, "ann", "orders-worker")
    assert named.client_properties == properties
    assert (anonymous.connection_name, anonymous.client_properties) == ("", {})
