"""The central store's one SQLite file, opened the same way by the server, the CLI and the tests.

WAL lets the dashboard read while a kiosk's batch is being written; ``synchronous=FULL`` means
an answered batch survives a power cut (the kiosk marks events synced only after our answer, so
losing a committed batch would lose data for good). Every write goes through
:meth:`CentralStore.write`, which takes the write lock up front (``BEGIN IMMEDIATE``) so two writers
wait for each other with the busy timeout instead of failing half-way through a transaction;
kiosks' batches go through :attr:`CentralStore.group_writer`, which does the same under the same
in-process lock, for several batches per commit (``sync.central.group_commit``).

The same store runs on PostgreSQL when given a ``postgresql://`` URL (``--database-url``):
one pool of connections per process (psycopg_pool), one held per thread as with SQLite, every
statement translated by ``sync.central.dialect`` (``sync.central.postgres``). ``BEGIN
IMMEDIATE`` there takes one advisory lock that every worker process shares, so writers queue
across processes as they do on one file. A second URL (``--read-database-url``, a streaming
replica) serves the reads that may be a moment old: :attr:`CentralStore.read_db`.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
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


def postgres_description(url: str) -> str:
    from sync.central.postgres import safe_identity

    return safe_identity(url)


def connect(path: Path) -> Database:
    """One connection with the pragmas every user of the file needs."""
    # isolation_level=None: no implicit transactions, so the only ones are those we open.
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    for pragma in CONNECTION_PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return Database(conn)


# Connections one process may hold on PostgreSQL: one per thread that touches the store (the
# server's request threads, the group-commit writer, the alert scheduler). The server's own
# max_connections must cover this times the number of workers (README, "PostgreSQL").
POOL_MAX_SIZE = 60


def connect_to(data_dir: Path | None, database_url: str | None = None):
    """One connection to a store outside any :class:`CentralStore` (no pool, no migration):
    the SQLite file in ``data_dir``, or the PostgreSQL database at ``database_url``."""
    if database_url:
        from sync.central import postgres

        return postgres.connect(database_url)
    return connect(database_path(data_dir))


def table_names(db) -> list[str]:
    """The store's tables, sorted, on either engine (not the engines' own)."""
    if getattr(db, "engine", "sqlite") == "postgres":
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = "
               "current_schema() AND table_type = 'BASE TABLE' ORDER BY 1")
    else:
        sql = ("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
               "'sqlite_%' ORDER BY 1")
    return [row[0] for row in db.execute(sql).fetchall()]


def column_names(db, table: str) -> list[str]:
    """A table's columns in their order, on either engine."""
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()]


class _Held:
    """A thread's connection, in that thread's thread-local (see ``_thread_connection``)."""

    __slots__ = ("db", "finalizer", "__weakref__")

    def __init__(self, db):
        self.db = db
        self.finalizer = None


class CentralStore:
    """The store's database: one connection per thread, schema migrated on open.

    ``data_dir`` holds the SQLite file, or with ``database_url`` (PostgreSQL) only what is not
    in the database (backups); it may then be None. ``read_database_url`` is a replica for
    :attr:`read_db`."""

    def __init__(self, data_dir: Path | None, database_url: str | None = None,
                 read_database_url: str | None = None, pool_size: int = POOL_MAX_SIZE):
        self.database_url = database_url or None
        self.read_database_url = read_database_url or None
        self.engine = "postgres" if self.database_url else "sqlite"
        self.data_dir = Path(data_dir) if data_dir is not None else None
        if self.data_dir is not None:
            try:
                self.data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreUnavailable(
                    f"cannot create the data directory {self.data_dir}: {error.strerror}"
                ) from None
        elif self.database_url is None:
            raise StoreUnavailable("the store needs a data directory or a database URL")
        self.path = database_path(self.data_dir) if self.data_dir is not None else None
        self._pools = {}
        if self.database_url is not None:
            from sync.central import postgres

            self._pools = postgres.open_pools(self.database_url, self.read_database_url,
                                              pool_size)
            self.path = None
        self.description = (postgres_description(self.database_url) if self.database_url
                            else str(self.path))
        self._local = threading.local()
        self._all: list[Database] = []
        # Re-entrant: a connection of a thread that has ended is handed back from whichever
        # thread the garbage collector runs in, which may be one holding this lock.
        self._lock = threading.RLock()
        # Writers in this process queue here and start the moment the previous one commits.
        # Left to SQLite, a thread that finds the write lock taken sleeps in growing steps (up
        # to 100 ms) and the file sits idle meanwhile: with 4 kiosks posting at once that cost
        # ingest about 40% of its rate (benchmark figure 3). Other processes (the CLI) still
        # wait on SQLite's own lock via BEGIN IMMEDIATE and the busy timeout.
        self._write_lock = threading.RLock()
        self._group_writer = None
        self._lag_meter = None
        self._last_write_found_disk_full = False
        try:
            migrate(self.db)
        except sqlite3.DatabaseError as error:
            self.close()
            raise StoreUnavailable(
                f"cannot open the database {self.description}: {error}") from None
        except BaseException:
            self.close()
            raise

    def _connect(self, role: str = "primary") -> Database:
        if self.database_url and not self._pools:
            # Closed: never fall through to a SQLite file (its path is None on PostgreSQL).
            raise StoreUnavailable(f"the store on {self.description} is closed")
        try:
            if self._pools:
                from sync.central import postgres

                return postgres.from_pool(self._pools[role])
            return connect(self.path)
        except sqlite3.DatabaseError as error:
            # Chained: the cause says whether PostgreSQL is out of reach (503, database_down).
            raise StoreUnavailable(
                f"cannot open the database {self.description}: {error}") from error

    def _thread_connection(self, name: str, role: str = "primary", prepare=None) -> Database:
        held = getattr(self._local, name, None)
        if held is not None and getattr(held.db.conn, "broken", False):
            # PostgreSQL went away (a restart, a failover): this thread opens a new one.
            held.finalizer()
            held = None
        if held is None:
            db = self._connect(role)
            if prepare is not None:
                prepare(db)
            # Not kept in a local of this frame: an error caught below _connect may keep this
            # frame alive (its traceback reaches it through f_back) until the cyclic collector
            # runs, and the holder with it, so the connection would not go back when the
            # thread ends.
            return self._hold(name, db).db
        return held.db

    def _hold(self, name: str, db: Database) -> _Held:
        held = _Held(db)
        # The server's threads come and go (the thread pool retires idle ones): when a
        # thread ends, its thread-local goes, and with it this holder, whose finalizer
        # hands the connection back. Without it every retired thread would keep its
        # connection until the store closed, and a pool would run dry within hours.
        held.finalizer = weakref.finalize(held, self._release, db)
        setattr(self._local, name, held)
        with self._lock:
            self._all.append(db)
        return held

    def _release(self, db) -> None:
        with self._lock:
            if db not in self._all:
                return  # close() has handed it back already
            self._all.remove(db)
        if self._pools:
            from sync.central import postgres

            postgres.give_back(self._pools, db)
        else:
            db.close()

    @property
    def db(self) -> Database:
        """This thread's connection (sqlite3 connections are not shared between threads)."""
        return self._thread_connection("db")

    @property
    def read_db(self) -> Database:
        """This thread's connection for reads that may be a moment old (dashboard pages,
        ``/api/v1/metrics``, exports): the replica when one is configured, else :attr:`db`.
        Never for token checks or anything that must see the latest write."""
        if "replica" in self._pools:
            return self._thread_connection("read_db", "replica")
        return self.db

    @contextmanager
    def reader(self) -> Iterator[Database]:
        """A connection of its own for one long read (a CSV export streamed from other threads
        than the request's), from where :attr:`read_db` reads; given back when the block
        ends. A thread's own connection will not do: the stream outlives the request."""
        role = "replica" if "replica" in self._pools else "primary"
        db = self._connect(role)
        try:
            yield db
        finally:
            if self._pools:
                from sync.central import postgres

                postgres.give_back(self._pools, db)
            else:
                db.close()

    @property
    def replica_lag(self):
        """How far the replica is behind the primary (a :class:`~sync.central.replica_lag.
        LagReading`, measured at most once a second or two), or None without a replica."""
        if "replica" not in self._pools:
            return None
        if self._lag_meter is None:
            from sync.central.replica_lag import LagMeter

            with self._lock:
                if self._lag_meter is None:
                    self._lag_meter = LagMeter(lambda: self.db, lambda: self.read_db)
        return self._lag_meter.read()

    @property
    def disk_full(self) -> bool:
        """The last write failed for want of space (and none has committed since), or the
        data directory's disk has almost no space left."""
        if self.data_dir is None:
            return self._last_write_found_disk_full
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
    def quick_reader(self) -> Database | None:
        """This thread's connection that never waits for a lock (no busy timeout): for a short
        indexed read on the event loop, which must not block. WAL readers do not wait for
        the writer, so it seldom matters; when it does, SQLite raises
        ``sqlite3.OperationalError`` at once and the caller reads elsewhere.

        None on PostgreSQL: every read is a round trip to another server, which can stall (a
        lock, a slow network, a server going down), and on the event loop that would hold up
        every request of the process; the caller reads in the thread pool instead."""
        if self._pools:
            return None
        return self._thread_connection(
            "quick_reader", prepare=lambda db: db.conn.execute("PRAGMA busy_timeout = 0"))

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
            held, self._all = list(self._all), []
        for db in held:
            if self._pools:
                from sync.central import postgres

                postgres.give_back(self._pools, db)
            else:
                db.close()
        if self._pools:
            from sync.central import postgres

            postgres.close_pools(self._pools)
            self._pools = {}
        self._local = threading.local()
