"""The core's hot path alone: publish -> deliver -> ack through ``Broker.handle``, no sockets.

Run by hand (never in CI). It drives the core the way the sessions do under the throughput
benchmark (``bench/scenarios_throughput.py``): a publisher in confirm mode sends 16-byte
messages in ``PublishMany`` batches, a consumer with prefetch 100 acks every delivery, its acks
of one read arriving as one ``AckMany``. The ``no-ack`` variant has a no-ack consumer and no
acks. Nothing but the core runs, so the numbers move only when the core's code does.

Rules:

1. Wall-clock time is printed for orientation only; compare builds with deterministic
   instruction counts instead, e.g.::

       valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/core_hotpath.py --small

   and take the difference between two message counts to cancel start-up (``--count``):
   (Ir(2N) - Ir(N)) / N is the cost of one message.
2. Every run checks its own result (every message delivered once, every ack taken), so a
   broken core cannot look fast.
"""

from __future__ import annotations

import argparse
import time

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.channels import DELIVERY_BURST
from minibroker.core.effects import Confirm, delivery_tags
from minibroker.message import Message, Properties

PUBLISHER, CONSUMER = 1, 2
BATCH = 50  #: publishes per read (the benchmark client's frames per write)
PREFETCH = 100
BODY = b"x" * 16


def run(count: int, *, no_ack: bool) -> tuple[int, int]:
    """Publish ``count`` messages and consume them; return (deliveries, confirms)."""
    broker = Broker()
    now = 0.0
    handle = broker.handle
    handle(c.OpenConnection(PUBLISHER), now=now)
    handle(c.OpenChannel(PUBLISHER, 1), now=now)
    handle(c.ConfirmSelect(PUBLISHER, 1), now=now)
    handle(c.OpenConnection(CONSUMER), now=now)
    handle(c.OpenChannel(CONSUMER, 1), now=now)
    handle(c.DeclareQueue(PUBLISHER, 1, "q"), now=now)
    handle(c.Qos(CONSUMER, 1, PREFETCH), now=now)
    handle(c.Consume(CONSUMER, 1, "q", "c", no_ack), now=now)
    properties = Properties()
    batch = tuple((Message("", "q", BODY, properties), False) for _ in range(BATCH))
    delivered = confirmed = 0
    pending: list[int] = []
    sent = 0
    while sent < count:
        size = min(BATCH, count - sent)
        outcome = handle(c.PublishMany(PUBLISHER, 1, batch[:size]), now=now)
        sent += size
        effects = outcome.effects
        confirmed += sum(1 for effect in effects if type(effect) is Confirm)
        tags = delivery_tags(effects)
        delivered += len(tags)
        if no_ack:
            # The session's flush renews a no-ack consumer's delivery burst (core/channels.py
            # rule 5) when the core paused it at a full burst.
            if broker.connections[CONSUMER].burst >= DELIVERY_BURST:
                more = handle(c.SetWritable(CONSUMER, writable=True), now=now).effects
                delivered += len(delivery_tags(more))
            continue
        pending.extend(tags)
        while pending:  # the consumer acks what it read; each ack batch may deliver more
            tags, pending = pending, []
            more = delivery_tags(handle(c.AckMany(CONSUMER, 1, tuple(tags)), now=now).effects)
            delivered += len(more)
            pending.extend(more)
    if delivered != count:
        raise SystemExit(f"delivered {delivered} of {count}")
    statistics = broker.queue_statistics("q")
    if statistics.ready or statistics.unacked:
        raise SystemExit(f"left behind: {statistics}")
    return delivered, confirmed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200_000, help="messages per variant")
    parser.add_argument("--small", action="store_true", help="20,000 messages (for callgrind)")
    parser.add_argument("--only", choices=("ack", "no-ack"), help="run one variant")
    options = parser.parse_args()
    count = 20_000 if options.small else options.count
    for variant in ("ack", "no-ack"):
        if options.only not in (None, variant):
            continue
        start = time.perf_counter()
        delivered, confirmed = run(count, no_ack=variant == "no-ack")
        elapsed = time.perf_counter() - start
        print(f"{variant:6}  {delivered:,} messages, {confirmed:,} confirm effects: "
              f"{elapsed / delivered * 1e6:.2f} us/message (wall clock, for orientation)")


if __name__ == "__main__":
    main()
