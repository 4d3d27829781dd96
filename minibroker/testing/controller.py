"""The loop-side half of a test broker: the server, its history, faults, waiters and lifecycle.

Rules:

1. Everything here runs on the broker's event loop thread; the handles (``handles.py``) are
   the only callers, and the thread handle marshals every call onto the loop first.
2. Waiting never sleeps: a waiter's condition is checked when it is added and then after every
   input the server processes (``server.input_hooks``: a read, a timer, a lost socket) and after
   every toolkit action. The hook is installed only while someone waits.
3. ``reset()`` tells every client connection 320 CONNECTION_FORCED and swaps in a fresh core
   ``Broker``: topology, messages, history and faults are gone (in every vhost), users, vhosts
   and permissions are as the options made them, the port and the clock stay.
   It does not wait for the clients to go: they are already forgotten by the new core.
4. ``stop()`` is abrupt (every socket reset, no close frames, like a killed process);
   ``start()`` listens again on the same port. Without a data directory (the default) the
   same core state comes back — as a RabbitMQ node whose queues and messages were all durable
   would — and ``restart()`` is ``stop()`` then ``start()``; ``crash()`` comes back empty,
   as a real in-memory broker after ``kill -9``. ``reset()`` empties it.
5. With ``data_dir`` the state on disk is the truth: ``stop()`` and ``crash()`` are a
   ``kill -9`` (connections reset, nothing written that was not written, no clean-shutdown
   marker), ``restart()`` is a clean stop (clients told 320, the store closed cleanly), and
   ``start()`` builds a new core from the directory — transient messages and non-durable
   queues gone, persistent messages back (``redelivered`` after a crash) — and loads every
   recovered message before it returns. ``reset()`` empties the directory too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
from collections.abc import Callable

from minibroker.accounts import build_access
from minibroker.config import ServerConfig
from minibroker.core.broker import Broker
from minibroker.server.clock import Clock
from minibroker.server.server import BrokerServer
from minibroker.testing.clock import ManualClock
from minibroker.testing.faults import FaultInjector
from minibroker.testing.history import Recorder

__all__ = ["Check", "Controller", "WaitTimeout"]

log = logging.getLogger("minibroker.testing")

#: A waiter's condition: ``(done, what it saw)``; runs on the loop thread.
Check = Callable[[], tuple[bool, str]]

RESET_TEXT = "CONNECTION_FORCED - broker reset by the test toolkit"


class WaitTimeout(AssertionError):
    """A ``wait_for`` ran out of time; the text says what it waited for and what it saw."""


class _Waiter:
    __slots__ = ("check", "future", "seen")

    def __init__(self, check: Check, future: asyncio.Future[None]) -> None:
        self.check = check
        self.future = future
        self.seen = ""


class Controller:
    """One test broker on the current loop (rule 1)."""

    def __init__(self, config: ServerConfig, clock: Clock | None, history_size: int) -> None:
        self.config = config
        self.clock = clock
        self.recorder = Recorder(history_size)
        self.server = BrokerServer(config, clock=clock)
        self.broker = self.server.broker
        self.broker.observer = self.recorder
        self.faults = FaultInjector(self.server, self.recorder)
        self._waiters: list[_Waiter] = []
        self._old_errors = 0
        self.running = False
        #: Plain-text passwords of the users the test added (for the handles' URLs).
        self.passwords: dict[str, str] = {}
        #: The registry was built from the options (so a reset builds it afresh).
        self._own_access = config.access is None

    def _new_broker(self) -> Broker:
        broker = self.server.new_broker()
        broker.observer = self.recorder
        return broker

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("the broker is already running")
        durable = self.config.data_dir is not None
        if self.server.closing:  # started before: a new server on the same port
            self._old_errors += self.server.internal_errors
            # Same core in memory (rule 4); a new one from the disk with a data dir (rule 5).
            self.server = BrokerServer(self.config, broker=None if durable else self.broker,
                                       clock=self.clock)
            if durable:
                self.broker = self.server.broker
                self.broker.observer = self.recorder
            self.faults.server = self.server
            self.faults.clear()
        await self.server.start()
        if self.server.durability is not None:
            self.server.durability.load_all()
        self.running = True
        # A restart must find the same ports again, even when 0 ("any free port") was asked.
        server = self.server
        # ... and the same users, vhosts and permissions (those added by the test too).
        self.config = dataclasses.replace(
            self.config, port=server.port,
            amqp_port=None if self.config.amqp_port is None else server.amqp_port,
            management_port=(None if server.management is None
                             else server.management.port),
            tls_port=None if self.config.tls_port is None else server.tls_port,
            access=server.access,
        )
        if isinstance(self.clock, ManualClock):
            self.clock.attach(self.server)
        if self._waiters:
            self.server.input_hooks.append(self.check_waiters)

    async def stop(self) -> None:
        """Abrupt stop (rule 4)."""
        self._stopped()
        await self.server.abort()

    async def restart(self) -> None:
        """Rules 4-5: ``stop()`` and ``start()`` in memory; a clean stop with a data dir."""
        if self.config.data_dir is None:
            await self.stop()
        else:
            await self.close()
        await self.start()

    async def crash(self) -> None:
        """As ``kill -9`` and a new start (rules 4-5)."""
        await self.stop()
        if self.config.data_dir is None:
            self.broker = self._new_broker()  # an in-memory broker keeps nothing
        await self.start()

    async def close(self) -> None:
        """Graceful: clients are told 320 and given ``shutdown_grace`` seconds."""
        self._stopped()
        await self.server.close()

    def _stopped(self) -> None:
        if not self.running:
            raise RuntimeError("the broker is not running")
        self.running = False
        self.faults.unblock()
        if isinstance(self.clock, ManualClock):
            self.clock.detach(self.server)

    @property
    def internal_errors(self) -> int:
        return self._old_errors + self.server.internal_errors

    def reset(self) -> None:
        """Rule 3."""
        server = self.server
        for protocol in list(server.protocols):
            session = protocol.session
            if session is not None and session.registered:
                session.shutdown(320, RESET_TEXT)
            elif protocol.transport is not None:  # still in its handshake: just drop it
                protocol.transport.abort()
        self.faults.clear()
        self.recorder.clear()
        server.vhosts.cores.clear()  # every vhost's queues and messages go too
        if self._own_access:  # users, vhosts and permissions as the options made them
            config = dataclasses.replace(self.config, access=None)
            server.access = build_access(
                config.users, vhosts=config.vhosts, user_vhosts=config.user_vhosts,
                loopback_users=config.loopback_users, rabbitmq=config.rabbitmq)
            self.config = dataclasses.replace(config, access=server.access)
            self.passwords.clear()
        durability = server.durability
        if durability is not None:  # rule 5: the directory is emptied too
            durability.abandon()
            server.durability = None
            _empty_directory(durability.directory)
        self.broker = self._new_broker()
        server.replace_broker(self.broker)
        if durability is not None:
            server.open_storage()
        self.check_waiters()

    # -- connections and channels -----------------------------------------------------------

    def close_connections(self, connections: set[int] | None, reply_code: int,
                          reply_text: str) -> int:
        """Close the client connections with these ids (``None``: all)."""
        sessions = [session for session in list(self.server.sessions.values())
                    if connections is None or session.id in connections]
        for session in sessions:
            session.shutdown(reply_code, reply_text)
        self.check_waiters()
        return len(sessions)

    def close_channels(self, connections: set[int] | None, channel: int, reply_code: int,
                       reply_text: str) -> int:
        """Close ``channel`` on the connections with these ids (``None``: all)."""
        closed = 0
        for session in list(self.server.sessions.values()):
            if connections is None or session.id in connections:
                closed += session.close_channel(channel, reply_code, reply_text)
        self.check_waiters()
        return closed

    def cancel_consumers(self, consumer_tag: str, queue: str | None) -> int:
        from minibroker.core.commands import Cancel
        from minibroker.core.effects import ConsumerCancelled

        server = self.server
        found = [info for info in self.broker.snapshot().consumers
                 if info.consumer_tag == consumer_tag and (queue is None or info.queue == queue)]
        for info in found:
            outcome = server.execute(Cancel(info.connection, info.channel, consumer_tag))
            session = server.sessions.get(info.connection)
            if session is not None:  # the protocol's broker-initiated basic.cancel
                session.on_effect(ConsumerCancelled(info.connection, info.channel, consumer_tag))
            server.apply_effects(outcome.effects)
        self.check_waiters()
        return len(found)

    # -- waiting --------------------------------------------------------------------------------

    async def wait_for(self, check: Check, description: str, timeout: float) -> None:
        done, seen = check()
        if done:
            return
        waiter = _Waiter(check, asyncio.get_running_loop().create_future())
        waiter.seen = seen
        self._waiters.append(waiter)
        if len(self._waiters) == 1 and self.running:
            self.server.input_hooks.append(self.check_waiters)
        try:
            async with asyncio.timeout(timeout):
                await waiter.future
        except TimeoutError:
            _, seen = check()
            raise WaitTimeout(
                f"timed out after {timeout:g} s waiting for {description}; saw {seen}"
            ) from None
        finally:
            self._forget(waiter)

    def _forget(self, waiter: _Waiter) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        if not self._waiters and self.check_waiters in self.server.input_hooks:
            self.server.input_hooks.remove(self.check_waiters)

    def check_waiters(self) -> None:
        for waiter in list(self._waiters):
            if waiter.future.done():
                continue
            try:
                done, waiter.seen = waiter.check()
            except Exception as exc:  # a broken condition fails its own wait, nothing else
                waiter.future.set_exception(exc)
                continue
            if done:
                waiter.future.set_result(None)


def _empty_directory(directory: str) -> None:
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
