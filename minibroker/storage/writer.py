"""Group commit: one fdatasync covers every record written while the previous one ran, in a
worker thread, so the event loop never waits for the disk.

The loop thread writes records to files itself (buffered in the page cache, microseconds) and
tells the :class:`GroupCommit` how far it wrote (:meth:`GroupCommit.written`). The worker
thread, whenever there is something new, takes the current *written* mark, syncs every file
written since its last round, then reports ``durable up to seq N`` through ``on_durable``.
Records that arrive during an fdatasync wait for the next one: one sync per batch, and the
batch grows with the load by itself (Ra's WAL does the same).

Rules:

1. ``on_durable(seq)`` means every record with a sequence number up to ``seq``, in every file
   of the store, survives a power cut. It is called from the worker thread (or, with
   ``sync="never"``, from inside :meth:`written` on the caller's thread); it must only hand the
   number over, e.g. ``lambda seq: loop.call_soon_threadsafe(store_synced, seq)``.
2. A file created since the last round has its directory synced before any of its records is
   reported durable (POSIX: fsync of a file does not make its name durable).
3. A retired file (the writer moved to the next segment) is synced one last time, then closed,
   by the worker: the loop never closes a file the worker may be syncing.
4. Jobs (reclaim: deleting or compacting a segment, installing a compacted definitions file)
   run on the worker, in submission order, each after the records written before it was
   submitted are durable. A job's result goes to :meth:`take_completions` for the loop.
5. ``sync="never"`` (LavinMQ's ``--no-sync``): nothing is ever fsynced; every written record is
   reported durable at once. Jobs still run on the worker.
6. A failed fsync is final (PostgreSQL's "fsyncgate": the kernel may have dropped the pages it
   could not write, so a retry can succeed without the data being on disk). The worker stops,
   ``on_error`` is called once, and :attr:`failure` is set; the store refuses further writes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Literal, Protocol

from minibroker.storage.files import AppendFile, FileSystem

__all__ = ["GroupCommit", "Job", "SyncMode"]

SyncMode = Literal["always", "never"]


class Job(Protocol):
    """A piece of reclaim work for the worker thread."""

    def run(self, fs: FileSystem, sync: bool) -> object: ...


class GroupCommit:
    """The durability watermark and the worker thread that advances it."""

    def __init__(
        self,
        fs: FileSystem,
        *,
        sync: SyncMode = "always",
        on_durable: Callable[[int], object],
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        if sync not in ("always", "never"):
            raise ValueError(f"sync must be 'always' or 'never', not {sync!r}")
        self._fs = fs
        self._sync = sync == "always"
        self._on_durable = on_durable
        self._on_error = on_error
        self._cond = threading.Condition(threading.Lock())
        # Shared with the worker, guarded by _cond:
        self._written = 0
        self._dirty: dict[int, AppendFile] = {}
        self._new_dirs: set[str] = set()
        self._retired: list[AppendFile] = []
        self._jobs: deque[Job] = deque()
        self._stopping = False
        self._completions: deque[tuple[Job, object]] = deque()  # appended by the worker only
        #: Highest sequence number reported durable.
        self.durable_seq = 0
        #: The exception that stopped the worker (rule 6), else ``None``.
        self.failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- loop side ---------------------------------------------------------------------------

    def written(self, seq: int, *files: AppendFile) -> None:
        """Records up to ``seq`` have been written to ``files``."""
        if not self._sync:
            with self._cond:
                self._written = seq
            self.durable_seq = seq
            self._on_durable(seq)
            return
        with self._cond:
            self._written = seq
            for file in files:
                self._dirty[id(file)] = file
            self._cond.notify()

    def created(self, directory: str) -> None:
        """A file was created in ``directory`` (rule 2); call once the file exists (a round
        may start at any instant: a directory synced before the name was in it leaves the
        name not durable) and before writing to it."""
        with self._cond:
            self._new_dirs.add(directory)

    def retire(self, file: AppendFile) -> None:
        with self._cond:
            self._retired.append(file)
            self._cond.notify()

    def submit(self, job: Job) -> None:
        with self._cond:
            self._jobs.append(job)
            self._cond.notify()

    def fail(self, exc: BaseException) -> None:
        """A write on the loop thread failed: the store is done (rule 6)."""
        if self.failure is None:
            self.failure = exc
            if self._on_error is not None:
                self._on_error(exc)

    def take_completions(self) -> list[tuple[Job, object]]:
        done = []
        while self._completions:
            done.append(self._completions.popleft())
        return done

    # -- the worker ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="minibroker-storage", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish every pending sync and job, then end the worker thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        else:
            while self.run_round():
                pass

    def _pending(self) -> bool:
        return bool(self._written > self.durable_seq or self._dirty or self._retired
                    or self._jobs or self._new_dirs)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending() and not self._stopping:
                    self._cond.wait()
                if not self._pending():
                    return
            if not self.run_round():
                return

    def run_round(self) -> bool:
        """One round: sync what was written, report it, run the jobs that were waiting.
        Returns ``False`` when there was nothing to do or the store has failed."""
        if self.failure is not None:
            return False
        with self._cond:
            if not self._pending():
                return False
            target = self._written
            files = list(self._dirty.values())
            self._dirty.clear()
            directories = sorted(self._new_dirs)
            self._new_dirs.clear()
            retired, self._retired = self._retired, []
            jobs = list(self._jobs)
            self._jobs.clear()
        try:
            if self._sync:
                for file in files + retired:
                    file.sync()
                for directory in directories:
                    self._fs.sync_dir(directory)
            for file in retired:
                file.close()
            if target > self.durable_seq:
                self.durable_seq = target
                self._on_durable(target)
            for job in jobs:
                self._completions.append((job, job.run(self._fs, self._sync)))
        except Exception as exc:  # an I/O error, or a bug in a job: both stop the store
            self.fail(exc)
            return False
        return True
