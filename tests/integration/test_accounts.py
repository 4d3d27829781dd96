"""Where users come from: the CLI's --user, a RabbitMQ definitions file, the test toolkit —
each checked by logging in over a real socket."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pika
import pytest
from pika.exceptions import ProbableAuthenticationError

from minibroker.cli import build_parser
from minibroker.cli_security import parse_user, security_options
from minibroker.passwords import hash_password
from minibroker.testing import broker_in_thread

TIMEOUT = 10.0


def _login(port: int, user: str, password: str) -> None:
    pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", port, credentials=pika.PlainCredentials(user, password),
        connection_attempts=1, socket_timeout=TIMEOUT, stack_timeout=TIMEOUT)).close()


@pytest.mark.parametrize(("text", "parsed"), [
    ("app:s3cret", ("app", "s3cret", ("/",))),
    ("app:a:b", ("app", "a:b", ("/",))),
    ("app:s3cret@/,orders", ("app", "s3cret", ("/", "orders"))),
    ("app:p@ss@/", ("app", "p@ss", ("/",))),
])
def test_user_option(text: str, parsed: tuple[str, str, tuple[str, ...]]) -> None:
    assert parse_user(text) == parsed


@pytest.mark.parametrize("text", ["app", ":pw", "app:pw@"])
def test_a_bad_user_option_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_user(text)


def test_cli_users_replace_guest_and_name_their_vhosts() -> None:
    parser = build_parser()
    args = parser.parse_args(["--user", "app:s3cret@/,orders", "--vhost", "audit",
                              "--allow-remote-guest"])
    options = security_options(parser, args)
    assert options == {"users": {"app": "s3cret"}, "user_vhosts": {"app": ("/", "orders")},
                       "vhosts": ("audit", "orders"), "loopback_users": frozenset()}
    with broker_in_thread(heartbeat=0, **options) as broker:
        access = broker.server.access
        assert set(access.users) == {"app"} and set(access.vhosts) == {"/", "audit", "orders"}
        assert access.permissions("app", "audit") is None
        _login(broker.port, "app", "s3cret")
        with pytest.raises(ProbableAuthenticationError):
            _login(broker.port, "guest", "guest")


def test_tls_options_need_a_tls_port() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        security_options(parser, parser.parse_args(["--certfile", "c.pem"]))
    with pytest.raises(SystemExit):
        security_options(parser, parser.parse_args(["--tls-port", "0"]))


def test_a_definitions_file_brings_users_vhosts_and_permissions(tmp_path: Path) -> None:
    document = {
        "users": [{"name": "ops", "password_hash": hash_password("hunter2"),
                   "hashing_algorithm": "rabbit_password_hashing_sha256",
                   "tags": ["administrator"], "limits": {"max-connections": 5}}],
        "vhosts": [{"name": "/"}, {"name": "orders", "limits": {"max-queues": 3}}],
        "permissions": [{"user": "ops", "vhost": "orders", "configure": "^ops\\.",
                         "write": ".*", "read": ".*"}],
        "topic_permissions": [{"user": "ops", "vhost": "orders", "exchange": "amq.topic",
                               "write": "^a", "read": ".*"}],
    }
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(document))
    with broker_in_thread(heartbeat=0, definitions_file=str(path)) as broker:
        access = broker.server.access
        assert access.users["ops"].tags == frozenset({"administrator"})
        assert access.users["ops"].limits.max_connections == 5
        assert access.vhosts["orders"].limits.max_queues == 3
        permissions = access.permissions("ops", "orders")
        assert permissions is not None and permissions.configure == "^ops\\."
        assert set(access.topic_permissions("ops", "orders")) == {"amq.topic"}
        _login(broker.port, "guest", "guest")  # the defaults stay
        with pytest.raises(ProbableAuthenticationError):
            _login(broker.port, "ops", "wrong")


def test_toolkit_users_log_in_and_survive_a_restart() -> None:
    with broker_in_thread(heartbeat=0) as broker:
        broker.add_user("ann", "p@ss:w/rd", tags=["management"])
        assert broker.amqp_url_for("ann").startswith("amqp://ann:p%40ss%3Aw%2Frd@")
        _login(broker.port, "ann", "p@ss:w/rd")
        broker.restart()
        _login(broker.port, "ann", "p@ss:w/rd")
        assert broker.server.access.users["ann"].tags == frozenset({"management"})


def test_reset_restores_the_accounts_the_options_made() -> None:
    with broker_in_thread(heartbeat=0, vhosts=("orders",)) as broker:
        broker.add_user("ann", "pw")
        broker.add_vhost("extra")
        broker.reset()
        access = broker.server.access
        assert set(access.users) == {"guest"} and set(access.vhosts) == {"/", "orders"}
        with pytest.raises(KeyError, match="no user 'ann'"):
            broker.url_for("ann")


def test_tags_of_every_user() -> None:
    with broker_in_thread(heartbeat=0) as broker:
        broker.add_user("ann", "pw", tags=["management"])
        assert broker.server.access.tags() == {"guest": frozenset({"administrator"}),
                                               "ann": frozenset({"management"})}
