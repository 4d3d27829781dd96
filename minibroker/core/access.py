"""Users, vhosts and permissions (RabbitMQ's access model), logins and vhost access.

:class:`AccessControl` is the registry: users with password hashes and tags, vhosts with limits,
per-(user, vhost) permissions and topic permissions. It answers the two questions of a
connection's handshake — may this user log in (:meth:`AccessControl.authenticate`), may it open
this vhost (:meth:`AccessControl.check_vhost_access`); ``principal.py`` holds the
:class:`~minibroker.core.principal.Principal` that checks every later operation.

Rules:

1. Pure: no I/O, no randomness. A password is checked by an injected function with the signature
   of ``minibroker.passwords.verify_password`` (the shell passes that one).
2. A login names a user and a password. A missing user name (the server never picks a user for
   the client), an empty password, an unknown user, a user without a password, a wrong password,
   and a loopback-only user (``guest`` by default: RabbitMQ's ``loopback_users``) connecting from
   another address are all refused alike: 403 ACCESS_REFUSED "Login was refused using
   authentication mechanism PLAIN. For details see the broker logfile." The reason is for the
   log only (:attr:`LoginRefused.reason`), so a client cannot learn which users exist; an unknown
   user still costs one password check, so timing does not tell either.
3. Opening a vhost checks, in RabbitMQ's order: the vhost exists (530 ``vhost X not found``,
   unquoted) and is under its connection limit, the user is under its connection limit, and the
   user has a permission entry on the vhost (530 ``access to vhost 'X' refused for user 'U'``).
   Any entry grants the vhost, even ``^$ ^$ ^$``.
4. Permissions are three regular expressions — configure, write, read — searched unanchored in
   the UTF-8 bytes of a name, as Erlang's ``re:run(Name, RE, [{capture, none}])`` does on a
   binary; an empty expression means ``^$``. An invalid expression is refused when it is set,
   naming it.
5. Every change to the registry bumps :attr:`AccessControl.epoch`, which drops the principals'
   cached permission answers: a change applies to the next operation of open connections.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import field, replace
from enum import Enum
from functools import lru_cache

from minibroker.core.generations import Profile
from minibroker.core.tenants import (
    TenantCounters,
    UserLimits,
    VHostLimits,
    check_user_connections,
    check_vhost_connections,
)
from minibroker.errors import ConnectionLevelError, NotAllowed
from minibroker.valueclass import valueclass

__all__ = [
    "DEFAULT_HASHING_ALGORITHM",
    "HASHING_ALGORITHMS",
    "LOGIN_REFUSED",
    "AccessControl",
    "LoginRefused",
    "NoSuchUser",
    "NoSuchVHost",
    "PasswordCheck",
    "Permission",
    "Permissions",
    "TopicPermissions",
    "User",
    "VHost",
    "is_loopback",
]

DEFAULT_HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
#: RabbitMQ's ``hashing_algorithm`` names (``minibroker.passwords`` implements each).
HASHING_ALGORITHMS = (
    DEFAULT_HASHING_ALGORITHM, "rabbit_password_hashing_sha512", "rabbit_password_hashing_md5",
)

#: RabbitMQ's answer to every refused login (``rabbit_reader:auth_fail/5``).
LOGIN_REFUSED = (
    "Login was refused using authentication mechanism {}. For details see the broker logfile."
)

#: (password_hash, password, hashing_algorithm) -> does it match?
PasswordCheck = Callable[[str, str, str], bool]

#: A stored hash no password matches (4-byte zero salt, zero SHA-256 digest, base64): checked
#: for unknown users so that they cost as much as known ones (rule 2).
_SENTINEL_HASH = "A" * 48


class Permission(Enum):
    CONFIGURE = "configure"
    WRITE = "write"
    READ = "read"


class LoginRefused(ConnectionLevelError):
    """403 at connection level: the login was refused (rule 2)."""

    reply_code = 403

    def __init__(self, mechanism: str, reason: str) -> None:
        super().__init__(LOGIN_REFUSED.format(mechanism))
        #: Why, for the broker's log only.
        self.reason = reason


class NoSuchUser(LookupError):
    """A definition names a user that does not exist."""


class NoSuchVHost(LookupError):
    """A definition names a vhost that does not exist."""


@lru_cache(maxsize=1024)
def compile_permission(pattern: str) -> re.Pattern[bytes]:
    """Rule 4: the expression as a bytes pattern, ``""`` meaning ``^$``."""
    return re.compile((pattern or "^$").encode("utf-8"))


def _checked(what: str, pattern: str) -> re.Pattern[bytes]:
    try:
        return compile_permission(pattern)
    except re.error as err:
        raise ValueError(f"invalid {what} regular expression {pattern!r}: {err}") from None


@valueclass(frozen=True)
class Permissions:
    """``rabbitmqctl set_permissions``: configure, write and read expressions."""

    configure: str = ".*"
    write: str = ".*"
    read: str = ".*"
    _patterns: dict[Permission, re.Pattern[bytes]] = field(
        init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        for permission in Permission:
            self._patterns[permission] = _checked(
                permission.value, getattr(self, permission.value))

    def allows(self, permission: Permission, name: str) -> bool:
        # A name that is not UTF-8 reaches us surrogate-escaped: match its original octets.
        octets = name.encode("utf-8", "surrogateescape")
        return self._patterns[permission].search(octets) is not None


@valueclass(frozen=True)
class TopicPermissions:
    """``rabbitmqctl set_topic_permissions``: write and read expressions on the routing keys of
    one topic exchange. ``{username}``, ``{vhost}`` and ``{client_id}`` in them are replaced by
    the connection's values before matching (plain text replacement, as RabbitMQ does)."""

    exchange: str
    write: str = ".*"
    read: str = ".*"

    def __post_init__(self) -> None:
        _checked("topic write", self.write)
        _checked("topic read", self.read)

    def allows(self, permission: Permission, routing_key: str,
               variables: Mapping[str, str]) -> bool:
        pattern = self.write if permission is Permission.WRITE else self.read
        for name, value in variables.items():
            pattern = pattern.replace("{" + name + "}", value)
        try:
            compiled = compile_permission(pattern)
        except re.error:
            return False  # an expansion that is no longer a valid expression denies
        return compiled.search(routing_key.encode("utf-8", "surrogateescape")) is not None


@valueclass(frozen=True)
class User:
    """A user: ``password_hash`` is RabbitMQ's stored form; ``""`` is a user without a password
    (no password logs it in)."""

    name: str
    password_hash: str = ""
    hashing_algorithm: str = DEFAULT_HASHING_ALGORITHM
    tags: frozenset[str] = frozenset()
    limits: UserLimits = field(default_factory=UserLimits)

    def __post_init__(self) -> None:
        # Refused here, by name, rather than failing every login of the user later.
        if self.hashing_algorithm not in HASHING_ALGORITHMS:
            raise ValueError(f"user '{self.name}': unknown hashing_algorithm "
                             f"{self.hashing_algorithm!r} (known: {', '.join(HASHING_ALGORITHMS)})")


@valueclass(frozen=True)
class VHost:
    name: str
    description: str = ""
    tags: frozenset[str] = frozenset()
    limits: VHostLimits = field(default_factory=VHostLimits)


def is_loopback(address: str | None) -> bool:
    """Is the peer address a loopback one (``127.0.0.0/8``, ``::1``, or IPv4-mapped
    ``::ffff:127.x.x.x``)? Anything else, or unknown, is not (``rabbit_net:is_loopback/1``)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


class AccessControl:
    """The registry of users, vhosts, permissions and limits, and the login checks."""

    def __init__(
        self, *, profile: Profile | None = None,
        loopback_users: frozenset[str] = frozenset({"guest"}),
    ) -> None:
        #: The RabbitMQ version whose texts and check order the checks follow.
        self.profile = profile if profile is not None else Profile()
        #: Users that may log in only from a loopback address (RabbitMQ's ``loopback_users``).
        self.loopback_users = loopback_users
        self.users: dict[str, User] = {}
        self.vhosts: dict[str, VHost] = {}
        self._permissions: dict[tuple[str, str], Permissions] = {}
        self._topic: dict[tuple[str, str], dict[str, TopicPermissions]] = {}
        #: Bumped by every change (rule 5).
        self.epoch = 0

    # -- definitions ------------------------------------------------------------------------

    def put_user(self, user: User) -> None:
        """Add a user, or replace one (its permissions stay)."""
        self.users[user.name] = user
        self.epoch += 1

    def delete_user(self, name: str) -> None:
        self._user(name)
        del self.users[name]
        for key in [key for key in self._permissions if key[0] == name]:
            del self._permissions[key]
        for key in [key for key in self._topic if key[0] == name]:
            del self._topic[key]
        self.epoch += 1

    def put_vhost(self, vhost: VHost) -> None:
        self.vhosts[vhost.name] = vhost
        self.epoch += 1

    def delete_vhost(self, name: str) -> None:
        self._vhost(name)
        del self.vhosts[name]
        for key in [key for key in self._permissions if key[1] == name]:
            del self._permissions[key]
        for key in [key for key in self._topic if key[1] == name]:
            del self._topic[key]
        self.epoch += 1

    def set_permissions(self, user: str, vhost: str, permissions: Permissions) -> None:
        self._user(user)
        self._vhost(vhost)
        self._permissions[user, vhost] = permissions
        self.epoch += 1

    def clear_permissions(self, user: str, vhost: str) -> None:
        self._permissions.pop((user, vhost), None)
        self.epoch += 1

    def permissions(self, user: str, vhost: str) -> Permissions | None:
        return self._permissions.get((user, vhost))

    def permission_entries(self) -> Iterator[tuple[str, str, Permissions]]:
        """(user, vhost, permissions) for every entry, sorted (for exports)."""
        for (user, vhost), permissions in sorted(self._permissions.items(),
                                                 key=lambda item: item[0]):
            yield user, vhost, permissions

    def set_topic_permissions(self, user: str, vhost: str, topic: TopicPermissions) -> None:
        self._user(user)
        self._vhost(vhost)
        self._topic.setdefault((user, vhost), {})[topic.exchange] = topic
        self.epoch += 1

    def clear_topic_permissions(self, user: str, vhost: str, exchange: str | None = None) -> None:
        """Remove one exchange's topic permissions, or (``exchange=None``) all of them."""
        entries = self._topic.get((user, vhost))
        if entries is not None:
            if exchange is None:
                entries.clear()
            else:
                entries.pop(exchange, None)
            if not entries:
                del self._topic[user, vhost]
        self.epoch += 1

    def topic_permissions(self, user: str, vhost: str) -> Mapping[str, TopicPermissions]:
        """Exchange name -> topic permissions of ``user`` in ``vhost`` (empty: no restriction)."""
        return self._topic.get((user, vhost), {})

    def set_vhost_limits(self, vhost: str, limits: VHostLimits) -> None:
        self.vhosts[vhost] = replace(self._vhost(vhost), limits=limits)
        self.epoch += 1

    def set_user_limits(self, user: str, limits: UserLimits) -> None:
        self.users[user] = replace(self._user(user), limits=limits)
        self.epoch += 1

    def tags(self) -> Mapping[str, frozenset[str]]:
        """User name -> tags (the management API's view of the users)."""
        return {name: user.tags for name, user in self.users.items()}

    def _user(self, name: str) -> User:
        user = self.users.get(name)
        if user is None:
            raise NoSuchUser(f"no user '{name}'")
        return user

    def _vhost(self, name: str) -> VHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            raise NoSuchVHost(f"no vhost '{name}'")
        return vhost

    # -- logins -----------------------------------------------------------------------------

    def authenticate(
        self, username: str | None, password: str | None, *, check_password: PasswordCheck,
        loopback: bool, mechanism: str = "PLAIN",
    ) -> User:
        """The user these credentials log in, or :class:`LoginRefused` (rule 2). ``loopback``
        says whether the peer address is a loopback one (:func:`is_loopback`)."""
        if username is None:
            raise LoginRefused(mechanism, "no user name given")
        if not password:
            raise LoginRefused(mechanism, f"user '{username}' - blank password")
        user = self.users.get(username)
        if user is None:
            check_password(_SENTINEL_HASH, password, DEFAULT_HASHING_ALGORITHM)
            raise LoginRefused(mechanism, f"user '{username}' - invalid credentials")
        if not user.password_hash or not check_password(
                user.password_hash, password, user.hashing_algorithm):
            raise LoginRefused(mechanism, f"user '{username}' - invalid credentials")
        if username in self.loopback_users and not loopback:
            raise LoginRefused(mechanism, f"user '{username}' can only connect via localhost")
        return user

    def check_vhost_access(self, username: str, vhost: str, *, counters: TenantCounters) -> None:
        """connection.open (rule 3): may ``username`` open ``vhost``? Raises :class:`NotAllowed`.
        ``counters`` are read, not changed: the caller counts the connection once it is open.
        (``Principal.open`` makes this check and returns the principal.)"""
        found = self.vhosts.get(vhost)
        if found is None:
            raise NotAllowed(f"vhost {vhost} not found")
        check_vhost_connections(vhost, username, found.limits,
                                counters.vhost_connections.get(vhost, 0))
        user = self.users.get(username)  # deleted since it logged in: no entry below either
        if user is not None:
            check_user_connections(username, user.limits,
                                   counters.user_connections.get(username, 0))
        if (username, vhost) not in self._permissions:
            raise NotAllowed(f"access to vhost '{vhost}' refused for user '{username}'")
