"""``python -m minibroker`` with a data directory: what survives, the lock, the flags, export.

Each test runs the real process (``kill -9`` included) on a fresh directory of its own."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20
READY = re.compile(r"^minibroker listening on minibroker://127\.0\.0\.1:(\d+) \(native\)"
                   r" and amqp://guest:guest@127\.0\.0\.1:(\d+)/ \(AMQP 0-9-1\)"
                   r"(?: and http://\S+ \(management\))?; (.*)$")


def _environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MINIBROKER_DATA_DIR", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class Broker:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "minibroker", "--port", "0", "--heartbeat", "0",
             "--management-port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env or _environment())
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], TIMEOUT)
        assert readable, "no ready line"
        self.line = self.process.stdout.readline()
        found = READY.match(self.line)
        assert found, (self.line, self.process.stderr.read() if self.process.poll() else "")
        self.port = int(found.group(2))
        self.where = found.group(3)

    def connect(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.port))

    def stop(self, signum: int = signal.SIGTERM) -> str:
        self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=TIMEOUT)
        return err


@pytest.fixture
def brokers() -> Iterator[list[Broker]]:
    started: list[Broker] = []
    yield started
    for broker in started:
        if broker.process.poll() is None:
            broker.process.kill()
        broker.process.communicate(timeout=TIMEOUT)


def _publish(broker: Broker, count: int) -> None:
    connection = broker.connect()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare("orders", "topic", durable=True)
    channel.queue_declare("billing", durable=True)
    channel.queue_bind("billing", "orders", "order.#")
    channel.queue_declare("scratch", durable=False)
    for i in range(count):
        channel.basic_publish("orders", "order.new", f"p{i}".encode(),
                              pika.BasicProperties(delivery_mode=2, message_id=str(i)))
    channel.basic_publish("orders", "order.new", b"transient")
    connection.close()


def _drain(broker: Broker, queue: str) -> list[tuple[bytes, bool]]:
    connection = broker.connect()
    channel = connection.channel()
    got = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        got.append((body, method.redelivered))
    connection.close()
    return got


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["clean", "kill-9"])
def test_durable_state_survives_a_restart(tmp_path: Path, brokers: list[Broker],
                                          stop: int) -> None:
    data = str(tmp_path / "data")
    brokers.append(first := Broker("--data-dir", data))
    assert first.where == f"data in {data}"
    _publish(first, 5)
    first.stop(stop)
    brokers.append(second := Broker("--data-dir", data))
    connection = second.connect()
    channel = connection.channel()
    channel.queue_declare("billing", passive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        channel.queue_declare("scratch", passive=True)  # non-durable: gone
    connection.close()
    got = _drain(second, "billing")
    assert [body for body, _ in got] == [f"p{i}".encode() for i in range(5)]  # no transient
    assert all(redelivered == (stop == signal.SIGKILL) for _, redelivered in got)
    # The binding came back too: a new publish is routed.
    _publish(second, 1)
    assert [body for body, _ in _drain(second, "billing")] == [b"p0", b"transient"]


def test_a_second_broker_on_the_directory_names_it_and_the_pid(tmp_path: Path,
                                                              brokers: list[Broker]) -> None:
    data = str(tmp_path / "data")
    brokers.append(first := Broker("--data-dir", data))
    result = subprocess.run(
        [sys.executable, "-m", "minibroker", "--port", "0", "--no-management", "--data-dir",
         data],
        capture_output=True, text=True, timeout=TIMEOUT, env=_environment())
    assert result.returncode == 2 and result.stdout == ""
    assert data in result.stderr and str(first.process.pid) in result.stderr, result.stderr


def test_in_memory_says_so_and_the_environment_variable_is_the_default(
        tmp_path: Path, brokers: list[Broker]) -> None:
    brokers.append(memory := Broker("--in-memory"))
    assert memory.where == "in memory only (nothing survives a restart)"
    data = str(tmp_path / "env-data")
    brokers.append(from_env := Broker(env=_environment(MINIBROKER_DATA_DIR=data)))
    assert from_env.where == f"data in {data}"
    assert (Path(data) / "LOCK").exists()


def test_definitions_load_at_start_and_export_from_the_directory(
        tmp_path: Path, brokers: list[Broker]) -> None:
    definitions = tmp_path / "definitions.json"
    definitions.write_text(json.dumps({
        "exchanges": [{"name": "events", "vhost": "/", "type": "fanout", "durable": True,
                       "auto_delete": False, "internal": False, "arguments": {}}],
        "queues": [{"name": "audit", "vhost": "/", "durable": True, "auto_delete": False,
                    "arguments": {"x-max-length": 10}}],
        "bindings": [{"source": "events", "vhost": "/", "destination": "audit",
                      "destination_type": "queue", "routing_key": "", "arguments": {}}],
    }))
    data = str(tmp_path / "data")
    brokers.append(broker := Broker("--data-dir", data, "--definitions", str(definitions)))
    connection = broker.connect()
    channel = connection.channel()
    channel.basic_publish("events", "", b"x")
    assert channel.queue_declare("audit", passive=True).method.message_count == 1
    connection.close()
    broker.stop()
    result = subprocess.run(
        [sys.executable, "-m", "minibroker", "export-definitions", "--data-dir", data],
        capture_output=True, text=True, timeout=TIMEOUT, env=_environment())
    assert result.returncode == 0, result.stderr
    exported = json.loads(result.stdout)
    assert [q["name"] for q in exported["queues"]] == ["audit"]
    assert exported["queues"][0]["arguments"] == {"x-max-length": 10}
    assert [(e["name"], e["type"]) for e in exported["exchanges"]] == [("events", "fanout")]
    assert [(b["source"], b["destination"]) for b in exported["bindings"]] == [
        ("events", "audit")]


def test_export_refuses_a_directory_in_use(tmp_path: Path, brokers: list[Broker]) -> None:
    data = str(tmp_path / "data")
    brokers.append(broker := Broker("--data-dir", data))
    result = subprocess.run(
        [sys.executable, "-m", "minibroker", "export-definitions", "--data-dir", data],
        capture_output=True, text=True, timeout=TIMEOUT, env=_environment())
    assert result.returncode == 2
    assert str(broker.process.pid) in result.stderr


def test_definitions_load_in_memory_too(tmp_path: Path, brokers: list[Broker]) -> None:
    definitions = tmp_path / "definitions.json"
    definitions.write_text(json.dumps({"queues": [
        {"name": "audit", "vhost": "/", "durable": True, "auto_delete": False,
         "arguments": {}}]}))
    brokers.append(broker := Broker("--in-memory", "--definitions", str(definitions)))
    connection = broker.connect()
    assert connection.channel().queue_declare("audit", passive=True).method.queue == "audit"
    connection.close()
