"""Error paths of the core: refused arguments and commands, RabbitMQ's code and text, nothing
changed; and inputs RabbitMQ accepts but that lead nowhere (a missing alternate exchange, a
malformed ``x-death``).

Each argument text is what RabbitMQ 3.10 answers to the same declare or consume (run against
it). A refused command leaves the broker exactly as it was (``fingerprint``), and the queue a
refused declare names does not exist afterwards.
"""

from __future__ import annotations

import pytest

from minibroker.core import commands as c
from minibroker.core.effects import GetOk, Return
from minibroker.errors import ChannelStateError, InternalError, PreconditionFailed
from minibroker.message import FieldTable, FieldValue, Properties
from tests.unit.core.helpers import Chan, Harness, fingerprint

DECLARE_ERRORS: list[tuple[FieldTable, str]] = [
    ({"x-dead-letter-exchange": 1},
     "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"),
    ({"x-queue-mode": "weird"},
     "invalid arg 'x-queue-mode' for queue 'q' in vhost '/': \"unsupported queue mode 'weird'\""),
    ({"x-single-active-consumer": "yes"},
     "invalid arg 'x-single-active-consumer' for queue 'q' in vhost '/': "
     "{unacceptable_type,longstr}"),
    ({"x-dead-letter-routing-key": "k"},
     "invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': "
     "routing_key_but_no_dlx_defined"),
    ({"x-overflow": "sideways"},
     "invalid arg 'x-overflow' for queue 'q' in vhost '/': invalid_overflow"),
]


@pytest.mark.parametrize(("arguments", "text"), DECLARE_ERRORS,
                         ids=[next(iter(args)) for args, _ in DECLARE_ERRORS])
def test_a_bad_queue_argument_is_406_naming_it(
    harness: Harness, ch: Chan, arguments: FieldTable, text: str
) -> None:
    before = fingerprint(harness.broker)
    with pytest.raises(PreconditionFailed) as info:
        harness.handle(c.DeclareQueue(ch.connection, ch.channel, "q", arguments=arguments))
    assert (info.value.reply_code, info.value.text) == (406, text)
    assert fingerprint(harness.broker) == before
    assert "q" not in harness.broker.topology.queues


def test_a_non_integer_consumer_priority_is_406_naming_the_queue(
    harness: Harness, ch: Chan
) -> None:
    """RabbitMQ names the queue, not the consumer: "invalid arg 'x-priority' for queue 'q' in
    vhost '/': \"expected integer, got longstr\""."""
    ch.declare_queue("q")
    ch.publish("", "q", b"waiting")
    before = fingerprint(harness.broker)
    with pytest.raises(PreconditionFailed) as info:
        harness.handle(c.Consume(ch.connection, ch.channel, "q", "c", False, False,
                                 {"x-priority": "high"}))
    assert (info.value.reply_code, info.value.text) == (
        406, "invalid arg 'x-priority' for queue 'q' in vhost '/': "
             "\"expected integer, got longstr\"")
    assert fingerprint(harness.broker) == before  # no consumer, the message still ready
    assert harness.broker.queue_statistics("q").consumers == 0


def test_a_second_connection_with_an_id_in_use_is_541_and_changes_nothing(
    harness: Harness, ch: Chan
) -> None:
    """The shell allocates connection ids; reusing one is a broker bug, refused as 541."""
    ch.declare_queue("q")
    before = fingerprint(harness.broker)
    with pytest.raises(InternalError) as info:
        harness.handle(c.OpenConnection(ch.connection, "other"))
    assert (info.value.reply_code, info.value.text) == (
        541, f"connection id {ch.connection} is already in use")
    assert fingerprint(harness.broker) == before
    assert harness.broker.connections[ch.connection].user == "guest"


@pytest.mark.parametrize(("connection", "channel", "text"), [
    (9, 1, "connection 9 is not open"),
    (1, 7, "expected 'channel.open' on channel 7"),
])
def test_a_command_outside_an_open_channel_is_504(
    harness: Harness, ch: Chan, connection: int, channel: int, text: str
) -> None:
    ch.declare_queue("q")
    before = fingerprint(harness.broker)
    with pytest.raises(ChannelStateError) as info:
        harness.handle(c.PurgeQueue(connection, channel, "q"))
    assert (info.value.reply_code, info.value.text) == (504, text)
    assert fingerprint(harness.broker) == before


def test_an_alternate_exchange_that_does_not_exist_leaves_the_message_unroutable(
    harness: Harness, ch: Chan
) -> None:
    """RabbitMQ accepts an ``alternate-exchange`` naming no exchange; a message the exchange
    routes nowhere is then unroutable: returned (312 NO_ROUTE) when mandatory, else dropped
    (RabbitMQ 3.10 does the same)."""
    ch.declare_exchange("x", "direct", arguments={"alternate-exchange": "missing"})
    ch.declare_queue("q")
    ch.bind("q", "x", "k")
    returned = ch.publish("x", "other", b"lost", mandatory=True).effects
    assert [(type(e).__name__, e.reply_code, e.message.body) for e in returned
            if isinstance(e, Return)] == [("Return", 312, b"lost")]
    assert ch.publish("x", "other", b"dropped").effects == []
    ch.publish("x", "k", b"routed")
    assert harness.broker.queue_statistics("q").ready == 1


@pytest.mark.parametrize("x_death", ["not a list", [1, "two"], [{"count": "x", "queue": "q",
                                                                  "reason": "rejected"}]])
def test_a_malformed_x_death_is_replaced_by_a_well_formed_one(
    harness: Harness, ch: Chan, x_death: FieldValue
) -> None:
    """A client may publish any ``x-death``; dead-lettering keeps the entries it cannot read
    and puts its own in front."""
    ch.declare_queue("dlq")
    ch.declare_queue("q", arguments={"x-dead-letter-exchange": "",
                                     "x-dead-letter-routing-key": "dlq"})
    ch.publish("", "q", b"m", properties=Properties(headers={"x-death": x_death}))
    reply = harness.handle(c.Get(ch.connection, ch.channel, "q")).reply
    assert isinstance(reply, GetOk)
    harness.handle(c.Reject(ch.connection, ch.channel, reply.delivery_tag, False))
    dead = harness.handle(c.Get(ch.connection, ch.channel, "dlq", True)).reply
    assert isinstance(dead, GetOk)
    headers = dead.message.properties.headers
    assert headers is not None
    deaths = headers["x-death"]
    assert isinstance(deaths, list) and isinstance(deaths[0], dict)
    # An entry for the same (queue, reason) is counted on, the rest of it kept (RabbitMQ);
    # an unreadable count counts as 0.
    assert (deaths[0]["reason"], deaths[0]["queue"], deaths[0]["count"]) == ("rejected", "q", 1)
    assert deaths[1:] == ([] if not isinstance(x_death, list) else [
        entry for entry in x_death if not isinstance(entry, dict)])
    assert headers["x-first-death-reason"] == "rejected"
