"""Per-queue credit flow (``server/credit.py``) against any sequence of publishes, deliveries,
consumers coming and going, deletions and lost connections: who is paused is always exactly
who fed a queue that still lags, no consumer that acks is ever paused, and once every queue
drained nobody is.

The queues and sessions are stand-ins with just what :class:`CreditFlow` reads; the stores'
one rule (an append past the mark lists the queue in ``long_queues``) is done by ``publish``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from minibroker.core.flow import ReadyMeter
from minibroker.server.credit import CreditFlow

CREDIT = 4
QUEUES = 2
SESSIONS = 3


class FakeQueue:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ready: deque[int] = deque()
        self.published = 0
        self.consumers: list[int] = []
        self.deleted = False


class FakeSession:
    def __init__(self, number: int) -> None:
        self.id = number
        self.peer = f"peer{number}"
        self.protocol_name = "native"
        self.closed = False
        self.holds: set[str] = set()
        #: Has a consumer that acknowledges.
        self.consumes = False

    def hold_reading(self, reason: str) -> None:
        self.holds.add(reason)

    def release_reading(self, reason: str) -> None:
        self.holds.discard(reason)


Op = tuple[str, int, int]
#: Publishes weigh most, so queues lag often; every queue starts with a consumer.
KINDS = ["publish"] * 6 + ["deliver"] * 2 + ["consume", "cancel", "delete", "lose", "acker"]
ops = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, SESSIONS - 1),
                         st.integers(0, QUEUES - 1)), max_size=60).map(
    lambda steps: [("consume", 0, q) for q in range(QUEUES)] + steps)


def run(steps: list[Op]) -> tuple[CreditFlow, list[FakeQueue], list[FakeSession]]:
    meter = ReadyMeter()
    sessions = [FakeSession(i) for i in range(SESSIONS)]
    queues = [FakeQueue(f"q{i}") for i in range(QUEUES)]
    flow = CreditFlow(meter, CREDIT, 10 * CREDIT, 8 * CREDIT,
                      lambda session: cast(Any, session).consumes)
    meter.queue_high_water = flow.mark
    fed: dict[FakeSession, set[FakeQueue]] = {s: set() for s in sessions}
    for kind, s, q in steps:
        session, queue = sessions[s], queues[q]
        publisher = None
        if kind == "publish" and not session.closed and not queue.deleted:
            # A paused session sends nothing we read; its bytes wait in its socket.
            if "credit" in session.holds:
                continue
            for _ in range(3):
                queue.ready.append(0)
                queue.published += 1
                if len(queue.ready) > meter.queue_high_water:
                    meter.long_queues.add(cast(Any, queue))
            publisher = session
            fed[session].add(queue)
        elif kind == "deliver" and queue.consumers:
            for _ in range(min(4, len(queue.ready))):
                queue.ready.popleft()
        elif kind == "consume" and not queue.deleted:
            queue.consumers.append(s)
        elif kind == "cancel" and queue.consumers:
            queue.consumers.pop()
        elif kind == "delete":
            queue.deleted = True
            queue.ready.clear()
            queue.consumers.clear()
        elif kind == "lose" and not session.closed:
            session.closed = True
            flow.forget(cast(Any, session))
        elif kind == "acker":
            session.consumes = True
        if meter.long_queues:
            flow.watch(cast(Any, publisher))
        check(flow, sessions, fed)
    return flow, queues, sessions


def check(flow: CreditFlow, sessions: list[FakeSession],
          fed: dict[FakeSession, set[FakeQueue]]) -> None:
    paused = cast(dict[Any, set[Any]], flow.paused)
    lagging = cast(dict[Any, set[Any]], flow.lagging)
    for session in sessions:
        waits = paused.get(session)
        assert ("credit" in session.holds) == bool(waits) or session.closed
        if waits:
            assert not session.closed
            assert waits <= fed[session]  # it fed every queue it waits for
            for queue in waits:
                assert session in lagging[queue]
                assert queue.consumers and not queue.deleted
                assert len(queue.ready) > flow.low
    for queue, waiting in lagging.items():
        for session in waiting:
            assert queue in paused[session]


@given(ops)
def test_who_is_paused_is_who_fed_a_queue_that_still_lags(steps: list[Op]) -> None:
    run(steps)


@given(ops)
def test_once_every_queue_drained_nobody_is_paused(steps: list[Op]) -> None:
    flow, queues, sessions = run(steps)
    for queue in queues:
        queue.ready.clear()
    flow.watch(None)
    assert not flow.paused and not flow.lagging
    assert not any("credit" in session.holds for session in sessions if not session.closed)
    assert not flow.meter.long_queues  # every queue at the floor leaves the list


@given(ops)
def test_a_consumer_that_acks_is_never_paused(steps: list[Op]) -> None:
    flow, _, sessions = run([("acker", 0, 0), *steps])
    assert "credit" not in sessions[0].holds and cast(Any, sessions[0]) not in flow.paused
