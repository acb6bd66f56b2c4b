"""Moving a SQLite central store to PostgreSQL: copy every table, then prove the copy.

``python3 main.py central migrate --data DIR --database-url URL`` (``move_command``) calls
:func:`move_store`. What it promises, and how:

- **Every table**: the list comes from the SQLite file itself (``sqlite_master``), never from a
  list kept here, so a table added by a later migration is moved without touching this module.
  Tables are copied parents first, in the order the file's own foreign keys give.
- **Safe to re-run**: each table is copied in one PostgreSQL transaction that also records it in
  ``moved_tables``; a run killed half-way leaves whole tables copied and the rest untouched.
  The next run copies what is missing and compares every table an earlier run copied, row by
  row in primary-key order, with this run's snapshot of the source: a table that differs (the
  source changed since, e.g. a device revoked; or the copy was written to) is emptied and
  copied again in one transaction, so every table ends equal to the snapshot and no row is
  ever there twice. The source's identity is written to ``moved_from`` before the first row;
  a target holding anything else (another store, another source's partial copy) is refused
  before anything is written.
- **Verified**: row counts per table, and the ``/api/v1/metrics`` figures of every site over the
  stored range, computed by the same code on both stores, must be equal; only then is the
  move marked verified (``moved_from.verified_at``).
- **Bounded memory, quickly**: rows stream from a SQLite cursor in chunks into PostgreSQL's
  ``COPY``; the whole run reads one SQLite snapshot, so the copy is consistent even if
  something writes to the source meanwhile (stop the central store first all the same: what
  it writes after the snapshot is not moved).
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from sync.central import storage
from sync.central.metrics_query import EARLIEST_BOUND, LATEST_BOUND, MetricsQuery, compute_metrics
from sync.central.store_options import StoreChoiceError, check_reachable

MARKER_TABLE = "moved_from"
PROGRESS_TABLE = "moved_tables"
# The move's own bookkeeping and the engines' own tables: never copied, never "the store".
OWN_TABLES = {MARKER_TABLE, PROGRESS_TABLE, "schema_version"}
CHUNK_ROWS = 5_000
# Held (session-level) for the whole run: two moves into one database at once would race to
# copy the same table. Any constant works; this one spells "move" in ASCII.
MOVE_LOCK = 0x6D6F7665


class MoveFailed(Exception):
    """The store cannot be moved (or the copy does not match); the message says why."""


def source_tables(source: sqlite3.Connection) -> list[str]:
    """The store's tables, parents before the tables whose foreign keys name them."""
    names = [row[0] for row in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    parents = {name: {row[2] for row in source.execute(f"PRAGMA foreign_key_list({name})")
                      if row[2] != name} for name in names}
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(names):
        ready = [name for name in names if name not in placed and parents[name] <= placed]
        if not ready:
            raise MoveFailed("the store's tables' foreign keys form a cycle: "
                             + ", ".join(sorted(set(names) - placed)))
        ordered.extend(ready)
        placed.update(ready)
    return ordered


def _columns(source: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in source.execute(f"PRAGMA table_info({table})")]


def _target_tables(raw) -> list[str]:
    return [row[0] for row in raw.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")]


def _target_columns(raw, table: str) -> list[str]:
    return [row[0] for row in raw.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        [table])]


def _count(conn, table: str) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def check_target(raw, identity: str, store_tables: list[str]) -> bool:
    """Whether the target already holds a move from this source (False: it is empty). Raises
    :class:`MoveFailed` for anything else, having written nothing."""
    present = set(_target_tables(raw))
    if MARKER_TABLE in present:
        row = raw.execute(f"SELECT source FROM {MARKER_TABLE}").fetchone()
        if row is not None and row[0] == identity:
            return True
        held = row[0] if row is not None else "an unknown store"
        raise MoveFailed(f"the PostgreSQL database already holds a copy of another store "
                         f"({held}); move {identity} into an empty database")
    foreign = sorted(present - set(store_tables) - OWN_TABLES)
    if foreign:
        raise MoveFailed(f"the PostgreSQL database is not empty (it has tables the central "
                         f"store does not: {', '.join(foreign[:5])}); use an empty database")
    filled = [table for table in sorted(present - OWN_TABLES) if _count(raw, table)]
    if filled:
        raise MoveFailed(f"the PostgreSQL database already holds a central store ({filled[0]} "
                         f"has rows); move into an empty database")
    return False


def _record_source(raw, identity: str, version: int) -> None:
    with raw.transaction():
        raw.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (source TEXT NOT NULL, "
                    "schema_version BIGINT NOT NULL, started_at TEXT NOT NULL, verified_at TEXT)")
        raw.execute(f"CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (table_name TEXT PRIMARY KEY, "
                    "row_count BIGINT NOT NULL, seconds DOUBLE PRECISION NOT NULL)")
        if raw.execute(f"SELECT 1 FROM {MARKER_TABLE}").fetchone() is None:
            raw.execute(f"INSERT INTO {MARKER_TABLE} (source, schema_version, started_at) "
                        "VALUES (%s, %s, %s)", [identity, version, to_rfc3339(_now())])


def _now() -> datetime:
    return datetime.now(UTC)


def _order(source: sqlite3.Connection, table: str, columns: list[str]) -> str:
    """An ORDER BY both engines sort alike: the primary key, else every column (NULLs first,
    SQLite's default; text compares as bytes on both, the target's being COLLATE "C")."""
    keyed = sorted((row[5], row[1]) for row in source.execute(f"PRAGMA table_info({table})")
                   if row[5])
    return ", ".join(f"{name} NULLS FIRST" for name in ([n for _, n in keyed] or columns))


def same_content(source: sqlite3.Connection, raw, table: str, columns: list[str]) -> bool:
    """Whether PostgreSQL's ``table`` holds exactly the source snapshot's rows: both read in
    the same order, in chunks, compared value by value (bounded memory on either side)."""
    select = f"SELECT {', '.join(columns)} FROM {table} ORDER BY {_order(source, table, columns)}"
    mine = source.execute(select)
    with raw.transaction(), raw.cursor(name=f"compare_{table}") as theirs:
        theirs.execute(select)
        while True:
            expected = mine.fetchmany(CHUNK_ROWS)
            found = theirs.fetchmany(CHUNK_ROWS)
            if [tuple(row) for row in expected] != [tuple(row) for row in found]:
                return False
            if not expected:
                return True


def copy_table(source: sqlite3.Connection, raw, table: str, columns: list[str],
               replace: bool = False) -> tuple[int, float]:
    """One table into PostgreSQL, in one transaction with its ``moved_tables`` row.

    ``replace``: the table holds an earlier run's copy that no longer equals the source; it is
    emptied in the same transaction, so a failure leaves that copy as it was, never half of
    each.

    The rollup tables (``rating_hours`` etc.) are copied as they are, with the tables' user
    triggers off while rows arrive: the rollups the SQLite store holds are the ones its
    figures come from, so copying them gives the same figures by construction; firing the
    rollup trigger once per copied rating or visit would count every row twice (once from the
    copied rollup, once from the trigger) and would be far slower than copying one row per
    hour. ``ALTER TABLE`` is transactional on PostgreSQL, so a run killed mid-table leaves the
    triggers on, as before.
    """
    started = time.monotonic()
    names = ", ".join(columns)
    rows = 0
    with raw.transaction():
        raw.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        if replace:
            # The store's tables have no foreign keys between them, so one table is emptied
            # alone (were one added, TRUNCATE would refuse loudly rather than cascade).
            raw.execute(f"TRUNCATE {table}")
            raw.execute(f"DELETE FROM {PROGRESS_TABLE} WHERE table_name = %s", [table])
        elif _count(raw, table):
            raise MoveFailed(f"{table} on PostgreSQL already has rows that this move did not "
                             f"copy (has something written to it?); use an empty database")
        cursor = source.execute(f"SELECT {names} FROM {table}")
        with raw.cursor() as target, target.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            while chunk := cursor.fetchmany(CHUNK_ROWS):
                for row in chunk:
                    copy.write_row(row)
                rows += len(chunk)
        raw.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        seconds = round(time.monotonic() - started, 3)
        raw.execute(f"INSERT INTO {PROGRESS_TABLE} (table_name, row_count, seconds) "
                    "VALUES (%s, %s, %s)", [table, rows, seconds])
    return rows, seconds


def advance_identities(raw) -> list[str]:
    """Every identity column's sequence past the copied maximum (COPY gives the ids
    explicitly, which leaves the sequence where it was: the next alert would clash)."""
    moved = []
    columns = raw.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND "
        "(is_identity = 'YES' OR column_default LIKE 'nextval(%')").fetchall()
    for table, column in columns:
        if table in OWN_TABLES:
            continue
        raw.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX({column}), 0) + 1, "
            f"false) FROM {table}", [table, column])
        moved.append(f"{table}.{column}")
    return moved


def stored_range(db) -> tuple[datetime, datetime]:
    """[first, last] instant the store's visits and ratings cover (the last 24 hours for a
    store without any), inside the range the metrics accept."""
    row = db.execute(
        "SELECT MIN(first), MAX(last) FROM (SELECT MIN(checked_in_at) AS first, "
        "MAX(checked_in_at) AS last FROM visits UNION ALL SELECT MIN(occurred_at), "
        "MAX(occurred_at) FROM ratings) AS spans").fetchone()
    if row[0] is None:
        end = _now().replace(microsecond=0)
        return end - timedelta(hours=24), end
    start = max(parse_rfc3339(row[0]) - timedelta(seconds=1), EARLIEST_BOUND)
    end = min(parse_rfc3339(row[1]) + timedelta(seconds=1), LATEST_BOUND)
    return start, end


def _site_names(db) -> list[str | None]:
    names = [row[0] for row in db.execute("SELECT name FROM sites UNION SELECT site FROM devices")]
    return [None, *sorted(names)]


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _difference(a: dict, b: dict) -> str:
    for key in sorted(set(a) | set(b)):
        if not _same(a.get(key), b.get(key)):
            return f"{key} is {a.get(key)!r} on SQLite, {b.get(key)!r} on PostgreSQL"
    return "the figures differ"


def verify(source_db, target_db, tables: list[str]) -> dict:
    """Counts per table, then every site's metrics over the stored range, on both stores."""
    counts = {}
    for table in tables:
        expected, found = _count(source_db.conn, table), _count(target_db.conn, table)
        if expected != found:
            raise MoveFailed(f"the copy does not match: {table} has {expected} rows in SQLite "
                             f"and {found} on PostgreSQL; run the command again")
        counts[table] = found
    start, end = stored_range(source_db)
    now = end  # the live queue's waits are measured from one instant on both stores
    sites = _site_names(source_db)
    for site in sites:
        query = MetricsQuery(start=start, end=end, site=site)
        expected = compute_metrics(source_db, query, now)
        found = compute_metrics(target_db, query, now)
        if not _same(expected, found):
            raise MoveFailed(f"the copy does not match: for {site or 'all sites'}, "
                             f"{_difference(expected, found)}")
    return {"rows": sum(counts.values()), "sites": [s for s in sites if s is not None],
            "from": to_rfc3339(start), "to": to_rfc3339(end)}


def move_store(data_dir: Path, database_url: str,
               after_table: Callable[[str], None] | None = None) -> dict:
    """Copy the SQLite store in ``data_dir`` into the PostgreSQL database at ``database_url``
    (empty, or holding a partial copy of this store), verify it, and say what was done.
    ``after_table`` is called with each table's name once it is committed (tests use it to
    fail half-way)."""
    from sync.central import postgres

    started = time.monotonic()
    path = storage.database_path(Path(data_dir))
    if not path.is_file():
        raise MoveFailed(f"there is no central store in {data_dir} "
                         f"(no {storage.DATABASE_FILE}): check the path")
    identity = str(path.resolve())
    # A URL libpq cannot read, or a server that is down or refuses us: a sentence naming user,
    # host, port and database (never the password, which libpq's own message can quote),
    # before anything is opened, and not "the move stopped" (nothing was copied).
    try:
        check_reachable(database_url)
    except StoreChoiceError as error:
        raise MoveFailed(str(error)) from None
    # Opening it migrates it: the PostgreSQL store is created at the same, current version.
    storage.CentralStore(Path(data_dir)).close()
    source = storage.connect(path)
    target = postgres.connect(database_url)
    try:
        source.conn.execute("BEGIN")  # one snapshot for the copy and its verification
        tables = source_tables(source.conn)
        version = source.conn.execute("PRAGMA user_version").fetchone()[0]
        raw = target.conn.raw
        if not raw.execute("SELECT pg_try_advisory_lock(%s)", [MOVE_LOCK]).fetchone()[0]:
            raise MoveFailed("another move into this PostgreSQL database is running; wait "
                             "for it to finish")
        resuming = check_target(raw, identity, tables)
        # Creates the schema (an empty target) or checks its version (a resumed one).
        storage.CentralStore(None, database_url=database_url, pool_size=2).close()
        target_version = target.conn.execute("PRAGMA user_version").fetchone()[0]
        if target_version != version:
            raise MoveFailed(f"the PostgreSQL store is at schema version {target_version} and "
                             f"the SQLite store at {version}; use an empty database")
        _record_source(raw, identity, version)
        done = {name: (rows, seconds) for name, rows, seconds in raw.execute(
            f"SELECT table_name, row_count, seconds FROM {PROGRESS_TABLE}")}
        report = {}
        for table in tables:
            columns = _columns(source.conn, table)
            missing = set(columns) - set(_target_columns(raw, table))
            if missing:
                raise MoveFailed(f"the PostgreSQL store has no {table} table with the columns "
                                 f"{', '.join(sorted(missing))}: is it at the same version?")
            earlier = table in done
            if earlier and same_content(source.conn, raw, table, columns):
                rows, seconds = done[table]
                report[table] = {"rows": rows, "seconds": seconds, "copied_now": False,
                                 "replaced_earlier_copy": False}
                continue
            rows, seconds = copy_table(source.conn, raw, table, columns, replace=earlier)
            report[table] = {"rows": rows, "seconds": seconds, "copied_now": True,
                             "replaced_earlier_copy": earlier}
            if after_table is not None:
                after_table(table)
        advance_identities(raw)
        try:
            checked = verify(source, target, tables)
        except MoveFailed:
            # A copy that no longer matches its source is not a finished move, whatever an
            # earlier run found.
            raw.execute(f"UPDATE {MARKER_TABLE} SET verified_at = NULL")
            raise
        raw.execute(f"UPDATE {MARKER_TABLE} SET verified_at = %s", [to_rfc3339(_now())])
        return {
            "source": identity,
            "target": target.identity,
            "schema_version": version,
            "resumed": resuming,
            "tables": report,
            "verified": checked,
            "seconds": round(time.monotonic() - started, 3),
        }
    finally:
        if source.conn.in_transaction:
            source.conn.execute("ROLLBACK")
        source.close()
        target.close()

