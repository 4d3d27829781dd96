"""Shared helpers for the storage tests: a store on the simulated disk, driven by hand."""

from __future__ import annotations

from typing import Any

from minibroker.message import Message, Properties
from minibroker.storage import DurableStore
from minibroker.storage.simdisk import SimDisk

DATA = "/data"
PERSISTENT = Properties(delivery_mode=2)


def open_store(disk: SimDisk, **options: Any) -> DurableStore:
    """A store on ``disk`` whose worker runs only when the test says so."""
    disk.makedirs(DATA)
    return DurableStore(DATA, fs=disk, threaded=False, **options)


def settle_down(store: DurableStore) -> None:
    """Flush, then let the worker finish everything (syncs and reclaim jobs)."""
    store.flush()
    while store.run_worker():
        pass


def message(body: bytes | str, routing_key: str = "q", **properties: Any) -> Message:
    if isinstance(body, str):
        body = body.encode()
    props = Properties(delivery_mode=2, **properties) if properties else PERSISTENT
    return Message("", routing_key, body, props)


def bodies(store: DurableStore, queue: str = "q", vhost: str = "/") -> list[bytes]:
    return [m.message.body for m in store.recovered.queues[(vhost, queue)].messages]
