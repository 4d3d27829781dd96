"""Refused queue and consumer arguments: RabbitMQ's code and text, and nothing changed.

Each text is what RabbitMQ 3.10 answers to the same declare or consume (run against it). A
refused command leaves the broker exactly as it was (``fingerprint``), and the queue a refused
declare names does not exist afterwards.
"""

from __future__ import annotations

import pytest

from minibroker.core import commands as c
from minibroker.errors import PreconditionFailed
from minibroker.message import FieldTable
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
