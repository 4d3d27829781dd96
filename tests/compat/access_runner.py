"""Run the access-control scenarios of ``access_scenarios.json`` against one broker.

A scenario is data: the user's permissions (and topic permissions, limits) in a vhost of its
own, what an administrator sets up there first, and one operation — an AMQP method sent by the
user through pika, or a handshake sent over a raw socket. Its outcome is plain JSON, with the
run's generated names replaced by ``{vhost}``, ``{user}``, ``{missing}`` and generated queue
names by ``amq.gen-*``, so one recording serves every run and every broker.

Rules:

1. Every scenario gets its own vhost and user (``mbsec-<run>-v007`` / ``-u007``): scenarios never
   see each other's resources or counters, so they can run concurrently.
2. :func:`definitions` turns the scenarios into one RabbitMQ definitions document (users with
   password hashes made by ``minibroker.passwords``, vhosts, permissions, topic permissions,
   vhost limits); a provisioner loads it into the broker under test (``rabbitmqctl
   import_definitions`` for RabbitMQ) and removes it afterwards.
3. The administrator (``guest``, with every permission on every scenario vhost) does the setup;
   the scenario's user does the operation.
4. The raw handshake client is independent of minibroker's codec (pamqp and ``struct``), reads
   with a timeout, and tells a connection.close apart from a socket closed without one
   (``["silent-close"]``: RabbitMQ's answer to unreadable logins, after a delay).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
from pamqp import commands as C
from pamqp import encode
from pamqp import frame as F
from pamqp import header as H
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, ChannelClosedByBroker, ConnectionClosedByBroker

from minibroker.passwords import hash_password

SCENARIO_FILE = Path(__file__).with_name("access_scenarios.json")
TIMEOUT = 10.0
ADMIN = ("guest", "guest")

Outcome = Any


def dump(data: dict[str, Any]) -> str:
    """The scenario file's layout: one scenario per line, so that it reads as a table."""
    lines = ",\n  ".join(json.dumps(scenario, ensure_ascii=False)
                         for scenario in data["scenarios"])
    about = json.dumps(data["about"], ensure_ascii=False)
    return f'{{\n "about": {about},\n "scenarios": [\n  {lines}\n ]\n}}\n'


def load() -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(SCENARIO_FILE.read_text())
    scenarios: list[dict[str, Any]] = data["scenarios"]
    return scenarios


def expected(scenario: dict[str, Any], generation: str) -> Outcome:
    """What a broker of ``generation`` (``"3.10"`` or ``"current"``) answers. Current releases
    name the refused permission (``"configure access to queue ..."``) and differ where the
    scenario names a ``difference`` (then ``current`` says how)."""
    recorded = scenario["rabbitmq_3.10"]
    if generation == "3.10":
        return recorded
    if "current" in scenario:
        return scenario["current"]
    if "refused" in scenario:
        text = json.dumps(recorded).replace("ACCESS_REFUSED - access to ",
                                            f"ACCESS_REFUSED - {scenario['refused']} access to ")
        return json.loads(text)
    return recorded


@dataclass(frozen=True)
class Names:
    """The generated names of one run (rule 1)."""

    run: str

    def vhost(self, index: int) -> str:
        return f"mbsec-{self.run}-v{index:03d}"

    def user(self, index: int) -> str:
        return f"mbsec-{self.run}-u{index:03d}"

    def password(self, index: int) -> str:
        return f"pw-{self.run}-{index:03d}"

    @property
    def missing(self) -> str:
        return f"mbsec-{self.run}-missing"

    def fill(self, value: Any, index: int) -> Any:
        """``{user}``, ``{vhost}``, ``{password}``, ``{missing}`` filled in, recursively."""
        if isinstance(value, str):
            return (value.replace("{user}", self.user(index))
                    .replace("{vhost}", self.vhost(index))
                    .replace("{password}", self.password(index))
                    .replace("{missing}", self.missing))
        if isinstance(value, list):
            return [self.fill(item, index) for item in value]
        if isinstance(value, dict):
            return {key: self.fill(item, index) for key, item in value.items()}
        return value

    def generalise(self, outcome: Outcome, index: int) -> Outcome:
        """The outcome with this run's names replaced by placeholders."""
        text = json.dumps(outcome)
        text = (text.replace(self.vhost(index), "{vhost}").replace(self.user(index), "{user}")
                .replace(self.missing, "{missing}"))
        text = re.sub(r"amq\.gen-[A-Za-z0-9_-]+", "amq.gen-*", text)
        return json.loads(text)


def definitions(scenarios: list[dict[str, Any]], names: Names) -> dict[str, Any]:
    """Rule 2: everything the scenarios need, as one definitions document."""
    users, vhosts, permissions, topic, parameters = [], [], [], [], []
    for index, scenario in enumerate(scenarios):
        vhost, user = names.vhost(index), names.user(index)
        vhosts.append({"name": vhost})
        permissions.append({"user": ADMIN[0], "vhost": vhost,
                            "configure": ".*", "write": ".*", "read": ".*"})
        account = scenario.get("user", {})
        algorithm = account.get("hashing_algorithm", "rabbit_password_hashing_sha256")
        password_hash = ("" if account.get("no_password")
                         else hash_password(names.password(index), algorithm))
        users.append({"name": user, "password_hash": password_hash,
                      "hashing_algorithm": algorithm, "tags": [],
                      "limits": scenario.get("user_limits", {})})
        granted = scenario.get("permissions")
        if granted is not None:
            configure, write, read = granted
            permissions.append({"user": user, "vhost": vhost, "configure": configure,
                                "write": write, "read": read})
        for exchange, write, read in scenario.get("topic_permissions", []):
            topic.append({"user": user, "vhost": vhost, "exchange": exchange,
                          "write": write, "read": read})
        if "vhost_limits" in scenario:
            parameters.append({"vhost": vhost, "component": "vhost-limits", "name": "limits",
                               "value": scenario["vhost_limits"]})
    # Imported last (after parameters): once it exists, the import has finished.
    sentinel = {"name": f"mbsec-{names.run}-ready", "vhost": vhosts[-1]["name"],
                "durable": True, "auto_delete": False, "arguments": {}}
    return {"users": users, "vhosts": vhosts, "permissions": permissions,
            "topic_permissions": topic, "parameters": parameters, "queues": [sentinel]}


# -- resource scenarios (pika) -------------------------------------------------------------------


def connect(host: str, port: int, vhost: str, user: str, password: str) -> pika.BlockingConnection:
    params = pika.ConnectionParameters(
        host, port, vhost, pika.PlainCredentials(user, password), connection_attempts=1,
        socket_timeout=TIMEOUT, blocked_connection_timeout=TIMEOUT, stack_timeout=TIMEOUT)
    return pika.BlockingConnection(params)


def perform(channel: BlockingChannel, operation: str, args: dict[str, Any]) -> None:
    """One AMQP method, as pika sends it."""
    arguments = args.get("arguments")
    if operation == "exchange.declare":
        channel.exchange_declare(args["exchange"], args.get("type", "direct"),
                                 passive=args.get("passive", False),
                                 durable=args.get("durable", False), arguments=arguments)
    elif operation == "exchange.delete":
        channel.exchange_delete(args["exchange"])
    elif operation == "queue.declare":
        channel.queue_declare(args["queue"], passive=args.get("passive", False),
                              exclusive=args.get("exclusive", False), arguments=arguments)
    elif operation == "queue.delete":
        channel.queue_delete(args["queue"])
    elif operation == "queue.purge":
        channel.queue_purge(args["queue"])
    elif operation == "queue.bind":
        channel.queue_bind(args["queue"], args["exchange"], args.get("routing_key"))
    elif operation == "queue.unbind":
        channel.queue_unbind(args["queue"], args["exchange"], args.get("routing_key"))
    elif operation == "exchange.bind":
        channel.exchange_bind(args["destination"], args["source"], args.get("routing_key", ""))
    elif operation == "exchange.unbind":
        channel.exchange_unbind(args["destination"], args["source"], args.get("routing_key", ""))
    elif operation == "basic.publish":
        # Confirm mode, so that a refusal (which closes the channel) is seen by this call.
        channel.confirm_delivery()
        headers = args.get("headers")
        channel.basic_publish(args["exchange"], args["routing_key"], b"body",
                              pika.BasicProperties(headers=headers))
    elif operation == "basic.get":
        channel.basic_get(args["queue"])
    elif operation == "basic.consume":
        channel.basic_consume(args["queue"], lambda *_: None, auto_ack=True)
    else:
        raise ValueError(f"unknown scenario operation {operation!r}")


def resource_outcome(scenario: dict[str, Any], index: int, names: Names,
                     host: str, port: int) -> Outcome:
    vhost = names.vhost(index)
    admin = connect(host, port, vhost, *ADMIN)
    try:
        for operation, args in names.fill(scenario.get("setup", []), index):
            perform(admin.channel(), operation, args)
    finally:
        admin.close()
    connection = connect(host, port, vhost, names.user(index), names.password(index))
    try:
        operation, args = names.fill(scenario["operation"], index)
        try:
            perform(connection.channel(), operation, args)
        except ChannelClosedByBroker as err:
            return ["channel", err.reply_code, err.reply_text]
        except ConnectionClosedByBroker as err:
            return ["connection", err.reply_code, err.reply_text]
        return "ok"
    finally:
        if connection.is_open:
            with contextlib.suppress(AMQPError):
                connection.close()


# -- handshake scenarios (raw socket) ------------------------------------------------------------


class RawHandshake:
    """Rule 4: a client that sends exactly the handshake the scenario describes."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buffer = bytearray()

    def send(self, value: Any, channel: int = 0) -> None:
        self.sock.sendall(F.marshal(value, channel))

    def start_ok(self, mechanism: str, response: bytes, capabilities: bool) -> None:
        properties = ({"capabilities": {"authentication_failure_close": True}}
                      if capabilities else {})
        payload = (struct.pack(">HH", 10, 11) + encode.field_table(properties)
                   + encode.short_string(mechanism) + struct.pack(">I", len(response))
                   + response + encode.short_string("en_US"))
        self.sock.sendall(struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce")

    def receive(self) -> tuple[int, Any] | None:
        """The next frame, or ``None`` when the socket closed (EOF or reset) without one."""
        while True:
            if self.buffer:
                try:
                    used, channel, frame = F.unmarshal(bytes(self.buffer))
                except Exception:  # pamqp raises UnmarshalingException on partial frames
                    pass
                else:
                    del self.buffer[:used]
                    return channel, frame
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.buffer += data

    def close(self) -> None:
        self.sock.close()


def amqplain(login: str, password: str) -> bytes:
    """An AMQPLAIN response: a field table without its length prefix."""
    return encode.field_table({"LOGIN": login, "PASSWORD": password})[4:]


def handshake_outcome(scenario: dict[str, Any], index: int, names: Names,
                      host: str, port: int) -> Outcome:
    login = names.fill(scenario["login"], index)
    held = []
    try:
        for _ in range(scenario.get("hold_connections", 0)):
            held.append(connect(host, port, names.vhost(index), names.user(index),
                                names.password(index)))
        for _ in range(scenario.get("hold_channels", 0)):
            held[0].channel()
        return _probe(login, host, port)
    finally:
        for connection in held:
            with contextlib.suppress(AMQPError):
                connection.close()


def _probe(login: dict[str, Any], host: str, port: int) -> Outcome:
    client = RawHandshake(host, port)
    try:
        client.send(H.ProtocolHeader())
        if client.receive() is None:
            return ["silent-close"]
        mechanism = login.get("mechanism", "PLAIN")
        if mechanism == "AMQPLAIN":
            response = amqplain(login["user"], login["password"])
        else:
            response = login["response"].encode("utf-8")
        client.start_ok(mechanism, response, login.get("capabilities", True))
        answer = client.receive()
        if answer is None:
            return ["silent-close"]
        if isinstance(answer[1], C.Connection.Close):
            return ["close", answer[1].reply_code, answer[1].reply_text]
        tune = answer[1]
        client.send(C.Connection.TuneOk(channel_max=login.get("channel_max", tune.channel_max),
                                        frame_max=tune.frame_max, heartbeat=0))
        client.send(C.Connection.Open(virtual_host=login["vhost"]))
        answer = client.receive()
        if answer is None:
            return ["silent-close"]
        if isinstance(answer[1], C.Connection.Close):
            return ["close", answer[1].reply_code, answer[1].reply_text]
        outcome: list[Any] = ["open"]
        for number in login.get("channels", []):
            client.send(C.Channel.Open(), number)
            answer = client.receive()
            if answer is None:
                outcome.append(["silent-close"])
                break
            if isinstance(answer[1], C.Connection.Close):
                outcome.append(["close", answer[1].reply_code, answer[1].reply_text])
                client.send(C.Connection.CloseOk())
                break
            outcome.append([number, "open"])
        return outcome
    finally:
        client.close()


def run(scenario: dict[str, Any], index: int, names: Names, host: str, port: int) -> Outcome:
    """The generalised outcome of scenario ``index``."""
    if "login" in scenario:
        outcome = handshake_outcome(scenario, index, names, host, port)
    else:
        outcome = resource_outcome(scenario, index, names, host, port)
    return names.generalise(outcome, index)
