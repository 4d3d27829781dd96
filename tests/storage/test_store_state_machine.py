"""Property: whatever happens and wherever the power goes, the store keeps its promises.

A hypothesis ``RuleBasedStateMachine`` drives one store on the simulated disk (small segments,
so rotation, deletion and compaction happen often) with declare/delete queue, publish, settle,
requeue, flush, worker rounds, reclaim, clean restarts, ``kill -9`` and power cuts that keep a
random prefix of each file's unsynced bytes, sometimes with a garbled byte inside it (a hole
followed by good records). A model follows every intent with the sequence number the store
gave it.

Rules (checked at every restart; F = highest seq flushed, D = highest seq reported durable):

1. Recovery never raises, whatever the crash left.
2. After a ``kill -9`` the recovered state is exactly the replay of what was flushed: every
   message published up to F and not settled up to F, in ``msg_id`` order, once.
3. After a power cut: every message published up to D in a queue declared up to D, and neither
   settled nor deleted up to F, is recovered exactly once, in order. No message settled up to
   D (or whose queue was deleted up to D) comes back. No message that was never flushed
   appears. Messages in between may go either way (at-least-once for unsynced acks).
4. A recovered queue is one of its name's incarnations, holding only that incarnation's
   messages: a deleted queue's messages never leak into a new queue of the same name.
5. After a crash every recovered message is redelivered; after a clean stop only the requeued
   ones, with their delivery counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from minibroker.storage import DurableStore, QueueDefinition, QueueLog, RecoveredQueue
from minibroker.storage.simdisk import SimDisk

from .helpers import message, open_store, settle_down

NAMES = ("a", "b")
NEVER = 1 << 62  # the seq of an intent that did not happen
#: Small segments and eager compaction: rotation, deletion and compaction all happen often.
OPTIONS = {"segment_size": 1000, "garbage": 0.3}


@dataclass(eq=False)
class Msg:
    msg_id: int
    published: int  # seq
    settled: int = NEVER
    requeued: int = 0  # delivery count of the last requeue (0: never requeued)


@dataclass
class Incarnation:
    name: str
    number: int  # the store's incarnation
    declared: int  # seq
    deleted: int = NEVER
    messages: dict[int, Msg] = field(default_factory=dict)
    next_id: int = 1

    def body(self, msg_id: int) -> bytes:
        return f"{self.name}/{self.number}/{msg_id}".encode()


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.disk = SimDisk()
        self.store = open_store(self.disk, **OPTIONS)
        self.incarnations: list[Incarnation] = []
        self.current: dict[str, Incarnation] = {}
        self.handles: dict[str, QueueLog] = {}
        self.flushed = 0

    # -- intents --------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES))
    def declare(self, name: str) -> None:
        if name in self.current:
            return
        handle = self.store.declare_queue(QueueDefinition(name))
        incarnation = Incarnation(name, handle.incarnation, handle.incarnation)
        self.incarnations.append(incarnation)
        self.current[name] = incarnation
        self.handles[name] = handle

    @rule(name=st.sampled_from(NAMES))
    def delete(self, name: str) -> None:
        if name not in self.current:
            return
        self.current.pop(name).deleted = self.store.delete_queue("/", name)
        del self.handles[name]

    @rule(name=st.sampled_from(NAMES), count=st.integers(1, 4), ttl=st.booleans())
    def publish(self, name: str, count: int, ttl: bool) -> None:
        incarnation = self.current.get(name)
        if incarnation is None:
            return
        for _ in range(count):
            msg_id = incarnation.next_id
            incarnation.next_id += 1
            seq = self.handles[name].publish(msg_id, message(incarnation.body(msg_id)),
                                             expires_at=1e9 + msg_id if ttl else None)
            incarnation.messages[msg_id] = Msg(msg_id, seq)

    @rule(name=st.sampled_from(NAMES), count=st.integers(2, 6))
    def burst(self, name: str, count: int) -> None:
        """Publishes flushed one by one: several unsynced records in a row, so that a power
        cut can leave a hole followed by good records."""
        for _ in range(count):
            self.publish(name, 1, False)
            self.flush()

    def _live(self, name: str) -> list[Msg]:
        incarnation = self.current.get(name)
        if incarnation is None:
            return []
        return [m for m in incarnation.messages.values() if m.settled == NEVER]

    @rule(name=st.sampled_from(NAMES), data=st.data())
    def settle(self, name: str, data: st.DataObject) -> None:
        live = self._live(name)
        if not live:
            return
        chosen = data.draw(st.lists(st.sampled_from(live), min_size=1, max_size=5, unique=True))
        seq = self.handles[name].settle(m.msg_id for m in chosen)
        for m in chosen:
            m.settled = seq

    @rule(name=st.sampled_from(NAMES), data=st.data())
    def requeue(self, name: str, data: st.DataObject) -> None:
        live = self._live(name)
        if not live:
            return
        chosen = data.draw(st.lists(st.sampled_from(live), min_size=1, max_size=3, unique=True))
        for m in chosen:
            m.requeued += 1
        self.handles[name].requeue((m.msg_id, m.requeued) for m in chosen)

    # -- the loop and the worker ----------------------------------------------------------

    @rule()
    def flush(self) -> None:
        self.store.flush()
        self.flushed = self.store.last_seq

    @rule()
    def worker_round(self) -> None:
        self.store.run_worker()

    @rule()
    def maintain(self) -> None:
        self.store.maintain()
        self.flushed = self.store.last_seq

    @rule()
    def sync(self) -> None:
        settle_down(self.store)
        self.flushed = self.store.last_seq

    # -- stops ----------------------------------------------------------------------------

    @rule()
    def clean_restart(self) -> None:
        self.store.close()
        self.flushed = self.store.last_seq
        expected = self._replay(self.flushed)
        self._reopen()
        self._check_exact(expected, clean=True)

    @rule()
    def kill(self) -> None:
        expected = self._replay(self.flushed)
        self.disk.process_crash()
        self._reopen()
        self._check_exact(expected, clean=False)

    @rule(data=st.data(), kept=st.sampled_from(["none", "all", "some"]),
          damage=st.booleans())
    def power_cut(self, data: st.DataObject, kept: str, damage: bool) -> None:
        durable = self.store.durable_seq

        def keep(path: str, unsynced: int) -> int:
            if kept == "some":
                return data.draw(st.integers(0, unsynced))
            return unsynced if kept == "all" else 0

        def garble(path: str, kept: int) -> int | None:
            return data.draw(st.integers(0, kept - 1)) if damage else None

        self.disk.power_cut(keep, garble=garble)
        self._reopen()
        self._check_power_cut(durable)

    def _reopen(self) -> None:
        self.store = open_store(self.disk, **OPTIONS)  # rule 1: never raises

    # -- checks ---------------------------------------------------------------------------

    def _replay(self, upto: int) -> dict[str, tuple[Incarnation, list[Msg]]]:
        """Rule 2: the queues and messages a replay of the records up to ``upto`` gives."""
        expected = {}
        for inc in self.incarnations:
            if inc.declared <= upto < inc.deleted:
                expected[inc.name] = (inc, [m for m in inc.messages.values()
                                            if m.published <= upto < m.settled])
        return expected

    def _check_exact(self, expected: dict[str, tuple[Incarnation, list[Msg]]], *, clean: bool
                     ) -> None:
        recovered = self.store.recovered.queues
        assert sorted(name for _vhost, name in recovered) == sorted(expected)
        for name, (inc, messages) in expected.items():
            queue = recovered[("/", name)]
            assert queue.incarnation == inc.number
            assert [m.msg_id for m in queue.messages] == [m.msg_id for m in messages]
            for got, want in zip(queue.messages, messages, strict=True):
                assert got.message.body == inc.body(want.msg_id)
                assert got.redelivered == (not clean or want.requeued > 0)
                if clean:
                    assert got.delivery_count == want.requeued
        self._adopt()

    def _check_power_cut(self, durable: int) -> None:
        recovered = self.store.recovered.queues
        for inc in self.incarnations:
            queue = recovered.get(("/", inc.name))
            present = queue is not None and queue.incarnation == inc.number
            if inc.declared <= durable and inc.deleted > self.flushed:
                assert present, f"durable queue {inc.name}/{inc.number} lost"
            if inc.deleted <= durable:
                assert not present, f"deleted queue {inc.name}/{inc.number} came back"
            if not present:
                continue
            assert queue is not None
            got = [m.msg_id for m in queue.messages]
            assert got == sorted(set(got)), "out of order or duplicated"
            for m in queue.messages:
                want = inc.messages.get(m.msg_id)
                assert want is not None and m.message.body == inc.body(m.msg_id)  # rule 4
                assert want.published <= self.flushed, "a message never flushed appeared"
                assert want.settled > durable, "a durably settled message came back"
                assert m.redelivered
            for want in inc.messages.values():
                if want.published <= durable and want.settled > self.flushed and \
                        inc.deleted > self.flushed:
                    assert want.msg_id in got, f"confirmed message {want.msg_id} lost"
        for (_vhost, name), queue in recovered.items():
            assert any(i.name == name and i.number == queue.incarnation
                       for i in self.incarnations), f"unknown incarnation of {name}"
        self._adopt()

    def _adopt(self) -> None:
        """After a restart the recovered state is the truth: follow it from here."""
        self.incarnations = []
        self.current = {}
        self.handles = {}
        for (_vhost, name), queue in self.store.recovered.queues.items():
            inc = self._adopted(queue)
            self.incarnations.append(inc)
            self.current[name] = inc
            handle = self.store.queue("/", name)
            assert handle is not None and handle.incarnation == queue.incarnation
            self.handles[name] = handle
        self.flushed = self.store.last_seq

    @staticmethod
    def _adopted(queue: RecoveredQueue) -> Incarnation:
        inc = Incarnation(queue.definition.name, queue.incarnation, 0,
                          next_id=queue.next_msg_id)
        for m in queue.messages:
            inc.messages[m.msg_id] = Msg(m.msg_id, 0, requeued=m.delivery_count)
        return inc

    @invariant()
    def durable_never_passes_what_was_given_out(self) -> None:
        assert self.store.durable_seq <= self.store.last_seq

    def teardown(self) -> None:
        store: DurableStore = self.store
        store.abandon()


TestStore = StoreMachine.TestCase
TestStore.settings = settings(stateful_step_count=60)
