"""Property: a queue's ready order, msg_ids and delivery counts survive every store verb.

A hypothesis ``RuleBasedStateMachine`` drives one core :class:`~minibroker.core.queues.Queue`
directly — enqueue, checkout, ack, reject, requeue (any subset, any order), purge, restore
(recovered messages older than every new one), a switch to the feature store and back — while
a model keeps the list of ready messages as (msg_id, body, delivery count, redelivered).

Rules (checked after every step):

1. ``Queue.entries()`` lists exactly the model's ready messages, in msg_id order (the queue has
   no priorities), each with its msg_id, delivery count and redelivered flag: a plain store
   keeps never-delivered messages bare (``stores.py`` rule 7), and that must not show.
2. Each checkout hands out the head, its delivery count one higher than before; its msg_id is
   the one it was enqueued under.
3. The ready count, the store's weight and the broker meter agree with the model.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from minibroker.core.features import FeatureStore
from minibroker.core.flow import MESSAGE_OVERHEAD, ReadyMeter
from minibroker.core.queues import Queue
from minibroker.core.stores import FifoStore, QueueEntry
from minibroker.message import Message

Model = tuple[int, bytes, int, bool]  # msg_id, body, delivery count, redelivered


class QueueStoreMachine(RuleBasedStateMachine):
    @initialize(first_id=st.sampled_from([1, 1000]))
    def start(self, first_id: int) -> None:
        self.meter = ReadyMeter()
        self.queue = Queue("q", meter=self.meter)
        # Like a recovered queue: ids below ``first_id`` can still come back by restore.
        self.queue.next_msg_id = first_id
        self.restorable = list(range(1, first_id))
        self.ready: list[Model] = []
        self.out: dict[int, tuple[QueueEntry, Model]] = {}
        self.bodies = 0

    def _body(self) -> bytes:
        self.bodies += 1
        return b"m%d" % self.bodies

    @rule(count=st.integers(1, 4))
    def enqueue(self, count: int) -> None:
        for _ in range(count):
            msg_id = self.queue.next_msg_id
            body = self._body()
            self.queue.enqueue(Message("", "q", body))
            self.ready.append((msg_id, body, 0, False))

    @rule(count=st.integers(1, 3))
    def checkout(self, count: int) -> None:
        for _ in range(count):
            entry = self.queue.checkout()
            if not self.ready:
                assert entry is None
                return
            assert entry is not None
            msg_id, body, deliveries, redelivered = self.ready.pop(0)
            assert (entry.msg_id, entry.message.body) == (msg_id, body)
            assert (entry.delivery_count, entry.redelivered) == (deliveries + 1, redelivered)
            self.out[msg_id] = (entry, (msg_id, body, deliveries + 1, redelivered))

    @precondition(lambda self: self.out)
    @rule(data=st.data(), how=st.sampled_from(["ack", "reject", "requeue"]))
    def settle(self, data: st.DataObject, how: str) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.out)), min_size=1, unique=True))
        taken = [self.out.pop(msg_id) for msg_id in ids]
        if how == "ack":
            for entry, _ in taken:
                self.queue.settle(entry)
        elif how == "reject":
            for entry, _ in taken:
                self.queue.discard(entry)
        else:
            self.queue.requeue(entry for entry, _ in taken)
            self.ready = sorted(self.ready + [(i, b, n, True) for _, (i, b, n, _r) in taken])

    @rule()
    def purge(self) -> None:
        assert self.queue.purge() == len(self.ready)
        self.ready = []

    @precondition(lambda self: self.restorable)
    @rule(count=st.integers(1, 3))
    def restore(self, count: int) -> None:
        """A chunk of recovered messages: newer than those restored before, older than every
        message enqueued since the queue was (re)created."""
        ids, self.restorable = self.restorable[:count], self.restorable[count:]
        batch = []
        for msg_id in ids:
            entry = QueueEntry(msg_id, Message("", "q", self._body()))
            entry.delivery_count = msg_id % 3
            entry.redelivered = msg_id % 2 == 1
            batch.append(entry)
        self.queue.restore(batch)
        self.ready = sorted(self.ready + [
            (e.msg_id, e.message.body, e.delivery_count, e.redelivered) for e in batch])

    @rule()
    def switch_store(self) -> None:
        """Plain -> features (as for a message with an ``expiration``) and back."""
        queue, store = self.queue, self.queue.store
        if queue.features is None:
            queue.use_store(FeatureStore(queue, store.meter, queue.limits, store.ready,
                                         store.weight))
        else:
            queue.use_store(FifoStore(queue, store.meter, store.ready, store.weight))

    @invariant()
    def ready_matches_the_model(self) -> None:
        if not hasattr(self, "queue"):
            return
        found = [(e.msg_id, e.message.body, e.delivery_count, e.redelivered)
                 for e in self.queue.entries()]
        assert found == self.ready
        assert self.queue.message_count == len(self.ready)
        weight = sum(len(body) + MESSAGE_OVERHEAD for _, body, _, _ in self.ready)
        assert self.queue.store.weight == self.meter.weight == weight


TestQueueStore = QueueStoreMachine.TestCase
