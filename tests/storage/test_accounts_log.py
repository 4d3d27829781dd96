"""Run-time accounts in the definitions log (``persistence/accounts.py``): what the options make
is never stored, everything else is, changes and deletions included, topic permissions too."""

from __future__ import annotations

from minibroker.accounts import add_user, build_access
from minibroker.core.access import Permissions, TopicPermissions, VHost
from minibroker.core.tenants import VHostLimits
from minibroker.persistence.accounts import AccountsLog, configured_keys, restore_accounts
from minibroker.storage import DurableStore
from minibroker.storage.simdisk import SimDisk

DATA = "/data"
CONFIGURED = configured_keys(["guest"], [], {})


def _reopen(disk: SimDisk) -> DurableStore:
    return DurableStore(DATA, fs=disk, threaded=False)


def test_run_time_accounts_come_back_and_the_options_stay_configuration() -> None:
    disk = SimDisk()
    disk.makedirs(DATA)
    store = _reopen(disk)
    access = build_access(None)
    log = AccountsLog(store, CONFIGURED)
    access.put_vhost(VHost("shop", "the shop", limits=VHostLimits.from_definition(
        {"max-queues": 3})))
    add_user(access, "clerk", "pw", tags=("management",), vhosts=("shop",),
             permissions=Permissions("^c", ".*", ".*"))
    access.set_topic_permissions("clerk", "shop", TopicPermissions("amq.topic", "^a", "^b"))
    access.set_permissions("guest", "/", Permissions("", "", ""))  # an option's account
    access.put_user(access.users["guest"])
    assert log.record(access)
    assert not log.record(access)  # nothing changed since
    add_user(access, "temp", "pw")
    log.record(access)
    access.delete_user("temp")
    log.record(access)
    store.flush()
    store.close()

    store = _reopen(disk)
    fresh = build_access(None)
    assert restore_accounts(fresh, store.recovered.definitions, CONFIGURED) == []
    store.close()
    assert fresh.vhosts["shop"].description == "the shop"
    assert fresh.vhosts["shop"].limits == VHostLimits.from_definition({"max-queues": 3})
    assert fresh.users["clerk"].tags == frozenset({"management"})
    assert fresh.permissions("clerk", "shop") == Permissions("^c", ".*", ".*")
    assert dict(fresh.topic_permissions("clerk", "shop")) == {
        "amq.topic": TopicPermissions("amq.topic", "^a", "^b")}
    assert "temp" not in fresh.users
    assert fresh.permissions("guest", "/") == Permissions(".*", ".*", ".*")  # the options'
