"""Streams on disk (``minibroker/storage/streams.py``) alone: appends made durable by group
commit, replay from disk, and the memory of a stream of many messages (run by hand; also
``python bench/streams.py --only storage``).

    python bench/storage_streams.py [--quick] [--messages N]

Rules:

1. Appends: one producer appends ``--batch`` 16-byte messages per loop iteration (one chunk),
   flushes, and the worker thread syncs (``sync="always"``) while the next batches are written
   (group commit); the rate counts until the last append is reported durable.
2. Replay: one reader reads everything from the first offset in batches of 1,000 (the files
   are in the page cache: this is the CPU cost of reading, checking CRCs and building
   messages), then a filtered reader whose value is in one chunk of 20.
3. Memory: a fresh process opens the stream (recovery: the scan that rebuilds the sparse index)
   and reports its RSS growth over an interpreter that imported the same modules; the goal of
   the streams issue is 10,000,000 stored messages in at most 64 MiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from minibroker.message import Message, Properties
from minibroker.storage.files import OsFileSystem
from minibroker.storage.messagelog import Sequencer
from minibroker.storage.streams import StreamSettings
from minibroker.storage.streamstore import StreamStore
from minibroker.storage.writer import GroupCommit

SETTINGS = StreamSettings(max_segment_size=256 << 20)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def append(root: str, count: int, batch: int, values: bool = False) -> float:
    """Rule 1: messages per second until durable."""
    fs = OsFileSystem()
    durable = threading.Event()
    last = [0]

    def on_durable(seq: int) -> None:
        last[0] = seq
        durable.set()

    writer = GroupCommit(fs, on_durable=on_durable)
    store = StreamStore(fs, root, writer, Sequencer(0))
    stream = store.open("/", "bench", SETTINGS)
    writer.start()
    properties = Properties()
    mark = 0
    t0 = time.perf_counter()
    for start in range(0, count, batch):
        key = object()
        for n in range(start, min(start + batch, count)):
            if values:
                properties = Properties(headers={"x-stream-filter-value": f"v{n // batch % 20}"})
            stream.append(Message("", "bench", n.to_bytes(8, "big") * 2, properties), 0.0, key)
        mark = store.flush()
    while last[0] < mark:
        durable.wait(1)
        durable.clear()
    seconds = time.perf_counter() - t0
    store.close()
    writer.stop()
    return count / seconds


def replay(root: str, values: tuple[str, ...] | None = None) -> tuple[float, int]:
    """Rule 2: (messages per second, messages read)."""
    fs = OsFileSystem()
    writer = GroupCommit(fs, on_durable=lambda seq: None)
    store = StreamStore(fs, root, writer, Sequencer(0))
    stream = store.open("/", "bench", SETTINGS)
    reader = stream.reader(stream.first_offset, values)
    read = 0
    t0 = time.perf_counter()
    while batch := reader.read(max_messages=1000, max_bytes=1 << 22):
        read += len(batch)
    seconds = time.perf_counter() - t0
    reader.close()
    writer.stop()
    return read / seconds, read


def memory(root: str) -> None:
    """Rule 3, in this (fresh) process: prints RSS growth, index entries, seconds."""
    fs = OsFileSystem()
    writer = GroupCommit(fs, on_durable=lambda seq: None)
    store = StreamStore(fs, root, writer, Sequencer(0))
    before = _rss()
    t0 = time.perf_counter()
    stream = store.open("/", "bench", SETTINGS)
    seconds = time.perf_counter() - t0
    grown = _rss() - before
    entries = sum(len(segment.offsets) for segment in stream.segments)
    print(grown, entries, stream.next_offset, stream.bytes, seconds, _rss())


def bench_storage(quick: bool, messages: int | None = None) -> None:
    count = messages or (1_000_000 if quick else 10_000_000)
    root = tempfile.mkdtemp(prefix="minibroker-bench-streams-")
    try:
        print(f"## storage ({count:,} stored 16-byte messages, appended 100 per flush)\n")
        rate = append(root, count, 100)
        fast, read = replay(root)
        assert read == count, (read, count)
        done = subprocess.run([sys.executable, __file__, "--memory", root], check=True,
                              capture_output=True, text=True).stdout.split()
        grown, entries, stored, size, seconds, total = (float(part) for part in done)
        filtered_root = os.path.join(root, "filtered")
        append(filtered_root, count // 10, 100, values=True)
        filtered, matched = replay(filtered_root, ("v7",))
        print("| measure | value |")
        print("|---|---:|")
        print(f"| append, durable (group commit) | {rate:,.0f} msg/s |")
        print(f"| replay from first, one reader | {fast:,.0f} msg/s |")
        print(f"| filtered replay (1 value in 20), messages scanned per second | "
              f"{count // 10 / (matched / filtered):,.0f} msg/s |")
        print(f"| on disk | {size / 2**20:,.1f} MiB ({size / stored:.1f} B a message) |")
        print(f"| open (recovery scan) | {seconds:.2f} s |")
        print(f"| RSS growth at open / whole process | {grown / 2**20:,.1f} MiB / "
              f"{total / 2**20:,.1f} MiB |")
        print(f"| sparse index entries | {entries:,.0f} ({entries * 24 / 2**20:.2f} MiB) |")
        print()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--messages", type=int)
    parser.add_argument("--memory", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.memory:
        memory(options.memory)
        return
    bench_storage(options.quick, options.messages)


if __name__ == "__main__":
    main()
