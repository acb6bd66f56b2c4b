"""Run a list of schema migrations on a SQLite database, each in its own transaction.

Generic on purpose: it knows nothing of the kiosk's tables. A migration is a function of the
database, the schema version is the number of migrations applied, and the caller says where
that number is kept and how a write transaction is opened (the kiosk keeps it in its ``meta``
table under its store's lock; a store could as well keep it in ``PRAGMA user_version``).
Never edit a migration that has shipped: files out there have already run it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from sqlite_utils import Database

Migration = Callable[[Database], None]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of the program."""


@contextmanager
def immediate_transaction(db: Database) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (for an autocommit connection)."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db.conn
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise


def user_version(db: Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def set_user_version(db: Database, version: int) -> None:
    db.execute(f"PRAGMA user_version = {int(version)}")


def run_migrations(
    db: Database,
    migrations: Sequence[Migration],
    *,
    target: int | None = None,
    read_version: Callable[[Database], int] = user_version,
    write_version: Callable[[Database, int], None] = set_user_version,
    transaction: Callable[[], AbstractContextManager[object]] | None = None,
    too_new: Callable[[int], Exception] | None = None,
) -> int:
    """Apply ``migrations[v]`` for each version ``v`` from the file's up to ``target`` (all of
    them by default); returns the version reached. The version is read inside each write
    transaction, so two processes opening one file never run a migration twice. A file newer
    than ``len(migrations)`` raises ``too_new(version)`` (``SchemaTooNew`` by default)."""
    known = len(migrations)
    target = known if target is None else target
    begin = transaction or (lambda: immediate_transaction(db))
    while True:
        with begin():
            current = read_version(db)
            if current > known:
                raise (too_new or _too_new)(current)
            if current >= target:
                return current
            migrations[current](db)
            write_version(db, current + 1)


def _too_new(version: int) -> Exception:
    return SchemaTooNew(f"the database has schema version {version}, newer than this program's: "
                        "upgrade the program")
