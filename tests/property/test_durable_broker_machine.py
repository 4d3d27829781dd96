"""The broker core and its store together on the simulated disk, crashed at any point.

A hypothesis state machine drives a ``Broker`` with a journal through the commands a client
sends (declare, delete, publish persistent with confirms, get, ack, requeue, purge) and the
shell's steps (``StorageSync.flush`` at the end of a loop iteration, a round of the store's
worker that reports "durable", ``Synced`` back into the core), and crashes it at any point:
``kill -9`` (what was flushed stays), a power cut (only what was synced stays, plus any prefix
of the rest, perhaps torn), or a clean restart. After each it recovers a new core from the
directory, as the server does, and checks:

- every message whose confirm the publisher received and that was not acked comes back,
  exactly once, and each queue keeps publish order;
- after ``kill -9`` no message acked before the last flush comes back (acks are written in the
  loop iteration that processed them);
- nothing that was never published appears; recovery never raises, whatever the tail.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import Confirm, Effect, GetOk
from minibroker.core.journal import Journal
from minibroker.message import Message, Properties
from minibroker.persistence.recovery import MessageLoader, restore_definitions
from minibroker.persistence.sync import StorageSync
from minibroker.storage import DurableStore
from minibroker.storage.simdisk import SimDisk

DATA = "/data"
QUEUES = ("a", "b")
PERSISTENT = Properties(delivery_mode=2)
PUBLISHER, CONSUMER = 1, 2


class DurableBroker(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.disk = SimDisk()
        self.disk.makedirs(DATA)
        self.counter = 0
        #: queue -> bodies the model says are in it, in publish order.
        self.present: dict[str, list[int]] = {}
        #: Bodies whose confirm arrived (or that survived a recovery) and are not acked.
        self.confirmed: set[int] = set()
        #: Bodies acked, and those whose ack was flushed since.
        self.acked: set[int] = set()
        self.acked_flushed: set[int] = set()
        self._open()

    # -- the shell's side ----------------------------------------------------------------------

    def _open(self) -> None:
        self.durable_reports: list[int] = []
        self.store = DurableStore(DATA, fs=self.disk, threaded=False, segment_size=2000,
                                  garbage=0.3, on_durable=self.durable_reports.append)
        self.broker = Broker(journal=Journal())
        recovered = self.store.recovered
        ids = {name: q.next_msg_id for (_, name), q in recovered.queues.items()}
        assert restore_definitions(self.broker, recovered.definitions, now=0.0,
                                   next_msg_ids=ids) == []
        loader = MessageLoader(self.broker, recovered, lambda: 0.0)
        while not loader.done:
            loader.step(0.0, chunk=3)
        journal = self.broker.journal
        assert journal is not None
        self.sync = StorageSync(self.store, journal, lambda now: now)
        self.handle(c.OpenConnection(1))
        self.handle(c.OpenChannel(1, PUBLISHER))
        self.handle(c.ConfirmSelect(1, PUBLISHER))
        self.handle(c.OpenChannel(1, CONSUMER))
        self.tags: dict[int, int] = {}  # publish seq -> body
        self.next_seq = 1
        self.unacked: dict[int, int] = {}  # delivery tag -> body

    def handle(self, command: c.Command) -> Any:
        outcome = self.broker.handle(command, now=0.0)
        self._confirms(outcome.effects)
        return outcome.reply

    def reply(self, command: c.Command) -> Any:
        """A command with a reply: as the server does, what it changed is written before the
        reply leaves (``server/durability.py`` rule 2)."""
        reply = self.handle(command)
        self.flush()
        return reply

    def _confirms(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Confirm):
                assert effect.ack
                done = [seq for seq in self.tags if seq <= effect.delivery_tag
                        ] if effect.multiple else [effect.delivery_tag]
                for seq in done:
                    body = self.tags.pop(seq)
                    if body not in self.acked:
                        self.confirmed.add(body)

    # -- client commands -----------------------------------------------------------------------

    @rule(name=st.sampled_from(QUEUES))
    def declare(self, name: str) -> None:
        self.reply(c.DeclareQueue(1, CONSUMER, name, False, True, False, False, None))
        self.present.setdefault(name, [])

    @precondition(lambda self: self.present)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.present)))
        self.reply(c.DeleteQueue(1, CONSUMER, name, False, False))
        gone = set(self.present.pop(name))
        self.confirmed -= gone
        self.unacked = {t: b for t, b in self.unacked.items() if b not in gone}
        self.tags = {s: b for s, b in self.tags.items() if b not in gone}

    @precondition(lambda self: self.present)
    @rule(data=st.data(), count=st.integers(1, 4))
    def publish(self, data: st.DataObject, count: int) -> None:
        name = data.draw(st.sampled_from(sorted(self.present)))
        messages = []
        for _ in range(count):
            self.counter += 1
            messages.append((Message("", name, b"%d" % self.counter, PERSISTENT), False))
            self.tags[self.next_seq] = self.counter
            self.next_seq += 1
            self.present[name].append(self.counter)
        if count == 1:
            self.handle(c.Publish(1, PUBLISHER, messages[0][0], False))
        else:
            self.handle(c.PublishMany(1, PUBLISHER, tuple(messages)))

    @precondition(lambda self: self.present)
    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.present)))
        reply = self.reply(c.Get(1, CONSUMER, name, False))
        if isinstance(reply, GetOk):
            self.unacked[reply.delivery_tag] = int(reply.message.body)

    @precondition(lambda self: self.unacked)
    @rule(data=st.data(), requeue=st.booleans())
    def settle(self, data: st.DataObject, requeue: bool) -> None:
        tag = data.draw(st.sampled_from(sorted(self.unacked)))
        body = self.unacked.pop(tag)
        if requeue:
            self.handle(c.Nack(1, CONSUMER, tag, False, True))
            return
        self.handle(c.Ack(1, CONSUMER, tag, False))
        self.acked.add(body)
        self.confirmed.discard(body)
        for bodies in self.present.values():
            if body in bodies:
                bodies.remove(body)

    @precondition(lambda self: self.present)
    @rule(data=st.data())
    def purge(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.present)))
        self.reply(c.PurgeQueue(1, CONSUMER, name))
        out = set(self.unacked.values())
        purged = {body for body in self.present[name] if body not in out}
        self.present[name] = [body for body in self.present[name] if body in out]
        self.acked |= purged
        self.confirmed -= purged
        self.tags = {s: b for s, b in self.tags.items() if b not in purged}

    # -- the shell's steps ---------------------------------------------------------------------

    @rule()
    def end_of_iteration(self) -> None:
        self.flush()

    def flush(self) -> None:
        self.sync.flush()
        self.acked_flushed |= self.acked
        self._report(self.store.durable_seq)

    @rule()
    def worker_round(self) -> None:
        self.store.run_worker()
        for seq in self.durable_reports:
            self._report(seq)
        self.durable_reports.clear()

    @rule()
    def maintain(self) -> None:
        self.store.maintain()  # the store's own flush: the core's journal is not drained

    def _report(self, seq: int) -> None:
        upto = self.sync.durable(seq)
        if upto:
            self._confirms(self.broker.handle(c.Synced(upto), now=0.0).effects)

    # -- stops ---------------------------------------------------------------------------------

    @rule()
    def kill(self) -> None:
        self.store.abandon()
        self.disk.process_crash()
        self._recover(after_kill=True)

    @rule(keep=st.sampled_from(["none", "all", "some"]), seed=st.integers(0, 1 << 16),
          flip=st.booleans())
    def power_cut(self, keep: str, seed: int, flip: bool) -> None:
        self.store.abandon()

        def kept(path: str, unsynced: int) -> int:
            if keep == "all":
                return unsynced
            return 0 if keep == "none" else (seed * 7919 + len(path)) % (unsynced + 1)

        self.disk.power_cut(kept, flip=flip)
        self._recover(after_kill=False)

    @rule()
    def clean_restart(self) -> None:
        self.sync.flush()
        self.acked_flushed |= self.acked
        self.store.close()
        self._recover(after_kill=True)

    def _recover(self, *, after_kill: bool) -> None:
        self._open()  # must never raise, whatever the tail
        published = {body for bodies in self.present.values() for body in bodies} | self.acked
        for name in QUEUES:
            queue = self.broker.topology.queues.get(name)
            found = [] if queue is None else [int(e.message.body) for e in queue.entries()]
            assert len(found) == len(set(found)), f"duplicates in {name}: {found}"
            assert found == sorted(found), f"{name} out of order: {found}"
            expected = [body for body in self.present.get(name, []) if body in self.confirmed]
            assert set(expected) <= set(found), (
                f"{name} lost confirmed messages {sorted(set(expected) - set(found))}")
            assert set(found) <= published, f"{name} has messages never published"
            if after_kill:
                back = set(found) & self.acked_flushed
                assert not back, f"acked messages came back after kill -9: {sorted(back)}"
            # What came back is on disk (recovery syncs it): it must survive from now on.
            if queue is None:
                self.present.pop(name, None)
            else:
                self.present[name] = found
        survivors = {body for bodies in self.present.values() for body in bodies}
        self.confirmed = survivors
        self.acked -= survivors
        self.acked_flushed -= survivors


TestDurableBroker = DurableBroker.TestCase
TestDurableBroker.settings = settings(stateful_step_count=50, deadline=None)
