"""A native ``PublishBatch`` to streams is appended in one call per stream
(``publishing.py`` rule 6, ``streamlog.py`` rule 9): the same stream, confirms and counters
as the same messages published one by one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import Confirm
from minibroker.core.streams import StreamQueue
from minibroker.message import EMPTY_PROPERTIES, Message, Properties

STREAM = {"x-queue-type": "stream"}


def _broker(segment: int, streams: int) -> Broker:
    core = Broker()
    core.handle(c.OpenConnection(1), now=0)
    core.handle(c.OpenChannel(1, 1), now=0)
    core.handle(c.ConfirmSelect(1, 1), now=0)
    core.handle(c.DeclareExchange(1, 1, "fan", "fanout"), now=0)
    for number in range(streams):
        core.handle(c.DeclareQueue(1, 1, f"s{number}", durable=True, arguments={
            **STREAM, "x-stream-max-segment-size-bytes": segment}), now=0)
        core.handle(c.BindQueue(1, 1, f"s{number}", "fan", ""), now=0)
    return core


def _stream(core: Broker, name: str) -> list[object]:
    queue = core.state.topology.queues[name]
    assert isinstance(queue, StreamQueue)
    log = queue.stream
    return [log.next_offset, log.bytes, log.weight, queue.published, [
        (segment.first, [m.body for m in segment.messages],
         [(chunk.first, chunk.bloom, chunk.unfiltered) for chunk in segment.chunks])
        for segment in log.segments]]


shared = st.sampled_from([EMPTY_PROPERTIES, Properties(content_type="text/plain"),
                          Properties(headers={"x-stream-filter-value": "eu"})])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.binary(max_size=6), min_size=2, max_size=40), shared),
                min_size=1, max_size=8),
       st.integers(0, 60), st.integers(1, 3), st.sampled_from(["fan", ""]))
def test_a_batch_appends_as_its_messages_one_by_one(
        batches: list[tuple[list[bytes], Properties]], segment: int, streams: int,
        exchange: str) -> None:
    batched, single = _broker(segment, streams), _broker(segment, streams)
    key = "s0" if exchange == "" else ""
    for step, (bodies, properties) in enumerate(batches):
        # One properties object: the batch path; equal copies: the message-by-message path.
        many = tuple((Message(exchange, key, body, properties), False) for body in bodies)
        copies = tuple((Message(exchange, key, body, Properties(**{
            name: getattr(properties, name) for name in properties.__dataclass_fields__})),
            False) for body in bodies)
        got = batched.handle(c.PublishMany(1, 1, many), now=step).effects
        expected = single.handle(c.PublishMany(1, 1, copies), now=step).effects
        assert got == expected
        assert [type(effect) for effect in got] == [Confirm]
    for number in range(streams if exchange else 1):
        assert _stream(batched, f"s{number}") == _stream(single, f"s{number}")
    assert batched.state.published == single.state.published


def test_a_batch_to_a_classic_queue_takes_the_message_path() -> None:
    core = _broker(0, 1)
    core.handle(c.DeclareQueue(1, 1, "classic"), now=0)
    core.handle(c.BindQueue(1, 1, "classic", "fan", ""), now=0)
    many = tuple((Message("fan", "", b"m%d" % n), False) for n in range(5))
    assert core.handle(c.PublishMany(1, 1, many), now=0).effects == [Confirm(1, 1, 5, True, True)]
    assert core.state.topology.queues["classic"].message_count == 5
    assert _stream(core, "s0")[0] == 5
