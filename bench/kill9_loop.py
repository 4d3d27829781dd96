"""kill -9 at random moments, restart, drain, check: does a confirmed message ever get lost?

Each cycle starts the broker on one data directory, runs a publisher (persistent messages,
publisher confirms, a unique client-generated id per message) and a consumer (manual acks)
over AMQP with pika, and kills the broker with SIGKILL at a random moment. After the last cycle
a final broker is drained. Reported: cycles, messages confirmed, lost (confirmed but never
seen by any consumer), duplicates (an id delivered again without the ``redelivered`` flag;
re-deliveries flagged redelivered are at-least-once, as promised), and restart times.

    python bench/kill9_loop.py --cycles 200 --seconds 900            # minibroker
    python bench/kill9_loop.py --target rabbitmq --cycles 20         # a RabbitMQ node of its own

``--target rabbitmq`` starts a second RabbitMQ node (``rabbitmq-server`` with its own node name,
ports, data and log directories in a temporary directory, no plugins) and stops it at the end;
it never touches a node on 5672. Bounded by ``--cycles`` and ``--seconds``; the loop stops by
itself.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pika
import pika.exceptions

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "kill9"


@dataclass
class Tally:
    confirmed: set[str] = field(default_factory=set)
    #: id -> deliveries seen: (redelivered flag, ...)
    seen: dict[str, list[bool]] = field(default_factory=dict)
    published = 0
    restarts: list[float] = field(default_factory=list)

    def delivered(self, msg_id: str, redelivered: bool) -> None:
        self.seen.setdefault(msg_id, []).append(redelivered)


class Minibroker:
    name = "minibroker"

    def __init__(self, directory: str, sync: str) -> None:
        self.directory = directory
        self.sync = sync
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self) -> float:
        started = time.perf_counter()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "minibroker", "--port", "0", "--management-port", "0",
             "--heartbeat", "0",
             "--data-dir", self.directory, "--sync", self.sync, "--log-level", "error"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline() if ready else ""
        found = re.search(r"amqp://guest:guest@127\.0\.0\.1:(\d+)/", line)
        if not found:
            raise RuntimeError(f"minibroker did not start: {line!r}")
        self.port = int(found.group(1))
        return time.perf_counter() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


class RabbitNode:
    """A RabbitMQ node of our own: own name, ports, data and logs; no plugins."""

    name = "rabbitmq"

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self.port = _free_port()
        self.dist_port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        (self.directory / "enabled_plugins").write_text("[].\n")
        self.env = dict(
            os.environ, RABBITMQ_NODENAME="mbtest@localhost", RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port), RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_MNESIA_BASE=str(self.directory / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.directory / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.directory / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.directory / "pid"),
            RABBITMQ_CONFIG_FILE=str(self.directory / "none"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.directory / "none-advanced.config"))

    def start(self) -> float:
        started = time.perf_counter()
        server = shutil.which("rabbitmq-server", path="/usr/lib/rabbitmq/bin") or \
            shutil.which("rabbitmq-server")
        if server is None:
            raise RuntimeError("rabbitmq-server is not installed")
        self.process = subprocess.Popen([server], env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # an external process: poll its port, bounded
            try:
                pika.BlockingConnection(pika.ConnectionParameters(
                    "127.0.0.1", self.port, connection_attempts=1, socket_timeout=2)).close()
                return time.perf_counter() - started
            except pika.exceptions.AMQPError:
                if self.process.poll() is not None:
                    raise RuntimeError("the RabbitMQ node exited at start") from None
                time.sleep(0.1)
        raise RuntimeError("the RabbitMQ node did not accept connections within 120 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        self.kill()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _publisher(port: int, cycle: int, tally: Tally, stop: threading.Event) -> None:
    try:
        connection = pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", port, heartbeat=0, connection_attempts=1))
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True)
        channel.confirm_delivery()
        n = 0
        while not stop.is_set():
            msg_id = f"{cycle}-{n}"
            n += 1
            tally.published += 1
            channel.basic_publish("", QUEUE, msg_id.encode(),
                                  pika.BasicProperties(delivery_mode=2, message_id=msg_id))
            tally.confirmed.add(msg_id)  # basic_publish returned: the broker confirmed it
    except (pika.exceptions.AMQPError, OSError):
        return  # the broker died under us


def _consumer(port: int, tally: Tally, stop: threading.Event, ack_every: int = 1) -> None:
    try:
        connection = pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", port, heartbeat=0, connection_attempts=1))
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True)
        channel.basic_qos(prefetch_count=100)
        for method, properties, _body in channel.consume(QUEUE, inactivity_timeout=0.2):
            if stop.is_set():
                break
            if method is None:
                continue
            tally.delivered(properties.message_id, method.redelivered)
            channel.basic_ack(method.delivery_tag)
    except (pika.exceptions.AMQPError, OSError, AttributeError):
        return


def _drain(port: int, tally: Tally) -> None:
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    channel = connection.channel()
    channel.queue_declare(QUEUE, durable=True)
    for method, properties, _body in channel.consume(QUEUE, inactivity_timeout=2):
        if method is None:
            break
        tally.delivered(properties.message_id, method.redelivered)
        channel.basic_ack(method.delivery_tag)
    connection.close()


def run(target: Minibroker | RabbitNode, cycles: int, seconds: float, seed: int,
        kill_after: tuple[float, float]) -> dict[str, object]:
    rng = random.Random(seed)
    tally = Tally()
    deadline = time.monotonic() + seconds
    done = 0
    try:
        for cycle in range(cycles):
            if time.monotonic() > deadline:
                break
            tally.restarts.append(target.start())
            stop = threading.Event()
            threads = [threading.Thread(target=_publisher, args=(target.port, cycle, tally, stop)),
                       threading.Thread(target=_consumer, args=(target.port, tally, stop))]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(*kill_after))  # a random moment: that is the experiment
            target.kill()
            stop.set()
            for thread in threads:
                thread.join(30)
            done += 1
        tally.restarts.append(target.start())
        _drain(target.port, tally)
    finally:
        target.stop()
    lost = tally.confirmed - tally.seen.keys()
    duplicates = sum(1 for flags in tally.seen.values() if len(flags) > 1 and not all(flags[1:]))
    redelivered = sum(1 for flags in tally.seen.values() if len(flags) > 1)
    restarts = sorted(tally.restarts)
    return {
        "target": target.name, "cycles": done, "published": tally.published,
        "confirmed": len(tally.confirmed), "lost": len(lost),
        "duplicates (not flagged redelivered)": duplicates,
        "delivered again, flagged redelivered": redelivered - duplicates,
        "restart s (min / median / max)":
            f"{restarts[0]:.2f} / {restarts[len(restarts) // 2]:.2f} / {restarts[-1]:.2f}",
        "lost ids (first 10)": sorted(lost)[:10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=["minibroker", "rabbitmq"], default="minibroker")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--sync", choices=["always", "never"], default="always")
    parser.add_argument("--kill-after", type=float, nargs=2, default=(0.2, 1.0),
                        metavar=("MIN", "MAX"), help="seconds of traffic before each kill")
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix=f"kill9-{args.target}-")
    try:
        target: Minibroker | RabbitNode = (
            Minibroker(directory, args.sync) if args.target == "minibroker"
            else RabbitNode(directory))
        result = run(target, args.cycles, args.seconds, args.seed, tuple(args.kill_after))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0 if result["lost"] == 0 and result["duplicates (not flagged redelivered)"] == 0 \
        else 1


if __name__ == "__main__":
    raise SystemExit(main())
