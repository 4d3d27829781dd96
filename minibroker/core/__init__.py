"""The sans-IO broker core: exchanges, queues, channels, consumers and acknowledgements.

Nothing in this package does I/O, reads a clock, draws random numbers or knows a wire format
(``tests/test_layering.py`` enforces it). Start reading at :mod:`minibroker.core.broker`.

Reading map, in the order a message meets the modules:

1. ``commands.py`` in, ``effects.py`` out; ``broker.py`` dispatches one to the handlers, over
   the shared ``state.py`` (``channels.py``: connections, channels, consumers).
2. ``publishing.py`` — checks, routing through ``exchanges.py`` (``topic.py``, ``headers.py``),
   confirms; ``transactions.py`` holds publishes until commit; ``replyto.py`` is direct
   reply-to.
3. ``lifecycle.py`` — a queue's life and the one enqueue; ``queues.py`` and ``stores.py`` keep
   the messages (``features.py`` when a queue has TTL, priorities or limits), ``flow.py``
   meters the backlog.
4. ``delivery.py`` and ``consumers.py`` — whose turn it is and the deliver effect; ``acks.py``
   — get, ack, nack, reject, recover; ``deadletter.py`` and ``timers.py`` — what expires or is
   rejected goes on.
5. ``declarations.py``, ``topology.py``, ``arguments.py``, ``equivalence.py`` — declare,
   bind, delete, and RabbitMQ's checks and texts; ``generations.py`` — answers that differ by
   RabbitMQ release.
6. Durability: ``journal.py`` (what the shell must write) and ``restore.py`` (back from disk).
7. Streams: ``streams.py``, ``streamargs.py``, ``streamlog.py``, ``streamreads.py``.
8. Security: ``access.py``, ``principal.py``, ``tenants.py``.
9. Looking in: ``statistics.py`` (snapshots) and ``fates.py`` (what became of each message).
"""

from minibroker.core.broker import Broker
from minibroker.message import Message, Properties

__all__ = ["Broker", "Message", "Properties"]
