"""A run of deliveries (``core/effects.py`` rule 5) encodes to exactly the bytes of its single
deliveries encoded one by one: native (``codec.py`` rule 12, parts and non-UTF-8 text
included) and AMQP (``amqp091/mapping.py`` rule 4, bodies split at frame-max included)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from minibroker.core.effects import Deliver, DeliverRun
from minibroker.message import EMPTY_PROPERTIES, Message, Properties
from minibroker.protocols.amqp091.mapping import deliver_bytes, deliver_run_bytes, effect_bytes
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import MIN_FRAME_SIZE, NativeCodec
from tests.property.test_native_codec_property import properties

#: Text as AMQP may hand it on: surrogate-escaped octets that are not UTF-8 (codec rule 7).
_texts = st.sampled_from(["", "q", "amq.direct", "caf\udce9", "r\u00e9sum\u00e9"])
_messages = st.builds(
    Message,
    exchange=_texts,
    routing_key=_texts,
    # Up to three 4 KiB frames, so the smallest frame size splits some into parts (the large
    # ones a short pattern repeated: drawing every byte overran hypothesis's entropy budget).
    body=st.binary(max_size=64) | st.builds(
        lambda pattern, size: (pattern * size)[:size],
        st.binary(min_size=1, max_size=8), st.integers(4000, 12000)),
    properties=st.just(EMPTY_PROPERTIES) | properties,
)


@st.composite
def runs(draw: st.DrawFn) -> DeliverRun:
    messages = draw(st.lists(_messages, min_size=1, max_size=5))
    first = draw(st.integers(1, 2**63))
    tags = range(first, first + len(messages))
    redelivered = draw(st.lists(st.sampled_from(tags), unique=True).map(sorted))
    return DeliverRun(7, draw(st.integers(1, 2047)), draw(st.sampled_from(["c", "amq.ctag-x"])),
                      first, tuple(messages), frozenset(redelivered))


@given(runs(), st.sampled_from([MIN_FRAME_SIZE, 8192, 131072]))
def test_a_native_run_is_the_bytes_of_its_deliveries(run: DeliverRun, max_frame_size: int) -> None:
    codec = NativeCodec(role="server", max_frame_size=max_frame_size)
    singles = b"".join(
        codec.send_deliver(d.channel, d.consumer_tag, d.delivery_tag, d.redelivered,
                           d.message.exchange, d.message.routing_key, d.message.properties,
                           d.message.body)
        for d in run.deliveries()
    )
    assert codec.send_deliver_run(run.channel, run.consumer_tag, run.first_tag, run.messages,
                                  run.redelivered) == singles
    # ... and a client reads them back as the deliveries, in order, whole.
    client = NativeCodec(role="client", max_frame_size=max_frame_size)
    client.receive_data(singles)
    assert client.frames() == [
        f.Deliver(d.channel, d.consumer_tag, d.delivery_tag, d.redelivered,
                  d.message.exchange, d.message.routing_key,
                  d.message.properties, d.message.body)
        for d in run.deliveries()
    ]


@given(runs(), st.sampled_from([MIN_FRAME_SIZE, 8192, 131072, 0]))
def test_an_amqp_run_is_the_octets_of_its_deliveries(run: DeliverRun, frame_max: int) -> None:
    singles = b"".join(deliver_bytes(d, frame_max) for d in run.deliveries())
    assert deliver_run_bytes(run, frame_max) == singles
    assert effect_bytes(run, frame_max, True) == singles


def test_deliveries_are_the_run_spelled_out() -> None:
    m1, m2 = Message("", "q", b"1"), Message("x", "k", b"2", Properties(priority=1))
    run = DeliverRun(3, 4, "c", 10, (m1, m2), frozenset({11}))
    assert run.deliveries() == [Deliver(3, 4, "c", 10, False, m1), Deliver(3, 4, "c", 11, True, m2)]
