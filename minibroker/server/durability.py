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
6. Every vhost is as durable as ``/``: each vhost's core has a journal (``vhosts.py``),
   attached here (:meth:`Durability.attach`) to the one store, which writes every vhost's
   definitions and messages under the vhost's name; its confirms wait for the disk as
   ``/``'s do (each core gets its own ``Synced``). At start every vhost that holds durable
   definitions gets its core back (the vhost too, should the registry not have it), before
   the listener opens. Deleting a vhost deletes what the store holds of it
   (:meth:`Durability.delete_vhost`).
7. Users, vhosts and permissions created at run time are stored as well
   (``persistence/accounts.py``): recorded before each flush when the registry changed,
   restored at start on top of what the options make.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from minibroker.core.access import VHost
from minibroker.core.broker import Broker
from minibroker.core.commands import PurgeQueue, Synced
from minibroker.core.journal import Journal
from minibroker.persistence.accounts import AccountsLog, configured_keys, restore_accounts
from minibroker.persistence.definitions import load_document, vhosts_of
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
        #: Each attached journal's core (rule 6): where its ``Synced`` goes.
        self._cores: dict[Journal, Broker] = {journal: server.broker}
        # Rule 7: what the options make is configuration, never stored.
        self.configured = configured_keys(config.users, config.vhosts, config.user_vhosts)
        self.accounts = AccountsLog(self.store, self.configured)
        server.vhosts.durability = self  # the cores of other vhosts are attached as made
        self._scheduled = False
        self.failed: BaseException | None = None
        #: tx.commit-ok replies waiting for the disk: (journal, count, send).
        self._replies: list[tuple[Journal, int, Callable[[], None]]] = []
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
        problems = restore_accounts(server.access, recovered.definitions, self.configured)
        self.accounts = AccountsLog(self.store, self.configured)
        self.accounts.record(server.access)  # usually nothing to write: the store held it
        problems += self._restore_vhosts()
        lines += problems
        for directory in self.store.streams.removed:
            lines.append("removed the files of a stream no definition names (deleted, or its "
                         f"declaration lost): {directory}")
        lines += load_definitions_file(server)
        self.after_input()
        self.loader = MessageLoader({"/": server.broker, **server.vhosts.cores}, recovered,
                                    time.time)
        self._load_started = time.perf_counter()
        server.loop.call_soon(self._load_step)
        return lines

    def _restore_vhosts(self) -> list[str]:
        """Rule 6: every vhost's recovered definitions into its core; the lines to print."""
        server = self.server
        recovered = self.store.recovered
        definitions = recovered.definitions
        named = vhosts_of(definitions)
        lines: list[str] = []
        for vhost in sorted(named | {"/"}):
            if vhost not in server.access.vhosts:
                # Its data is not thrown away: the vhost comes back (RabbitMQ's vhosts are
                # stored; here one the options no longer name may hold queues).
                server.access.put_vhost(VHost(vhost))
                lines.append(f"vhost '{vhost}' holds durable definitions: created")
            ids = {name: queue.next_msg_id for (owner, name), queue in recovered.queues.items()
                   if owner == vhost}
            core = server.vhosts.core(vhost)
            found = restore_definitions(core, definitions, now=server.now(), next_msg_ids=ids,
                                        vhost=vhost)
            lines += [line if vhost == "/" else f"{line} (vhost '{vhost}')" for line in found]
        return lines

    def attach(self, vhost: str, core: Broker) -> None:
        """Rule 6: ``core`` (of ``vhost``) stores through this directory from now on."""
        journal = core.journal
        assert journal is not None, "a durable server's cores need a journal"
        if journal in self._cores:
            return
        core.lifecycle.streams.make_log = DiskLogs(self.store.streams, vhost,
                                                   self.server.wall_time)
        self.sync.attach(vhost, journal)
        self._cores[journal] = core

    def delete_vhost(self, vhost: str, core: Broker | None) -> None:
        """Rule 6: the vhost is gone; so is everything the store holds of it (its queues'
        messages, its streams' files, its definitions and permissions)."""
        if core is not None and core.journal is not None:
            self._cores.pop(core.journal, None)
        self.sync.detach(vhost)
        if self.failed is not None or self.closed:
            return
        store = self.store
        definitions = store.definitions()
        # A stream's files first: their removal waits for its DELETE record, written next.
        for owner, name in list(store.streams.streams):
            if owner == vhost:
                store.streams.delete(owner, name)
        for queue in definitions.queues:
            if queue.vhost == vhost:
                store.delete_queue(vhost, queue.name)
        for exchange in definitions.exchanges:
            if exchange.vhost == vhost:
                store.delete_exchange(vhost, exchange.name)
        for binding in store.definitions().bindings:
            if binding.vhost == vhost:
                store.unbind(binding)
        store.streams.forget_vhost(vhost)  # streams its dropped journal never declared
        if not self._scheduled:
            self._scheduled = True
            self.server.loop.call_soon(self.flush)

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

    def before_command(self, command: object, vhost: str = "/") -> None:
        """While messages are still loading, a purge empties the whole queue: load it first."""
        loader = self.loader
        if loader is not None and type(command) is PurgeQueue:
            while not loader.done and loader.loading(command.queue, vhost):
                effects = loader.step(self.server.now())
                if effects:
                    self.server.apply_effects(effects)

    # -- write path (rule 2) --------------------------------------------------------------------

    def pending(self) -> bool:
        """Is anything recorded and not yet written (any vhost's journal, the accounts)?"""
        sync = self.sync
        if sync.journal.intents:  # the common case first: ``/`` recorded something
            return True
        return ((len(sync.journals) > 1 and sync.pending())
                or self.accounts.changed(self.server.access))

    def after_input(self) -> None:
        if self._scheduled:
            return
        if self.sync.journal.intents or self.pending():
            self._scheduled = True
            self.server.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self.failed is not None or self.closed:
            for journal in self.sync.journals.values():
                journal.drain()  # nothing more can be stored; keep memory bounded
            return
        try:
            self.accounts.record(self.server.access)
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
        reached = self.sync.durable_all(seq)
        if not reached:
            return
        server = self.server
        for journal, upto in reached:
            core = self._cores.get(journal)
            if core is None:
                continue  # its vhost was deleted
            outcome = core.handle(Synced(upto), now=server.now())
            if outcome.effects:
                server.apply_effects(outcome.effects)
        if self._replies:
            ready = [send for journal, count, send in self._replies if count <= journal.synced]
            self._replies = [reply for reply in self._replies if reply[1] > reply[0].synced]
            for send in ready:
                send()
        if server.input_hooks:
            server.run_input_hooks()

    def _journal(self, connection: int) -> Journal:
        """The journal of the core ``connection`` runs in."""
        journal = self.server.vhosts.for_connection(connection).journal
        assert journal is not None
        return journal

    def synced(self, count: int, connection: int = 0) -> bool:
        """Is ``count`` of ``connection``'s core's journal on disk?"""
        return count <= self._journal(connection).synced

    def hold_reply(self, count: int, send: Callable[[], None], connection: int = 0) -> None:
        """Send a ``tx.commit-ok`` once ``count`` of ``connection``'s core is on disk."""
        self._replies.append((self._journal(connection), count, send))

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
    document = definitions_json.parse(Path(definitions).read_bytes())
    problems = load_document(document, server.access, server.vhosts.core, now=server.now())
    return [f"loaded definitions from {definitions}"
            + (f" ({len(problems)} refused)" if problems else ""), *problems]

