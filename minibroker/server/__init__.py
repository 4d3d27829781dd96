"""The asyncio shell: sockets, timers and the event loop around the sans-IO core.

``server.py`` owns the broker and the listeners; ``protocol.py`` is the ``asyncio.Protocol``
that picks a protocol session by the first 8 bytes; ``session.py`` is the base class each wire
protocol's session implements; ``loop.py`` chooses uvloop or asyncio.
"""

from minibroker.server.server import BrokerServer

__all__ = ["BrokerServer"]
