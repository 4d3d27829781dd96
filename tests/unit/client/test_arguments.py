"""Arguments the broker's codec would refuse with 502 — closing the whole connection — are
refused by the client before anything is sent, naming the argument (``channel.py`` rule 8,
``publish.py`` rule 4); the connection keeps working."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from minibroker.client import Channel
from minibroker.errors import ClientError, FrameSyntaxError
from minibroker.message import Properties
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec
from tests.unit.client.conftest import Run
from tests.unit.client.link import linked

LONG = "q" * 256

CASES: list[tuple[str, Callable[[Channel], Awaitable[object]], str]] = [
    ("queue name", lambda ch: ch.declare_queue(LONG),
     "cannot send QueueDeclare: QueueDeclare.queue: longer than 255 bytes"),
    ("prefetch", lambda ch: ch.qos(70_000),
     r"cannot send Qos: Qos.prefetch_count: 70000 is not in 0..65535 \(the broker would close "
     r"the connection with 502\)"),
    ("binding argument", lambda ch: ch.bind_queue("q", "amq.direct", "k", {"x": 2**64 - 1}),
     "cannot send QueueBind: QueueBind.arguments"),
    ("routing key", lambda ch: ch.publish("", LONG, b"m"),
     "cannot publish: Publish.routing_key: longer than 255 bytes"),
    ("priority", lambda ch: ch.publish("", "q", b"m", priority=300),
     "cannot publish: Publish.priority: 300 is not in 0..255"),
    ("header", lambda ch: ch.publish("", "q", b"m", headers={"n": 2**63}),
     "cannot publish: Publish.headers"),
    ("string property", lambda ch: ch.publish("", "q", b"m", correlation_id=LONG),
     "cannot publish: Publish.correlation_id: longer than 255 bytes"),
]


@pytest.mark.parametrize(("call", "error"), [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_bad_argument_is_refused_locally_and_the_connection_lives(
    run: Run, call: Callable[[Channel], Awaitable[object]], error: str,
) -> None:
    async def scenario() -> None:
        async with linked() as (link, conn):
            ch = await conn.channel()
            with pytest.raises(ClientError, match=error) as caught:
                await call(ch)
            assert isinstance(caught.value.__cause__, FrameSyntaxError)
            q = await ch.declare_queue("", exclusive=True)  # the same channel still works
            await ch.publish("", q.name, b"ok")
            got = await ch.get(q.name, no_ack=True)
            assert got is not None and got.body == b"ok"
            assert len(link.server.sessions) == 1

    run(scenario)


def test_a_properties_object_found_sendable_is_not_checked_again(run: Run) -> None:
    """A publisher reusing one properties object pays for the check once (publish.py rule 4);
    checked or not, the broker gets the same."""

    async def scenario() -> None:
        async with linked() as (_, conn):
            ch = await conn.channel()
            q = await ch.declare_queue("", exclusive=True)
            persistent = Properties(delivery_mode=2)
            checks = 0
            original = conn.codec.check

            def counting(frame: f.Frame) -> None:
                nonlocal checks
                checks += 1
                original(frame)

            conn.codec.check = counting  # type: ignore[method-assign]
            for _ in range(3):
                await ch.publish("", q.name, b"m", properties=persistent)
            assert checks == 1
            assert (await ch.declare_queue(q.name, passive=True)).message_count == 3

    run(scenario)


def test_the_codec_check_is_the_receivers() -> None:
    codec = NativeCodec(role="client")
    codec.check(f.QueueDeclare(1, "q" * 255, False, False, False, False, {}))
    with pytest.raises(FrameSyntaxError, match=r"QueueDeclare\.queue: longer than 255 bytes"):
        codec.check(f.QueueDeclare(1, "q" * 256, False, False, False, False, {}))
    with pytest.raises(FrameSyntaxError, match="text that is not UTF-8"):
        codec.check(f.QueueDeclare(1, "q\udcff", False, False, False, False, {}))
    # The body is not looked at, however large.
    codec.check(f.Publish(1, "", "q", False, Properties(), b"x" * 10_000_000))
