"""Virtual hosts in the shell: one core :class:`~minibroker.core.broker.Broker` per vhost, and
each connection's commands routed to the core of the vhost it opened.

Rules:

1. ``/`` is the server's own core (``BrokerServer.broker``; the management API and the test
   toolkit's inspection read the others through :meth:`VHostCores.core`). Any other vhost
   gets its own core the first time a connection opens it (or, with a data directory, at
   start when it holds durable definitions), with its own ``amq.*`` exchanges, queues,
   bindings and messages: nothing in one vhost can name anything in another.
2. Routing costs nothing while no connection uses another vhost: ``routes`` (connection id
   -> core) is empty and the server's ``execute`` checks that first.
3. Deadlines: the server's one timer is armed at the earliest deadline of all the cores, and a
   timer firing runs every core's due timeouts. Effects carry connection ids, which are
   unique across vhosts, so they reach their sessions unchanged.
4. The cores name their vhost ``/`` in their texts (``core/topology.py``'s one constant);
   an error raised by another vhost's core has ``in vhost '/'`` rewritten to its vhost on
   the way out, so clients read RabbitMQ's text for their vhost.
5. With a data directory every core has a journal, and the server's ``Durability`` attaches
   it to the one store as the core is made (``durability.py`` rule 6): durable exchanges,
   queues, bindings, persistent messages and streams of every vhost survive a restart and
   ``kill -9``, their confirms wait for the disk, and deleting a vhost deletes its data.
   Every core shares the ``/`` core's ready meter, so the memory alarm weighs all vhosts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minibroker.core.broker import Broker
from minibroker.core.commands import Command
from minibroker.core.effects import Effect, Outcome
from minibroker.core.journal import Journal
from minibroker.errors import AMQPError

if TYPE_CHECKING:
    from minibroker.server.durability import Durability
    from minibroker.server.server import BrokerServer

__all__ = ["VHostCores"]

_DEFAULT_VHOST_TEXT = "in vhost '/'"


class VHostCores:
    """The cores of the vhosts other than ``/``, and which connection uses which."""

    __slots__ = ("cores", "durability", "names", "routes", "server")

    def __init__(self, server: BrokerServer) -> None:
        self.server = server
        #: vhost name -> its core (``/`` excluded: that is ``server.broker``).
        self.cores: dict[str, Broker] = {}
        #: connection id -> the core of its vhost, for connections outside ``/`` (rule 2).
        self.routes: dict[int, Broker] = {}
        #: connection id -> its vhost name, for the same connections.
        self.names: dict[int, str] = {}
        #: The data directory the cores store through (rule 5), once it is open.
        self.durability: Durability | None = None

    def core(self, vhost: str) -> Broker:
        """The core of ``vhost`` (made on first use, rule 1)."""
        if vhost == "/":
            return self.server.broker
        core = self.cores.get(vhost)
        if core is None:
            server = self.server
            journal = None if server.config.data_dir is None else Journal()
            core = self.cores[vhost] = Broker(
                make_name=server.broker.state.make_name, wall_time=server.wall_time,
                rabbitmq=server.config.rabbitmq, meter=server.broker.meter, journal=journal)
            if self.durability is not None and journal is not None:
                self.durability.attach(vhost, core)
        return core

    def delete(self, vhost: str) -> None:
        """The vhost was deleted: its core goes, and its data (rule 5)."""
        core = self.cores.pop(vhost, None)
        if self.durability is not None:
            self.durability.delete_vhost(vhost, core)

    def attach(self, connection: int, vhost: str) -> None:
        if vhost != "/":
            self.routes[connection] = self.core(vhost)
            self.names[connection] = vhost

    def detach(self, connection: int) -> None:
        self.routes.pop(connection, None)
        self.names.pop(connection, None)

    def for_connection(self, connection: int) -> Broker:
        return self.routes.get(connection) or self.server.broker

    def execute(self, core: Broker, command: Command, connection: int) -> Outcome:
        """Run ``command`` in another vhost's core (rule 4 for its errors, rule 5 for what it
        records)."""
        durability = self.durability
        try:
            if durability is None:
                return core.handle(command, now=self.server.clock.now())
            if durability.loader is not None:
                durability.before_command(command, self.names.get(connection, "/"))
            try:
                return core.handle(command, now=self.server.clock.now())
            finally:
                durability.after_input()
        except AMQPError as err:
            vhost = self.names.get(connection, "/")
            err.text = err.text.replace(_DEFAULT_VHOST_TEXT, f"in vhost '{vhost}'")
            raise

    def next_deadline(self, deadline: float | None) -> float | None:
        """The earliest of ``deadline`` (the ``/`` core's) and every other core's (rule 3)."""
        for core in self.cores.values():
            other = core.next_deadline()
            if other is not None and (deadline is None or other < deadline):
                deadline = other
        return deadline

    def handle_timeouts(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for core in self.cores.values():
            effects.extend(core.handle_timeout(now=now))
        return effects
