"""PublishMany and AckMany: one input for a run of publishes or acks, with the outcome of the
same commands one by one, and refused whole (state unchanged) when any part would fail."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import Confirm, Deliver, singles
from minibroker.core.fates import Fate
from minibroker.core.flow import MESSAGE_OVERHEAD
from minibroker.core.journal import Journal
from minibroker.errors import NotFound, PreconditionFailed
from minibroker.message import Message, Properties
from tests.unit.core.helpers import Harness, delivered, fingerprint


def _setup() -> Harness:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    ch.confirm_select()
    ch.qos(2)
    ch.consume("q", consumer_tag="c")
    return harness


def _messages(*bodies: bytes, exchange: str = "") -> tuple[tuple[Message, bool], ...]:
    return tuple((Message(exchange, "q", body), False) for body in bodies)


def test_publish_many_has_the_outcome_of_publishes_one_by_one() -> None:
    batched, single = _setup(), _setup()
    outcome = batched.handle(c.PublishMany(1, 1, _messages(b"1", b"2", b"3")))
    effects = []
    for message, mandatory in _messages(b"1", b"2", b"3"):
        effects.extend(single.handle(c.Publish(1, 1, message, mandatory)).effects)
    assert [type(effect) for effect in effects] == [Deliver, Confirm, Deliver, Confirm, Confirm]

    assert delivered(outcome) == delivered(effects)
    # The batch is confirmed at once: one multiple confirm covering publishes 1..3.
    assert [effect for effect in outcome.effects if isinstance(effect, Confirm)] == [
        Confirm(1, 1, 3, multiple=True)
    ]
    assert fingerprint(batched.broker) == fingerprint(single.broker)


def test_publish_many_confirms_each_publish_when_a_queue_refuses_one() -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.confirm_select()
    outcome = harness.handle(c.PublishMany(1, 1, _messages(b"1", b"2", b"3")))
    assert [effect for effect in outcome.effects if isinstance(effect, Confirm)] == [
        Confirm(1, 1, 1, ack=True), Confirm(1, 1, 2, ack=False), Confirm(1, 1, 3, ack=False),
    ]
    later = ch.publish("", "other", b"4")  # numbering goes on after the batch
    assert [effect for effect in later.effects if isinstance(effect, Confirm)] == [
        Confirm(1, 1, 4)
    ]


def test_publish_many_with_a_refused_publish_changes_nothing() -> None:
    harness = _setup()
    before = fingerprint(harness.broker)
    batch = (*_messages(b"1"), (Message("missing", "q", b"2"), False), *_messages(b"3"))
    with pytest.raises(NotFound, match="no exchange 'missing'"):
        harness.handle(c.PublishMany(1, 1, batch))
    assert fingerprint(harness.broker) == before


def test_ack_many_has_the_outcome_of_acks_one_by_one() -> None:
    batched, single = _setup(), _setup()
    for harness in (batched, single):
        harness.handle(c.PublishMany(1, 1, _messages(b"1", b"2", b"3", b"4")))
    outcome = batched.handle(c.AckMany(1, 1, (1, 2)))
    effects = [*single.handle(c.Ack(1, 1, 1)).effects, *single.handle(c.Ack(1, 1, 2)).effects]
    assert singles(outcome.effects) == effects  # (the two deliveries as one run)
    assert [effect.message.body for effect in effects if isinstance(effect, Deliver)] == [
        b"3", b"4"
    ]
    assert fingerprint(batched.broker) == fingerprint(single.broker)


@pytest.mark.parametrize("tags", [(1, 9), (1, 1), (0,)])
def test_ack_many_with_an_unknown_or_repeated_tag_changes_nothing(tags: tuple[int, ...]) -> None:
    harness = _setup()
    harness.handle(c.PublishMany(1, 1, _messages(b"1", b"2")))
    before = fingerprint(harness.broker)
    bad = next(tag for index, tag in enumerate(tags) if tag not in (1, 2) or tag in tags[:index])
    with pytest.raises(PreconditionFailed, match=f"unknown delivery tag {bad}"):
        harness.handle(c.AckMany(1, 1, tags))
    assert fingerprint(harness.broker) == before


def test_ack_many_on_a_transactional_channel_waits_for_commit() -> None:
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    ch.consume("q", consumer_tag="c")
    harness.handle(c.PublishMany(1, 1, _messages(b"1", b"2")))
    ch.tx_select()
    harness.handle(c.AckMany(1, 1, (1, 2)))
    assert harness.broker.queue_statistics("q").unacked == 2
    ch.tx_commit()
    assert harness.broker.queue_statistics("q").unacked == 0


def test_a_window_less_consumer_gets_one_burst_until_the_shell_reports_a_flush() -> None:
    from minibroker.core.channels import DELIVERY_BURST

    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    body = b"x" * 1024
    total = 2 * DELIVERY_BURST // len(body) + 10
    for _ in range(total):
        ch.publish("", "q", body)
    first = ch.consume("q", consumer_tag="c", no_ack=True)
    burst = len(delivered(first))
    assert burst == DELIVERY_BURST // len(body)  # stops at the burst, not at the backlog
    renewed = harness.handle(c.SetWritable(1, True))  # "flushed": the next burst goes
    assert len(delivered(renewed)) == burst
    assert harness.broker.queue_statistics("q").ready == total - 2 * burst


_SHAPES = {  # shared objects, as a native publisher's run of one prefix shares them
    "plain": Properties(),
    "typed": Properties(content_type="text/plain"),
    "cc": Properties(headers={"CC": ["r"]}),
    "expiring": Properties(expiration="60000"),
}


@given(st.lists(st.tuples(st.sampled_from(["", "amq.direct", "fan"]),
                          st.sampled_from(["q", "r", "nowhere"]),
                          st.sampled_from(sorted(_SHAPES)), st.booleans()),
                min_size=2, max_size=8))
def test_publish_many_of_shared_objects_has_the_outcome_of_publishes_one_by_one(
        shapes: list[tuple[str, str, str, bool]]) -> None:
    """A message of the objects of the one before is neither checked nor routed again
    (publishing.py rule 6): the same effects and state as each publish on its own."""

    def setup() -> Harness:
        harness = Harness()
        ch = harness.open()
        for queue in ("q", "r"):
            ch.declare_queue(queue)
            ch.bind(queue, "amq.direct", queue)
        ch.declare_exchange("fan", "fanout")
        ch.bind("q", "fan")
        ch.confirm_select()
        ch.consume("q", consumer_tag="c")
        return harness

    messages = tuple((Message(exchange, key, bytes([n]), _SHAPES[shape]), mandatory)
                     for n, (exchange, key, shape, mandatory) in enumerate(shapes))
    batched, single = setup(), setup()
    outcome = batched.handle(c.PublishMany(1, 1, messages))
    effects = []
    for message, mandatory in messages:
        effects.extend(single.handle(c.Publish(1, 1, message, mandatory)).effects)
    assert [e for e in outcome.effects if not isinstance(e, Confirm)] == [
        e for e in effects if not isinstance(e, Confirm)]
    assert fingerprint(batched.broker) == fingerprint(single.broker)


_CONSUMERS = ("none", "ack-1", "ack-3", "ack-unlimited", "no-ack", "two-ack-2")
#: Shapes of a run's one properties object: those that may take the run path, and those that
#: must not (CC/BCC recipients, an expiration, a reply-to address each need their message's
#: own way: publishing.py rule 6).
_RUN_SHAPES = {
    "plain": Properties(), "persistent": Properties(delivery_mode=2),
    "user": Properties(user_id="guest"), "cc": Properties(headers={"CC": ["r"]}),
    "bcc": Properties(headers={"BCC": ["r"]}), "expiring": Properties(expiration="60000"),
    "reply-to": Properties(reply_to="answers"),
}


def _credit_and_weight(harness: Harness) -> None:
    """What the comparison of two brokers cannot show when both count alike wrongly: every
    channel's and consumer's unacked count is its unacked deliveries', and the ready meter
    weighs exactly the ready messages."""
    broker = harness.broker
    for connection in broker.connections.values():
        for channel in connection.channels.values():
            owners = [u.consumer for u in channel.unacked.values() if u.consumer is not None]
            assert channel.consumer_unacked == len(owners)
            for consumer in channel.consumers.values():
                assert consumer.unacked == sum(owner is consumer for owner in owners)
    assert broker.meter.weight == sum(
        len(entry.message.body) + MESSAGE_OVERHEAD
        for queue in broker.topology.queues.values() for entry in queue.entries())


@pytest.mark.parametrize("shape", sorted(_RUN_SHAPES))  # each shape, whatever the examples
@given(consumers=st.sampled_from(_CONSUMERS), backlog=st.integers(0, 3),
       size=st.integers(2, 12), durable=st.booleans(), acks=st.integers(0, 4),
       uniform=st.booleans(), journaled=st.booleans(), observed=st.booleans())
def test_a_run_into_a_plain_queue_has_the_outcome_of_publishes_one_by_one(
        shape: str, consumers: str, backlog: int, size: int, durable: bool, acks: int,
        uniform: bool, journaled: bool, observed: bool) -> None:
    """A run of one exchange, routing key and properties into one plain queue is put in the
    store at once (lifecycle.py rule 7): the same deliveries, tags, counters, ready messages,
    fates and confirms as each publish on its own, with a backlog or without, and after acks;
    whether the batch says it is uniform (a native lane's run) or the core finds it out, with
    a journal or without (a durable queue's persistent messages wait for the disk)."""
    properties = _RUN_SHAPES[shape]

    def setup() -> tuple[Harness, list[Fate]]:
        harness = Harness(Broker(journal=Journal()) if journaled else None)
        fates: list[Fate] = []
        if observed:
            harness.broker.observer = fates.append
        ch = harness.open()
        ch.declare_queue("q", durable=durable)
        ch.declare_queue("r")
        ch.confirm_select()
        for n in range(backlog):
            ch.publish("", "q", bytes([100 + n]), properties=properties)
        if consumers == "no-ack":
            ch.consume("q", consumer_tag="c", no_ack=True)
        elif consumers != "none":
            prefetch = {"ack-1": 1, "ack-3": 3, "ack-unlimited": 0, "two-ack-2": 2}[consumers]
            ch.qos(prefetch)
            ch.consume("q", consumer_tag="c")
            if consumers == "two-ack-2":
                other = harness.open(2)
                other.qos(2)
                other.consume("q", consumer_tag="d")
        return harness, fates

    exchange, key = "", "q"  # one object each, as a lane shares them
    messages = tuple((Message(exchange, key, bytes([n]), properties), False)
                     for n in range(size))
    (batched, batched_fates), (single, single_fates) = setup(), setup()
    outcome = batched.handle(c.PublishMany(1, 1, messages, uniform=uniform))
    effects = []
    for message, mandatory in messages:
        effects.extend(single.handle(c.Publish(1, 1, message, mandatory)).effects)
    assert delivered(outcome) == delivered(effects)
    held = journaled and durable and shape == "persistent"  # confirmed once on disk
    assert [e for e in outcome.effects if isinstance(e, Confirm)] == (
        [] if held else [Confirm(1, 1, backlog + size, multiple=True)])
    assert fingerprint(batched.broker) == fingerprint(single.broker)
    assert batched_fates == single_fates
    _credit_and_weight(batched)
    if consumers not in ("none", "no-ack"):  # credit back: the backlog moves on alike
        tags = [d.delivery_tag for d in delivered(effects) if d.connection == 1][:acks]
        for tag in tags:
            assert (delivered(batched.handle(c.Ack(1, 1, tag, False)))
                    == delivered(single.handle(c.Ack(1, 1, tag, False))))
        assert fingerprint(batched.broker) == fingerprint(single.broker)
        _credit_and_weight(batched)


def test_a_run_that_passes_the_queue_mark_lists_its_queue_as_long() -> None:
    """The shell's credit flow watches the queues past the per-queue mark (``flow.py``): a
    run into a plain queue lists it as one message at a time would, at the mark and not
    before."""
    harness = Harness()
    harness.broker.meter.queue_high_water = 5
    ch = harness.open()
    ch.declare_queue("q")
    queue = harness.broker.topology.queues["q"]
    harness.handle(c.PublishMany(1, 1, _messages(*[b"m"] * 5), uniform=True))
    assert queue not in harness.broker.meter.long_queues  # 5: at the mark, not past it
    harness.handle(c.PublishMany(1, 1, _messages(b"m", b"m"), uniform=True))
    assert harness.broker.meter.long_queues == {queue}


def test_a_purged_run_leaves_the_ready_meter_as_it_found_it() -> None:
    """The store's own share of the meter grows by a run's weight, so a purge or a deletion
    takes exactly that back (``stores.py`` rule 3)."""
    harness = Harness()
    ch = harness.open()
    ch.declare_queue("q")
    ch.publish("", "q", b"before")
    before = harness.broker.meter.weight
    harness.handle(c.PublishMany(1, 1, _messages(b"a", b"bb", b"ccc"), uniform=True))
    assert harness.broker.meter.weight == before + 6 + 3 * MESSAGE_OVERHEAD
    assert ch.purge("q") == 4
    assert harness.broker.meter.weight == 0
