"""Limits per tenant: definitions, counters, and the checks' codes and texts (the texts are
RabbitMQ's; ``tests/compat/access_scenarios.json`` holds RabbitMQ's own answers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minibroker.core.access import AccessControl, Permissions, User, VHost
from minibroker.core.generations import Profile
from minibroker.core.principal import Principal
from minibroker.core.tenants import (
    TenantCounters,
    UserLimits,
    VHostLimits,
    check_channel_max,
    check_user_channels,
    check_vhost_queues,
    negotiate_tune,
)
from minibroker.errors import NotAllowed, PreconditionFailed


def test_limits_from_a_definitions_file() -> None:
    limits = VHostLimits.from_definition({"max-connections": 10, "max-queues": -1})
    assert limits == VHostLimits(max_connections=10, max_queues=None)
    assert limits.to_definition() == {"max-connections": 10}
    user = UserLimits.from_definition({"max-channels": 0})
    assert user == UserLimits(max_channels=0) and user.to_definition() == {"max-channels": 0}
    assert UserLimits.from_definition({}) == UserLimits()


@pytest.mark.parametrize(("value", "message"), [
    ({"max-queue": 1}, "unknown vhost limit 'max-queue'"),
    ({"max-queues": "10"}, "vhost limit 'max-queues' must be an integer, not '10'"),
    ({"max-queues": True}, "must be an integer, not True"),
    ({"max-queues": 1.5}, "must be an integer, not 1.5"),
])
def test_bad_limits_are_refused_by_name(value: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VHostLimits.from_definition(value)


def test_negative_limits_mean_no_limit() -> None:
    assert UserLimits(max_connections=-5).max_connections is None
    check_vhost_queues("/", "q", VHostLimits(max_queues=-1), 10**9)


def test_zero_refuses_the_first() -> None:
    with pytest.raises(PreconditionFailed) as refused:
        check_vhost_queues("v", "q", VHostLimits(max_queues=0), 0)
    assert refused.value.reply_text == (
        "PRECONDITION_FAILED - cannot declare queue 'q': queue limit in vhost 'v' (0) is reached")


@given(st.integers(0, 50), st.integers(0, 50))
def test_a_limit_admits_exactly_that_many(limit: int, count: int) -> None:
    try:
        check_user_channels("u", UserLimits(max_channels=limit), count)
    except NotAllowed:
        assert count >= limit
    else:
        assert count < limit


def test_channel_limit_texts_by_generation() -> None:
    with pytest.raises(NotAllowed, match=r"maximum allowed user limit of 2$"):
        check_user_channels("u", UserLimits(max_channels=2), 2)
    with pytest.raises(NotAllowed, match=r"maximum allowed user limit of \(2\)$"):
        check_user_channels("u", UserLimits(max_channels=2), 2, Profile("3.10"))


def test_channel_max_counts_open_channels_and_zero_is_no_limit() -> None:
    check_channel_max(1, 2)
    check_channel_max(10_000, 0)
    with pytest.raises(NotAllowed) as refused:
        check_channel_max(2047, 2047)
    assert refused.value.reply_code == 530
    assert refused.value.text == (
        "number of channels opened (2047) has reached the negotiated channel_max (2047)")


def test_counters_forget_tenants_at_zero() -> None:
    counters = TenantCounters()
    counters.connection_opened("u", "v")
    counters.connection_opened("u", "w")
    counters.channel_opened("u")
    counters.channel_opened("u")
    counters.connection_closed("u", "v", open_channels=1)
    assert counters.vhost_connections == {"w": 1}
    assert counters.user_connections == {"u": 1}
    assert counters.user_channels == {"u": 1}
    counters.channel_closed("u")
    counters.connection_closed("u", "w")
    assert counters.vhost_connections == counters.user_connections == counters.user_channels == {}


@pytest.mark.parametrize(("field", "client", "server", "minimum", "text"), [
    ("channel_max", 0, 2047, 0,
     "negotiated channel_max = 0 (no limit) is higher than the maximum allowed value (2047)"),
    ("channel_max", 3000, 2047, 0,
     "negotiated channel_max = 3000 is higher than the maximum allowed value (2047)"),
    ("frame_max", 0, 131072, 4096,
     "negotiated frame_max = 0 is higher than the maximum allowed value (131072)"),
    ("frame_max", 1024, 131072, 4096,
     "negotiated frame_max = 1024 is lower than the minimum allowed value (4096)"),
])
def test_tune_ok_values_above_the_servers_are_refused(
    field: str, client: int, server: int, minimum: int, text: str,
) -> None:
    with pytest.raises(NotAllowed) as refused:
        negotiate_tune(field, client, server, minimum)
    assert refused.value.text == text


def test_tune_ok_values_within_the_servers_are_used() -> None:
    assert negotiate_tune("channel_max", 2, 2047) == 2
    assert negotiate_tune("channel_max", 2047, 2047) == 2047
    assert negotiate_tune("channel_max", 0, 0) == 0  # neither side has a limit
    assert negotiate_tune("frame_max", 8192, 131072, 4096) == 8192


def test_channel_open_checks_channel_max_before_the_user_limit() -> None:
    access = AccessControl()
    access.put_vhost(VHost("/"))
    access.put_user(User("u", limits=UserLimits(max_channels=1)))
    access.set_permissions("u", "/", Permissions())
    principal = Principal(access, "u", "/")
    principal.channel_open(open_channels=0, channel_max=1, user_channels=0)
    with pytest.raises(NotAllowed, match="negotiated channel_max"):
        principal.channel_open(open_channels=1, channel_max=1, user_channels=1)
    with pytest.raises(NotAllowed, match="for user 'u' has reached"):
        principal.channel_open(open_channels=1, channel_max=0, user_channels=1)
