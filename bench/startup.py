"""Startup benchmarks: how fast ``python -m minibroker`` and a test broker are ready.

Measures (results go in docs/benchmarks.md, "## Startup"):

0. With ``--exec``: a new ``python -m minibroker`` process, from just before ``exec`` to its
   ready line on stdout and to the first AMQP handshake answered (the 8-byte protocol header
   sent, the first bytes of ``connection.start`` received), ``--runs`` times (default 30) for
   each configuration: the defaults (a data directory, here a fresh temporary one, and the
   management API, on port 0), ``--in-memory --no-management``, and the interpreter alone
   (``python -c pass``, the floor). Min and median: on a shared machine the min is the fairer
   number. ``--importtime`` adds ``python -X importtime -m minibroker --help`` self-times
   (min over the runs), the top modules by what they cost. Each configuration runs with the
   bytecode cache (``.pyc``) and without the package's own.
0'. With ``--instructions``: the instructions (valgrind's callgrind) of one start of each
   configuration to its ready line and a graceful stop: what a quiet machine would measure,
   comparable between commits where wall-clock time on a shared machine is not.

1. ``running_broker()``: time from entering the context manager to the first completed native
   client connection (handshake done), median and p90 of ``--runs`` (default 100).
2. ``broker_in_thread()``: the same, from the test's thread with the blocking client.
3. ``--cycles`` (default 1,000) start/stop cycles of ``running_broker()`` and then of
   ``broker_in_thread()``, each with one client connection, reporting open file descriptors
   and RSS before and after.

Rule: every number comes from this script on the machine named in the results; nothing here
is asserted.

    python bench/startup.py [--runs 100] [--cycles 1000]
    python bench/startup.py --exec [--runs 30] [--importtime]
    python bench/startup.py --instructions
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import minibroker
import minibroker.blocking
from minibroker.testing import broker_in_thread, running_broker


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def rss_kib() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


async def async_ready_once() -> float:
    started = time.perf_counter()
    async with running_broker() as broker, minibroker.connect(broker.url):
        elapsed = time.perf_counter() - started
    return elapsed


def thread_ready_once() -> float:
    started = time.perf_counter()
    with broker_in_thread() as broker, minibroker.blocking.connect(broker.url):
        elapsed = time.perf_counter() - started
    return elapsed


async def cycles(count: int) -> None:
    for _ in range(count):
        async with running_broker() as broker, minibroker.connect(broker.url) as conn:
            await conn.channel()


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return (f"median {statistics.median(ordered) * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms, "
            f"min {ordered[0] * 1000:.2f} ms")


AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_ADDRESS = re.compile(rb"minibroker://([^:/ ]+):(\d+)")


def python_env(bytecode: str) -> dict[str, str]:
    """The environment of a measured process: with ``bytecode`` a folder of cached bytecode
    (``.pyc``, written by the warm-up run, as an installed package has them), or ``""`` for
    none of the package's own (each of its modules compiled from source, as under
    ``PYTHONDONTWRITEBYTECODE=1`` with an editable install; the standard library keeps its
    ``.pyc`` files)."""
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = bytecode
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def package_has_bytecode() -> bool:
    """Are there ``.pyc`` files beside the package's sources (then "no .pyc" is not true)?"""
    root = os.path.dirname(os.path.abspath(minibroker.__file__))
    return any("__pycache__" in dirs for _, dirs, _ in os.walk(root))


def instructions_once(options: list[str], env: dict[str, str]) -> int:
    """Instructions (callgrind's "Collected") of a start to the ready line and a graceful stop
    (SIGTERM): deterministic, unlike time on a shared machine."""
    with tempfile.TemporaryDirectory(prefix="mb-startup-") as data_dir:
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                sys.executable, "-m", "minibroker", "--port", "0", *options]
        if "--in-memory" not in options:
            argv += ["--data-dir", data_dir]
        if "--no-management" not in options:
            argv += ["--management-port", "0"]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=dict(env, PYTHONHASHSEED="0"))
        assert process.stdout is not None
        process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate()
    found = re.search(rb"Collected : (\d+)", err)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {err[-500:]!r}")
    return int(found.group(1))


def exec_once(options: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(exec -> ready line, exec -> first AMQP handshake answered), in seconds."""
    with tempfile.TemporaryDirectory(prefix="mb-startup-") as data_dir:
        argv = [sys.executable, "-m", "minibroker", "--port", "0", *options]
        if "--in-memory" not in options:
            argv += ["--data-dir", data_dir]
        if "--no-management" not in options:
            argv += ["--management-port", "0"]
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   env=env)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            ready = time.perf_counter() - started
            found = _ADDRESS.search(line)
            if found is None:
                raise RuntimeError(f"no ready line from {argv}: {line!r}")
            with socket.create_connection((found.group(1).decode(), int(found.group(2)))) as sock:
                sock.sendall(AMQP_HEADER)
                if not sock.recv(7):  # a frame header: the broker answered
                    raise RuntimeError("the broker closed without answering")
                answered = time.perf_counter() - started
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait()
    return ready, answered


def interpreter_once() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def import_self_times(runs: int, env: dict[str, str], top: int = 25) -> None:
    """``-X importtime`` of ``python -m minibroker --help`` (with .pyc files): the min
    self-time of each module."""
    self_times: defaultdict[str, list[int]] = defaultdict(list)
    totals: list[int] = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "minibroker", "--help"],
            capture_output=True, text=True, check=True, env=env,
        )
        total = 0
        for line in result.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, _cumulative, name = line[len("import time:"):].split("|")
            self_times[name.strip()].append(int(own))
            total += int(own)
        totals.append(total)
    print(f"-X importtime of `-m minibroker --help`: {len(self_times)} modules, "
          f"sum of self-times min {min(totals) / 1000:.1f} ms, "
          f"median {statistics.median(totals) / 1000:.1f} ms ({runs} runs)")
    ranked = sorted(self_times.items(), key=lambda item: -min(item[1]))
    for name, times in ranked[:top]:
        print(f"  {min(times) / 1000:7.2f} ms  {name}")


def ms(samples: list[float]) -> str:
    return (f"min {min(samples) * 1000:6.1f} ms, "
            f"median {statistics.median(samples) * 1000:6.1f} ms")


CONFIGURATIONS = {
    "defaults (data dir, management)": [],
    "--in-memory --no-management": ["--in-memory", "--no-management"],
}


def instructions_main() -> None:
    with tempfile.TemporaryDirectory(prefix="mb-pyc-") as bytecode:
        env = python_env(bytecode)
        exec_once([], env)  # writes the .pyc files
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             "-c", "pass"], capture_output=True, env=dict(env, PYTHONHASHSEED="0"), check=True)
        found = re.search(rb"Collected : (\d+)", result.stderr)
        print(f"{'python -c pass':<44} {int(found.group(1)) if found else -1:>14,} instructions")
        for label, options in CONFIGURATIONS.items():
            count = instructions_once(options, env)
            print(f"{label + ', with .pyc':<44} {count:>14,} instructions")


def exec_main(runs: int, importtime: bool) -> None:
    configurations = CONFIGURATIONS
    if package_has_bytecode():
        print("note: the package has __pycache__ folders: the 'no .pyc' rows use them")
    floor = [interpreter_once() for _ in range(runs)]
    print(f"{'python -c pass':<44} exit:         {ms(floor)}")
    with tempfile.TemporaryDirectory(prefix="mb-pyc-") as bytecode:
        for cache, env in (("with .pyc", python_env(bytecode)), ("no .pyc", python_env(""))):
            exec_once([], env)  # warm-up: writes the .pyc files, fills the OS file cache
            for label, options in configurations.items():
                samples = [exec_once(options, env) for _ in range(runs)]
                print(f"{label + ', ' + cache:<44} ready line:   "
                      f"{ms([ready for ready, _ in samples])}")
                print(f"{'':<44} first answer: "
                      f"{ms([answered for _, answered in samples])}")
        if importtime:
            import_self_times(runs, python_env(bytecode))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=None,
                        help="samples per measure (default: 100, or 30 with --exec)")
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--exec", action="store_true",
                        help="measure a new `python -m minibroker` process instead of the toolkit")
    parser.add_argument("--importtime", action="store_true",
                        help="with --exec: also the import self-times of `-m minibroker --help`")
    parser.add_argument("--instructions", action="store_true",
                        help="count the instructions of each start under valgrind (callgrind)")
    args = parser.parse_args(argv)
    print(f"CPython {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    if args.instructions:
        instructions_main()
        return 0
    if args.exec:
        exec_main(args.runs or 30, args.importtime)
        return 0
    args.runs = args.runs or 100

    asyncio.run(async_ready_once())  # warm-up: imports, first loop
    samples: list[float] = []
    for _ in range(args.runs):
        samples.append(asyncio.run(async_ready_once()))
    print(f"running_broker() -> first connection: {describe(samples)}")

    thread_ready_once()
    samples = [thread_ready_once() for _ in range(args.runs)]
    print(f"broker_in_thread() -> first connection: {describe(samples)}")

    gc.collect()
    fds, rss = open_fds(), rss_kib()
    started = time.perf_counter()
    asyncio.run(cycles(args.cycles))
    elapsed = time.perf_counter() - started
    gc.collect()
    print(f"{args.cycles} start/connect/stop cycles in {elapsed:.1f} s "
          f"({elapsed / args.cycles * 1000:.2f} ms each): open fds {fds} -> {open_fds()}, "
          f"RSS {rss} KiB -> {rss_kib()} KiB")

    fds, rss = open_fds(), rss_kib()
    started = time.perf_counter()
    for _ in range(args.cycles):
        thread_ready_once()
    elapsed = time.perf_counter() - started
    gc.collect()
    print(f"{args.cycles} broker_in_thread() cycles in {elapsed:.1f} s "
          f"({elapsed / args.cycles * 1000:.2f} ms each): open fds {fds} -> {open_fds()}, "
          f"RSS {rss} KiB -> {rss_kib()} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
