"""One flush of many kinds of change (``persistence/sync.py``): what a loop iteration did to
durable state — publishes, acks and requeues of one queue interleaved, exchanges declared and
deleted, bindings made and removed — is written in order, and a restart recovers exactly the
end state."""

from __future__ import annotations

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import GetOk
from minibroker.core.journal import Journal
from minibroker.message import Message, Properties
from minibroker.persistence.sync import StorageSync
from minibroker.storage import BindingDefinition, DurableStore, ExchangeDefinition
from minibroker.storage.simdisk import SimDisk

from .helpers import DATA, bodies, settle_down

PERSISTENT = Properties(delivery_mode=2)


def test_one_flush_of_interleaved_changes_recovers_the_end_state() -> None:
    disk = SimDisk()
    disk.makedirs(DATA)
    store = DurableStore(DATA, fs=disk, threaded=False)
    broker = Broker(journal=Journal())
    assert broker.journal is not None
    sync = StorageSync(store, broker.journal, lambda now: now)

    def handle(command: c.Command) -> object:
        return broker.handle(command, now=0.0).reply

    handle(c.OpenConnection(1))
    handle(c.OpenChannel(1, 1))
    handle(c.DeclareQueue(1, 1, "q", durable=True))
    for body in (b"1", b"2"):
        handle(c.Publish(1, 1, Message("", "q", body, PERSISTENT)))
    tags = []
    for _ in range(2):
        got = handle(c.Get(1, 1, "q", no_ack=False))
        assert isinstance(got, GetOk)
        tags.append(got.delivery_tag)
    # all of this is one loop iteration's work: one flush
    handle(c.Ack(1, 1, tags[0]))  # a settle, then a requeue of the same queue ...
    handle(c.Reject(1, 1, tags[1], requeue=True))
    handle(c.Publish(1, 1, Message("", "q", b"3", PERSISTENT)))  # ... then a publish
    again = handle(c.Get(1, 1, "q", no_ack=False))
    assert isinstance(again, GetOk) and again.message.body == b"2"
    handle(c.Reject(1, 1, again.delivery_tag, requeue=True))  # a requeue, then definitions
    handle(c.DeclareExchange(1, 1, "kept", "direct", durable=True))
    handle(c.DeclareExchange(1, 1, "gone", "fanout", durable=True))
    handle(c.BindQueue(1, 1, "q", "kept", "k"))
    handle(c.BindQueue(1, 1, "q", "kept", "unbound"))
    handle(c.UnbindQueue(1, 1, "q", "kept", "unbound"))
    handle(c.DeleteExchange(1, 1, "gone"))
    assert sync.pending()
    sync.flush()
    assert not sync.pending()
    settle_down(store)
    disk.process_crash()
    recovered = DurableStore(DATA, fs=disk, threaded=False)
    assert bodies(recovered) == [b"2", b"3"]  # 1 acked; 2 requeued (it keeps its place)
    assert recovered.recovered.definitions.exchanges == (
        ExchangeDefinition("kept", type="direct"),)
    assert recovered.recovered.definitions.bindings == (BindingDefinition("kept", "q",
                                                                          routing_key="k"),)
