"""The asyncio shell: sockets, timers and the event loop around the sans-IO core.

``server.py`` owns the broker and the listeners; ``protocol.py`` is the ``asyncio.Protocol``
that picks a protocol by the first 8 bytes; ``session.py`` is the one session pipeline every
protocol runs through, and ``adapter.py`` the small interface a protocol implements to plug in
(``native_adapter.py``, ``amqp_adapter.py``) and the one an interceptor implements (fault
injection); ``flow.py`` keeps the broker bounded under load; ``loop.py`` chooses uvloop or
asyncio.
"""

from minibroker.server.server import BrokerServer

__all__ = ["BrokerServer"]
