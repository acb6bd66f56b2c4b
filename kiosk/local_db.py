"""The kiosk's SQLite file: how it is opened, checked, written and read.

The pragmas are set here and nowhere else: WAL with ``synchronous=FULL``, so a committed tap
survives a power cut; a busy timeout, so the UI and the pusher wait for each other instead of
failing. Every write is one ``BEGIN IMMEDIATE`` transaction under a lock, so the UI thread and
the pusher can share one connection, and a full disk becomes ``StoreFull`` with a sentence.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kiosk.shared.timeutil import utc_now

BUSY_TIMEOUT_MS = 5000


class StoreError(RuntimeError):
    """The local store could not do what was asked; the message says what and why."""


class StoreFull(StoreError):
    """The disk is full: the last action was not saved."""


def connect(path: Path) -> sqlite3.Connection:
    """One connection with the pragmas every user of the file needs (autocommit: the only
    transactions are those opened explicitly)."""
    conn = sqlite3.connect(
        str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def is_full(error: sqlite3.Error) -> bool:
    return "full" in str(error).lower() or getattr(error, "sqlite_errorcode", 0) == 13


def open_checked(path: Path) -> tuple[Database, Path | None]:
    """Open the file, and where it was moved aside if it was damaged (else None): a damaged
    file is kept for IT and the kiosk starts clean, not in a crash loop."""
    conn = None
    try:
        conn = connect(path)
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(verdict)
        return Database(conn), None
    except sqlite3.DatabaseError as error:
        if is_full(error):
            raise StoreFull(f"the disk holding {path} is full: {error}") from None
        if conn is not None:
            conn.close()
        aside = move_aside(path)
        return Database(connect(path)), aside


def move_aside(path: Path, label: str = "corrupt") -> Path:
    """Move the database (with its -wal and -shm) to ``<name>.<label>-<UTC stamp>``."""
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.{label}-{stamp}")
    tries = 1
    while aside.exists():  # a second file moved aside within the second: keep both
        tries += 1
        aside = path.with_name(f"{path.name}.{label}-{stamp}-{tries}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(path) + suffix)
        if source.exists():
            shutil.move(str(source), str(aside) + suffix)
    return aside



class LocalDb:
    """One connection shared by threads: writes in ``BEGIN IMMEDIATE`` under a lock, reads as
    dicts under the same lock."""

    def __init__(self, db: Database):
        self.db = db
        self.lock = threading.RLock()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the lock; a full disk becomes StoreFull."""
        with self.lock:
            conn = self.db.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as error:
                if is_full(error):
                    raise StoreFull(
                        "the disk is full: the last action was not saved. Free some space "
                        "(or call IT); everything saved before it is safe."
                    ) from None
                raise StoreError(f"the local database refused a write: {error}") from None

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self.lock:
            cursor = self.db.execute(sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def scalar(self, sql: str, params: Any = ()) -> Any:
        """The first column of the first row (None when there is no row)."""
        with self.lock:
            row = self.db.execute(sql, params).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self.lock:
            self.db.conn.close()
