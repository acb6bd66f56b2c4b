"""Many rows, and writes nobody reads the answer of, sent the cheapest way each engine allows.

Ingest writes a batch's events, visits and ratings as rows, and keeps projections in step with
UPDATEs whose answers it never reads. On SQLite (in-process, no round trips) a multi-row
statement per chunk of rows is cheapest, and a write is simply run. On PostgreSQL every
statement is a round trip, and the store's multi-row statements were bound client-side by
psycopg, which re-parses a statement that long at every call: there the events go in with
``COPY``, other rows with one server-bound statement of one array per column, and answerless
writes are pipelined (see ``PgConnection.execute_later``). What is stored, and in what order,
is the same on both.
"""

from __future__ import annotations

import functools

from sqlite_utils import Database

# Rows per multi-row statement: one statement (and one GIL release in the sqlite3 module)
# per chunk instead of per row, well inside SQLite's limit of 32766 host parameters.
ROWS_PER_STATEMENT = 200


def on_postgres(db: Database) -> bool:
    return getattr(db, "engine", "sqlite") == "postgres"


@functools.lru_cache(maxsize=16)
def _multi_row(sql_head: str, columns: int, rows: int, tail: str = "") -> str:
    values = "(" + ", ".join("?" * columns) + ")"
    return f"{sql_head} VALUES {', '.join([values] * rows)}{tail}"


def insert_rows(db: Database, sql_head: str, rows: list[tuple], tail: str = "") -> None:
    """``sql_head VALUES (...), (...) tail`` for every row; the rows are written in order, as
    that many single-row statements would write them."""
    if not rows:
        return
    if on_postgres(db):
        db.conn.insert_many(sql_head, rows, tail)
        return
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start:start + ROWS_PER_STATEMENT]
        sql = _multi_row(sql_head, len(chunk[0]), len(chunk), tail)
        db.conn.execute(sql, [value for row in chunk for value in row])


def copy_rows(db: Database, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """A plain INSERT of ``rows`` into ``table`` (no conflict clause: one fails it whole);
    ``COPY`` on PostgreSQL."""
    if not rows:
        return
    if on_postgres(db):
        db.conn.copy_rows(table, columns, rows)
    else:
        insert_rows(db, f"INSERT INTO {table} ({', '.join(columns)})", rows)


def execute_later(db: Database, sql: str, params=None) -> None:
    """A write whose answer is not read: run now on SQLite, pipelined on PostgreSQL (its
    failure is raised by the next statement run, or by :func:`flush`)."""
    if on_postgres(db):
        db.conn.execute_later(sql, params)
    else:
        db.execute(sql, params)


def flush(db: Database) -> None:
    """Raise now the failure of any write sent with :func:`execute_later`."""
    if on_postgres(db):
        db.conn.flush()
