"""Overload protection in the shell: block flooding publishers, and serve many sockets.

A publisher that never waits would fill the broker's memory with ready messages. RabbitMQ's
answer is a resource alarm: "Nodes will temporarily block publishing connections by suspending
reading from client connection. Connections that are only used to consume messages will not be
blocked." This module does the same with the core's ready meter (``core/flow.py``).

Rules:

1. The alarm goes on when the ready weight passes ``memory_high_water`` or one queue's ready
   count passes ``queue_high_water``; it goes off only when the weight is below
   ``memory_low_water`` and every such queue is at or below ``queue_low_water`` (hysteresis,
   so the alarm does not flap). On: a warning with the numbers; off: info.
2. While the alarm is on, a connection that *publishes* (the broker's publish counter moved
   during its input) stops being read (``transport.pause_reading()``) after that input, and an
   AMQP client that announced the ``connection.blocked`` capability is told so
   (``Session.set_blocked``). Consumers that only ack keep being read: they are what drains the
   backlog. When the alarm clears, every blocked connection is resumed and told.
3. Checks are cheap comparisons after every input (a read, a lost socket, a drained output
   buffer, the core's timers, a management request) against the core's meter, which is exact
   at all times (``core/flow.py``); the server's periodic sweep checks again
   (:meth:`FlowController.recount`). The overshoot is therefore at most one read per
   publisher.
4. A blocked connection sends nothing we can read, heartbeats included: like RabbitMQ, we do
   not count its silence against it while its reading is held (``Session.reading_held``), and
   keep sending our own heartbeats so the client does not drop us.
5. File descriptors: at start the soft ``RLIMIT_NOFILE`` is raised to the hard limit where
   allowed, with a warning naming the limit when it stays below ``ServerConfig.open_files``; an
   ``accept()`` that fails for lack of descriptors is logged as one clear error naming the
   limit (again at most once a minute), not as a traceback per attempt. (uvloop never reports
   it: libuv accepts and closes the surplus sockets itself.)
7. Messages still arriving count too: the bytes a connection's codec holds for frames and
   messages not complete yet (``Session.partial_input``) are added to the ready weight, and a
   connection whose held bytes grew during an input while the alarm is on is blocked like a
   publisher; a lost connection's bytes are forgotten (:meth:`FlowController.forget`). So a
   slow 128 MiB message, or many of them on many connections, raises the alarm like ready
   messages do.
6. Disk (RabbitMQ's ``disk_free_limit``, 50 MB by default): a broker with a data directory
   raises the same alarm while the free space of its file system is below
   ``--disk-free-limit`` (:meth:`FlowController.disk_alarm`, checked on the periodic sweep).
   It clears when the space is back, if the memory marks allow.
8. Before any alarm, per-queue credit flow (``credit.py``) pauses only the connections that
   publish into a queue whose consumers lag, until that queue drains; the checks of rule 3 run
   it after every input while a queue is past its credit or the queue mark. The alarm's
   queue mark reads the same list of long queues (the meter lists a queue at the lower mark).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import TYPE_CHECKING, Any

from minibroker.server.credit import CreditFlow

if TYPE_CHECKING:
    from minibroker.core.broker import Broker
    from minibroker.core.queues import Queue
    from minibroker.server.server import BrokerServer
    from minibroker.server.session import Session

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]  # (the module's type, when there is one)

__all__ = ["FlowController", "install_accept_error_handler", "raise_open_file_limit"]

log = logging.getLogger("minibroker.server")

_MIB = 1024 * 1024


def low_water(high: int, low: int | None) -> int:
    """The configured low-water mark, or 80% of the high one."""
    return high * 8 // 10 if low is None else low


class FlowController:
    """Resource alarms of one server (rules 1-4)."""

    def __init__(self, server: BrokerServer) -> None:
        self.server = server
        config = server.config
        self.memory_high = config.memory_high_water
        self.memory_low = low_water(config.memory_high_water, config.memory_low_water)
        self.queue_high = config.queue_high_water
        self.queue_low = low_water(config.queue_high_water, config.queue_low_water)
        self.meter = server.broker.meter
        #: Per-queue credit flow (rule 8).
        self.credit = CreditFlow(self.meter, config.queue_credit, self.queue_high,
                                 self.queue_low, self._consumes)
        self.meter.queue_high_water = self.credit.mark
        #: The reason of the alarm that is on, else ``None``.
        self.alarm: str | None = None
        #: Connections we stopped reading (rule 2), until the alarm clears.
        self.blocked: set[Session] = set()
        #: Ready weight above which the alarm goes on: the memory high-water mark, or -1 while
        #: the disk alarm is on (every input then takes the slow path).
        self._threshold = self.memory_high
        #: Times the alarm went on (for tests and statistics).
        self.alarms = 0
        #: Why the disk alarm is on (rule 6), else ``None``.
        self.disk: str | None = None
        #: Bytes held by every session for messages still arriving (rule 7).
        self.partial = 0

    def replace_broker(self) -> None:
        """The server serves another core: meter it, forget the old alarm."""
        self.meter = self.server.broker.meter
        self.meter.queue_high_water = self.credit.mark
        self.credit.release_all()
        self.credit.meter = self.meter
        self._clear("the broker was replaced")
        self.recount()

    # -- checks (rule 3) ------------------------------------------------------------------------

    def after_input(self, session: Session, core: Broker, published: int) -> None:
        """After ``session``'s input; ``published`` is the publish count of ``core`` (the core
        of the session's vhost) before it."""
        held = session.partial_input()
        grew = held > session.partial_held
        if held != session.partial_held:  # rule 7
            self.partial += held - session.partial_held
            session.partial_held = held
        meter = self.meter
        too_long = False
        if meter.long_queues:  # rule 8
            too_long = self.credit.watch(session if core.published != published else None)
        if self.alarm is None:
            if meter.weight + self.partial <= self._threshold and not too_long:
                return
            self._raise()
            if self.alarm is None:
                return
        elif self._drained():
            self._clear()
            return
        if (grew or core.published != published) and session not in self.blocked:
            self._block(session)

    def forget(self, session: Session) -> None:
        """Rule 7: ``session``'s socket is gone, and the bytes it held with it."""
        self.partial -= session.partial_held
        session.partial_held = 0
        self.credit.forget(session)

    def check(self) -> None:
        """After an input that publishes nothing (a lost socket, a drained buffer)."""
        too_long = self.credit.watch(None) if self.meter.long_queues else False
        if self.alarm is None:
            if self.meter.weight + self.partial > self._threshold or too_long:
                self._raise()
        elif self._drained():
            self._clear()

    def recount(self) -> None:
        """The periodic sweep: forget closed sessions, then check."""
        # A disk alarm makes every input take the slow path (-1: any weight is above it).
        self._threshold = -1 if self.disk is not None else self.memory_high
        if self.blocked:
            self.blocked = {session for session in self.blocked if not session.closed}
        self.check()

    def disk_alarm(self, reason: str | None) -> None:
        """Rule 6: the free disk space fell below the limit (``reason`` says so) or is back
        (``None``)."""
        if reason == self.disk:
            return
        self.disk = reason
        if reason is not None:
            self._threshold = -1
            if self.alarm is None:
                self._raise()
        else:
            self.recount()

    def _consumes(self, session: Session) -> bool:
        """Has ``session`` a consumer that acknowledges? (``credit.py`` rule 4)"""
        state = self.server.vhosts.for_connection(session.id).connections.get(session.id)
        return state is not None and any(
            not consumer.no_ack
            for channel in state.channels.values() for consumer in channel.consumers.values())

    def _long_queues(self, limit: int) -> list[Queue]:
        """The listed queues with more than ``limit`` ready messages."""
        return [queue for queue in self.meter.long_queues
                if not queue.deleted and len(queue.ready) > limit]

    def _queues(self) -> list[Queue]:
        """The queues of every vhost's core: they share one meter (``vhosts.py``)."""
        server = self.server
        queues = list(server.broker.topology.queues.values())
        for core in server.vhosts.cores.values():
            queues.extend(core.topology.queues.values())
        return queues

    # -- transitions (rules 1 and 2) ------------------------------------------------------------

    def _raise(self) -> None:
        meter = self.meter
        long_queues = self._long_queues(self.queue_high)
        if self.disk is not None:
            reason = self.disk
        elif meter.total + self.partial > self.memory_high:
            reason = (f"memory: ready messages hold about {meter.total / _MIB:.1f} MiB and "
                      f"messages still arriving {self.partial / _MIB:.1f} MiB, above the "
                      f"high-water mark of {self.memory_high / _MIB:.1f} MiB")
        elif long_queues:
            queue = max(long_queues, key=lambda queue: len(queue.ready))
            reason = (f"queue '{queue.name}' has {len(queue.ready)} ready messages, above the "
                      f"high-water mark of {self.queue_high}")
        else:
            return
        self.alarm = reason
        self.alarms += 1
        queues = self._queues()
        log.warning("resource alarm on: %s (%d ready messages in %d queues, about %d bytes); "
                    "blocking publishers", reason, meter.ready_messages(queues), len(queues),
                    meter.total)

    def _drained(self) -> bool:
        if self.disk is not None or self.meter.total + self.partial >= self.memory_low:
            return False
        return not self._long_queues(self.queue_low)

    def _block(self, session: Session) -> None:
        if session.closed:
            return
        self.blocked.add(session)
        session.hold_reading("flow")
        assert self.alarm is not None
        told = session.set_blocked(self.alarm[:255])  # AMQP shortstr
        log.debug("%s: blocked %s connection %d (publishing during the alarm%s)", session.peer,
                 session.protocol_name, session.id, "; told" if told else "")

    def _clear(self, why: str = "") -> None:
        if self.alarm is None:
            return
        self.alarm = None
        blocked, self.blocked = self.blocked, set()
        for session in blocked:
            if session.closed:
                continue
            session.release_reading("flow")
            session.set_blocked(None)
        meter = self.meter
        queues = self._queues()
        log.info("resource alarm off%s: %d ready messages, about %d bytes (low-water marks %d "
                 "bytes, %d messages per queue); resumed %d connections",
                 f" ({why})" if why else "", meter.ready_messages(queues), meter.total,
                 self.memory_low, self.queue_low, len(blocked))


# -- file descriptors (rule 5) ----------------------------------------------------------------


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return the soft limit now in force
    (-1 when unknown). Warns when it stays below ``wanted``."""
    if resource is None:
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            # An unlimited hard limit may exceed the kernel's per-process maximum.
            target = max(soft, min(wanted, hard if hard != resource.RLIM_INFINITY else wanted))
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("RLIMIT_NOFILE is %d (hard limit %s): fewer than the %d file descriptors "
                    "wanted, so the broker cannot serve that many connections; raise it with "
                    "`ulimit -n`", soft, "unlimited" if hard == resource.RLIM_INFINITY else hard,
                    wanted)
    return int(soft)


_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)
#: Seconds between two "cannot accept" errors in a row.
ACCEPT_ERROR_INTERVAL = 60.0


def install_accept_error_handler(loop: asyncio.AbstractEventLoop) -> None:
    """Turn asyncio's per-attempt "accept() out of system resource" tracebacks into one clear
    error naming RLIMIT_NOFILE (rule 5); every other exception goes to the previous handler."""
    previous = loop.get_exception_handler()
    if getattr(previous, "minibroker_accept_handler", False):
        return
    last = [-ACCEPT_ERROR_INTERVAL]

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_DESCRIPTORS and (
                "accept" in str(context.get("message", ""))):
            now = loop.time()
            if now - last[0] >= ACCEPT_ERROR_INTERVAL:
                last[0] = now
                limit = "unknown"
                if resource is not None:
                    limit = str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
                log.error("cannot accept connections: %s (RLIMIT_NOFILE soft limit %s); new "
                          "connections wait in the listen backlog until descriptors are free; "
                          "raise the limit with `ulimit -n`", exc.strerror, limit)
            return
        if isinstance(exc, ValueError) and "_start_serving" in repr(context.get("handle")):
            # asyncio retries accept() later after EMFILE; a retry that fires after the
            # listener closed fails on its fd -1: shutdown noise, not a fault.
            log.debug("accept retry after the listener closed: %s", exc)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    # A mark on the function (so a second install finds it); functions take attributes, though
    # mypy knows none.
    handler.minibroker_accept_handler = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
