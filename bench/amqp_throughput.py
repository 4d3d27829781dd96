"""AMQP 0-9-1 throughput and broker CPU per message, minibroker vs RabbitMQ (run by hand).

    python bench/amqp_throughput.py                   # minibroker only, unless the URL below
    MINIBROKER_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/ python bench/amqp_throughput.py
    python bench/amqp_throughput.py --quick           # fewer messages
    python bench/amqp_throughput.py --profile x.prof  # minibroker under cProfile, top functions
    python bench/amqp_throughput.py --persistent      # durable queue, delivery_mode 2; minibroker
                                                      # with a data directory, fsync per confirm

Rules:

1. Same load shape for both brokers, in one run: one publisher and one consumer connection, one
   queue, 16-byte bodies, prefetch 100 and one basic.ack per delivery, a publisher in confirm
   mode keeping up to ``--window`` publishes in flight (it never waits a round trip per
   message). A warm-up run precedes every measured run.
2. Two clients. "minimal": a pipelining client over raw asyncio sockets built on our own
   ``AMQPCodec`` — publishes are pre-encoded method+header+body frames written in batches, and
   the consumer writes the acks for one read in one go — so the broker, not the client, is the
   bottleneck. "aio-pika": a real client, with publisher confirms and up to ``--window``
   concurrent ``publish()`` calls (pika's BlockingConnection confirms one message at a time).
3. Broker CPU per message = (utime + stime) / messages, read from /proc/<pid>/stat before and
   after a run: minibroker is a subprocess started here (``python -m minibroker --port 0``, its
   ready line gives the port); RabbitMQ is the ``beam.smp`` process found by scanning
   /proc/*/comm. RabbitMQ rows are skipped when MINIBROKER_RABBITMQ_URL is unset or
   unreachable; its idle CPU (management stats, timers) is printed so it can be judged.
4. Prints markdown tables, ratios minibroker / RabbitMQ included; copy them into
   docs/benchmarks.md with the date and machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from minibroker.message import Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.codec import AMQPCodec
from minibroker.protocols.amqp091.frames import ContentMethod, Frame, MethodFrame, encode_basic_ack
from minibroker.protocols.amqp091.methods import Method
from minibroker.protocols.amqp091.spec import PROTOCOL_HEADER

CLK_TCK = os.sysconf("SC_CLK_TCK")
QUEUE = "minibroker-bench-amqp"
#: ``--persistent``: a durable queue and persistent messages (set once by ``main``).
PERSISTENT = False
FRAME_MAX = 131072
M = TypeVar("M", bound=Method)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def find_beam_pid() -> int | None:
    """RabbitMQ's Erlang VM: the process whose comm is ``beam.smp``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "beam.smp":
                        return int(entry)
            except OSError:
                continue  # the process ended while we looked
    return None


@dataclass(frozen=True)
class Target:
    """One broker to measure: where it listens and whose CPU to read."""

    name: str
    url: str
    pid: int

    @property
    def parts(self) -> tuple[str, int, str, str, str]:
        url = urlsplit(self.url)
        vhost = unquote(url.path[1:]) if len(url.path) > 1 else "/"
        return (url.hostname or "127.0.0.1", url.port or 5672, unquote(url.username or "guest"),
                unquote(url.password or "guest"), vhost)


class Link(asyncio.Protocol):
    """A minimal AMQP client connection (rule 2): one channel, frames decoded by AMQPCodec."""

    def __init__(self) -> None:
        self.codec = AMQPCodec(role="client")
        self.transport: asyncio.Transport | None = None
        self.methods: asyncio.Queue[Method] = asyncio.Queue()
        self.handler: Callable[[list[Frame]], None] = self._enqueue

    def _enqueue(self, frames: list[Frame]) -> None:
        for frame in frames:
            if isinstance(frame, MethodFrame):
                self.methods.put_nowait(frame.method)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.codec.receive_data(data)
        self.handler(self.codec.frames())

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def send(self, method: Method, channel: int = 1) -> None:
        self.write(self.codec.encode_method(channel, method))

    async def call(self, method: Method, reply: type[M], channel: int = 1) -> M:
        self.send(method, channel)
        got = await asyncio.wait_for(self.methods.get(), 10)
        if not isinstance(got, reply):
            raise RuntimeError(f"expected {reply.__name__}, got {got!r}")
        return got

    async def close(self) -> None:
        self.handler = self._enqueue
        await self.call(m.ConnectionClose(reply_code=200, reply_text="bench done"),
                        m.ConnectionCloseOk, 0)
        assert self.transport is not None
        self.transport.close()


async def open_link(target: Target) -> Link:
    host, port, user, password, vhost = target.parts
    _, link = await asyncio.get_running_loop().create_connection(Link, host, port)
    link.write(PROTOCOL_HEADER)
    start = await asyncio.wait_for(link.methods.get(), 10)
    assert isinstance(start, m.ConnectionStart), start
    response = f"\0{user}\0{password}".encode()
    tune = await link.call(m.ConnectionStartOk({"product": "minibroker-bench"}, "PLAIN", response),
                           m.ConnectionTune, 0)
    frame_max = min(tune.frame_max, FRAME_MAX) if tune.frame_max else FRAME_MAX
    link.send(m.ConnectionTuneOk(tune.channel_max, frame_max, 0), 0)
    link.codec.frame_max = frame_max
    await link.call(m.ConnectionOpen(virtual_host=vhost), m.ConnectionOpenOk, 0)
    await link.call(m.ChannelOpen(), m.ChannelOpenOk)
    return link


@dataclass
class Run:
    client: str
    broker: str
    messages: int
    seconds: float
    broker_cpu: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def broker_us(self) -> float:
        return self.broker_cpu / self.messages * 1e6

    @property
    def client_us(self) -> float:
        return self.client_cpu / self.messages * 1e6


async def minimal_client(target: Target, count: int, size: int, window: int) -> float:
    """Rule 2's pipelining client; returns the seconds from first publish to last delivery."""
    publisher, consumer = await open_link(target), await open_link(target)
    queue = QUEUE + ("-durable" if PERSISTENT else "")
    await publisher.call(m.QueueDeclare(queue=queue, durable=PERSISTENT), m.QueueDeclareOk)
    await publisher.call(m.QueuePurge(queue=queue), m.QueuePurgeOk)
    await publisher.call(m.ConfirmSelect(), m.ConfirmSelectOk)
    await consumer.call(m.BasicQos(prefetch_count=100), m.BasicQosOk)
    await consumer.call(m.BasicConsume(queue=queue, consumer_tag="bench"), m.BasicConsumeOk)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    received = 0

    def on_deliveries(frames: list[Frame]) -> None:
        nonlocal received
        acks = [encode_basic_ack(1, frame.method.delivery_tag) for frame in frames
                if isinstance(frame, ContentMethod) and isinstance(frame.method, m.BasicDeliver)]
        if acks:
            received += len(acks)
            consumer.write(b"".join(acks))  # one ack per message, one write per read
        if received >= count and not done.done():
            done.set_result(None)

    consumer.handler = on_deliveries
    one = publisher.codec.encode_content(
        1, m.BasicPublish(routing_key=queue),
        Properties(delivery_mode=2) if PERSISTENT else Properties(), b"x" * size)
    confirmed = 0
    can_send = asyncio.Event()

    def on_confirms(frames: list[Frame]) -> None:
        nonlocal confirmed
        for frame in frames:
            if isinstance(frame, MethodFrame):
                if isinstance(frame.method, m.BasicNack):
                    raise RuntimeError(f"publish nacked: {frame.method}")
                if isinstance(frame.method, m.BasicAck):
                    confirmed = max(confirmed, frame.method.delivery_tag)
        can_send.set()

    publisher.handler = on_confirms
    t0 = time.perf_counter()
    sent = 0
    while sent < count:
        room = min(window - (sent - confirmed), count - sent)
        if room <= 0:
            can_send.clear()
            await can_send.wait()
            continue
        publisher.write(one * room)
        sent += room
        await asyncio.sleep(0)
    await asyncio.wait_for(done, 300)
    seconds = time.perf_counter() - t0
    await consumer.close()
    if PERSISTENT:  # a durable queue would outlive the run on the reference broker
        publisher.handler = publisher._enqueue
        publisher.send(m.QueueDelete(queue=queue))
        while not isinstance(await asyncio.wait_for(publisher.methods.get(), 10),
                             m.QueueDeleteOk):
            pass  # late confirms
    await publisher.close()
    return seconds


async def aio_pika_client(target: Target, count: int, size: int, window: int) -> float:
    """aio-pika with publisher confirms, ``window`` publishes awaiting their confirm at once."""
    import aio_pika  # only this client needs it

    publisher = await aio_pika.connect(target.url)
    consumer = await aio_pika.connect(target.url)
    pub_channel = await publisher.channel(publisher_confirms=True)
    con_channel = await consumer.channel()
    await con_channel.set_qos(prefetch_count=100)
    queue = await con_channel.declare_queue(QUEUE)
    await queue.purge()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    received = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal received
        await message.ack()
        received += 1
        if received >= count and not done.done():
            done.set_result(None)

    await queue.consume(on_message)
    exchange, body = pub_channel.default_exchange, b"x" * size
    in_flight = asyncio.Semaphore(window)
    failures: list[BaseException] = []

    def release(task: asyncio.Task[object]) -> None:
        in_flight.release()
        if not task.cancelled() and task.exception() is not None:
            failures.append(task.exception())  # type: ignore[arg-type]

    t0 = time.perf_counter()
    tasks = set()
    for _ in range(count):
        await in_flight.acquire()
        task = asyncio.create_task(exchange.publish(aio_pika.Message(body), routing_key=QUEUE))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(release)
    await asyncio.wait_for(done, 300)
    seconds = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} publishes failed, first: {failures[0]!r}")
    await publisher.close()
    await consumer.close()
    return seconds


Client = Callable[[Target, int, int, int], Awaitable[float]]
CLIENTS: dict[str, Client] = {"minimal": minimal_client, "aio-pika": aio_pika_client}


async def measure(client: str, target: Target, count: int, warmup: int, size: int,
                  window: int) -> Run:
    run = CLIENTS[client]
    await run(target, warmup, size, window)
    cpu0, own0 = cpu_seconds(target.pid), time.process_time()
    seconds = await run(target, count, size, window)
    broker_cpu = cpu_seconds(target.pid) - cpu0
    return Run(client, target.name, count, seconds, broker_cpu, time.process_time() - own0)


def start_minibroker(loop: str, profile: str | None) -> tuple[subprocess.Popen[str], str]:
    python = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else [])
    storage = (["--data-dir", tempfile.mkdtemp(prefix="minibroker-bench-"), "--sync", "always"]
               if PERSISTENT else ["--in-memory"])
    proc = subprocess.Popen(
        [*python, "-m", "minibroker", "--port", "0", "--management-port", "0",
         "--loop", loop, "--log-level", "warning",
         "--heartbeat", "0", *storage],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    match = re.search(r"(amqp://\S+)", proc.stdout.readline())
    if not match:
        proc.kill()
        raise RuntimeError("minibroker did not print its ready line")
    return proc, match.group(1)


async def rabbitmq_target() -> Target | None:
    url = os.environ.get("MINIBROKER_RABBITMQ_URL")
    pid = find_beam_pid()
    if not url or pid is None:
        print("# RabbitMQ rows skipped: MINIBROKER_RABBITMQ_URL unset or no beam.smp process")
        return None
    target = Target("RabbitMQ", url, pid)
    try:
        link = await asyncio.wait_for(open_link(target), 5)
        await link.close()
    except (OSError, RuntimeError, AssertionError, TimeoutError) as exc:
        print(f"# RabbitMQ rows skipped: {url} unreachable ({exc!r})")
        return None
    cpu0 = cpu_seconds(pid)
    await asyncio.sleep(2)
    print(f"# RabbitMQ idle CPU: {(cpu_seconds(pid) - cpu0) / 2 * 1000:.0f} ms per second")
    return target


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def print_tables(runs: list[Run]) -> None:
    print("\n| client | broker | msgs/s | broker CPU µs/msg | client CPU µs/msg |")
    print("|---|---|---:|---:|---:|")
    for r in runs:
        print(f"| {r.client} | {r.broker} | {r.rate:,.0f} | {r.broker_us:.1f} | "
              f"{r.client_us:.1f} |")
    by_key = {(r.client, r.broker): r for r in runs}
    if not any(r.broker == "RabbitMQ" for r in runs):
        return
    print("\n| client | msgs/s minibroker / RabbitMQ | broker CPU µs/msg minibroker / RabbitMQ |")
    print("|---|---:|---:|")
    for client in CLIENTS:
        mb, rmq = by_key.get((client, "minibroker")), by_key.get((client, "RabbitMQ"))
        if mb and rmq:
            print(f"| {client} | {mb.rate:,.0f} / {rmq.rate:,.0f} = {ratio(mb.rate, rmq.rate)} | "
                  f"{mb.broker_us:.1f} / {rmq.broker_us:.1f} = "
                  f"{ratio(mb.broker_us, rmq.broker_us)} |")


async def main_async(args: argparse.Namespace) -> None:
    count = 20_000 if args.quick else args.count
    warmup = 2_000 if args.quick else 5_000
    clients = args.clients.split(",")
    proc, url = start_minibroker(args.loop, args.profile)
    runs: list[Run] = []
    try:
        targets = [Target("minibroker", url, proc.pid)]
        if not args.profile and (rabbitmq := await rabbitmq_target()):
            targets.append(rabbitmq)
        for client in clients:
            for target in targets:
                run = await measure(client, target, count, warmup, args.size, args.window)
                print(f"# {client} -> {target.name}: {run.rate:,.0f} msgs/s", flush=True)
                runs.append(run)
    finally:
        proc.send_signal(signal.SIGINT)  # the CLI exits 0 on SIGINT; cProfile writes its file
        proc.wait(30)
    print_tables(runs)
    if args.profile:
        for order in ("tottime", "cumulative"):
            print(f"\n# top 10 by {order}")
            pstats.Stats(args.profile).sort_stats(order).print_stats(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 messages per case")
    parser.add_argument("--count", type=int, default=100_000, help="messages per case")
    parser.add_argument("--size", type=int, default=16, help="body size in bytes")
    parser.add_argument("--window", type=int, default=1000, help="publishes in flight")
    parser.add_argument("--clients", default="minimal,aio-pika", help="clients to run")
    parser.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                        help="minibroker's event loop")
    parser.add_argument("--profile", metavar="FILE",
                        help="run minibroker under cProfile (minibroker rows only)")
    parser.add_argument("--persistent", action="store_true",
                        help="durable queue and persistent messages (minibroker: a data "
                        "directory, --sync always)")
    args = parser.parse_args()
    global PERSISTENT
    PERSISTENT = args.persistent
    print(f"# {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
