"""minibroker: a faithful, instant, pure-Python message broker.

Reading map (in order):

1. ``minibroker/message.py`` — what a message is.
2. ``minibroker/core/broker.py``, ``publishing.py``, ``delivery.py``, ``acks.py`` — commands
   in, replies and effects out; the life of a message.
3. ``minibroker/core/exchanges.py``, ``topic.py``, ``headers.py`` — routing.
4. ``minibroker/core/queues.py``, ``stores.py``, ``consumers.py``, ``channels.py`` — storage,
   whose turn it is, delivery tags, prefetch, acks.
5. ``minibroker/core/lifecycle.py``, ``features.py`` — TTL, dead-lettering, limits, priorities.
6. ``minibroker/protocols/`` — codecs: bytes in, frames out, no I/O.
7. ``minibroker/server/`` — the thin asyncio shell that joins sockets to the core.
8. ``minibroker/client/`` and ``minibroker/testing/`` — the native client and the test toolkit.

``docs/architecture.md`` walks one message through these files.
"""

__version__ = "0.1.0"

from minibroker.client import connect

__all__ = ["__version__", "connect"]
