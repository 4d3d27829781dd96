"""Users, vhosts and permissions created at run time, kept in the data directory.

RabbitMQ keeps its users, vhosts and permissions in its database: what ``rabbitmqctl`` or the
management API creates survives a restart. So do ours, in the definitions log, as
``UserDefinition``, ``VHostDefinition`` and ``PermissionDefinition`` records.

Rules:

1. The command line is configuration, not state: the users, vhosts and permissions the
   server's options name (``ServerConfig.users``, ``vhosts``, ``user_vhosts``: the CLI's
   ``--user`` and ``--vhost``) are made from the options at every start and never stored
   (:func:`configured_keys`). A change to one of them at run time (a new password, other
   permissions) lasts until the next start; deleting one deletes it until the next start.
2. Everything else in the registry (created by the management API, the test toolkit, a
   definitions file) is stored: :class:`AccountsLog` compares the registry with what is
   stored whenever its ``epoch`` moved (``core/access.py`` rule 5) and records the
   difference, declaring what is new or changed and deleting what went. It runs before every
   flush of the store, so an API answer leaves after what it changed is written.
3. At start (:func:`restore_accounts`), the stored accounts go into the registry built from
   the options, except those the options name (rule 1): vhosts first, then users, then
   permissions; one the registry refuses is a line, never fatal.
4. Topic permissions are stored too (``TopicPermissionDefinition`` records), and limits as
   part of their vhost or user. The options never make topic permissions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from minibroker.accounts import load_accounts
from minibroker.core.access import AccessControl
from minibroker.storage.definitions import (
    Definition,
    Definitions,
    PermissionDefinition,
    TopicPermissionDefinition,
    UserDefinition,
    VHostDefinition,
    key,
)
from minibroker.storage.store import DurableStore

__all__ = ["AccountsLog", "account_definitions", "configured_keys", "restore_accounts"]

Key = tuple[Any, ...]
_ACCOUNTS = (UserDefinition, VHostDefinition, PermissionDefinition, TopicPermissionDefinition)


def configured_keys(users: Iterable[str], vhosts: Iterable[str],
                    user_vhosts: Mapping[str, Iterable[str]]) -> frozenset[Key]:
    """Rule 1: the keys of what the options make (``accounts.build_access``'s input)."""
    keys: set[Key] = {("vhost", "/")}
    keys.update(("vhost", vhost) for vhost in vhosts)
    for user in users:
        keys.add(("user", user))
        for vhost in user_vhosts.get(user, ("/",)):
            keys.add(("vhost", vhost))
            keys.add(("permission", user, vhost))
    return frozenset(keys)


def account_definitions(access: AccessControl) -> dict[Key, Definition]:
    """The registry's users, vhosts and permissions as definitions, by key."""
    out: list[Definition] = []
    for host in access.vhosts.values():
        out.append(VHostDefinition(host.name, host.description, tuple(sorted(host.tags)),
                                   host.limits.to_definition() or []))
    for user in access.users.values():
        out.append(UserDefinition(user.name, user.password_hash, user.hashing_algorithm,
                                  tuple(sorted(user.tags)), user.limits.to_definition()))
    for name, vhost, permissions in access.permission_entries():
        out.append(PermissionDefinition(name, vhost, permissions.configure, permissions.write,
                                        permissions.read))
    for name in access.users:
        for vhost in access.vhosts:
            for topic in access.topic_permissions(name, vhost).values():
                out.append(TopicPermissionDefinition(name, vhost, topic.exchange, topic.write,
                                                     topic.read))
    return {key(definition): definition for definition in out}


def stored_accounts(definitions: Definitions) -> dict[Key, Definition]:
    found: list[Definition] = [d for d in definitions.all() if isinstance(d, _ACCOUNTS)]
    for topic in definitions.topic_permissions:  # rule 4: the log's, as a document has them
        try:
            found.append(TopicPermissionDefinition(
                str(topic["user"]), str(topic["vhost"]), str(topic["exchange"]),
                str(topic.get("write", ".*")), str(topic.get("read", ".*"))))
        except KeyError:
            continue
    return {key(definition): definition for definition in found}


def restore_accounts(access: AccessControl, definitions: Definitions,
                     configured: frozenset[Key]) -> list[str]:
    """Rule 3; a line for each account refused."""
    wanted = [definition for k, definition in stored_accounts(definitions).items()
              if k not in configured]
    if not wanted:
        return []
    return load_accounts(access, Definitions.of(wanted))


class AccountsLog:
    """Rule 2: the registry's run-time accounts, kept equal to what the store holds."""

    def __init__(self, store: DurableStore, configured: frozenset[Key]) -> None:
        self.store = store
        self.configured = configured
        self._stored = stored_accounts(store.definitions())
        self._access: AccessControl | None = None
        self._epoch = -1

    def changed(self, access: AccessControl) -> bool:
        """Has ``access`` changed since the last :meth:`record`?"""
        return access.epoch != self._epoch or access is not self._access

    def record(self, access: AccessControl) -> bool:
        """Record what changed in ``access`` since the last call; True if anything was
        written."""
        if not self.changed(access):
            return False
        self._access, self._epoch = access, access.epoch
        current = {k: definition for k, definition in account_definitions(access).items()
                   if k not in self.configured}
        stored = self._stored
        changed = False
        for k, definition in stored.items():
            if k not in current:
                self.store.delete(definition)
                changed = True
        for k, definition in current.items():
            if stored.get(k) != definition:
                self.store.declare(definition)
                changed = True
        self._stored = current
        return changed
