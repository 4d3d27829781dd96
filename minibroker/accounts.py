"""The broker's accounts: the :class:`~minibroker.core.access.AccessControl` a server starts
with, and the login check both protocols call.

Rules:

1. A server without explicit access control gets RabbitMQ's default: the ``/`` vhost and the
   user ``guest`` (password ``guest``, tag ``administrator``) with full permissions on it, which
   logs in from loopback addresses only. ``ServerConfig.users`` (plain-text passwords, as the
   CLI's ``--user`` and the test toolkit give them) replaces that user list: each is an
   administrator with full permissions on the vhosts listed for it, ``/`` when none are.
2. Passwords are stored hashed in RabbitMQ's format (``passwords.py``), never in clear text in
   the registry.
3. A login goes through :class:`Login`: the credentials, the mechanism and whether the peer is a
   loopback address reach ``AccessControl.authenticate``; a refusal is
   :class:`~minibroker.core.access.LoginRefused` (403, RabbitMQ's one text for every reason);
   the reason goes to the log.
4. A definitions document's accounts (:func:`load_accounts`) are added one by one: one that is
   refused (an unknown hashing algorithm, an invalid expression, a missing user or vhost) is
   a line in the result and the rest go on, as the topology's import does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from minibroker.core.access import (
    AccessControl,
    LoginRefused,
    Permissions,
    TopicPermissions,
    User,
    VHost,
    is_loopback,
)
from minibroker.core.generations import Profile
from minibroker.core.tenants import UserLimits, VHostLimits
from minibroker.passwords import hash_password, verify_password

if TYPE_CHECKING:
    from minibroker.server.session import Session
    from minibroker.storage.definitions import Definitions

__all__ = ["DEFAULT_VHOST", "Login", "add_user", "build_access", "load_accounts",
           "session_login"]

log = logging.getLogger("minibroker.server")

DEFAULT_VHOST = "/"
FULL = Permissions(".*", ".*", ".*")


def add_user(
    access: AccessControl, name: str, password: str, *, tags: Iterable[str] = ("administrator",),
    vhosts: Iterable[str] = (DEFAULT_VHOST,), permissions: Permissions = FULL,
) -> None:
    """Add (or replace) ``name`` with a hashed ``password`` and ``permissions`` on each of
    ``vhosts`` (created when missing)."""
    access.put_user(User(name, hash_password(password) if password else "",
                         tags=frozenset(tags)))
    for vhost in vhosts:
        if vhost not in access.vhosts:
            access.put_vhost(VHost(vhost))
        access.set_permissions(name, vhost, permissions)


def build_access(
    users: Mapping[str, str] | None, *, vhosts: Iterable[str] = (),
    user_vhosts: Mapping[str, Iterable[str]] | None = None,
    loopback_users: frozenset[str] = frozenset({"guest"}), rabbitmq: str | None = None,
) -> AccessControl:
    """Rule 1. ``users``: name -> plain-text password (``None``: guest/guest); ``vhosts``: extra
    vhosts; ``user_vhosts``: name -> the vhosts that user gets full permissions on (``/`` when
    not listed)."""
    access = AccessControl(profile=Profile(rabbitmq) if rabbitmq else None,
                           loopback_users=loopback_users)
    access.put_vhost(VHost(DEFAULT_VHOST))
    for vhost in vhosts:
        access.put_vhost(VHost(vhost))
    for name, password in (users if users is not None else {"guest": "guest"}).items():
        wanted = (user_vhosts or {}).get(name)
        add_user(access, name, password,
                 vhosts=tuple(wanted) if wanted is not None else (DEFAULT_VHOST,))
    return access


class Login:
    """The login check of one connection (rule 3): ``login(user, password, mechanism)``
    returns the user name or raises :class:`LoginRefused`."""

    __slots__ = ("_access", "_loopback", "_peer")

    def __init__(self, access: AccessControl, peer_host: str | None) -> None:
        self._access = access
        self._peer = peer_host
        self._loopback = is_loopback(peer_host)

    def __call__(self, username: str | None, password: str | None, mechanism: str) -> str:
        try:
            user = self._access.authenticate(username, password, check_password=verify_password,
                                             loopback=self._loopback, mechanism=mechanism)
        except LoginRefused as err:
            log.warning("%s: login refused (mechanism %s): %s", self._peer, mechanism,
                        err.reason)
            raise
        return user.name


def session_login(session: Session) -> Login:
    """The login check of a server session: the server's registry, the socket's peer address."""
    peername = session.transport.get_extra_info("peername")
    host = peername[0] if isinstance(peername, tuple) else None
    return Login(session.server.access, host)


def load_accounts(access: AccessControl, definitions: Definitions) -> list[str]:
    """The users, vhosts, permissions, topic permissions and limits of a RabbitMQ definitions
    document, into ``access`` (password hashes verbatim); a line for each one refused."""
    problems: list[str] = []
    refused = (ValueError, TypeError, LookupError)
    for vhost in definitions.vhosts:
        try:
            limits = vhost.limits if isinstance(vhost.limits, Mapping) else {}
            access.put_vhost(VHost(vhost.name, vhost.description, frozenset(vhost.tags),
                                   VHostLimits.from_definition(limits)))
        except refused as exc:
            problems.append(f"vhost '{vhost.name}' refused: {exc}")
    for user in definitions.users:
        try:
            access.put_user(User(user.name, user.password_hash, user.hashing_algorithm,
                                 frozenset(user.tags),
                                 UserLimits.from_definition(user.limits or {})))
        except refused as exc:
            problems.append(f"user '{user.name}' refused: {exc}")
    for entry in definitions.permissions:
        try:
            access.set_permissions(entry.user, entry.vhost,
                                   Permissions(entry.configure, entry.write, entry.read))
        except refused as exc:
            problems.append(f"permissions of '{entry.user}' in vhost '{entry.vhost}' "
                            f"refused: {exc}")
    for topic in definitions.topic_permissions:
        try:
            access.set_topic_permissions(str(topic["user"]), str(topic["vhost"]),
                                         TopicPermissions(str(topic["exchange"]),
                                                          str(topic.get("write", ".*")),
                                                          str(topic.get("read", ".*"))))
        except refused as exc:
            problems.append(f"topic permissions {topic} refused: {exc}")
    for parameter in definitions.parameters:
        if parameter.get("component") != "vhost-limits":
            continue
        try:
            access.set_vhost_limits(str(parameter["vhost"]),
                                    VHostLimits.from_definition(parameter["value"]))
        except refused as exc:
            problems.append(f"vhost-limits {parameter} refused: {exc}")
    return problems
