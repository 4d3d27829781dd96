"""minibroker's access model against RabbitMQ's recorded answers.

Every scenario of ``tests/compat/access_scenarios.json`` (recorded from RabbitMQ 3.10 by
``tests/compat/test_access_rabbitmq.py``) is replayed on the pure model — the registry
(``core/access.py``), the access table (``core/principal.py``), the limits (``core/tenants.py``)
and the SASL reader — for both generations, in the order the protocol handlers will call them.
The small ``World`` below stands in for the topology: which exchanges and queues exist, and the
404s a handler raises after the access checks pass. The names are the recording's placeholders
(``{vhost}``, ``{user}``), so texts compare directly.
"""

from __future__ import annotations

from typing import Any

import pytest

from minibroker.core.access import (
    AccessControl,
    LoginRefused,
    Permissions,
    TopicPermissions,
    User,
    VHost,
)
from minibroker.core.generations import NEWEST, Profile
from minibroker.core.principal import DIRECT_REPLY_TO, Principal
from minibroker.core.tenants import TenantCounters, UserLimits, VHostLimits, negotiate_tune
from minibroker.errors import AMQPError, CommandInvalid, FrameSyntaxError, NotAllowed, NotFound
from minibroker.passwords import hash_password, verify_password
from minibroker.protocols.amqp091.fields import encode_table
from minibroker.protocols.amqp091.sasl import read_response
from tests.compat.access_runner import expected, load

SCENARIOS = load()
VHOST, USER, PASSWORD, ADMIN = "{vhost}", "{user}", "{password}", "guest"
#: RabbitMQ 3.10's channel_max (what connection.tune proposes).
SERVER_CHANNEL_MAX = 2047
PREDECLARED = {"amq.direct": "direct", "amq.fanout": "fanout", "amq.topic": "topic",
               "amq.headers": "headers", "amq.match": "headers", "amq.rabbitmq.trace": "topic"}


#: The two profiles the scenarios record: RabbitMQ 3.10 (live) and the newest ("current").
PROFILES = {"3.10": Profile("3.10"), "current": Profile(NEWEST)}


def registry(scenario: dict[str, Any], generation: str) -> AccessControl:
    """The scenario's vhost, user, permissions and limits, as the definitions would load."""
    access = AccessControl(profile=PROFILES[generation])
    access.put_vhost(VHost(VHOST, limits=VHostLimits.from_definition(
        scenario.get("vhost_limits", {}))))
    account = scenario.get("user", {})
    algorithm = account.get("hashing_algorithm", "rabbit_password_hashing_sha256")
    access.put_user(User(
        USER, "" if account.get("no_password") else hash_password(PASSWORD, algorithm),
        algorithm, limits=UserLimits.from_definition(scenario.get("user_limits", {}))))
    access.put_user(User(ADMIN, hash_password("guest"), tags=frozenset({"administrator"})))
    access.set_permissions(ADMIN, VHOST, Permissions())
    if scenario.get("permissions") is not None:
        access.set_permissions(USER, VHOST, Permissions(*scenario["permissions"]))
    for exchange, write, read in scenario.get("topic_permissions", []):
        access.set_topic_permissions(USER, VHOST, TopicPermissions(exchange, write, read))
    return access


class World:
    """Which exchanges (name -> type) and queues exist; the 404s that follow the checks."""

    def __init__(self) -> None:
        self.exchanges = dict(PREDECLARED)
        self.queues: set[str] = set()

    def exchange(self, name: str) -> str:
        if name == "":
            return "direct"
        if name not in self.exchanges:
            raise NotFound(f"no exchange '{name}' in vhost '{VHOST}'")
        return self.exchanges[name]

    def queue(self, name: str) -> None:
        if name not in self.queues and name != DIRECT_REPLY_TO:
            raise NotFound(f"no queue '{name}' in vhost '{VHOST}'")

    def setup(self, operation: str, args: dict[str, Any]) -> None:
        if operation == "exchange.declare":
            self.exchanges[args["exchange"]] = args.get("type", "direct")
        elif operation == "queue.declare":
            self.queues.add(args["queue"])


def perform(p: Principal, world: World, operation: str, args: dict[str, Any]) -> None:
    """One operation the way a handler makes it: the access table's method first, then the
    topology's own lookups."""
    arguments = args.get("arguments") or {}
    if operation == "exchange.declare":
        name, passive = args["exchange"], args.get("passive", False)
        p.exchange_declare(name, passive=passive, exists=name in world.exchanges,
                           alternate_exchange=arguments.get("alternate-exchange"))
        if passive:
            world.exchange(name)
        world.exchanges.setdefault(name, args.get("type", "direct"))
    elif operation == "exchange.delete":
        p.exchange_delete(args["exchange"])
        world.exchanges.pop(args["exchange"], None)
    elif operation == "queue.declare":
        name = args["queue"] or "amq.gen-*"  # the generated name, as the recording shows it
        passive = args.get("passive", False)
        p.queue_declare(name, passive=passive, exists=name in world.queues,
                        server_named=not args["queue"], queue_count=len(world.queues),
                        dead_letter_exchange=arguments.get("x-dead-letter-exchange"))
        if passive:
            world.queue(name)
        world.queues.add(name)
    elif operation == "queue.delete":
        p.queue_delete(args["queue"])
        world.queues.discard(args["queue"])
    elif operation == "queue.purge":
        p.queue_purge(args["queue"])
        world.queue(args["queue"])
    elif operation == "basic.get":
        p.basic_get(args["queue"])
        world.queue(args["queue"])
    elif operation == "basic.consume":
        p.basic_consume(args["queue"])
        world.queue(args["queue"])
    elif operation in ("queue.bind", "queue.unbind"):
        p.queue_bind(args["queue"], args["exchange"], args["routing_key"],
                     exchange_type=world.exchanges.get(args["exchange"]))
        if operation == "queue.bind":
            world.exchange(args["exchange"])
            world.queue(args["queue"])
    elif operation in ("exchange.bind", "exchange.unbind"):
        p.exchange_bind(args["destination"], args["source"], args["routing_key"],
                        source_type=world.exchanges.get(args["source"]))
        if operation == "exchange.bind":
            world.exchange(args["destination"])
            world.exchange(args["source"])
    elif operation == "basic.publish":
        p.basic_publish(args["exchange"])
        exchange_type = world.exchange(args["exchange"])
        headers = args.get("headers") or {}
        p.publish_routing_keys(args["exchange"], exchange_type, args["routing_key"],
                               [*headers.get("CC", []), *headers.get("BCC", [])])
    else:
        raise AssertionError(f"unknown operation {operation}")


def resource_outcome(scenario: dict[str, Any], access: AccessControl) -> Any:
    world = World()
    for operation, args in scenario.get("setup", []):
        world.setup(operation, args)
    principal = Principal.open(access, USER, VHOST, counters=TenantCounters())
    operation, args = scenario["operation"]
    try:
        perform(principal, world, operation, args)
    except AMQPError as err:
        return ["channel", err.reply_code, err.reply_text]
    return "ok"


def login_outcome(scenario: dict[str, Any], access: AccessControl) -> Any:
    """The AMQP handshake in RabbitMQ's order: SASL, login, tune-ok, connection.open, then
    channel.open for each listed channel."""
    login = scenario["login"]
    mechanism = login.get("mechanism", "PLAIN")
    if mechanism == "AMQPLAIN":
        response = encode_table({"LOGIN": login["user"], "PASSWORD": login["password"]})[4:]
    else:
        response = login["response"].encode()
    try:
        user, password = read_response(mechanism, response)
    except (CommandInvalid, FrameSyntaxError):
        return ["silent-close"]  # RabbitMQ logs these and closes without connection.close
    try:
        access.authenticate(user, password, check_password=verify_password, loopback=True,
                            mechanism=mechanism)
    except LoginRefused as err:
        return ["close", 403, err.reply_text] if login.get("capabilities", True) else [
            "silent-close"]
    try:
        channel_max = negotiate_tune("channel_max", login.get("channel_max", SERVER_CHANNEL_MAX),
                                     SERVER_CHANNEL_MAX)
    except NotAllowed:
        return ["silent-close"]
    counters = TenantCounters()
    for _ in range(scenario.get("hold_connections", 0)):
        counters.connection_opened(user, VHOST)
    for _ in range(scenario.get("hold_channels", 0)):
        counters.channel_opened(user)
    try:
        principal = Principal.open(access, user, login["vhost"], counters=counters)
    except NotAllowed as err:
        return ["close", 530, err.reply_text]
    counters.connection_opened(user, login["vhost"])
    outcome: list[Any] = ["open"]
    for open_here, number in enumerate(login.get("channels", [])):
        try:
            principal.channel_open(open_channels=open_here, channel_max=channel_max,
                                   user_channels=counters.user_channels.get(user, 0))
        except NotAllowed as err:
            outcome.append(["close", 530, err.reply_text])
            break
        counters.channel_opened(user)
        outcome.append([number, "open"])
    return outcome


@pytest.mark.parametrize("generation", list(PROFILES))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s["name"])
def test_model_gives_rabbitmqs_answer(scenario: dict[str, Any], generation: str) -> None:
    access = registry(scenario, generation)
    if "login" in scenario:
        outcome = login_outcome(scenario, access)
    else:
        outcome = resource_outcome(scenario, access)
    assert outcome == expected(scenario, generation)


def test_every_generation_difference_has_a_scenario() -> None:
    from minibroker.core import generations as g

    access_rows = {
        "passive_declare_needs_permission": g.PASSIVE_DECLARE_NEEDS_PERMISSION,
        "queue_limit_after_dead_letter_check": g.QUEUE_LIMIT_AFTER_DEAD_LETTER_CHECK,
        "topic_check_covers_cc_bcc": g.TOPIC_CHECK_COVERS_CC_BCC,
        "user_channel_limit_text": g.USER_CHANNEL_LIMIT_TEXT,
    }
    named = {scenario["difference"] for scenario in SCENARIOS if "difference" in scenario}
    assert named == set(access_rows)
    # The two text rows are exercised by every permission refusal ("refused").
    assert {*access_rows.values(), g.RESOURCE_REFUSED_TEXT, g.TOPIC_REFUSED_TEXT} == set(
        g.ACCESS_ROWS)
    assert any(s.get("refused") and "topic" in str(s["rabbitmq_3.10"]) for s in SCENARIOS)
