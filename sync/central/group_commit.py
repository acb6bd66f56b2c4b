"""Group commit: the batches that arrive while one is being committed share the next commit.

Every batch must be durable before it is answered, and with ``synchronous=FULL`` a commit
costs a few fsyncs whatever it holds. One writer thread takes every batch queued by the time
it is free and writes them all in one transaction, each batch inside a savepoint of its own:
a batch that fails is rolled back alone (its request gets the error) and the others commit.
A request is answered only after the transaction holding its batch has committed; if that
commit fails, every batch in it fails and is answered so (nothing of it was stored).

Under a burst (200 kiosks at once) this is the difference between 200 commits and a handful;
alone, a batch waits for nobody: the writer starts on it the moment it is queued.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlite_utils import Database

from sync.central.disk_full import is_disk_full

# A group stops growing at this many events, so the first batch in it is not kept waiting
# for a commit that grows without bound under a long burst.
MAX_GROUP_EVENTS = 10_000

WRITER_CACHE_KIB = 32 * 1024

Work = Callable[[Database], Any]


class WriterClosed(RuntimeError):
    """The store is shutting down and takes no more batches."""


class _Job:
    __slots__ = ("work", "size", "future")

    def __init__(self, work: Work, size: int):
        self.work = work
        self.size = size
        self.future: Future = Future()


class GroupCommitWriter:
    """One thread writing queued work into shared transactions; see the module docstring.

    ``store`` is a :class:`sync.central.storage.CentralStore`; its write lock is held for each
    group, so other writers in the process (the dashboard, the CLI's helpers) still take turns.
    """

    def __init__(self, store, max_group_events: int = MAX_GROUP_EVENTS):
        self._store = store
        self._max_group_events = max_group_events
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="central-group-commit", daemon=True)
        self._thread.start()

    def submit(self, work: Work, size: int = 1) -> Future:
        """Run ``work(db)`` inside a group's transaction; the future resolves after the commit
        (to what ``work`` returned) or with the error that rolled it back."""
        if self._closed:
            raise WriterClosed("the central store is shutting down")
        job = _Job(work, size)
        self._queue.put(job)
        return job.future

    def close(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        # The writer's pages (the indexes every batch inserts into) stay cached between
        # groups; SQLite's default cache (2 MB) is smaller than their working set.
        self._store.db.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                break
            group, events = [job], job.size
            while events < self._max_group_events:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
                events += more.size
            self._write(group)
        # Whatever was queued after the stop (a request racing the shutdown) is refused,
        # never left waiting.
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(WriterClosed("the central store is shutting down"))

    def _write(self, group: list[_Job]) -> None:
        group = [job for job in group if job.future.set_running_or_notify_cancel()]
        if not group:
            return
        try:
            outcomes = self._write_group(group)
        except BaseException as error:  # noqa: BLE001 - every waiting request must hear of it
            for job in group:
                job.future.set_exception(error)
            return
        for job, (ok, value) in zip(group, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    def _write_group(self, group: list[_Job]) -> list[tuple[bool, Any]]:
        """Each job's (succeeded, result or error), all committed; raises if nothing was."""
        store = self._store
        db = store.db
        conn = db.conn
        outcomes: list[tuple[bool, Any]] = []
        with store.write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for job in group:
                    conn.execute("SAVEPOINT batch")
                    try:
                        result = job.work(db)
                    except Exception as error:
                        if not conn.in_transaction:
                            raise  # SQLite rolled the whole transaction back: all of it failed
                        conn.execute("ROLLBACK TO batch")
                        conn.execute("RELEASE batch")
                        outcomes.append((False, error))
                    else:
                        conn.execute("RELEASE batch")
                        outcomes.append((True, result))
                conn.execute("COMMIT")
            except BaseException as error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                store.note_write(error)
                raise
        store.note_write(next((v for ok, v in outcomes if not ok and is_disk_full(v)), None))
        return outcomes
