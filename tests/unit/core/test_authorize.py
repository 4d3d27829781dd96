"""The permission gate on core commands: the publish fast path, batches, topic permissions and
registry changes."""

from __future__ import annotations

import pytest

from minibroker.accounts import build_access
from minibroker.core import commands as c
from minibroker.core.access import Permissions, TopicPermissions
from minibroker.core.authorize import Gate
from minibroker.core.broker import Broker
from minibroker.core.principal import Principal
from minibroker.core.tenants import TenantCounters
from minibroker.errors import AccessRefused
from minibroker.message import Message, Properties


def _gate(permissions: Permissions) -> tuple[Gate, Broker]:
    access = build_access({"u": "pw"})
    access.set_permissions("u", "/", permissions)
    gate = Gate(access, Principal.open(access, "u", "/", counters=TenantCounters()),
                make_name=lambda prefix: prefix + "generated")
    return gate, Broker()


def test_an_allowed_publish_takes_the_fast_path_until_the_registry_changes() -> None:
    gate, broker = _gate(Permissions("", "^x$", ""))
    publish = c.Publish(1, 1, Message("x", "k", b""))
    assert not gate.passes(publish)  # nothing granted yet
    gate.check(publish, broker.topology)
    assert gate.passes(publish)
    gate.principal._access.set_permissions("u", "/", Permissions("", "^$", ""))
    assert not gate.passes(publish)
    with pytest.raises(AccessRefused, match="write access to exchange 'x' in vhost '/'"):
        gate.check(publish, broker.topology)


def test_a_batch_is_refused_at_its_first_forbidden_exchange() -> None:
    gate, broker = _gate(Permissions("", "^x$", ""))
    batch = c.PublishMany(1, 1, ((Message("x", "k", b""), False),
                                 (Message("x", "k", b""), False),
                                 (Message("", "q", b""), False)))
    with pytest.raises(AccessRefused, match=r"exchange 'amq.default'"):
        gate.check(batch, broker.topology)


def test_a_batch_to_the_default_exchange_is_checked_from_its_first_message() -> None:
    gate, broker = _gate(Permissions("", "^x$", ""))
    batch = c.PublishMany(1, 1, ((Message("", "q", b""), False), (Message("", "q", b""), False)))
    with pytest.raises(AccessRefused, match=r"exchange 'amq.default'"):
        gate.check(batch, broker.topology)


@pytest.mark.parametrize("exchange, key, refusal", [
    ("", "q", "exchange 'amq.default'"), ("amq.topic", "b", "topic 'b' in exchange 'amq.topic'"),
])
def test_a_uniform_batch_is_checked_by_its_first_message(exchange: str, key: str,
                                                          refusal: str) -> None:
    """A native lane's run (every message of one exchange, key and properties) is allowed or
    refused whole, as its first message is, topic permissions included."""
    gate, broker = _gate(Permissions("", "^(x|amq.topic)$", ""))
    gate.principal._access.set_topic_permissions("u", "/", TopicPermissions("amq.topic", "^a"))
    properties = Properties()
    allowed = c.PublishMany(1, 1, tuple((Message("amq.topic", "a", b"", properties), False)
                                        for _ in range(3)), uniform=True)
    gate.check(allowed, broker.topology)
    refused = c.PublishMany(1, 1, tuple((Message(exchange, key, b"", properties), False)
                                        for _ in range(3)), uniform=True)
    with pytest.raises(AccessRefused, match=refusal):
        gate.check(refused, broker.topology)


def test_topic_permissions_check_routing_keys_and_cc() -> None:
    gate, broker = _gate(Permissions(".*", ".*", ".*"))
    gate.principal._access.set_topic_permissions("u", "/", TopicPermissions("amq.topic", "^a"))
    gate.check(c.Publish(1, 1, Message("amq.topic", "a.b", b"")), broker.topology)
    publish = c.Publish(1, 1, Message("amq.topic", "b", b""))
    assert not gate.passes(publish)
    with pytest.raises(AccessRefused, match=r"topic 'b' in exchange 'amq.topic'"):
        gate.check(publish, broker.topology)
    batch = c.PublishMany(1, 1, ((Message("amq.topic", "a.b", b""), False),
                                 (Message("amq.topic", "b", b""), False)))
    with pytest.raises(AccessRefused, match=r"topic 'b' in exchange 'amq.topic'"):
        gate.check(batch, broker.topology)  # every message's key, in a batch too
    cc = Message("amq.topic", "a", b"", Properties(headers={"CC": ["b"]}))
    with pytest.raises(AccessRefused, match="topic 'b'"):
        gate.check(c.Publish(1, 1, cc), broker.topology)
    gate.check(c.Publish(1, 1, Message("amq.direct", "b", b"")), broker.topology)


def test_a_server_named_queue_is_checked_under_a_generated_name() -> None:
    gate, broker = _gate(Permissions("^$", "", ""))
    with pytest.raises(AccessRefused, match=r"queue 'amq.gen-generated'"):
        gate.check(c.DeclareQueue(1, 1, ""), broker.topology)


def test_commands_without_a_permission_pass() -> None:
    gate, broker = _gate(Permissions("^$", "^$", "^$"))
    for command in (c.Qos(1, 1, 10), c.Ack(1, 1, 1), c.ConfirmSelect(1, 1), c.Cancel(1, 1, "t")):
        gate.check(command, broker.topology)


def test_a_name_that_is_not_utf8_is_matched_on_its_octets() -> None:
    gate, broker = _gate(Permissions("", "^x", ""))
    gate.check(c.Publish(1, 1, Message("x\udcff", "k", b"")), broker.topology)
    with pytest.raises(AccessRefused):
        gate.check(c.Publish(1, 1, Message("\udcffx", "k", b"")), broker.topology)


def test_stream_reads_and_offsets_need_read() -> None:
    gate, broker = _gate(Permissions("", "", "^s$"))
    for command in (c.ReadStream(1, 1, "s"), c.CommitOffset(1, 1, "s", "app", 3),
                    c.QueryOffset(1, 1, "s", "app")):
        gate.check(command, broker.topology)
    with pytest.raises(AccessRefused, match=r"read access to queue 't'"):
        gate.check(c.ReadStream(1, 1, "t"), broker.topology)
