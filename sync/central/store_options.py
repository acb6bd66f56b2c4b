"""Which store a command works on: ``--data DIR`` (SQLite) or ``--database-url URL`` (PostgreSQL).

Every command that takes ``--data`` takes ``--database-url`` too, with ``DATABASE_URL`` from
the environment as the fallback (``READ_DATABASE_URL`` likewise for ``central
--read-database-url``). A URL, from either place, makes the store PostgreSQL and ``--data``
optional; without one the store is the SQLite file in ``--data``, exactly as before.

Mistakes are sentences (a ``ValueError``, so the CLI prints it and exits 2), and a sentence
never shows a password: a URL is only ever shown as ``sync.central.postgres.safe_identity``
gives it, or by its scheme alone when it is not a PostgreSQL URL at all.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3

DATABASE_URL_ENV = "DATABASE_URL"
READ_DATABASE_URL_ENV = "READ_DATABASE_URL"
URL_SCHEMES = ("postgresql://", "postgres://")
# A one-shot command holds one connection; the pool's second is headroom, not a need.
ONE_SHOT_POOL = 2
# How long a command waits for a server that does not answer (one that refuses fails at once).
CONNECT_TIMEOUT_S = 10


class StoreChoiceError(ValueError):
    """The command's store cannot be opened as named; the message says what to give instead."""


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", metavar="DIR",
        help="the data directory (a SQLite store); optional with --database-url",
    )
    parser.add_argument(
        "--database-url", metavar="URL",
        help=f"the store on PostgreSQL, postgresql://USER@HOST:PORT/DB (default: "
             f"${DATABASE_URL_ENV}); with it --data is optional",
    )


def _from(args: argparse.Namespace, option: str, env: str) -> tuple[str | None, str]:
    """(the URL or None, where it came from, for messages)."""
    given = getattr(args, option.lstrip("-").replace("-", "_"), None)
    if given:
        return given, option
    from_env = os.environ.get(env) or None
    return from_env, f"{env} in the environment"


def _checked(url: str, source: str) -> str:
    if not url.startswith(URL_SCHEMES):
        # Only the scheme is shown: the rest of a mistyped URL may hold a password.
        scheme = url.split("://", 1)[0] + "://" if "://" in url else "a value without a scheme"
        raise StoreChoiceError(
            f"{source} must be a PostgreSQL URL starting with postgresql:// or postgres:// "
            f"(e.g. postgresql://kiosk@db.example.org:5432/kiosk), not {scheme}"
        )
    return url


def database_url(args: argparse.Namespace) -> str | None:
    """The PostgreSQL URL the command was given, or None for the SQLite store in --data."""
    url, source = _from(args, "--database-url", DATABASE_URL_ENV)
    if url is not None:
        return _checked(url, source)
    if getattr(args, "data", None) is None:
        raise StoreChoiceError(
            f"give the store: --data DIR for a SQLite store, or --database-url URL (or "
            f"{DATABASE_URL_ENV} in the environment) for PostgreSQL"
        )
    return None


def read_database_url(args: argparse.Namespace, primary: str | None) -> str | None:
    """The replica's URL for ``central``, if any; only beside a PostgreSQL primary."""
    url, source = _from(args, "--read-database-url", READ_DATABASE_URL_ENV)
    if url is None:
        return None
    _checked(url, source)
    if primary is None:
        raise StoreChoiceError(
            f"{source} names a read replica, which serves a PostgreSQL store: give "
            f"--database-url (or {DATABASE_URL_ENV}) too"
        )
    return url


def refuse_postgres(args: argparse.Namespace, command: str) -> None:
    """``backup``/``restore`` copy a SQLite file; PostgreSQL has tools of its own for that."""
    url, source = _from(args, "--database-url", DATABASE_URL_ENV)
    if url is None:
        return
    raise StoreChoiceError(
        f"`{command}` copies a SQLite store; the store named by {source} is on PostgreSQL: "
        f"back it up and restore it with PostgreSQL's own tools (pg_dump and pg_restore for "
        f"one database, pg_basebackup for the whole cluster)"
    )


def describe(url: str) -> str:
    """user@host:port/db, the defaults filled in, never the password."""
    from sync.central.postgres import safe_identity

    return safe_identity(url)


_LIBPQ_PREFIX = re.compile(r'^connection failed: connection to server at .*?, port \d+ failed: ')


def _reason(error: BaseException) -> str:
    """libpq's own reason, first line, without the preamble that repeats host and port."""
    cause = error.__cause__ or error
    text = (str(cause).strip() or type(cause).__name__).splitlines()[0]
    text = _LIBPQ_PREFIX.sub("", text)
    return re.sub(r"^FATAL:\s+", "", text).rstrip(".")


def check_reachable(url: str) -> None:
    """Connect once and go: a server that is down, refuses us or has no such database is a
    sentence naming host, port and database now, not a pool's retries for seconds."""
    import psycopg

    from sync.central.postgres import url_problem

    problem = url_problem(url)
    if problem is not None:
        raise StoreChoiceError(f"cannot use the PostgreSQL database: {problem}")
    try:
        conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.Error as error:
        raise StoreChoiceError(
            f"cannot connect to PostgreSQL at {describe(url)}: {_reason(error)}"
        ) from None
    conn.close()


def open_postgres(url: str, read_url: str | None = None, pool_size: int = ONE_SHOT_POOL):
    """The :class:`~sync.central.storage.CentralStore` on PostgreSQL (schema migrated)."""
    from sync.central.storage import CentralStore

    check_reachable(url)
    if read_url is not None:
        check_reachable(read_url)
    try:
        return CentralStore(None, database_url=url, read_database_url=read_url,
                            pool_size=pool_size)
    except sqlite3.OperationalError as error:  # lost between the check and the pool
        raise StoreChoiceError(
            f"cannot use PostgreSQL at {describe(url)}: {_reason(error)}") from None


def migrate_postgres(url: str) -> None:
    """Bring the database's schema up to date over one connection of its own: no pool, so
    no threads are left behind (``central --workers`` forks after this)."""
    from sync.central import postgres
    from sync.central.migrations import migrate

    check_reachable(url)
    db = postgres.connect(url)
    try:
        migrate(db)
    except sqlite3.OperationalError as error:
        raise StoreChoiceError(
            f"cannot use PostgreSQL at {describe(url)}: {_reason(error)}") from None
    finally:
        db.close()
