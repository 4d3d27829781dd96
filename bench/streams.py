"""Streams (``x-queue-type: stream``): the numbers of the streams issue (run by hand).

    python bench/streams.py                  # everything this build can measure
    python bench/streams.py --quick          # smaller counts
    python bench/streams.py --only core      # core, amqp, storage
    MINIBROKER_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/ python bench/streams.py

Rules:

1. ``core``: the broker core alone (no sockets): appends per second (16-byte and 1 KiB bodies
   in ``PublishMany`` batches of 50, confirm mode), one consumer replaying everything from
   ``first`` with a window of 1,000 and one multiple ack per window, memory per stored message
   (RSS growth over the appends, bodies distinct), and what a seek costs as probes of the
   sparse index for logs of growing numbers of segments.
2. ``amqp``: the same run against minibroker (a fresh subprocess) and RabbitMQ: one publisher
   with confirms keeping ``--window`` publishes in flight appends ``--count`` messages of 16 B
   and of 1 KiB to a new stream; then one consumer (prefetch 1,000, one multiple ack per read)
   reads ``--replay`` stored messages from ``first``, checking each read is the next delivery
   tags in order; ``--rounds N`` replays the same stream N times, alternating between the
   brokers, and keeps the best. Ratios minibroker / RabbitMQ are printed with the goals of the
   issue (append >= 1.0x, replay >= 1.5x), then each replay's msg/s and the broker's and the
   client's CPU a message (``/proc``: utime + stime; RabbitMQ's is its ``beam.smp``).
3. ``native``: the native client against a fresh minibroker: batched publishing (``--batch``
   messages of 16 B per ``PublishBatch`` frame, confirm mode, ``--in-flight`` batches awaiting
   their confirm, 4 by default), then one
   pull reader (``read``, 5,000 messages per call) replaying everything from ``first``,
   ``--replays`` times (the best counts); goals of the issue: >= 300,000 appends and >= 500,000
   replayed messages per second. The broker's CPU a message (``/proc``) and the client's
   (``time.process_time``) are printed beside each rate.
4. ``storage``: the on-disk stream log (``minibroker/storage/streamlog.py``) alone: appends
   made durable by group commit, replay from disk, and the resident memory of a log of many
   stored messages with its sparse index (the goal: 10,000,000 messages <= 64 MiB).
5. ``--durable``: the ``amqp`` and ``native`` runs start minibroker with a fresh data
   directory (``--data-dir``), so stream appends are confirmed once on disk and replays read
   the files; ``native`` also prints the broker's RSS once the stream holds everything.
6. Every run checks its result (every message read once, in order); wall-clock numbers are for
   the table the lead fills on a quiet machine, probe counts are exact.
7. The AMQP replay's consumer decodes no content header: it walks the frames and reads each
   delivery's tag and ``x-stream-offset`` (checked: 1, 2, 3... and 0, 1, 2...), the same for
   both brokers. Decoding every header table in Python cost this client 6-7 µs a message,
   more than either broker spends, so it measured the client (``clients.py`` rule 1).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients import AMQPConn, open_amqp
from harness import Broker, cpu_seconds, rabbitmq, start_minibroker

from minibroker.core import commands as c
from minibroker.core.broker import Broker as Core
from minibroker.core.effects import Deliver
from minibroker.core.streamargs import OffsetSpec, StreamLimits
from minibroker.core.streamlog import StreamLog
from minibroker.message import Message, Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.amqp091.frames import encode_basic_ack

STREAM_ARGS = {"x-queue-type": "stream"}
BATCH = 50
CONSUME_ARGS = {"x-stream-offset": "first"}


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- core (rule 1) -------------------------------------------------------------------------------


def core_run(count: int, size: int) -> dict[str, float]:
    core = Core()
    handle = core.handle
    handle(c.OpenConnection(1), now=0)
    handle(c.OpenChannel(1, 1), now=0)
    handle(c.ConfirmSelect(1, 1), now=0)
    handle(c.DeclareQueue(1, 1, "s", durable=True, arguments=STREAM_ARGS), now=0)
    properties = Properties()
    gc.collect()
    before = rss()
    bodies = [i.to_bytes(8, "big") * (size // 8) for i in range(count)]  # distinct bodies
    t0 = time.perf_counter()
    for start in range(0, count, BATCH):
        batch = tuple((Message("", "s", body, properties), False)
                      for body in bodies[start:start + BATCH])
        handle(c.PublishMany(1, 1, batch), now=start * 1e-6)
    append = time.perf_counter() - t0
    del bodies
    gc.collect()
    grown = rss() - before
    handle(c.OpenConnection(2), now=1)
    handle(c.OpenChannel(2, 1), now=1)
    handle(c.Qos(2, 1, 1000), now=1)
    t0 = time.perf_counter()
    effects = handle(c.Consume(2, 1, "s", "r", arguments={"x-stream-offset": "first"}),
                     now=1).effects
    read = expected = 0
    while effects:
        tags = [e.delivery_tag for e in effects if type(e) is Deliver]
        for e in effects:
            if type(e) is Deliver:
                assert e.offset == expected  # its x-stream-offset (core/effects.py rule 4)
                expected += 1
        read += len(tags)
        if not tags:
            break
        effects = handle(c.Ack(2, 1, tags[-1], True), now=1).effects
        # As the shell after each write: the delivery burst is renewed (streams.py rule 8).
        effects += handle(c.SetWritable(2, writable=True), now=1).effects
    replay = time.perf_counter() - t0
    assert read == count, (read, count)
    return {"append": count / append, "replay": count / replay, "rss": grown / count}


def seek_probes() -> list[tuple[int, int, int]]:
    """(segments, worst offset-seek probes, worst timestamp-seek probes)."""
    rows = []
    for segments in (16, 1024, 65536):
        log = StreamLog(StreamLimits(max_segment_size=1))
        for i in range(segments):
            log.append(Message("", "s", b"x"), float(i), float, object())
        worst_offset = worst_time = 0
        for target in range(0, segments, max(1, segments // 64)):
            before = log.comparisons
            log.reader(log.seek(OffsetSpec("offset", target), 0.0)).take()
            worst_offset = max(worst_offset, log.comparisons - before)
            before = log.comparisons
            log.seek(OffsetSpec("timestamp", target + 0.5), 0.0)
            worst_time = max(worst_time, log.comparisons - before)
        rows.append((segments, worst_offset, worst_time))
    return rows


def bench_core(quick: bool) -> None:
    count = 200_000 if quick else 1_000_000
    print(f"## core ({count:,} messages per run)\n")
    print("| body | append msg/s | replay from first msg/s | RSS per stored message |")
    print("|---|---:|---:|---:|")
    for size in (16, 1024):
        result = core_run(count if size == 16 else count // 4, size)
        print(f"| {size} B | {result['append']:,.0f} | {result['replay']:,.0f} | "
              f"{result['rss']:,.0f} B |")
    print("\n| segments | offset seek: probes (worst) | timestamp seek: probes (worst) | "
          "log2(segments) |")
    print("|---:|---:|---:|---:|")
    for segments, offset, stamp in seek_probes():
        print(f"| {segments:,} | {offset} | {stamp} | {math.log2(segments):.0f} |")
    print()


# -- AMQP against RabbitMQ (rule 2) ------------------------------------------------------------


async def amqp_append(broker: Broker, queue: str, count: int, size: int,
                      window: int) -> float:
    conn = await open_amqp(broker)
    assert isinstance(conn, AMQPConn)
    await conn.call(m.QueueDelete(queue=queue), m.QueueDeleteOk)
    await conn.call(m.QueueDeclare(queue=queue, durable=True, arguments=STREAM_ARGS),
                    m.QueueDeclareOk)
    await conn.confirm_select()
    one = conn.publish_frame("", queue, b"x" * size)
    confirmed = 0
    progress = asyncio.Event()

    def on_confirm(tag: int) -> None:
        nonlocal confirmed
        confirmed = max(confirmed, tag)
        progress.set()

    conn.on_confirm = on_confirm
    t0 = time.perf_counter()
    sent = 0
    while confirmed < count:
        room = min(window - (sent - confirmed), count - sent)
        if room > 0:
            await conn.writable.wait()
            conn.write(one * room)
            sent += room
        progress.clear()
        await asyncio.wait_for(progress.wait(), 60)
    seconds = time.perf_counter() - t0
    await conn.close()
    return count / seconds


_FRAME = struct.Struct(">BHI")
_TAG = struct.Struct(">Q")
_DELIVER = struct.pack(">HH", 60, 60)
_OFFSET_NAME = b"\x0fx-stream-offset"
_OFFSET_VALUE = {ord("l"): struct.Struct(">q"), ord("I"): struct.Struct(">i")}


class ReplayConn(AMQPConn):
    """The replaying consumer (rule 7): walks the frames of the deliveries itself, reading
    only each delivery tag and ``x-stream-offset``; every other frame goes to the codec."""

    def __init__(self) -> None:
        super().__init__()
        self.replaying = False
        self.pending = b""
        #: The offset the next delivery must carry, and the first one that did not.
        self.next_offset = 0
        self.wrong: int | None = None

    def data_received(self, data: bytes) -> None:
        if not self.replaying:
            super().data_received(data)
            return
        if self.pending:
            data = self.pending + data
        tags: list[int] = []
        at, end = 0, len(data)
        while at + 7 <= end:
            kind, _, size = _FRAME.unpack_from(data, at)
            stop = at + 8 + size
            if stop > end:
                break
            if kind == 1 and data[at + 7:at + 11] == _DELIVER:
                tags.append(_TAG.unpack_from(data, at + 12 + data[at + 11])[0])
            elif kind == 2:
                name = data.find(_OFFSET_NAME, at + 7, stop)
                offset = _OFFSET_VALUE[data[name + 16]].unpack_from(data, name + 17)[0]
                if offset != self.next_offset and self.wrong is None:
                    self.wrong = offset
                self.next_offset += 1
            elif kind != 3:
                super().data_received(data[at:stop])  # the codec takes whole frames
            at = stop
        self.pending = data[at:]
        if tags:
            self.on_deliver(tags, [])


async def amqp_replay(broker: Broker, queue: str, count: int) -> tuple[float, float, float]:
    """One replay of ``queue`` from ``first``: msg/s, and the broker's and this client's CPU
    seconds a message (``/proc``; ``process_time``)."""
    conn = await open_amqp(broker, ReplayConn)
    assert isinstance(conn, ReplayConn)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    read = 0

    def on_deliver(tags: list[int], bodies: list[bytes]) -> None:
        nonlocal read
        if done.done():
            return
        # Every message once, in order: tags 1, 2, 3... and offsets 0, 1, 2...
        if tags[0] != read + 1 or tags[-1] != read + len(tags) or conn.wrong is not None:
            done.set_exception(AssertionError(f"after {read}: tags {tags[:3]}..., "
                                              f"offset {conn.wrong}"))
            return
        read += len(tags)
        conn.write(encode_basic_ack(1, tags[-1], True))
        if read >= count:
            done.set_result(None)

    conn.on_deliver = on_deliver
    await conn.call(m.BasicQos(prefetch_count=1000), m.BasicQosOk)
    cpu, mine = broker.cpu(), time.process_time()
    t0 = time.perf_counter()
    conn.replaying = True
    await conn.call(m.BasicConsume(queue=queue, arguments=CONSUME_ARGS),
                    m.BasicConsumeOk)
    await asyncio.wait_for(done, 600)
    seconds = time.perf_counter() - t0
    cpu, mine = broker.cpu() - cpu, time.process_time() - mine
    conn.replaying = False
    await conn.close()
    return read / seconds, cpu / read, mine / read


#: ``--durable``: the data directory of each minibroker started (rule 5).
DATA_DIRS: list[str] = []


def durable_args() -> list[str]:
    if not DATA_DIRS:
        return []
    import tempfile

    directory = tempfile.mkdtemp(prefix="minibroker-bench-streams-")
    DATA_DIRS.append(directory)
    return ["--data-dir", directory]


def broker_rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def bench_amqp(quick: bool, count: int, replay: int, window: int, rounds: int) -> None:
    rabbit, reason = await rabbitmq(os.environ.get("MINIBROKER_RABBITMQ_URL"))
    where = ", minibroker on disk" if DATA_DIRS else ""
    print(f"## AMQP 0-9-1 ({count:,} appends with confirms, window {window}; "
          f"replay of {replay:,}{where}, best of {rounds})\n")
    if rabbit is None:
        print(f"# RabbitMQ skipped: {reason}")
    results: dict[tuple[str, str], float] = {}
    replays: dict[str, list[tuple[float, float, float]]] = {}
    brokers: list[tuple[str, Broker]] = [("minibroker", start_minibroker(extra=durable_args()))]
    if rabbit is not None:
        brokers.append(("RabbitMQ", rabbit))
    queue = "minibroker-bench-stream-replay"
    try:
        for name, broker in brokers:
            for size in (16, 1024):
                appended = f"minibroker-bench-stream-{size}"
                results[(name, f"append {size} B")] = await amqp_append(
                    broker, appended, count, size, window)
                await (await open_amqp(broker)).call(m.QueueDelete(queue=appended),
                                                     m.QueueDeleteOk)
            await amqp_append(broker, queue, replay, 16, window)
        for _ in range(rounds):  # the replays alternate between the brokers
            for name, broker in brokers:
                replays.setdefault(name, []).append(await amqp_replay(broker, queue, replay))
        for name, broker in brokers:
            results[(name, "replay 16 B from first")] = max(r[0] for r in replays[name])
            await (await open_amqp(broker)).call(m.QueueDelete(queue=queue), m.QueueDeleteOk)
    finally:
        brokers[0][1].stop()
    goals = {"append 16 B": 1.0, "append 1024 B": 1.0, "replay 16 B from first": 1.5}
    print("| run | minibroker msg/s | RabbitMQ msg/s | ratio | goal |")
    print("|---|---:|---:|---:|---|")
    for run, goal in goals.items():
        mine = results[("minibroker", run)]
        theirs = results.get(("RabbitMQ", run))
        ratio = f"{mine / theirs:.2f}x" if theirs else "-"
        shown = f"{theirs:,.0f}" if theirs else "-"
        print(f"| {run} | {mine:,.0f} | {shown} | {ratio} | >= {goal}x |")
    print("\n| replay, each round | msg/s | broker CPU µs/msg | client CPU µs/msg |")
    print("|---|---|---|---|")
    for name, runs in replays.items():
        print(f"| {name} | {' / '.join(f'{r[0]:,.0f}' for r in runs)} | "
              f"{' / '.join(f'{r[1] * 1e6:.2f}' for r in runs)} | "
              f"{' / '.join(f'{r[2] * 1e6:.2f}' for r in runs)} |")
    print()


async def native_run(count: int, batch: int, replays: int,
                     in_flight_batches: int = 4) -> dict[str, float]:
    """Rule 3: the append, then ``replays`` replays from ``first`` (the best one counts); the
    broker's CPU from ``/proc`` and the client's (``time.process_time``) per message."""
    import minibroker

    broker = start_minibroker(extra=durable_args())
    result: dict[str, float] = {}
    try:
        url = f"minibroker://guest:guest@{broker.host}:{broker.port}"
        async with minibroker.connect(url) as conn:
            ch = await conn.channel()
            await ch.declare_queue("bench", durable=True, arguments=STREAM_ARGS)
            await ch.confirm_select()
            bodies = [b"x" * 16] * batch
            in_flight = asyncio.Semaphore(in_flight_batches)

            async def one() -> None:
                async with in_flight:
                    await ch.publish_batch("", "bench", bodies)

            cpu, mine, t0 = cpu_seconds(broker.pid), time.process_time(), time.perf_counter()
            await asyncio.gather(*(one() for _ in range(count // batch)))
            result["append"] = count / (time.perf_counter() - t0)
            result["append broker"] = (cpu_seconds(broker.pid) - cpu) / count * 1e6
            result["append client"] = (time.process_time() - mine) / count * 1e6
            result["rss"] = broker_rss(broker.pid)
            for _ in range(replays):
                cpu, mine = cpu_seconds(broker.pid), time.process_time()
                t0 = time.perf_counter()
                offset: object = "first"
                read = 0
                while read < count:
                    got = await ch.read("bench", offset,  # type: ignore[arg-type]
                                        max_messages=5000, max_bytes=1 << 22)
                    assert got.messages and got.messages[0].offset == read
                    read += len(got)
                    offset = got.next_offset
                rate = count / (time.perf_counter() - t0)
                if rate > result.get("replay", 0):
                    result["replay"] = rate
                    result["replay broker"] = (cpu_seconds(broker.pid) - cpu) / count * 1e6
                    result["replay client"] = (time.process_time() - mine) / count * 1e6
        return result
    finally:
        broker.stop()


def bench_native(quick: bool, count: int, batch: int, replays: int, in_flight: int) -> None:
    result = asyncio.run(native_run(count, batch, replays, in_flight))
    where = ", on disk" if DATA_DIRS else ", in memory"
    print(f"## native protocol ({count:,} messages of 16 B, {batch} per PublishBatch, "
          f"{in_flight} in flight{where}; best of {replays} replays)\n")
    print("| run | msg/s | broker CPU µs/msg | client CPU µs/msg | goal |")
    print("|---|---:|---:|---:|---|")
    print(f"| batched append with confirms | {result['append']:,.0f} | "
          f"{result['append broker']:.2f} | {result['append client']:.2f} | >= 300,000 |")
    print(f"| pull replay from first (read) | {result['replay']:,.0f} | "
          f"{result['replay broker']:.2f} | {result['replay client']:.2f} | >= 500,000 |")
    print(f"| broker RSS holding the stream | {result['rss'] / 2**20:,.1f} MiB | | | |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("core", "amqp", "native", "storage"))
    parser.add_argument("--batch", type=int, default=1000, help="messages per PublishBatch")
    parser.add_argument("--count", type=int, help="AMQP appends per run")
    parser.add_argument("--replay", type=int, help="stored messages the AMQP consumer reads")
    parser.add_argument("--window", type=int, default=1000, help="publishes in flight")
    parser.add_argument("--rounds", type=int, default=1,
                        help="AMQP replays of each broker, alternating (rule 2)")
    parser.add_argument("--durable", action="store_true",
                        help="minibroker with a data directory (rule 5)")
    parser.add_argument("--native-count", type=int, help="messages of the native run")
    parser.add_argument("--replays", type=int, default=3, help="native replays (best counts)")
    parser.add_argument("--in-flight", type=int, default=4,
                        help="native PublishBatch frames awaiting their confirm")
    options = parser.parse_args()
    if options.durable:
        DATA_DIRS.append("")  # a marker: each broker gets its own directory
    if options.only in (None, "core"):
        bench_core(options.quick)
    if options.only in (None, "amqp"):
        count = options.count or (20_000 if options.quick else 200_000)
        replay = options.replay or (100_000 if options.quick else 1_000_000)
        asyncio.run(bench_amqp(options.quick, count, replay, options.window, options.rounds))
    if options.only in (None, "native"):
        bench_native(options.quick, options.native_count
                     or (200_000 if options.quick else 1_000_000), options.batch,
                     options.replays, options.in_flight)
    if options.only in (None, "storage"):
        try:
            from storage_streams import bench_storage  # phase B, next to this file
        except ImportError:
            print("## storage\n\n# the on-disk stream log is not in this build")
        else:
            bench_storage(options.quick)
    if DATA_DIRS:
        import shutil

        for directory in DATA_DIRS[1:]:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
