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

Rule: importing a module of the core (``minibroker.core.generations`` for the command line's
``--rabbitmq-version``, ``minibroker.core.access`` for its configuration) loads only what that
module needs: ``Broker`` is imported on first use of ``minibroker.core.Broker`` (PEP 562).
"""

from minibroker.message import Message, Properties

__all__ = ["Broker", "Message", "Properties"]

TYPE_CHECKING = False  # (typing.TYPE_CHECKING without importing typing, as in minibroker/)
if TYPE_CHECKING:
    from minibroker.core.broker import Broker as Broker


def __getattr__(name: str) -> object:
    if name == "Broker":
        from minibroker.core.broker import Broker

        globals()["Broker"] = Broker  # found once: later lookups do not come here
        return Broker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
