"""The central store's one SQLite file, opened the same way by the server, the CLI and the tests.

WAL lets the dashboard read while a kiosk's batch is being written; ``synchronous=FULL`` means
an answered batch survives a power cut (the kiosk marks events synced only after our answer, so
losing a committed batch would lose data for good). Every write goes through
:meth:`CentralStore.write`, which takes the write lock up front (``BEGIN IMMEDIATE``) so two writers
wait for each other with the busy timeout instead of failing half-way through a transaction;
kiosks' batches go through :attr:`CentralStore.group_writer`, which does the same under the same
in-process lock, for several batches per commit (``sync.central.group_commit``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from sync.central.disk_full import is_disk_full, low_on_space
from sync.central.migrations import migrate

DATABASE_FILE = "central.sqlite3"
BUSY_TIMEOUT_MS = 10_000


class StoreUnavailable(RuntimeError):
    """The data directory or its database cannot be opened; the message says which and why."""


def database_path(data_dir: Path) -> Path:
    return Path(data_dir) / DATABASE_FILE


# What every connection to the file needs, set in this one place (the busy timeout is
# sqlite3's ``timeout``, which sets SQLite's own busy timeout: no PRAGMA repeats it).
CONNECTION_PRAGMAS = ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON")


# A backup is a single file to carry away: no -wal/-shm beside it, so it can be read from
# read-only media. The online backup copies the live store's header, WAL flag included; this
# resets it on the copy (never on a store connection).
BACKUP_FILE_PRAGMA = "journal_mode = DELETE"


def make_single_file(conn: sqlite3.Connection) -> None:
    """Turn a freshly copied backup into a rollback-journal (single-file) database."""
    conn.execute(f"PRAGMA {BACKUP_FILE_PRAGMA}")


def connect(path: Path) -> Database:
    """One connection with the pragmas every user of the file needs."""
    # isolation_level=None: no implicit transactions, so the only ones are those we open.
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    for pragma in CONNECTION_PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return Database(conn)


class CentralStore:
    """The data directory's database: one connection per thread, schema migrated on open."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailable(
                f"cannot create the data directory {self.data_dir}: {error.strerror}"
            ) from None
        self.path = database_path(self.data_dir)
        self._local = threading.local()
        self._all: list[Database] = []
        self._lock = threading.Lock()
        # Writers in this process queue here and start the moment the previous one commits.
        # Left to SQLite, a thread that finds the write lock taken sleeps in growing steps (up
        # to 100 ms) and the file sits idle meanwhile: with 4 kiosks posting at once that cost
        # ingest about 40% of its rate (benchmark figure 3). Other processes (the CLI) still
        # wait on SQLite's own lock via BEGIN IMMEDIATE and the busy timeout.
        self._write_lock = threading.RLock()
        self._group_writer = None
        self._last_write_found_disk_full = False
        try:
            migrate(self.db)
        except sqlite3.DatabaseError as error:
            raise StoreUnavailable(f"cannot open the database {self.path}: {error}") from None

    def _connect(self) -> Database:
        try:
            return connect(self.path)
        except sqlite3.DatabaseError as error:
            raise StoreUnavailable(f"cannot open the database {self.path}: {error}") from None

    @property
    def db(self) -> Database:
        """This thread's connection (sqlite3 connections are not shared between threads)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @property
    def disk_full(self) -> bool:
        """The last write failed for want of space (and none has committed since), or the
        data directory's disk has almost no space left."""
        return self._last_write_found_disk_full or low_on_space(self.data_dir)

    def note_write(self, error: BaseException | None) -> None:
        """Writers report each commit (``None``) or failure, for :attr:`disk_full`."""
        if error is None:
            self._last_write_found_disk_full = False
        elif is_disk_full(error):
            self._last_write_found_disk_full = True

    @property
    def write_lock(self) -> threading.RLock:
        """Held by whoever writes in this process; taken in turn, in arrival order."""
        return self._write_lock

    @property
    def group_writer(self):
        """The :class:`~sync.central.group_commit.GroupCommitWriter` for batches from the
        network (started on first use, so the CLI and tests that never ingest start no thread)."""
        if self._group_writer is None:
            from sync.central.group_commit import GroupCommitWriter

            with self._lock:
                if self._group_writer is None:
                    self._group_writer = GroupCommitWriter(self)
        return self._group_writer

    @property
    def quick_reader(self) -> Database:
        """This thread's connection that never waits for a lock (no busy timeout): for a short
        indexed read on the event loop, which must not block. WAL readers do not wait for
        the writer, so it seldom matters; when it does, SQLite raises
        ``sqlite3.OperationalError`` at once and the caller reads elsewhere."""
        db = getattr(self._local, "quick_reader", None)
        if db is None:
            db = self._connect()
            db.conn.execute("PRAGMA busy_timeout = 0")
            self._local.quick_reader = db
            with self._lock:
                self._all.append(db)
        return db

    @contextmanager
    def write(self) -> Iterator[Database]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        db = self.db
        with self._write_lock:
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.conn.execute("COMMIT")
            except BaseException as error:
                if db.conn.in_transaction:
                    db.conn.execute("ROLLBACK")
                self.note_write(error)
                raise
            self.note_write(None)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        return list(self.db.query(sql, params))

    def close(self) -> None:
        writer, self._group_writer = self._group_writer, None
        if writer is not None:
            writer.close()
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()
