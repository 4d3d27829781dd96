"""The cyclic garbage collector of a broker that owns its process (``python -m minibroker``).

A broker's long-lived objects are its start-up (modules, classes, functions, the config) and
its backlog (ready messages: each a queue entry, a message and its properties). The collector's
full collections walk all of them, again and again while a backlog churns; with the default
thresholds (700, 10, 10) a flood with a 20,000-message backlog spent about 10% of the broker's
CPU in the collector, a third of it in full collections.

Rules:

1. Only the command line tunes the collector (:func:`tune_collector`, called by the CLI a
   second after its ready line, so that no first connection waits for the collection): a
   broker embedded in another program (the test toolkit) leaves that program's collector
   alone.
2. After start-up everything alive is collected once and frozen (``gc.freeze()``): about
   32,000 objects that a full collection then never walks (5.6 ms of CPU each time on our
   2-core VM, a pause every request in flight waits for).
3. The young generation's threshold is raised from 700 to :data:`YOUNG_THRESHOLD`: messages
   that are consumed within a few thousand allocations die young instead of being promoted,
   walked and promoted again. Measured on the flood (scenario 7, credit flow on): collector
   CPU 10% of the broker's with the defaults, 6.6% frozen, 3.7% frozen with this threshold;
   see docs/benchmarks.md.
4. Reference counting still frees nearly everything the moment it is dropped (the session
   breaks its one cycle itself, ``session.py`` rule 9): the collector only finds cycles, so
   collecting later costs memory only for garbage cycles, which the broker does not make per
   message.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_collector"]

#: Allocations (net of deallocations) of tracked objects between two young collections.
YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """Rules 2 and 3; call once, after start-up, in a process the broker owns."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
