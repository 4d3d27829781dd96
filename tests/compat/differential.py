"""Helpers for the differential tests: a scenario runs against one broker URL with pika's
BlockingConnection and returns its observable outcome as plain JSON-able data.

Rules: names are unique per run (``mbdiff-<hex>-...``) and everything a scenario declares is
deleted afterwards, so the same scenario can run against a shared RabbitMQ; every client call
is bounded by socket/blocked timeouts; outcomes never contain broker-generated names (only
their shape).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, ChannelClosedByBroker, ConnectionClosedByBroker

TIMEOUT = 10.0

Outcome = list[Any]
Scenario = Callable[["Env"], Outcome]

#: name -> scenario function, in definition order.
SCENARIOS: dict[str, Scenario] = {}
#: name -> what the newest RabbitMQ minibroker models (4.2) answers, for the scenarios (of
#: either registry) where it differs from RabbitMQ 3.10, written down from RabbitMQ's source and
#: release notes. The recording (``rabbitmq_outcomes.json``) holds what 3.10 answers.
NEWEST_OUTCOMES: dict[str, Outcome] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


class Env:
    """One scenario run against one broker: connections, unique names, cleanup."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"mbdiff-{uuid.uuid4().hex[:10]}"
        self.queues: set[str] = set()
        self.exchanges: set[str] = set()
        self.connections: list[pika.BlockingConnection] = []

    def connect(self) -> pika.BlockingConnection:
        params = pika.URLParameters(self.url)
        params.socket_timeout = TIMEOUT
        params.blocked_connection_timeout = TIMEOUT
        params.stack_timeout = TIMEOUT
        params.connection_attempts = 1
        connection = pika.BlockingConnection(params)
        self.connections.append(connection)
        return connection

    def channel(self) -> BlockingChannel:
        """A channel on a fresh connection."""
        return self.connect().channel()

    def q(self, tag: str) -> str:
        name = f"{self.prefix}-q-{tag}"
        self.queues.add(name)
        return name

    def x(self, tag: str) -> str:
        name = f"{self.prefix}-x-{tag}"
        self.exchanges.add(name)
        return name

    def close(self) -> None:
        for connection in self.connections:
            if connection.is_open:
                with contextlib.suppress(AMQPError):
                    connection.close()
        if not (self.queues or self.exchanges):
            return
        cleanup = self.connect()
        try:
            channel = cleanup.channel()
            for queue in sorted(self.queues):
                channel.queue_delete(queue)
            for exchange in sorted(self.exchanges):
                channel.exchange_delete(exchange)
        finally:
            if cleanup.is_open:
                cleanup.close()


def attempt(fn: Callable[[], Any]) -> Any:
    """``"ok"`` or the broker's answer as ``["channel", code]`` / ``["connection", code]``."""
    try:
        fn()
    except ChannelClosedByBroker as err:
        return ["channel", err.reply_code]
    except ConnectionClosedByBroker as err:
        return ["connection", err.reply_code]
    return "ok"


def attempt_text(fn: Callable[[], Any]) -> Any:
    """Like :func:`attempt`, with the reply text (for errors whose wording clients check)."""
    try:
        fn()
    except ChannelClosedByBroker as err:
        return ["channel", err.reply_code, err.reply_text]
    except ConnectionClosedByBroker as err:
        return ["connection", err.reply_code, err.reply_text]
    return "ok"


def get_all(channel: BlockingChannel, queue: str, *, ack: bool = True) -> list[str]:
    """Every ready message body of ``queue`` via basic.get, in order."""
    bodies = []
    while True:
        method, _, body = channel.basic_get(queue, auto_ack=ack)
        if method is None:
            return bodies
        bodies.append(body.decode())


def ready(channel: BlockingChannel, queue: str) -> list[int]:
    """[ready messages, consumers] of ``queue`` (passive queue.declare)."""
    ok = channel.queue_declare(queue, passive=True).method
    return [ok.message_count, ok.consumer_count]


def consume_n(channel: BlockingChannel, queue: str, count: int, **kwargs: Any) -> list[Any]:
    """Receive ``count`` deliveries: [body, redelivered] each, unacked (fails on timeout)."""
    got: list[Any] = []
    if count == 0:
        return got
    for method, _, body in channel.consume(queue, inactivity_timeout=TIMEOUT, **kwargs):
        assert method is not None, f"timed out after {len(got)} of {count} deliveries"
        got.append([body.decode(), method.redelivered, method.delivery_tag])
        if len(got) == count:
            return got
    return got


def run_scenario(name: str, url: str) -> Outcome:
    """Run one scenario; the run's unique name prefix reads ``<prefix>`` in the outcome."""
    env = Env(url)
    try:
        outcome = SCENARIOS[name](env)
    finally:
        env.close()
    text = json.dumps(outcome).replace(env.prefix, "<prefix>")
    result: Outcome = json.loads(text)
    return result
