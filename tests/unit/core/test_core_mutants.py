"""Behaviour of the core that mutation testing found unasserted (docs/testing-the-broker.md,
"Mutation testing"): each test names what a user would see go wrong."""

from __future__ import annotations

import pytest

from minibroker.accounts import build_access
from minibroker.core import commands as c
from minibroker.core import journal as j
from minibroker.core.access import Permission, Permissions, TopicPermissions, User, VHost
from minibroker.core.arguments import MAX_EXPIRY, parse_expiration
from minibroker.core.authorize import Gate
from minibroker.core.broker import Broker
from minibroker.core.effects import GetOk, StreamReadOk
from minibroker.core.journal import Journal
from minibroker.core.principal import Principal
from minibroker.core.tenants import TenantCounters, UserLimits, VHostLimits
from minibroker.errors import AccessRefused, PreconditionFailed
from minibroker.message import Message, Properties
from minibroker.passwords import hash_password
from tests.unit.core.helpers import Chan, Harness, delivered

STREAM = {"x-queue-type": "stream"}


# -- stream reads ---------------------------------------------------------------------------------


def _read(ch: Chan, **kwargs: object) -> list[bytes]:
    arguments = kwargs.pop("arguments")
    reply = ch.harness.handle(c.ReadStream(ch.connection, ch.channel, "s", arguments,  # type: ignore[arg-type]
                                           **kwargs)).reply  # type: ignore[arg-type]
    assert isinstance(reply, StreamReadOk)
    return [message.body for _, message in reply.messages]


def test_a_filtered_read_returns_at_most_max_messages(ch: Chan) -> None:
    ch.declare_queue("s", durable=True, arguments=STREAM)
    for n in range(5):
        ch.publish("", "s", f"eu-{n}".encode(),
                   properties=Properties(headers={"x-stream-filter-value": "eu"}))
    eu = {"x-stream-offset": "first", "x-stream-filter": "eu"}
    assert _read(ch, arguments=eu, max_messages=2) == [b"eu-0", b"eu-1"]


def test_a_read_budget_counts_the_exchange_name(ch: Chan) -> None:
    ch.declare_queue("s", durable=True, arguments=STREAM)
    ch.declare_exchange("exch", "fanout")
    ch.bind("s", "exch")
    ch.harness.handle(c.PublishMany(ch.connection, ch.channel, tuple(
        (Message("exch", "s", body), False) for body in (b"aaaa", b"bbbb", b"cccc"))))
    # each message costs 4 (body) + 4 ("exch") + 1 ("s"): two fit in 18 octets
    assert _read(ch, arguments={"x-stream-offset": "first"}, reply_bytes=18) == [
        b"aaaa", b"bbbb"]


# -- direct reply-to ------------------------------------------------------------------------------


def test_direct_replies_take_the_channels_delivery_tags(harness: Harness, ch: Chan) -> None:
    server = harness.open(2)
    server.declare_queue("rpc")
    ch.declare_queue("work")
    ch.consume("amq.rabbitmq.reply-to", "replies", no_ack=True)
    ch.publish("", "rpc", b"request", properties=Properties(reply_to="amq.rabbitmq.reply-to"))
    address = server.get_ok("rpc", no_ack=True).message.properties.reply_to
    assert address is not None
    first = delivered(server.publish("", address, b"one"))
    ch.publish("", "work", b"job")
    got = ch.get_ok("work")
    second = delivered(server.publish("", address, b"two"))
    # one sequence per channel (AMQP 0-9-1 basic.deliver: "the delivery tag is valid only
    # within the channel"), shared with basic.get
    assert [d.delivery_tag for d in first + second] == [1, 3]
    assert got.delivery_tag == 2


# -- the permission registry and the gate ---------------------------------------------------------


def test_a_recreated_user_does_not_inherit_topic_permissions() -> None:
    access = build_access({"app": "pw"})
    access.set_topic_permissions("app", "/", TopicPermissions("amq.topic", "^a"))
    access.delete_user("app")
    access.put_user(User("app", hash_password("secret")))
    assert access.topic_permissions("app", "/") == {}


def test_an_invalid_topic_write_expression_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="invalid topic write regular expression"):
        TopicPermissions("amq.topic", "(", ".*")


def _gate(access: object, user: str = "u") -> tuple[Gate, Broker]:
    gate = Gate(access, Principal.open(access, user, "/", counters=TenantCounters()),  # type: ignore[arg-type]
                make_name=lambda prefix: prefix + "generated")
    return gate, Broker()


def test_clearing_permissions_twice_reaches_an_open_connection() -> None:
    # Every change moves the registry's epoch to a value it never had, so a connection's cached
    # "may write to x" never outlives the permission (access.py rule 5).
    access = build_access({"u": "pw", "v": "pw"})
    access.set_permissions("u", "/", Permissions(".*", ".*", ".*"))
    access.set_permissions("v", "/", Permissions(".*", ".*", ".*"))
    gate, broker = _gate(access)
    publish = c.Publish(1, 1, Message("x", "k", b""))
    access.clear_permissions("v", "/")
    gate.check(publish, broker.topology)
    access.clear_permissions("u", "/")
    with pytest.raises(AccessRefused, match="write access to exchange 'x'"):
        gate.check(publish, broker.topology)


def test_declaring_with_an_alternate_or_dead_letter_exchange_needs_write_on_it() -> None:
    access = build_access({"u": "pw"})
    access.set_permissions("u", "/", Permissions(".*", "^mine$", ".*"))
    gate, broker = _gate(access)
    with pytest.raises(AccessRefused, match="write access to exchange 'theirs'"):
        gate.check(c.DeclareExchange(1, 1, "e", arguments={"alternate-exchange": "theirs"}),
                   broker.topology)
    gate.check(c.DeclareExchange(1, 1, "e", arguments={"alternate-exchange": "mine"}),
               broker.topology)
    with pytest.raises(AccessRefused, match="write access to exchange 'theirs'"):
        gate.check(c.DeclareQueue(1, 1, "q", arguments={"x-dead-letter-exchange": "theirs"}),
                   broker.topology)


def test_consuming_needs_read_on_that_queue() -> None:
    access = build_access({"u": "pw"})
    access.set_permissions("u", "/", Permissions(".*", ".*", "^mine$"))
    gate, broker = _gate(access)
    gate.check(c.Consume(1, 1, "mine"), broker.topology)
    with pytest.raises(AccessRefused, match="read access to queue 'theirs'"):
        gate.check(c.Consume(1, 1, "theirs"), broker.topology)


def test_a_vhost_of_a_users_name_keeps_its_permissions_when_the_user_goes() -> None:
    access = build_access({"app": "pw", "guest2": "pw"})
    access.put_vhost(VHost("app"))
    access.set_topic_permissions("guest2", "app", TopicPermissions("amq.topic", "^a"))
    access.delete_user("app")
    assert list(access.topic_permissions("guest2", "app")) == ["amq.topic"]


# -- message arguments ----------------------------------------------------------------------------


def test_the_largest_expiration_is_accepted() -> None:
    assert parse_expiration(str(MAX_EXPIRY)) == MAX_EXPIRY
    with pytest.raises(PreconditionFailed, match="value_too_large"):
        parse_expiration(str(MAX_EXPIRY + 1))


# -- routing and streams --------------------------------------------------------------------------


def test_a_cc_header_alone_adds_its_routing_keys(ch: Chan) -> None:
    for name in ("a", "b"):
        ch.declare_queue(name)
        ch.bind(name, "amq.direct", name)
    ch.publish("amq.direct", "a", b"m", properties=Properties(headers={"CC": ["b"]}))
    assert ch.get_ok("b").message.body == b"m"


def test_a_stream_consumer_counts_what_it_publishes_and_delivers(harness: Harness,
                                                                 ch: Chan) -> None:
    ch.declare_queue("s", durable=True, arguments=STREAM)
    ch.qos(10)
    tag = ch.consume("s", arguments={"x-stream-offset": "first"}).reply
    assert getattr(tag, "consumer_tag", "").startswith("amq.ctag-")
    for _ in range(3):
        ch.publish("", "s", b"m")
    stats = harness.broker.queue_statistics("s")
    assert (stats.published, stats.delivered) == (3, 3)
    assert harness.broker.statistics().delivered == 3


def test_exchange_info_shows_the_declared_arguments(harness: Harness, ch: Chan) -> None:
    ch.declare_exchange("e", arguments={"alternate-exchange": "z"})
    assert harness.broker.exchange_info("e").arguments == {"alternate-exchange": "z"}


# -- refusal texts (RabbitMQ's, which clients show) -----------------------------------------------


@pytest.mark.parametrize(("declare", "text"), [
    (lambda ch: ch.delete_exchange("amq.direct"),
     "deletion of system exchange 'amq.direct' in vhost '/' not allowed"),
    (lambda ch: ch.declare_exchange(""), "operation not permitted on the default exchange"),
    (lambda ch: ch.declare_queue("s", durable=False, arguments=STREAM),
     "inequivalent arg 'durable' for queue 's' in vhost '/': received 'false' but current is "
     "'true'"),
    (lambda ch: ch.declare_queue("s", durable=True, auto_delete=True, arguments=STREAM),
     "inequivalent arg 'auto_delete' for queue 's' in vhost '/': received 'true' but current "
     "is 'false'"),
    (lambda ch: ch.declare_queue("q", arguments={"x-queue-type": "weird"}),
     "invalid arg 'x-queue-type' for queue 'q' in vhost '/': \"unsupported queue type "
     "'weird'\""),
    (lambda ch: ch.declare_queue("s2", durable=True,
                                 arguments={**STREAM, "x-initial-cluster-size": 0}),
     "invalid arg 'x-initial-cluster-size' for queue 's2' in vhost '/': {value_zero,0}"),
    (lambda ch: ch.declare_queue("s3", arguments=STREAM),
     "invalid property 'non-durable' for queue 's3' in vhost '/'"),
])
def test_refusals_read_as_rabbitmqs(ch: Chan, declare: object, text: str) -> None:
    ch.declare_queue("s", durable=True, arguments=STREAM)
    with pytest.raises((AccessRefused, PreconditionFailed)) as info:
        declare(ch)  # type: ignore[operator]
    assert info.value.text == text


def test_a_topic_permission_matches_a_key_that_is_not_utf8() -> None:
    # AMQP short strings are octets: a key that is not UTF-8 arrives with surrogate escapes
    # and is matched on its octets, as Erlang's re does.
    topic = TopicPermissions("amq.topic", "^a", "^a")
    assert topic.allows(Permission.WRITE, "a\udcff", {})
    assert not topic.allows(Permission.WRITE, "\udcffa", {})


def test_a_generated_stream_consumer_tag_steps_over_a_tag_the_client_chose(ch: Chan) -> None:
    ch.declare_queue("s", durable=True, arguments=STREAM)
    ch.qos(10)
    ch.consume("s", "amq.ctag-0000000000000000000001")
    reply = ch.consume("s").reply
    tag = getattr(reply, "consumer_tag", "")
    assert tag.startswith("amq.ctag-") and tag != "amq.ctag-0000000000000000000001"


def test_the_reply_to_pseudo_queue_exists_for_a_passive_declare(ch: Chan) -> None:
    reply = ch.declare_queue("amq.rabbitmq.reply-to", passive=True)
    assert (reply.queue, reply.message_count, reply.consumer_count) == (
        "amq.rabbitmq.reply-to", 0, 0)


def test_a_limit_that_is_not_an_integer_is_refused_by_owner_and_name() -> None:
    with pytest.raises(ValueError, match=r"^vhost limit 'max-connections' must be an integer"):
        VHostLimits(max_connections="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^user limit 'max-channels' must be an integer"):
        UserLimits(max_channels=True)


def test_cancelling_the_single_active_consumer_hands_the_ready_messages_over(
        harness: Harness, ch: Chan) -> None:
    other = harness.open(2)
    ch.declare_queue("qs", arguments={"x-single-active-consumer": True})
    ch.qos(1)
    other.qos(1)
    ch.consume("qs", "first")
    other.consume("qs", "second")
    ch.publish("", "qs", b"m1")
    ch.publish("", "qs", b"m2")
    out = ch.cancel("first")
    assert [(d.consumer_tag, d.message.body) for d in delivered(out)] == [("second", b"m2")]


def test_a_get_that_expires_messages_delivers_their_dead_letters(harness: Harness,
                                                                 ch: Chan) -> None:
    ch.declare_queue("dlq")
    ch.declare_queue("src", arguments={"x-dead-letter-exchange": "",
                                       "x-dead-letter-routing-key": "dlq"})
    ch.consume("dlq", "dead", no_ack=True)
    ch.publish("", "src", b"old", properties=Properties(expiration="1000"))
    ch.publish("", "src", b"new")
    harness.now = 5.0
    out = ch.get("src")
    assert isinstance(out.reply, GetOk) and out.reply.message.body == b"new"
    assert [(d.consumer_tag, d.message.body) for d in delivered(out)] == [("dead", b"old")]


def test_deleting_vhosts_reaches_an_open_connections_cached_permissions() -> None:
    access = build_access({"u": "pw"})
    access.put_vhost(VHost("other"))
    access.set_permissions("u", "/", Permissions(".*", ".*", ".*"))
    gate, broker = _gate(access)
    publish = c.Publish(1, 1, Message("x", "k", b""))
    access.delete_vhost("other")
    gate.check(publish, broker.topology)
    access.delete_vhost("/")  # its permissions go with it
    with pytest.raises(AccessRefused, match="write access to exchange 'x'"):
        gate.check(publish, broker.topology)




def test_a_read_from_an_interval_offset_starts_at_the_messages_that_recent(ch: Chan) -> None:
    # x-stream-offset "10s": from the messages published in the last 10 seconds of wall time.
    ch.declare_queue("s", durable=True, arguments=STREAM)
    for body in (b"a", b"b"):
        ch.publish("", "s", body)
    assert _read(ch, arguments={"x-stream-offset": "10s"}) == [b"a", b"b"]



def test_a_classic_queue_redeclared_with_another_priority_is_refused(ch: Chan) -> None:
    # x-max-priority is a classic queue's argument (quorum queues have none): it is compared.
    ch.declare_queue("q", arguments={"x-max-priority": 5})
    ch.declare_queue("q", arguments={"x-max-priority": 5})
    with pytest.raises(PreconditionFailed, match="inequivalent arg 'x-max-priority'"):
        ch.declare_queue("q", arguments={"x-max-priority": 10})


# -- the journal -----------------------------------------------------------------------------------


def test_a_publish_refused_by_reject_publish_dlx_settles_nothing_in_the_journal() -> None:
    # The refused message never entered the queue: the journal must not settle the message
    # that did (msg_id 1), or a restart would lose it.
    journal = Journal()
    ch = Harness(Broker(journal=journal)).open()
    ch.declare_exchange("dlx", "fanout", durable=True)
    ch.declare_queue("dead", durable=True)
    ch.bind("dead", "dlx")
    ch.declare_queue("d", durable=True, arguments={
        "x-max-length": 1, "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": "dlx"})
    journal.drain()
    ch.publish("", "d", b"kept", properties=Properties(delivery_mode=2))
    ch.publish("", "d", b"refused", properties=Properties(delivery_mode=2))
    recorded = [(intent[0], intent[1]) for intent in journal.drain()]
    assert (j.PUBLISH, "d") in recorded
    assert (j.PUBLISH, "dead") in recorded
    assert (j.SETTLE, "d") not in recorded
    assert [m.message.body for m in [ch.get_ok("d"), ch.get_ok("dead")]] == [b"kept", b"refused"]
