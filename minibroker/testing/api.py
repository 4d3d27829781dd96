"""What a test can ask of a test broker: addresses, inspection, actions, faults and reset.

Rules:

1. One implementation for both handles: every method builds a function and hands it to
   ``self._call``, which runs it on the broker's loop (directly for the asyncio handle, marshalled
   with ``call_soon_threadsafe`` for the thread handle). Results are frozen snapshots, never live
   core objects, so reading them from another thread is safe.
2. The URLs log in as a configured user: ``guest`` when ``users`` has it (RabbitMQ's default
   user), else the first one; :meth:`BrokerAPI.url_for` and :meth:`BrokerAPI.amqp_url_for` name
   another.
3. Actions (``declare_queue``, ``publish``, ``get``...) go straight into the core as commands
   of the toolkit's own connection (``actions.py``): no client, same errors as a client's.
4. Faults aim at a connection by id (:meth:`BrokerAPI.connections`) or by the name the client
   gave it (``connection_name`` in AMQP client properties, the native ``client_name``).
5. Names follow AMQP: ``queue``, ``exchange``, ``routing_key``, ``consumer_tag``, ``reply_code``.
   Waiting conditions live in ``conditions.py``.
6. :meth:`BrokerAPI.messages` reads a stream as a consumer would attach to it
   (``offset=`` takes what ``x-stream-offset`` takes: ``"first"``, ``"last"``, ``"next"``, an
   integer, a ``datetime``, an interval like ``"1h"``) without consuming or changing anything;
   ``msg_id`` is then the stream offset.
7. Users, vhosts and permissions change the live registry (``core/access.py``): open
   connections see a change at their next operation, and a restart keeps them (with a data
   directory they are written to it at once, as the management API's are).
8. Inspection takes ``vhost=`` (default ``/``): the same questions of another vhost's core;
   an unknown vhost is a ``KeyError``.
"""

from __future__ import annotations

import datetime
import json
import os
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from minibroker.core.access import Permissions, TopicPermissions, User, VHost
from minibroker.core.broker import Broker
from minibroker.core.exchanges import Binding
from minibroker.core.statistics import (
    BrokerStatistics,
    ConnectionInfo,
    ConsumerInfo,
    ExchangeInfo,
    QueueStatistics,
)
from minibroker.core.streamargs import parse_offset
from minibroker.core.tenants import UserLimits, VHostLimits
from minibroker.message import FieldTable, Message, Properties
from minibroker.passwords import hash_password
from minibroker.persistence.definitions import export_definitions, load_document
from minibroker.storage import definitions_json
from minibroker.storage.definitions import Definition, Definitions, VHostDefinition
from minibroker.testing.actions import Actions, GotMessage, default_user
from minibroker.testing.conditions import Condition, Conditions, find_queue
from minibroker.testing.controller import Controller
from minibroker.testing.history import History
from minibroker.valueclass import valueclass

__all__ = ["BrokerAPI", "Condition", "GotMessage", "QueuedMessage"]

_T = TypeVar("_T")


@valueclass(frozen=True)
class QueuedMessage:
    """A message waiting in a queue (ready), read without consuming it."""

    msg_id: int
    exchange: str
    routing_key: str
    body: bytes
    properties: Properties
    redelivered: bool


class BrokerAPI(Conditions):
    """The inspection, action, fault and condition API shared by both handles (rule 1)."""

    _controller: Controller
    _actions: Actions

    @abstractmethod
    def _call(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the broker's loop and return its result."""

    # -- addresses ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._controller.config.host

    @property
    def port(self) -> int:
        return self._controller.config.port

    @property
    def url(self) -> str:
        """The native protocol's URL, logged in as the default user (rule 2):
        ``minibroker://host:port`` for guest/guest, ``minibroker://user:password@host:port``
        otherwise."""
        user, password = default_user(self._controller.config.users)
        if (user, password) == ("guest", "guest"):
            return f"minibroker://{self.host}:{self.port}"
        return self.url_for(user)

    @property
    def amqp_url(self) -> str:
        """The AMQP 0-9-1 URL, logged in as the default user (rule 2):
        ``amqp://guest:guest@host:port/``."""
        user, password = default_user(self._controller.config.users)
        return self._amqp_url(user, password)

    def url_for(self, user: str) -> str:
        """The native URL that logs in as ``user`` (one of the ``users`` option's)."""
        password = self._password(user)
        return f"minibroker://{_userinfo(user, password)}@{self.host}:{self.port}"

    def amqp_url_for(self, user: str) -> str:
        """The AMQP 0-9-1 URL that logs in as ``user`` (one of the ``users`` option's)."""
        return self._amqp_url(user, self._password(user))

    def _amqp_url(self, user: str, password: str) -> str:
        config = self._controller.config
        port = config.amqp_port or config.port
        return f"amqp://{_userinfo(user, password)}@{config.host}:{port}/"

    def _password(self, user: str) -> str:
        users = {**self._controller.config.users, **self._controller.passwords}
        if user not in users:
            known = ", ".join(sorted(users)) or "none"
            raise KeyError(f"no user {user!r} (configured users: {known})")
        return users[user]

    # -- users, vhosts, permissions (rule 7) -----------------------------------------------------

    def add_vhost(self, name: str, *, limits: Mapping[str, int] | None = None) -> None:
        """Create the vhost ``name`` (RabbitMQ's ``add_vhost``); ``limits``: its
        ``max-connections`` / ``max-queues``, as ``set_vhost_limits`` takes them."""
        vhost = VHost(name, limits=VHostLimits.from_definition(limits or {}))
        self._call(lambda: self._stored(lambda: self._controller.server.access.put_vhost(vhost)))

    def add_user(
        self, name: str, password: str, *, tags: Iterable[str] = (),
        permissions: Mapping[str, tuple[str, str, str]] | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        """Add (or replace) a user with ``password``; ``permissions``: vhost -> (configure,
        write, read) expressions (default: full permissions on ``/``); ``limits``: its
        ``max-connections`` / ``max-channels``. :meth:`url_for` then logs in as it."""
        wanted = permissions if permissions is not None else {"/": (".*", ".*", ".*")}
        user = User(name, hash_password(password) if password else "", tags=frozenset(tags),
                    limits=UserLimits.from_definition(limits or {}))

        def add() -> None:
            access = self._controller.server.access
            access.put_user(user)
            for vhost, (configure, write, read) in wanted.items():
                access.set_permissions(name, vhost, Permissions(configure, write, read))
            self._stored()

        self._call(add)
        self._controller.passwords[name] = password

    def delete_vhost(self, name: str) -> None:
        """Delete a vhost with everything in it; its connections are closed with RabbitMQ
        3.10's 320 ``vhost 'X' is down``."""
        self._call(lambda: self._stored(lambda: self._controller.server.delete_vhost(name)))

    def delete_user(self, name: str) -> None:
        """Delete a user; its connections are closed with 320 ``user 'U' is deleted``."""
        self._call(lambda: self._stored(lambda: self._controller.server.delete_user(name)))
        self._controller.passwords.pop(name, None)

    def set_permissions(self, user: str, vhost: str = "/", configure: str = ".*",
                        write: str = ".*", read: str = ".*") -> None:
        """RabbitMQ's ``set_permissions -p VHOST USER CONF WRITE READ``: applies to the next
        operation of open connections too."""
        permissions = Permissions(configure, write, read)
        self._call(lambda: self._stored(lambda: self._controller.server.access.set_permissions(
            user, vhost, permissions)))

    def set_topic_permissions(self, user: str, vhost: str, exchange: str, write: str = ".*",
                              read: str = ".*") -> None:
        """RabbitMQ's ``set_topic_permissions``: expressions on a topic exchange's keys."""
        topic = TopicPermissions(exchange, write, read)
        self._call(lambda: self._controller.server.access.set_topic_permissions(
            user, vhost, topic))

    def _stored(self, change: Callable[[], None] = lambda: None) -> None:
        """Rule 7: make ``change``; with a data directory, the registry is written now."""
        change()
        durability = self._controller.server.durability
        if durability is not None:
            durability.flush()

    def url_in(self, vhost: str, user: str | None = None) -> str:
        """The native URL that logs in as ``user`` (default: the default user) to ``vhost``."""
        name = user if user is not None else default_user(self._controller.config.users)[0]
        return (f"minibroker://{_userinfo(name, self._password(name))}@{self.host}:"
                f"{self.port}/{quote(vhost, safe='')}")

    def amqp_url_in(self, vhost: str, user: str | None = None) -> str:
        """The AMQP 0-9-1 URL that logs in as ``user`` (default: the default user) to
        ``vhost``."""
        name = user if user is not None else default_user(self._controller.config.users)[0]
        return self._amqp_url(name, self._password(name)) + quote(vhost, safe="")

    @property
    def internal_errors(self) -> int:
        """Internal errors the broker logged so far (the pytest plugin fails a test on any)."""
        return self._controller.internal_errors

    # -- inspection -----------------------------------------------------------------------------

    def statistics(self, *, vhost: str = "/") -> BrokerStatistics:
        return self._call(lambda: self._core(vhost).statistics())

    def _core(self, vhost: str) -> Broker:
        """The core of ``vhost`` (on the broker's loop): ``/`` is the toolkit's own (rule 8)."""
        if vhost == "/":
            return self._controller.broker
        server = self._controller.server
        if vhost not in server.access.vhosts:
            raise KeyError(f"no vhost {vhost!r}")
        return server.vhosts.core(vhost)

    def exchanges(self, *, vhost: str = "/") -> tuple[ExchangeInfo, ...]:
        return self._call(lambda: self._core(vhost).snapshot().exchanges)

    def queues(self, *, vhost: str = "/") -> tuple[QueueStatistics, ...]:
        """Every queue (of ``vhost``), with its ``ready`` and ``unacked`` counts."""
        return self._call(lambda: self._core(vhost).snapshot().queues)

    def queue(self, name: str, *, vhost: str = "/") -> QueueStatistics:
        """One queue's counters; ``KeyError`` if there is no such queue."""
        if vhost == "/":
            found = self._call(lambda: find_queue(self._controller, name))
        else:
            found = next((queue for queue in self.queues(vhost=vhost) if queue.name == name),
                         None)
        if found is None:
            raise KeyError(f"no queue {name!r}" + _in(vhost))
        return found

    def has_queue(self, name: str, *, vhost: str = "/") -> bool:
        return self._call(lambda: name in self._core(vhost).topology.queues)

    def exchange(self, name: str, *, vhost: str = "/") -> ExchangeInfo:
        """One exchange (type, flags, arguments, binding count); ``KeyError`` if none."""
        def find() -> ExchangeInfo | None:
            broker = self._core(vhost)
            return broker.exchange_info(name) if name in broker.topology.exchanges else None

        found = self._call(find)
        if found is None:
            raise KeyError(f"no exchange {name!r}" + _in(vhost))
        return found

    def has_exchange(self, name: str, *, vhost: str = "/") -> bool:
        return self._call(lambda: name in self._core(vhost).topology.exchanges)

    def bindings(self, *, vhost: str = "/") -> tuple[Binding, ...]:
        return self._call(lambda: self._core(vhost).snapshot().bindings)

    def consumers(self, queue: str | None = None, *, vhost: str = "/"
                  ) -> tuple[ConsumerInfo, ...]:
        every = self._call(lambda: self._core(vhost).snapshot().consumers)
        return tuple(info for info in every if queue is None or info.queue == queue)

    def connections(self, *, name: str | None = None, vhost: str = "/"
                    ) -> tuple[ConnectionInfo, ...]:
        """Client connections (``name``: only those the client named so, rule 4), with their
        user, peer, ``connection_name``, client properties and channels."""
        every = self._call(lambda: self._core(vhost).snapshot().connections)
        return tuple(info for info in every if name is None or info.connection_name == name)

    def messages(
        self, queue: str, *, offset: str | int | datetime.datetime | None = None,
        max_messages: int | None = None, vhost: str = "/",
    ) -> tuple[QueuedMessage, ...]:
        """The ready messages of ``queue``, head first, without consuming them; for a stream,
        the stored messages from ``offset`` on (default ``"first"``: all of them), at most
        ``max_messages`` (rule 6)."""
        found = self._call(
            lambda: _ready_messages(self._controller, self._core(vhost), queue, offset,
                                    max_messages))
        if found is None:
            raise KeyError(f"no queue {queue!r}" + _in(vhost))
        return found

    def history(
        self, *, exchange: str | None = None, routing_key: str | None = None,
        queue: str | None = None, kind: str | None = None,
    ) -> History:
        """Every published message and its fate, oldest first (bounded: see ``History.note``).
        ``queue`` keeps the messages routed to it; ``kind`` those with such an event."""
        return self._call(lambda: self._controller.recorder.history(
            exchange=exchange, routing_key=routing_key, queue=queue, kind=kind,
        ))

    # -- faults ---------------------------------------------------------------------------------

    def close_connection(
        self, connection: int | None = None, *, name: str | None = None,
        reply_code: int = 320, reply_text: str = "CONNECTION_FORCED - closed by the test",
    ) -> int:
        """Close client connections with the protocol's connection-close: the one with id
        ``connection`` (see :meth:`connections`), those named ``name`` (rule 4), or, given
        neither, all of them. Returns how many were closed."""
        return self._call(lambda: self._controller.close_connections(
            self._aim(connection, name), reply_code, reply_text))

    def close_channel(
        self, channel: int, *, connection: int | None = None, name: str | None = None,
        reply_code: int = 406, reply_text: str = "PRECONDITION_FAILED - closed by the test",
    ) -> int:
        """Close ``channel`` with the protocol's channel-close, on connection ``connection``, on
        the connections named ``name``, or on every connection that has it open; its unacked
        messages are requeued. Returns how many channels were closed."""
        return self._call(lambda: self._controller.close_channels(
            self._aim(connection, name), channel, reply_code, reply_text))

    def _aim(self, connection: int | None, name: str | None) -> set[int] | None:
        """The connection ids a fault aims at (loop side); ``None``: every connection."""
        if name is None:
            return None if connection is None else {connection}
        if connection is not None:
            raise ValueError("give connection= or name=, not both")
        return {info.connection for info in self._controller.broker.snapshot().connections
                if info.connection_name == name}

    def cancel_consumer(self, consumer_tag: str, *, queue: str | None = None) -> int:
        """Cancel consumers from the broker side (the client gets ``basic.cancel`` when it
        announced ``consumer_cancel_notify``; native clients always). Returns the count."""
        return self._call(lambda: self._controller.cancel_consumers(consumer_tag, queue))

    def nack_publishes(self, count: int = 1, *, queue: str | None = None,
                       exchange: str | None = None) -> None:
        """Refuse the next ``count`` publishes routed to ``queue`` / sent to ``exchange``: not
        enqueued; ``basic.nack`` to a publisher in confirm mode (see ``faults.py``)."""
        self._call(lambda: self._controller.faults.nack_publishes(
            count, queue=queue, exchange=exchange))

    def delay_reply(self, method: str, seconds: float, *, count: int = 1) -> None:
        """Send the reply to the next ``count`` ``method`` commands (e.g. "queue.declare")
        ``seconds`` later on the broker's clock."""
        self._call(lambda: self._controller.faults.fault_reply(method, count, seconds))

    def drop_reply(self, method: str, *, count: int = 1) -> None:
        """Never send the reply to the next ``count`` ``method`` commands (they still run)."""
        self._call(lambda: self._controller.faults.fault_reply(method, count, None))

    def block_publishers(self, reason: str = "low on memory") -> int:
        """``connection.blocked`` to AMQP clients with the capability; publishing connections
        stop being read. Returns how many connections were notified."""
        return self._call(lambda: self._controller.faults.block(reason))

    def unblock_publishers(self) -> int:
        return self._call(lambda: self._controller.faults.unblock())

    @property
    def refused_publishes(self) -> int:
        """Publishes refused by :meth:`nack_publishes` so far."""
        return self._call(lambda: self._controller.faults.refused)

    # -- actions (rule 3) ---------------------------------------------------------------------

    def declare_exchange(
        self, exchange: str, type: str = "direct", *, durable: bool = False,
        auto_delete: bool = False, internal: bool = False, arguments: FieldTable | None = None,
    ) -> None:
        """``exchange.declare``, as a client would send it (same arguments, same errors)."""
        self._call(lambda: self._actions.declare_exchange(exchange, type, durable, auto_delete,
                                                        internal, arguments))

    def declare_queue(
        self, queue: str = "", *, durable: bool = False, auto_delete: bool = False,
        arguments: FieldTable | None = None,
    ) -> str:
        """``queue.declare``; returns the queue's name (the broker chooses one for ``""``).
        No ``exclusive``: an exclusive queue belongs to a client's connection."""
        return self._call(lambda: self._actions.declare_queue(queue, durable, auto_delete,
                                                            arguments))

    def bind(self, queue: str, exchange: str, routing_key: str = "",
             arguments: FieldTable | None = None) -> None:
        """``queue.bind``: route what ``exchange`` matches with ``routing_key`` to ``queue``."""
        self._call(lambda: self._actions.bind(queue, exchange, routing_key, arguments))

    def bind_exchange(self, destination: str, source: str, routing_key: str = "",
                      arguments: FieldTable | None = None) -> None:
        """``exchange.bind``: route what ``source`` matches on to exchange ``destination``."""
        self._call(lambda: self._actions.bind_exchange(destination, source, routing_key,
                                                     arguments))

    def delete_queue(self, queue: str, *, if_unused: bool = False,
                     if_empty: bool = False) -> int:
        """``queue.delete``: its consumers are cancelled (the clients are told, as with
        RabbitMQ); returns how many ready messages it held."""
        return self._call(lambda: self._actions.delete_queue(queue, if_unused, if_empty))

    def delete_exchange(self, exchange: str, *, if_unused: bool = False) -> None:
        self._call(lambda: self._actions.delete_exchange(exchange, if_unused))

    def publish(
        self, exchange: str, routing_key: str, body: bytes | str, *, mandatory: bool = False,
        properties: Properties | None = None, **fields: object,
    ) -> tuple[str, ...]:
        """Publish ``body`` (a ``str`` is sent as UTF-8) as a client would; the message
        properties are keyword arguments (``headers=``, ``delivery_mode=``, ``reply_to=``,
        ``correlation_id=``, ``expiration=``...) or a whole ``properties`` object.
        Returns the queues it was routed to: empty when unroutable."""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes | bytearray | memoryview):
            raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
        if properties is None:
            properties = Properties(**fields)  # type: ignore[arg-type]
        elif fields:
            raise TypeError("give properties= or property keywords, not both")
        message = Message(exchange, routing_key, bytes(body), properties)
        return self._call(lambda: self._actions.publish(message, mandatory))

    def get(self, queue: str) -> GotMessage | None:
        """``basic.get`` with automatic acknowledgement: the head of ``queue``, taken out of
        it, or ``None`` when it has no ready message."""
        return self._call(lambda: self._actions.get(queue))

    def purge(self, queue: str) -> int:
        """``queue.purge``: drop the ready messages; returns how many."""
        return self._call(lambda: self._actions.purge(queue))

    def reset(self) -> None:
        """Back to a fresh broker: clients get 320, topology, messages, history and faults go
        (and, with ``data_dir``, the directory's contents)."""
        self._call(self._controller.reset)

    # -- definitions ---------------------------------------------------------------------------

    def load_definitions(self, definitions: str | bytes | os.PathLike[str] | dict[str, Any]
                         ) -> list[str]:
        """Declare what a RabbitMQ definitions document holds (``rabbitmqctl
        export_definitions``): a path to its JSON file, its text, or the parsed object. Its
        users, vhosts and permissions come first, then each vhost's exchanges, queues and
        bindings, in that vhost. Returns a line for each object the broker refused (the
        others are declared)."""
        if isinstance(definitions, dict):
            text: str | bytes = json.dumps(definitions)
        elif isinstance(definitions, str | bytes) and definitions.lstrip()[:1] in ("{", b"{"):
            text = definitions
        else:
            text = Path(os.fsdecode(definitions)).read_bytes()
        controller = self._controller

        def load() -> list[str]:
            server = controller.server
            problems = load_document(definitions_json.parse(text), server.access,
                                     server.vhosts.core, now=server.now())
            if server.durability is not None:
                server.durability.after_input()
            return problems
        return self._call(load)

    def export_definitions(self, *, vhost: str | None = None) -> dict[str, Any]:
        """The broker's durable exchanges, queues and bindings as a RabbitMQ definitions
        document (for ``rabbitmqctl import_definitions``): of every vhost, each vhost other
        than ``/`` listed under ``vhosts`` so that the document imports on its own; or of
        ``vhost`` alone (an unknown vhost is a ``KeyError``)."""
        def document() -> str:
            server = self._controller.server
            names = sorted(server.access.vhosts) if vhost is None else [vhost]
            objects: list[Definition] = [VHostDefinition(name) for name in names
                                         if name != "/" and vhost is None]
            for name in names:
                found = export_definitions(self._core(name), vhost=name)
                objects += [*found.exchanges, *found.queues, *found.bindings]
            return definitions_json.render(Definitions.of(objects))
        exported: dict[str, Any] = json.loads(self._call(document))
        return exported


def _in(vhost: str) -> str:
    return f" in vhost {vhost!r}" if vhost != "/" else ""


def _ready_messages(
    controller: Controller, core: Broker, name: str,
    offset: str | int | datetime.datetime | None, max_messages: int | None,
) -> tuple[QueuedMessage, ...] | None:
    queue = core.topology.queues.get(name)
    if queue is None:
        return None
    log = queue.stream
    if log is not None:
        spec = parse_offset(name, "first" if offset is None else offset, True)
        wall_now = core.lifecycle.wall_time(controller.server.now())
        found: list[QueuedMessage] = []
        for position, message in log.read(log.seek(spec, wall_now)):
            if max_messages is not None and len(found) >= max_messages:
                break
            found.append(QueuedMessage(position, message.exchange, message.routing_key,
                                       bytes(message.body), message.properties, False))
        return tuple(found)
    if offset is not None:
        raise ValueError(f"queue {name!r} is not a stream: offset= reads streams only")
    return tuple(
        QueuedMessage(entry.msg_id, entry.message.exchange, entry.message.routing_key,
                      bytes(entry.message.body), entry.message.properties, entry.redelivered)
        for entry in queue.entries()
    )


def _userinfo(user: str, password: str) -> str:
    return f"{quote(user, safe='')}:{quote(password, safe='')}"
