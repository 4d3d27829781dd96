"""The core's store path alone: a backlog queued, then drained by one acking consumer.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/core_backlog.py 20000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/core_backlog.py 40000

(Ir(40,000) - Ir(20,000)) / 20,000 is what one message costs on the path where every message
goes through the backing store: ``PublishMany`` batches of 50 into a plain queue without
consumers (``append``), then a consumer with prefetch 100 that acks each read's deliveries in
one ``AckMany`` (``take``, settle, dispatch again). ``bench/core_hotpath.py`` and
``bench/instructions.py`` keep the queue empty, so their messages go straight to the consumer
(``delivery.deliver_now``): counted, none of 20,000 met the store in ``core_hotpath`` with
acks, 24 without.

Rules:

1. Core only: ``Broker.handle``, no sockets, no loop, no clock, so the count is the same on
   every run (``PYTHONHASHSEED=0`` for set and dict order).
2. The run checks its own result (every message delivered once, nothing left), so a broken
   core cannot look cheap.
"""

from __future__ import annotations

import sys

from minibroker.core import commands as c
from minibroker.core.broker import Broker
from minibroker.core.effects import delivery_tags
from minibroker.message import Message, Properties

PUBLISHER, CONSUMER = 1, 2
BATCH = 50
PREFETCH = 100


def run(count: int) -> None:
    broker = Broker()
    handle = broker.handle
    now = 0.0
    for connection in (PUBLISHER, CONSUMER):
        handle(c.OpenConnection(connection), now=now)
        handle(c.OpenChannel(connection, 1), now=now)
    handle(c.DeclareQueue(PUBLISHER, 1, "q"), now=now)
    handle(c.Qos(CONSUMER, 1, PREFETCH), now=now)
    batch = tuple((Message("", "q", b"x" * 16, Properties()), False) for _ in range(BATCH))
    for _ in range(count // BATCH):
        handle(c.PublishMany(PUBLISHER, 1, batch), now=now)
    tags = tuple(delivery_tags(handle(c.Consume(CONSUMER, 1, "q", "c", False), now=now).effects))
    delivered = len(tags)
    while tags:
        tags = tuple(delivery_tags(handle(c.AckMany(CONSUMER, 1, tags), now=now).effects))
        delivered += len(tags)
    left = broker.queue_statistics("q")
    if delivered != count // BATCH * BATCH or left.ready or left.unacked:
        raise SystemExit(f"delivered {delivered} of {count}; left behind: {left}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: core_backlog.py COUNT")
    run(int(sys.argv[1]))
