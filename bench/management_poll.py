"""Does an open management page slow the AMQP hot path? Throughput with and without a poller.

    python bench/management_poll.py              # 5 rounds of 300,000 messages per case
    python bench/management_poll.py --quick      # 3 rounds of 100,000

Rules:

1. One minibroker subprocess (``--management-port 0``) for every run; the load is
   ``amqp_throughput.py``'s "minimal" pipelining client (one publisher in confirm mode, one
   consumer acking each delivery, 16-byte bodies), so the broker is the bottleneck.
2. "page open": a separate process does what the web page does while it shows the overview —
   ``GET /api/overview`` and ``GET /api/queues`` every second, on one keep-alive connection,
   with basic auth — for the whole run. "no page": nothing polls.
3. The two cases alternate, round after round (the machine's load drifts); each table row is
   the median over rounds, and broker CPU per message is read from /proc as in
   ``amqp_throughput.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import re
import signal
import statistics
import subprocess
import sys
import time

from amqp_throughput import Run, Target, measure

PERIOD = 1.0


def poll(url: str) -> None:
    """Rule 2's poller (run as ``--poll URL`` in its own process) until killed."""
    match = re.match(r"http://([^:/]+):(\d+)/", url)
    assert match, url
    connection = http.client.HTTPConnection(match.group(1), int(match.group(2)), timeout=10)
    headers = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode(),
               "X-Requested-With": "XMLHttpRequest"}
    while True:
        started = time.monotonic()
        for path in ("/api/overview", "/api/queues"):
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
        time.sleep(max(0.0, PERIOD - (time.monotonic() - started)))


def start_broker() -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "minibroker", "--port", "0", "--management-port", "0",
         "--log-level", "warning", "--heartbeat", "0", "--in-memory"],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    amqp, management = re.search(r"(amqp://\S+)", line), re.search(r"(http://\S+)", line)
    if not amqp or not management:
        proc.kill()
        raise RuntimeError(f"unexpected ready line {line!r}")
    return proc, amqp.group(1), management.group(1)


async def run_case(target: Target, management_url: str, page: bool, count: int) -> Run:
    poller = None
    if page:
        poller = subprocess.Popen([sys.executable, __file__, "--poll", management_url])
    try:
        return await measure("minimal", target, count, 5_000, 16, 1000)
    finally:
        if poller is not None:
            poller.kill()
            poller.wait()


async def main_async(rounds: int, count: int) -> None:
    proc, amqp_url, management_url = start_broker()
    results: dict[bool, list[Run]] = {False: [], True: []}
    try:
        target = Target("minibroker", amqp_url, proc.pid)
        for number in range(rounds):
            for page in (False, True):
                run = await run_case(target, management_url, page, count)
                results[page].append(run)
                print(f"# round {number + 1}, {'page open' if page else 'no page'}: "
                      f"{run.rate:,.0f} msgs/s, broker {run.broker_us:.1f} µs/msg", flush=True)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    print("\n| case | msgs/s (median) | broker CPU µs/msg (median) | runs |")
    print("|---|---:|---:|---:|")
    medians = {}
    for page, runs in results.items():
        rate = statistics.median(run.rate for run in runs)
        cpu = statistics.median(run.broker_us for run in runs)
        medians[page] = rate
        print(f"| {'page open' if page else 'no page'} | {rate:,.0f} | {cpu:.1f} | {len(runs)} |")
    print(f"\npage open / no page: {medians[True] / medians[False]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 100,000 messages")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=300_000, help="messages per run")
    parser.add_argument("--poll", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poll:
        poll(args.poll)
        return
    rounds, count = (3, 100_000) if args.quick else (args.rounds, args.count)
    asyncio.run(main_async(rounds, count))


if __name__ == "__main__":
    main()
