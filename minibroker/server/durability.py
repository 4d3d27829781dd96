"""The server's storage hooks: a data directory behind the core, on the event loop.

Rules:

1. A server whose ``ServerConfig.data_dir`` is set opens a ``DurableStore`` there at start
   (locking the directory: a second broker fails naming the holder's PID), restores the
   recovered definitions before listening, and restores the messages lazily afterwards, one
   chunk per loop iteration (``persistence/recovery.py``). ``--definitions FILE`` is loaded
   after that, and stored.
2. Write path: the core records intents (``core/journal.py``; a stream's appends are
   written by its log, ``persistence/streams.py``); :meth:`Durability.flush` —
   scheduled once per loop iteration that recorded any, and run before any session writes
   to its socket — hands them to the store, which writes them to the page cache at once and
   syncs them on its worker thread (group commit). ``on_durable`` comes back through
   ``call_soon_threadsafe``; the core then gets ``Synced(N)`` and releases the confirms, one
   ``multiple`` ack per channel and batch, and the held ``tx.commit-ok`` replies go out.
3. ``maintain()`` (reclaim) and the free-space check run on the server's periodic sweep;
   below ``disk_free_limit`` the flow controller's alarm blocks publishers
   (``flow.py`` rule 6).
4. A failed store (a failed ``fdatasync``, a full disk on write) is final: logged once,
   publishers blocked by the alarm, held confirms never sent — a confirm is a promise that
   the message is on disk, and it no longer can be.
5. A clean stop flushes, syncs and writes the clean-shutdown marker (``close``); a crash
   (``abandon``, the test toolkit's ``crash()``) keeps exactly what was flushed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from minibroker.accounts import load_accounts
from minibroker.core.commands import PurgeQueue, Synced
from minibroker.persistence.definitions import import_json
from minibroker.persistence.recovery import MessageLoader, restore_definitions
from minibroker.persistence.streams import DiskLogs
from minibroker.persistence.sync import StorageSync
from minibroker.storage import definitions_json
from minibroker.storage.datadir import disk_free
from minibroker.storage.errors import StorageError
from minibroker.storage.store import DurableStore

if TYPE_CHECKING:
    from minibroker.server.server import BrokerServer

__all__ = ["Durability", "load_definitions_file"]

log = logging.getLogger("minibroker.storage")


class Durability:
    """One server's data directory (rules 1-5)."""

    def __init__(self, server: BrokerServer) -> None:
        self.server = server
        config = server.config
        assert config.data_dir is not None
        self.directory = str(Path(config.data_dir).expanduser())
        loop = server.loop
        journal = server.broker.journal
        assert journal is not None, "a durable server's core needs a journal"

        def on_durable(seq: int) -> None:  # the store's worker thread
            loop.call_soon_threadsafe(self.on_durable, seq)

        def on_error(exc: BaseException) -> None:  # the store's worker thread
            loop.call_soon_threadsafe(self._fail, exc)

        started = time.perf_counter()
        self.store = DurableStore(self.directory, sync=config.sync, on_durable=on_durable,
                                  on_error=on_error)
        self.opened_in = time.perf_counter() - started
        self.sync = StorageSync(self.store, journal, server.wall_time)
        # Durable streams keep their logs in the store (``persistence/streams.py``).
        server.broker.lifecycle.streams.make_log = DiskLogs(self.store.streams, "/",
                                                             server.wall_time)
        self._scheduled = False
        self.failed: BaseException | None = None
        #: tx.commit-ok replies waiting for the disk: (journal count, send).
        self._replies: list[tuple[int, Callable[[], None]]] = []
        self.loader: MessageLoader | None = None
        self._load_started = 0.0
        #: True once the store is closed or abandoned: nothing more is written.
        self.closed = False

    # -- start (rule 1) -------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Restore the recovered definitions now and start loading the messages; the lines
        to print at start."""
        recovered = self.store.recovered
        server = self.server
        lines = [f"data directory {self.directory} (sync {server.config.sync}; opened in "
                 f"{self.opened_in:.2f} s)"]
        if recovered.report.files or recovered.report.damage:
            lines += recovered.report.lines()
        else:
            lines.append("nothing to recover: a new data directory")
        ids = {name: queue.next_msg_id for (vhost, name), queue in recovered.queues.items()
               if vhost == "/"}
        problems = restore_definitions(server.broker, recovered.definitions, now=server.now(),
                                       next_msg_ids=ids)
        lines += problems
        for directory in self.store.streams.remove_unopened():
            lines.append(f"removed the files of a deleted stream: {directory}")
        lines += load_definitions_file(server)
        self.after_input()
        self.loader = MessageLoader(server.broker, recovered, time.time)
        self._load_started = time.perf_counter()
        server.loop.call_soon(self._load_step)
        return lines

    def _load_step(self) -> None:
        loader = self.loader
        if loader is None or self.server.closing:
            return
        server = self.server
        effects = loader.step(server.now())
        if effects:
            server.apply_effects(effects)
        if loader.done:
            self.loader = None
            if loader.restored:
                log.info("loaded %d recovered messages in %.2f s", loader.restored,
                         time.perf_counter() - self._load_started)
        else:
            server.loop.call_soon(self._load_step)
        self.after_input()

    def load_all(self) -> None:
        """Restore every recovered message now (the test toolkit: a restart it waits for)."""
        loader = self.loader
        while loader is not None and not loader.done:
            effects = loader.step(self.server.now(), chunk=1 << 30)
            if effects:
                self.server.apply_effects(effects)
        self.loader = None
        self.after_input()

    def before_command(self, command: object) -> None:
        """While messages are still loading, a purge empties the whole queue: load it first."""
        loader = self.loader
        if loader is not None and type(command) is PurgeQueue:
            while not loader.done and loader.loading(command.queue):
                effects = loader.step(self.server.now())
                if effects:
                    self.server.apply_effects(effects)

    # -- write path (rule 2) --------------------------------------------------------------------

    def after_input(self) -> None:
        if self.sync.journal.intents and not self._scheduled:
            self._scheduled = True
            self.server.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self.failed is not None or self.closed:
            self.sync.journal.drain()  # nothing more can be stored; keep memory bounded
            return
        try:
            self.sync.flush()
            self._retain()
        except StorageError as exc:
            self._fail(exc)
            return
        self.on_durable(self.store.durable_seq)

    def _retain(self) -> None:
        """Streams' retention (``persistence/streams.py`` rule 3), by wall time."""
        streams = self.store.streams
        if streams.streams:
            streams.retain(self.server.wall_time(self.server.now()))

    def on_durable(self, seq: int) -> None:
        if self.failed is not None or self.closed:
            return
        self.store.streams.durable(seq)
        upto = self.sync.durable(seq)
        if not upto:
            return
        server = self.server
        outcome = server.broker.handle(Synced(upto), now=server.now())
        if outcome.effects:
            server.apply_effects(outcome.effects)
        if self._replies:
            ready = [send for count, send in self._replies if count <= upto]
            self._replies = [(count, send) for count, send in self._replies if count > upto]
            for send in ready:
                send()
        if server.input_hooks:
            server.run_input_hooks()

    def synced(self, count: int) -> bool:
        return count <= self.sync.journal.synced

    def hold_reply(self, count: int, send: Callable[[], None]) -> None:
        """Send a ``tx.commit-ok`` once ``count`` is on disk."""
        self._replies.append((count, send))

    # -- periodic (rule 3) ----------------------------------------------------------------------

    def maintain(self) -> None:
        if self.failed is not None or self.closed:
            return
        try:
            self.store.maintain()
            self._retain()
        except StorageError as exc:
            self._fail(exc)
            return
        limit = self.server.config.disk_free_limit
        if limit:
            try:
                free = disk_free(self.directory)
            except OSError:
                return
            self.server.flow.disk_alarm(
                None if free >= limit else
                f"disk: {free} bytes free in {self.directory}, below the limit of {limit} "
                "bytes (--disk-free-limit)")

    # -- failure and stopping (rules 4-5) -------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        if self.failed is not None:
            return
        self.failed = exc
        log.critical("storage in %s failed: %s; persistent messages can no longer be "
                     "confirmed, publishers are blocked", self.directory, exc)
        self.server.flow.disk_alarm(f"storage failed: {exc}")
        if self.server.input_hooks:  # as after an input: a test's waiters see the alarm
            self.server.run_input_hooks()

    def close(self) -> None:
        """Clean stop (rule 5): what the core recorded last, then the marker."""
        if self.closed:
            return
        self.loader = None
        if self.failed is None:
            try:
                self.sync.flush()
            except StorageError as exc:
                log.error("storage in %s failed at shutdown: %s", self.directory, exc)
        self.closed = True
        self.store.close()

    def abandon(self) -> None:
        """As if the process were killed: nothing more is written, no marker."""
        if self.closed:
            return
        self.loader = None
        self.closed = True
        self.store.abandon()


def load_definitions_file(server: BrokerServer) -> list[str]:
    """``--definitions FILE`` (RabbitMQ's ``load_definitions``), with or without a data
    directory; the lines to print at start."""
    definitions = server.config.definitions_file
    if definitions is None:
        return []
    text = Path(definitions).read_bytes()
    problems = import_json(server.broker, text, now=server.now())
    problems += load_accounts(server.access, definitions_json.parse(text))
    return [f"loaded definitions from {definitions}"
            + (f" ({len(problems)} refused)" if problems else ""), *problems]
