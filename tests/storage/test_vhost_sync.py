"""Two vhosts' cores on one store (``persistence/sync.py`` rule 7): each keeps its confirms
until its own records are on disk, and a power cut gives each vhost back exactly its own
confirmed messages, though both have a durable queue of the same name."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import Confirm, Effect
from minibroker.core.journal import Journal
from minibroker.message import Message, Properties
from minibroker.persistence.recovery import MessageLoader, restore_definitions
from minibroker.persistence.sync import StorageSync
from minibroker.storage import DurableStore
from minibroker.storage.simdisk import SimDisk

DATA = "/data"
PERSISTENT = Properties(delivery_mode=2)


def _confirms(effects: list[Effect]) -> list[int]:
    return [e.delivery_tag for e in effects if isinstance(e, Confirm)]


def _core() -> Broker:
    core = Broker(journal=Journal())
    core.handle(c.OpenConnection(1), now=0.0)
    core.handle(c.OpenChannel(1, 1), now=0.0)
    core.handle(c.ConfirmSelect(1, 1), now=0.0)
    core.handle(c.DeclareQueue(1, 1, "q", False, True, False, False, None), now=0.0)
    return core


def _publish(core: Broker, body: bytes) -> list[int]:
    message = Message(exchange="", routing_key="q", body=body, properties=PERSISTENT)
    return _confirms(core.handle(c.Publish(1, 1, message), now=0.0).effects)


def _recover(disk: SimDisk) -> dict[str, list[bytes]]:
    store = DurableStore(DATA, fs=disk, threaded=False)
    recovered = store.recovered
    cores = {vhost: Broker(journal=Journal()) for vhost in ("/", "shop")}
    for vhost, core in cores.items():
        ids = {name: q.next_msg_id for (owner, name), q in recovered.queues.items()
               if owner == vhost}
        assert restore_definitions(core, recovered.definitions, now=0.0, next_msg_ids=ids,
                                   vhost=vhost) == []
    loader = MessageLoader(cores, recovered, lambda: 0.0)
    while not loader.done:
        loader.step(0.0, chunk=1)
    store.close()
    return {vhost: [] if "q" not in core.topology.queues else
            [bytes(e.message.body) for e in core.topology.queues["q"].entries()]
            for vhost, core in cores.items()}


def test_each_vhost_confirms_after_its_records_are_synced_and_gets_its_own_back() -> None:
    disk = SimDisk()
    disk.makedirs(DATA)
    reports: list[int] = []
    store = DurableStore(DATA, fs=disk, threaded=False, on_durable=reports.append)
    root, shop = _core(), _core()
    assert root.journal is not None and shop.journal is not None
    sync = StorageSync(store, root.journal, lambda now: now)
    sync.attach("shop", shop.journal)
    assert _publish(root, b"root-1") == [] and _publish(shop, b"shop-1") == []
    sync.flush()
    assert _publish(shop, b"shop-2") == []  # recorded, not flushed
    store.run_worker()
    released: dict[str, list[int]] = {"/": [], "shop": []}
    cores = {root.journal: ("/", root), shop.journal: ("shop", shop)}
    for seq in reports:
        for journal, upto in sync.durable_all(seq):
            vhost, core = cores[journal]
            released[vhost] += _confirms(core.handle(c.Synced(upto), now=0.0).effects)
    assert released == {"/": [1], "shop": [1]}  # shop-2 is not on disk: its confirm waits
    store.abandon()  # shop-2 never written
    disk.power_cut(lambda path, unsynced: 0)
    assert _recover(disk) == {"/": [b"root-1"], "shop": [b"shop-1"]}


def test_a_detached_vhost_writes_nothing_more() -> None:
    disk = SimDisk()
    disk.makedirs(DATA)
    store = DurableStore(DATA, fs=disk, threaded=False)
    root, shop = _core(), _core()
    assert root.journal is not None and shop.journal is not None
    sync = StorageSync(store, root.journal, lambda now: now)
    sync.attach("shop", shop.journal)
    sync.flush()  # the declarations
    _publish(shop, b"lost")
    sync.detach("shop")
    assert not sync.pending()
    sync.flush()
    store.close()
    recovered = DurableStore(DATA, fs=disk, threaded=False)
    assert not len(recovered.recovered.queues[("shop", "q")])
    recovered.close()


_STEPS = st.lists(st.one_of(
    st.tuples(st.just("publish"), st.sampled_from(["/", "shop"])),
    st.just(("flush",)), st.just(("worker",))), max_size=40)


@given(steps=_STEPS, keep=st.sampled_from(["none", "all", "some"]))
def test_interleaved_vhosts_keep_exactly_their_confirmed_messages(
        steps: list[tuple[str, ...]], keep: str) -> None:
    """Any interleaving of publishes in two vhosts, flushes and worker rounds, then a power
    cut: every confirmed message comes back in its own vhost, in order, and nothing else than
    what was published there."""
    disk = SimDisk()
    disk.makedirs(DATA)
    reports: list[int] = []
    store = DurableStore(DATA, fs=disk, threaded=False, on_durable=reports.append)
    cores = {"/": _core(), "shop": _core()}
    journals = {vhost: core.journal for vhost, core in cores.items()}
    assert journals["/"] is not None and journals["shop"] is not None
    sync = StorageSync(store, journals["/"], lambda now: now)
    sync.attach("shop", journals["shop"])
    published: dict[str, list[bytes]] = {"/": [], "shop": []}
    confirmed: dict[str, set[bytes]] = {"/": set(), "shop": set()}
    by_tag: dict[str, dict[int, bytes]] = {"/": {}, "shop": {}}
    vhost_of = {id(journal): vhost for vhost, journal in journals.items()}

    def released(vhost: str, tags: list[int]) -> None:
        for tag in tags:  # multiple acks: everything up to the tag
            for seq in [s for s in by_tag[vhost] if s <= tag]:
                confirmed[vhost].add(by_tag[vhost].pop(seq))

    for step in steps:
        if step[0] == "publish":
            vhost = step[1]
            body = f"{vhost}-{len(published[vhost])}".encode()
            published[vhost].append(body)
            by_tag[vhost][len(published[vhost])] = body
            released(vhost, _publish(cores[vhost], body))
        elif step[0] == "flush":
            sync.flush()
        else:
            store.run_worker()
            for seq in reports:
                for journal, upto in sync.durable_all(seq):
                    vhost = vhost_of[id(journal)]
                    released(vhost, _confirms(cores[vhost].handle(c.Synced(upto),
                                                                  now=0.0).effects))
            reports.clear()
    disk.power_cut(lambda path, unsynced: {"none": 0, "all": unsynced}.get(
        keep, unsynced // 2))
    back = _recover(disk)
    for vhost in ("/", "shop"):
        assert back[vhost] == [b for b in published[vhost] if b in back[vhost]]  # in order
        assert confirmed[vhost] <= set(back[vhost])
