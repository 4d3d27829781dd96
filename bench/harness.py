"""The benchmark suite's harness: brokers to measure, /proc readings, and the result table.

Rules:

1. Every minibroker scenario gets a fresh broker subprocess (``python -m minibroker --port 0``),
   so one scenario's leftovers (queues, allocator arenas) never colour the next one's numbers.
   Its ready line gives the port; it stops on SIGINT (so cProfile, when asked for, writes its
   file) and is killed only if it does not exit in time.
2. Broker CPU is utime + stime from ``/proc/<pid>/stat``; broker memory is ``VmRSS`` from
   ``/proc/<pid>/status``. RabbitMQ's process is the ``beam.smp`` found in /proc.
3. RabbitMQ is used only when ``MINIBROKER_RABBITMQ_URL`` is set and a handshake succeeds;
   otherwise its rows are skipped and one ``#`` line says why.
4. A result is a :class:`Row`; ``met`` is None when the row has no goal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


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


@dataclass
class Broker:
    """One broker under test: its name, where it listens, and whose /proc entry to read."""

    name: str
    host: str
    port: int
    pid: int
    user: str = "guest"
    password: str = "guest"
    vhost: str = "/"
    proc: subprocess.Popen[str] | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, name: str, url: str, pid: int) -> Broker:
        parts = urlsplit(url)
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        return cls(name, parts.hostname or "127.0.0.1", parts.port or 5672, pid,
                   unquote(parts.username or "guest"), unquote(parts.password or "guest"), vhost)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # graceful: the CLI exits 0, cProfile writes
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def cli_help() -> str:
    return subprocess.run([sys.executable, "-m", "minibroker", "--help"], capture_output=True,
                          text=True, check=True).stdout


def start_minibroker(loop: str = "uvloop", extra: list[str] | None = None,
                     profile: str | None = None) -> Broker:
    """Rule 1: a fresh broker on a free port, ready when its ready line is printed."""
    python = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else [])
    proc = subprocess.Popen(
        [*python, "-m", "minibroker", "--port", "0", "--management-port", "0",
         "--loop", loop, "--log-level", "warning",
         "--heartbeat", "0",
         *([] if "--data-dir" in (extra or []) else ["--in-memory"]), *(extra or [])],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"minibroker://([^:\s]+):(\d+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"minibroker did not print its ready line: {line!r}")
    return Broker("minibroker", match.group(1), int(match.group(2)), proc.pid, proc=proc)


async def rabbitmq(url: str | None) -> tuple[Broker | None, str]:
    """Rule 3: RabbitMQ when configured and reachable, else None and the reason."""
    from clients import open_amqp  # late: clients imports nothing from here at import time

    pid = find_beam_pid()
    if not url:
        return None, "MINIBROKER_RABBITMQ_URL unset"
    if pid is None:
        return None, "no beam.smp process on this machine"
    broker = Broker.from_url("RabbitMQ", url, pid)
    try:
        conn = await asyncio.wait_for(open_amqp(broker), 5)
        await conn.close()
    except (OSError, RuntimeError, AssertionError, TimeoutError) as exc:
        return None, f"{url} unreachable ({exc!r})"
    return broker, "reachable"


class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in the background; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.samples.append((time.perf_counter(), rss_bytes(self.pid)))
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.samples.append((time.perf_counter(), rss_bytes(self.pid)))

    @property
    def peak(self) -> int:
        return max(rss for _, rss in self.samples)

    def at(self, fraction: float) -> int:
        """RSS at ``fraction`` of the sampled time span (0 = first sample, 1 = last)."""
        t0, t1 = self.samples[0][0], self.samples[-1][0]
        target = t0 + (t1 - t0) * fraction
        return min(self.samples, key=lambda sample: abs(sample[0] - target))[1]


@dataclass
class Row:
    scenario: str
    broker: str
    metric: str
    value: str
    goal: str = ""
    met: bool | None = None


def print_table(rows: list[Row]) -> None:
    print("| scenario | broker | metric | value | goal | met? |")
    print("|---|---|---|---:|---|---|")
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        print(f"| {r.scenario} | {r.broker} | {r.metric} | {r.value} | {r.goal} | {met} |")


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


@dataclass
class Context:
    """What every scenario gets: the run's size, RabbitMQ (or why not), and shared results."""

    quick: bool
    rabbit: Broker | None
    rabbit_reason: str
    profile: str | None = None
    #: results one scenario measures and another compares with (e.g. RabbitMQ's AMQP rate)
    shared: dict[str, float] = field(default_factory=dict)

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full
