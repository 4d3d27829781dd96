"""Memory scenarios: queued messages, a publisher flood, a stalled consumer, idle connections.

Rules:

1. Memory is the broker process's ``VmRSS``; growth is measured against a reading taken on the
   same broker just before the load, and peaks come from sampling /proc every 20 ms
   (``harness.RssSampler``).
2. Flow control (``--memory-high-water`` / ``--queue-high-water``), when the CLI offers it:
   the flood and the slow consumer set the memory high water to :data:`MEMORY_HIGH_WATER`
   (without flow control they run anyway and the flood's row says "flow control not
   available"); the memory scenario lifts both marks above its load. The flood runs with and
   without per-queue credit flow (``--queue-credit``) when the CLI offers it.
3. Publishers honour TCP backpressure (``Conn.writable``): when the broker stops reading, the
   load stays in the broker's socket buffers, not in this process.
4. "Bounded" means the second half of a run added less than 10% of the RSS the first half did.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import socket
import time
from typing import Any

from clients import OPENERS, AMQPConn, Conn, open_native
from harness import Context, Row, RssSampler, cli_help, mib, start_minibroker
from scenarios_throughput import single_queue

from minibroker.message import Properties
from minibroker.protocols.amqp091 import methods as m
from minibroker.protocols.native import frames as f
from minibroker.protocols.native.codec import NativeCodec

QUEUE = "minibroker-bench-memory"
MEMORY_HIGH_WATER = 128 * 2**20
STALL = 30.0  #: seconds without a confirm before a must-finish publisher gives up


async def publish_confirmed(conn: Conn, frame: bytes, count: int, window: int = 1000,
                            until: float | None = None) -> int:
    """Pipelined confirmed publishing; stops at ``count`` or at ``until``; returns how many
    publishes were confirmed."""
    confirmed = 0
    can_send = asyncio.Event()

    def on_confirm(tag: int) -> None:
        nonlocal confirmed
        confirmed = max(confirmed, tag)
        can_send.set()

    conn.on_confirm = on_confirm
    sent = 0
    while sent < count:
        if until is not None and time.perf_counter() >= until:
            break
        room = min(window - (sent - confirmed), count - sent)
        if room <= 0:
            can_send.clear()
            timeout = STALL if until is None else max(0.0, until - time.perf_counter())
            try:
                await asyncio.wait_for(can_send.wait(), timeout)
            except TimeoutError:
                if until is None:
                    raise RuntimeError(f"no confirm for {STALL} s after {confirmed:,} "
                                       "publishes: is flow control blocking?") from None
                break  # the broker stopped confirming (flow control): that is the answer
            continue
        conn.write(frame * room)
        sent += room
        await asyncio.sleep(0)
    if until is None:
        while confirmed < sent:
            can_send.clear()
            await asyncio.wait_for(can_send.wait(), STALL)
    return confirmed


#: What pika's documentation publishes with: ``BasicProperties(content_type='text/plain',
#: delivery_mode=Transient)``.
PIKA_LIKE = Properties(content_type="text/plain", delivery_mode=1)


async def memory(ctx: Context) -> list[Row]:
    """Scenario 6: 1,000,000 queued 16-byte messages, no consumer; RSS per message, published
    over the native protocol without properties and over AMQP with pika-like properties."""
    rows: list[Row] = []
    for protocol in ("native", "AMQP"):
        rows += await _memory_over(ctx, protocol)
    return rows


async def _memory_over(ctx: Context, protocol: str) -> list[Row]:
    count = ctx.n(1_000_000, 100_000)
    # Flow control would block the publisher before the millionth message: lift it (rule 2).
    help_text = cli_help()
    extra = ["--memory-high-water", str(2**34)] if "--memory-high-water" in help_text else []
    if "--queue-high-water" in help_text:
        extra += ["--queue-high-water", str(10 * count)]
    broker = start_minibroker("uvloop", extra)
    try:
        conn = await OPENERS[protocol](broker)
        await conn.declare_queue(QUEUE)
        await conn.confirm_select()
        before = broker.rss()
        if protocol == "native":
            frame = conn.publish_frame("", QUEUE, b"x" * 16)
            label = "native, no properties"
        else:
            assert isinstance(conn, AMQPConn)
            frame = conn.codec.encode_content(
                1, m.BasicPublish(exchange="", routing_key=QUEUE), PIKA_LIKE, b"x" * 16)
            label = "AMQP, pika-like properties"
        await publish_confirmed(conn, frame, count)
        after = broker.rss()
        assert conn.transport is not None
        conn.transport.abort()
    finally:
        broker.stop()
    per = (after - before) / count - 16
    return [Row("6 memory", "minibroker",
                f"RSS growth, {count:,} queued 16 B messages ({label})", mib(after - before)),
            Row("6 memory", "minibroker", f"bytes per message beyond the body ({label})",
                f"{per:,.0f}", "≤ 200", per <= 200)]


def flood_publisher(host: str, port: int, duration: float, written: Any) -> None:
    """A native publisher in its own process: 1,000 publishes per write, no confirms, as fast
    as the socket takes them, for ``duration`` seconds; ``written`` counts the publishes."""
    codec = NativeCodec(role="client")
    sock = socket.create_connection((host, port))
    sock.sendall(codec.send_preamble() + codec.send(f.Hello("flood", "guest", "guest")))

    def expect(kind: type[f.Frame]) -> f.Frame:
        while True:
            frame = codec.next_frame()
            if frame is not None:
                assert isinstance(frame, kind), frame
                return frame
            codec.receive_data(sock.recv(65536))

    hello = expect(f.HelloOk)
    assert isinstance(hello, f.HelloOk)
    sock.sendall(codec.send(f.Tune(hello.max_frame_size, hello.channel_max, 0))
                 + codec.send(f.ChannelOpen(1)))
    expect(f.TuneOk)
    expect(f.ChannelOpenOk)
    batch = codec.send(f.Publish(1, "", QUEUE, False, Properties(), b"x" * 16)) * 1000
    sock.settimeout(0.2)
    end = time.perf_counter() + duration
    view = memoryview(batch)
    while time.perf_counter() < end:
        sent = 0
        while sent < len(batch) and time.perf_counter() < end:
            try:
                sent += sock.send(view[sent:])
            except TimeoutError:
                continue  # blocked by flow control: the broker is not reading us
        if sent == len(batch):
            written.value += 1000
    sock.close()


async def flood(ctx: Context) -> list[Row]:
    """Scenario 7: a publisher without confirms as fast as TCP allows, and an acking consumer.

    The broker runs with the 128 MiB memory mark alone (the queue mark left at its default of
    1,000,000): per-queue credit flow (``--queue-credit``, default 20,000) pauses the flooder
    while the consumer's queue lags, so the backlog, and the work per message, stay small.
    The second run turns credit flow off (``--queue-credit 0``), the broker as it was before:
    only the memory alarm bounds the backlog (about 325,000 messages), and the consumer kept
    0.49-0.68x of the balanced rate in our runs. The broker's CPU per consumed message, flood
    against balanced, is the companion of the rate ratio that other load on the machine
    disturbs least."""
    rows: list[Row] = []
    help_text = cli_help()
    if "--queue-credit" in help_text:
        rows += await _flood(ctx, "credit flow", ["--queue-credit", "20000"])
        rows += await _flood(ctx, "no credit flow", ["--queue-credit", "0"], goal=False)
    else:
        rows += await _flood(ctx, "no credit flow", [])
    return rows


async def _flood(ctx: Context, label: str, extra: list[str], goal: bool = True) -> list[Row]:
    flow_control = "--memory-high-water" in cli_help()
    if flow_control:
        extra = ["--memory-high-water", str(MEMORY_HIGH_WATER), *extra]
    broker = start_minibroker("uvloop", extra)
    duration = ctx.n(10, 4)
    try:
        balanced = await single_queue(ctx, broker, "native", ctx.n(50_000, 10_000))
        consumer = await open_native(broker)
        await consumer.declare_queue(QUEUE)
        delivered = 0

        def on_deliver(tags: list[int], bodies: list[bytes]) -> None:
            nonlocal delivered
            delivered += len(tags)
            consumer.write(consumer.acks(tags))

        consumer.on_deliver = on_deliver
        await consumer.consume(QUEUE, 100, False)
        # The flooding publisher runs in its own process: in this one it would take the CPU
        # the consumer needs, and the scenario would measure the bench, not the broker.
        context = multiprocessing.get_context("spawn")
        written = context.Value("q", 0)
        flooder = context.Process(target=flood_publisher,
                                  args=(broker.host, broker.port, duration, written))
        sampler = RssSampler(broker.pid)
        sampler.start()
        cpu0, t0 = broker.cpu(), time.perf_counter()
        flooder.start()
        while flooder.is_alive():
            await asyncio.sleep(0.05)
        seconds, cpu = time.perf_counter() - t0, broker.cpu() - cpu0
        consumed = delivered
        published = written.value
        await sampler.stop()
        assert consumer.transport is not None
        consumer.transport.abort()
    finally:
        broker.stop()
    rate = consumed / seconds
    ratio = rate / balanced.rate
    cpu_us = cpu / max(consumed, 1) * 1e6
    marks = (f"memory mark {mib(MEMORY_HIGH_WATER)} alone, {label}" if flow_control
             else "flow control not available")
    # The goals: consumer throughput stays >= 80% of the balanced rate, and RSS stays
    # below the configured limit (the memory high-water mark).
    peak_met = sampler.peak <= MEMORY_HIGH_WATER if flow_control else None
    return [
        Row("7 flood", "minibroker", f"publishes written, no confirms ({marks})",
            f"{published / seconds:,.0f}/s"),
        Row("7 flood", "minibroker", f"consumer msgs/s during flood vs balanced ({marks})",
            f"{rate:,.0f} / {balanced.rate:,.0f} = {ratio:.2f}x", "≥ 0.8x" if goal else "",
            ratio >= 0.8 if goal else None),
        Row("7 flood", "minibroker", f"broker CPU µs per consumed msg, flood vs balanced ({marks})",
            f"{cpu_us:.1f} / {balanced.cpu_us:.1f} = {cpu_us / balanced.cpu_us:.2f}x"),
        Row("7 flood", "minibroker", f"broker RSS peak ({marks})", mib(sampler.peak),
            f"≤ {mib(MEMORY_HIGH_WATER)}" if flow_control else "bounded by high water",
            peak_met),
    ]


async def _stalled(ctx: Context, no_ack: bool) -> Row:
    fc = "--memory-high-water" in cli_help()
    broker = start_minibroker("uvloop", ["--memory-high-water", str(MEMORY_HIGH_WATER)] if fc
                              else [])
    duration = ctx.n(10, 4)
    try:
        publisher, consumer = await open_native(broker), await open_native(broker)
        await publisher.declare_queue(QUEUE)
        await publisher.confirm_select()

        def on_deliver(tags: list[int], bodies: list[bytes]) -> None:
            assert consumer.transport is not None
            consumer.transport.pause_reading()  # the consumer stops reading, never acks

        consumer.on_deliver = on_deliver
        await consumer.consume(QUEUE, 100, no_ack)
        sampler = RssSampler(broker.pid)
        sampler.start()
        before = broker.rss()
        published = await publish_confirmed(
            publisher, publisher.publish_frame("", QUEUE, b"x" * 16), 10**9,
            until=time.perf_counter() + duration)
        await sampler.stop()
        for conn in (publisher, consumer):
            assert conn.transport is not None
            conn.transport.abort()
    finally:
        broker.stop()
    first, second = sampler.at(0.5) - before, sampler.samples[-1][1] - sampler.at(0.5)
    bounded = second < 0.1 * max(first, 1)
    growth = sampler.samples[-1][1] - before
    kind = "no-ack (deliveries pile up in its socket)" if no_ack else "ack, prefetch 100"
    kind += f", high water {mib(MEMORY_HIGH_WATER)}" if fc else ", no flow control"
    return Row("8 slow consumer", "minibroker", f"RSS growth, consumer {kind}",
               f"{mib(growth)} over {published:,} msgs ({growth / max(published, 1):,.0f} B/msg;"
               f" 2nd half {mib(second)})", "bounded", bounded)


async def slow_consumer(ctx: Context) -> list[Row]:
    """Scenario 8: a consumer that stops reading while a publisher keeps publishing."""
    return [await _stalled(ctx, no_ack=True), await _stalled(ctx, no_ack=False)]


async def idle_connections(ctx: Context) -> list[Row]:
    """Scenario 9: 10,000 idle native connections (one open channel each)."""
    count = ctx.n(10_000, 2_000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 1000  # the broker subprocess inherits this limit too
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    broker = start_minibroker("uvloop")
    conns: list[Conn] = []
    failures: list[str] = []
    try:
        before = broker.rss()
        gate = asyncio.Semaphore(200)  # below the listen backlog, so no SYN is dropped

        async def one() -> None:
            async with gate:
                try:
                    conns.append(await asyncio.wait_for(open_native(broker), 30))
                except (OSError, TimeoutError, RuntimeError) as exc:
                    failures.append(repr(exc))

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        seconds = time.perf_counter() - t0
        after = broker.rss()
        for conn in conns:
            assert conn.transport is not None
            conn.transport.abort()
    finally:
        broker.stop()
    per = (after - before) / max(len(conns), 1)
    note = f" (first failure: {failures[0]})" if failures else ""
    return [
        Row("9 idle connections", "minibroker", "connections accepted",
            f"{len(conns):,} / {count:,} in {seconds:.1f} s{note}", "all", not failures),
        Row("9 idle connections", "minibroker", "RSS per idle connection",
            f"{per / 1024:,.1f} KiB"),
    ]
