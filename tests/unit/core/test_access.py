"""The access registry: definitions, logins and vhost access (the parts RabbitMQ scenarios cannot
reach, such as a peer that is not on loopback, or a registry that changes under a connection)."""

from __future__ import annotations

import re

import pytest

from minibroker import passwords
from minibroker.core.access import (
    HASHING_ALGORITHMS,
    LOGIN_REFUSED,
    AccessControl,
    LoginRefused,
    NoSuchUser,
    NoSuchVHost,
    Permission,
    Permissions,
    TopicPermissions,
    User,
    VHost,
    is_loopback,
)
from minibroker.core.principal import Principal
from minibroker.core.tenants import TenantCounters, UserLimits, VHostLimits
from minibroker.errors import AccessRefused, NotAllowed
from minibroker.passwords import hash_password, verify_password

GUEST_HASH = hash_password("guest")


def registry(**kwargs: object) -> AccessControl:
    access = AccessControl(**kwargs)  # type: ignore[arg-type]
    access.put_vhost(VHost("/"))
    access.put_user(User("guest", GUEST_HASH, tags=frozenset({"administrator"})))
    access.put_user(User("app", hash_password("secret")))
    access.set_permissions("guest", "/", Permissions())
    access.set_permissions("app", "/", Permissions("^app\\.", "^app\\.", "^app\\."))
    return access


def login(access: AccessControl, user: str | None, password: str | None, *,
          loopback: bool = True) -> User:
    return access.authenticate(user, password, check_password=verify_password, loopback=loopback)


# -- logins -------------------------------------------------------------------------------------


def test_a_configured_user_logs_in_with_its_password() -> None:
    assert login(registry(), "app", "secret").name == "app"


@pytest.mark.parametrize(("user", "password", "reason"), [
    (None, "guest", "no user name given"),
    (None, None, "no user name given"),
    ("app", "", "user 'app' - blank password"),
    ("app", None, "user 'app' - blank password"),
    ("app", "wrong", "user 'app' - invalid credentials"),
    ("nobody", "secret", "user 'nobody' - invalid credentials"),
])
def test_refused_logins_all_look_alike(user: str | None, password: str | None,
                                        reason: str) -> None:
    with pytest.raises(LoginRefused) as refused:
        login(registry(), user, password)
    assert refused.value.reply_code == 403
    assert refused.value.reply_text == "ACCESS_REFUSED - " + LOGIN_REFUSED.format("PLAIN")
    assert refused.value.reason == reason


def test_a_login_without_a_user_name_never_becomes_guest() -> None:
    # The native hello without credentials used to log in as guest/guest.
    with pytest.raises(LoginRefused, match="Login was refused"):
        login(registry(), None, "guest")


def test_the_mechanism_is_named_in_the_refusal() -> None:
    with pytest.raises(LoginRefused, match="mechanism AMQPLAIN"):
        registry().authenticate("app", "x", check_password=verify_password, loopback=True,
                                mechanism="AMQPLAIN")


def test_users_name_only_algorithms_the_password_module_implements() -> None:
    assert set(HASHING_ALGORITHMS) == set(passwords.HASHING_ALGORITHMS)
    with pytest.raises(ValueError, match="user 'u': unknown hashing_algorithm 'bcrypt'"):
        User("u", "x", "bcrypt")


def test_a_user_without_a_password_cannot_log_in() -> None:
    access = registry()
    access.put_user(User("service"))
    access.set_permissions("service", "/", Permissions())
    with pytest.raises(LoginRefused):
        login(access, "service", "anything")


def test_an_unknown_user_costs_a_password_check() -> None:
    checked: list[tuple[str, str, str]] = []

    def check(stored: str, password: str, algorithm: str) -> bool:
        checked.append((stored, password, algorithm))
        return verify_password(stored, password, algorithm)

    with pytest.raises(LoginRefused):
        registry().authenticate("nobody", "pw", check_password=check, loopback=True)
    assert len(checked) == 1 and checked[0][1] == "pw"


def test_guest_logs_in_only_from_loopback() -> None:
    access = registry()
    assert login(access, "guest", "guest", loopback=True).name == "guest"
    with pytest.raises(LoginRefused) as refused:
        login(access, "guest", "guest", loopback=False)
    assert refused.value.reason == "user 'guest' can only connect via localhost"
    assert login(access, "app", "secret", loopback=False).name == "app"


def test_loopback_users_can_be_configured() -> None:
    access = registry(loopback_users=frozenset())
    assert login(access, "guest", "guest", loopback=False).name == "guest"
    strict = registry(loopback_users=frozenset({"guest", "app"}))
    with pytest.raises(LoginRefused):
        login(strict, "app", "secret", loopback=False)


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("192.0.2.2", False), ("::ffff:10.0.0.1", False), ("fd00::2", False),
    ("fe80::1%eth0", False), ("", False), (None, False), ("localhost", False), ("/tmp/s", False),
])
def test_is_loopback(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


# -- vhost access -------------------------------------------------------------------------------


def test_opening_a_vhost() -> None:
    access = registry()
    access.put_vhost(VHost("tenant"))
    counters = TenantCounters()
    assert Principal.open(access, "app", "/", counters=counters).vhost == "/"
    with pytest.raises(NotAllowed, match=r"NOT_ALLOWED - vhost nope not found$"):
        Principal.open(access, "app", "nope", counters=counters)
    with pytest.raises(NotAllowed,
                       match=r"NOT_ALLOWED - access to vhost 'tenant' refused for user 'app'$"):
        Principal.open(access, "app", "tenant", counters=counters)


def test_a_deleted_user_cannot_open_a_vhost() -> None:
    access = registry()
    access.delete_user("app")
    with pytest.raises(NotAllowed, match="access to vhost '/' refused for user 'app'"):
        access.check_vhost_access("app", "/", counters=TenantCounters())


def test_connection_limits_count_what_the_caller_counted() -> None:
    access = registry()
    access.set_vhost_limits("/", VHostLimits(max_connections=2))
    access.set_user_limits("app", UserLimits(max_connections=1))
    counters = TenantCounters()
    access.check_vhost_access("app", "/", counters=counters)
    counters.connection_opened("app", "/")
    with pytest.raises(NotAllowed, match="user connection limit \\(1\\) is reached"):
        access.check_vhost_access("app", "/", counters=counters)
    access.check_vhost_access("guest", "/", counters=counters)
    counters.connection_opened("guest", "/")
    with pytest.raises(NotAllowed, match="refused for user 'guest': connection limit \\(2\\)"):
        access.check_vhost_access("guest", "/", counters=counters)
    counters.connection_closed("app", "/")
    access.check_vhost_access("guest", "/", counters=counters)


# -- definitions --------------------------------------------------------------------------------


def test_permissions_need_an_existing_user_and_vhost() -> None:
    access = registry()
    with pytest.raises(NoSuchUser, match="no user 'ghost'"):
        access.set_permissions("ghost", "/", Permissions())
    with pytest.raises(NoSuchVHost, match="no vhost 'nope'"):
        access.set_permissions("app", "nope", Permissions())
    with pytest.raises(NoSuchVHost):
        access.set_topic_permissions("app", "nope", TopicPermissions("amq.topic"))
    with pytest.raises(NoSuchUser):
        access.delete_user("ghost")
    with pytest.raises(NoSuchVHost):
        access.set_vhost_limits("nope", VHostLimits())


@pytest.mark.parametrize("bad", ["(", "[a-", "a{2,1}", "*"])
def test_an_invalid_expression_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid write regular expression '{bad}'")):
        Permissions(".*", bad, ".*")
    with pytest.raises(ValueError, match="invalid topic read regular expression"):
        TopicPermissions("amq.topic", ".*", bad)


def test_deleting_a_user_or_vhost_removes_its_permissions() -> None:
    access = registry()
    access.put_vhost(VHost("v2"))
    access.set_permissions("app", "v2", Permissions())
    access.set_topic_permissions("app", "v2", TopicPermissions("amq.topic", "^a"))
    access.delete_vhost("v2")
    access.put_vhost(VHost("v2"))
    assert access.permissions("app", "v2") is None
    assert access.topic_permissions("app", "v2") == {}
    access.delete_user("app")
    access.put_user(User("app", hash_password("secret")))
    assert access.permissions("app", "/") is None
    assert [user for user, _, _ in access.permission_entries()] == ["guest"]


def test_topic_permissions_are_cleared_per_exchange_or_all() -> None:
    access = registry()
    access.set_topic_permissions("app", "/", TopicPermissions("amq.topic", "^a"))
    access.set_topic_permissions("app", "/", TopicPermissions("t2", "^b"))
    access.clear_topic_permissions("app", "/", "t2")
    assert list(access.topic_permissions("app", "/")) == ["amq.topic"]
    access.clear_topic_permissions("app", "/")
    assert access.topic_permissions("app", "/") == {}


def test_permissions_search_utf8_bytes_unanchored() -> None:
    permissions = Permissions("^.$", "b", "")
    assert permissions.allows(Permission.CONFIGURE, "e")
    assert not permissions.allows(Permission.CONFIGURE, "é")  # two bytes, as in Erlang's re
    assert permissions.allows(Permission.WRITE, "abc")
    assert not permissions.allows(Permission.READ, "abc")  # "" means ^$
    assert permissions.allows(Permission.READ, "")


def test_topic_variables_are_replaced_as_text() -> None:
    topic = TopicPermissions("amq.topic", "^{username}\\.{client_id}\\.", "^{vhost}$")
    variables = {"username": "app", "vhost": "/", "client_id": "c1"}
    assert topic.allows(Permission.WRITE, "app.c1.x", variables)
    assert not topic.allows(Permission.WRITE, "app.c2.x", variables)
    assert topic.allows(Permission.READ, "/", variables)
    assert not TopicPermissions("amq.topic", "^{username}").allows(
        Permission.WRITE, "{username}", {"username": "("})  # the expansion is no longer valid


def test_a_change_applies_to_the_next_operation_of_an_open_connection() -> None:
    access = registry()
    principal = Principal.open(access, "app", "/", counters=TenantCounters())
    principal.basic_publish("app.x")  # allowed, and now cached
    access.set_permissions("app", "/", Permissions("^app\\.", "^$", "^app\\."))
    with pytest.raises(AccessRefused, match=r"write access to exchange 'app\.x'"):
        principal.basic_publish("app.x")
    access.clear_permissions("app", "/")
    with pytest.raises(AccessRefused, match=r"read access to queue 'app\.q'"):
        principal.basic_get("app.q")


def test_the_principal_cache_stays_bounded() -> None:
    access = registry()
    principal = Principal.open(access, "guest", "/", counters=TenantCounters())
    for index in range(10_000):
        principal.basic_publish(f"x{index}")
    assert len(principal._allowed) <= 256
