"""The central store on PostgreSQL: a connection that answers as the store's SQLite one does.

The store's modules are written against a small part of ``sqlite_utils.Database``: ``execute``
and ``query``, ``db.conn.execute`` / ``executemany`` / ``in_transaction``, ``executescript``,
and ``db[table].create`` / ``create_index`` / ``insert`` in the migrations. :class:`PgDatabase`
offers exactly that part over a psycopg 3 connection, with every statement translated by
``sync.central.dialect``, so one code path serves both engines and the tests run it on both.

What it keeps the same as SQLite, on purpose:
- transactions are the store's own (autocommit, then explicit ``BEGIN`` ... ``COMMIT``), and
  ``BEGIN IMMEDIATE`` takes the one writer lock every worker process shares;
- values come back as SQLite gives them: a ``numeric`` (``SUM`` of integers) as an int or a
  float, never a ``Decimal``; a Python bool goes in as 0 or 1 (the columns are integers);
- errors are raised as ``sqlite3``'s classes (``IntegrityError`` for a constraint or a
  trigger's refusal, ``DataError``, ``OperationalError`` for a lost connection or a full
  disk, ``DatabaseError`` otherwise), with PostgreSQL's error chained as the cause, so the
  callers' rules (a constraint is the event's fault, a lost connection is the moment's) hold.
"""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper, Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from sync.central.dialect import WRITER_LOCK, split_script, to_postgres

URL_SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT_S = 10
VERSION_TABLE = "schema_version"


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and url.startswith(URL_SCHEMES)


class _BoolAsInteger(Dumper):
    """True/False as 1/0: the store's flags are integer columns on both engines."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj):
        return b"1" if obj else b"0"

    def quote(self, obj):
        return b"1" if obj else b"0"


class _NumericAsNumber(Loader):
    """``numeric`` (what PostgreSQL sums integers to) as int when whole, else float."""

    def load(self, data):
        text = bytes(data).decode()
        if text.lstrip("-").isdigit():
            return int(text)
        return float(text)


def configure(conn: psycopg.Connection) -> None:
    """What every connection to the store needs (the pool calls it for each new one)."""
    conn.adapters.register_dumper(bool, _BoolAsInteger)
    conn.adapters.register_loader("numeric", _NumericAsNumber)


def _as_sqlite_error(error: psycopg.Error) -> sqlite3.Error:
    if isinstance(error, pg_errors.DiskFull):
        converted: sqlite3.Error = sqlite3.OperationalError(f"database or disk is full: {error}")
    elif isinstance(error, (psycopg.IntegrityError, pg_errors.RaiseException)):
        converted = sqlite3.IntegrityError(str(error).strip())
    elif isinstance(error, psycopg.DataError):
        converted = sqlite3.DataError(str(error).strip())
    elif isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError,
                            psycopg.ProgrammingError)):
        converted = sqlite3.OperationalError(str(error).strip())
    else:
        converted = sqlite3.DatabaseError(str(error).strip())
    converted.__cause__ = error
    return converted


@contextmanager
def _sqlite_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.Error as error:
        raise _as_sqlite_error(error) from error


class _Rows:
    """A finished statement's rows, read as a sqlite3 cursor is."""

    __slots__ = ("_rows", "_at", "rowcount", "description", "lastrowid")

    def __init__(self, rows: list, rowcount: int, description):
        self._rows = rows
        self._at = 0
        self.rowcount = rowcount
        self.description = description
        self.lastrowid = None

    def fetchone(self):
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list:
        rest = self._rows[self._at:]
        self._at = len(self._rows)
        return rest

    def __iter__(self):
        return iter(self.fetchall())


# Rows a streamed read fetches per round trip (as many as one CSV chunk of the exports).
STREAM_ROWS = 2000
_STREAM_NAMES = itertools.count(1)

_PRAGMA = re.compile(r"^\s*PRAGMA\s+(\w+)\s*(?:=\s*(\S+)|\((\w+)\))?\s*;?\s*$", re.IGNORECASE)
_INSERT_HEAD = re.compile(r"\bINTO\s+(\w+)\s*\(([^)]*)\)", re.IGNORECASE)
_DROP_TRIGGER = re.compile(r"^\s*DROP\s+TRIGGER\s+(IF\s+EXISTS\s+)?(\w+)\s*;?\s*$", re.I)


class PgConnection:
    """The ``db.conn`` of a PostgreSQL store: ``execute``, ``executemany``, ``in_transaction``."""

    def __init__(self, raw: psycopg.Connection, identity: str):
        self.raw = raw
        self.identity = identity
        # Writes sent with execute_later whose answers have not been read yet (see there).
        self._pipeline = None
        # Per table, its columns' types (insert_many's arrays), read once per connection.
        self._types: dict[str, dict[str, str]] = {}
        self._cache_key: tuple | None = None

    def cache_key(self) -> tuple:
        """See :attr:`PgDatabase.cache_key`; read once per connection."""
        if self._cache_key is None:
            oid, started = self.execute(
                "SELECT oid, CAST(pg_postmaster_start_time() AS TEXT) FROM pg_database "
                "WHERE datname = current_database()").fetchone()
            self._cache_key = (self.identity, oid, started)
        return self._cache_key

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        return self.raw.broken or self.raw.closed

    def execute(self, sql: str, params: Iterable | dict | None = None) -> _Rows:
        # Whatever was sent ahead is answered first: this statement may read what it wrote,
        # and a failure of its is raised here, in the work that sent it. A rollback discards
        # them anyway, so their failure is not raised again by the rollback itself.
        self.flush(raise_errors=not sql.lstrip()[:8].upper().startswith("ROLLBACK"))
        special = self._special(sql, params)
        if special is not None:
            return special
        params = _params(params)
        translated = to_postgres(sql, params is not None)
        with _sqlite_errors(), self.raw.cursor() as cursor:
            cursor.execute(translated, params)
            rows = cursor.fetchall() if cursor.description is not None else []
            return _Rows(rows, cursor.rowcount, cursor.description)

    def stream(self, sql: str, params: Iterable | dict | None = None,
               batch: int | None = None) -> Iterator[tuple]:
        """A long SELECT's rows as they come, ``batch`` at a time, from a server-side (named)
        cursor: :meth:`execute` fetches the whole result before its first row, which held a
        28-day CSV export's first bytes back for the whole read (benchmark figure 16). A named
        cursor lives in a transaction, so the read has one of its own (rolled back if the
        reader stops early, e.g. a download cancelled)."""
        self.flush()  # as every other statement: what was sent ahead is answered first
        params = _params(params)
        translated = to_postgres(sql, params is not None)
        with _sqlite_errors(), self.raw.transaction(), \
                self.raw.cursor(name=f"stream_{next(_STREAM_NAMES)}") as cursor:
            cursor.execute(translated, params)
            while rows := cursor.fetchmany(batch or STREAM_ROWS):
                yield from rows

    def executemany(self, sql: str, seq: Iterable) -> _Rows:
        self.flush()
        with _sqlite_errors(), self.raw.cursor() as cursor:
            cursor.executemany(to_postgres(sql, True), [_params(p) or () for p in seq])
            return _Rows([], cursor.rowcount, None)

    def execute_later(self, sql: str, params: Iterable | dict | None = None) -> None:
        """A write whose answer nobody reads (an UPDATE of a projection), sent now and
        answered later: psycopg's pipeline mode queues it on the wire, PostgreSQL runs the
        queued statements in order, and the next :meth:`execute` (or :meth:`flush`) collects
        their answers, raising the first failure. Ingest sends dozens of these per batch; each
        waiting for its own round trip was most of a batch's time. Same statement, same
        order, same transaction: only the waiting changes."""
        if self._pipeline is None:
            pipeline = self.raw.pipeline()
            with _sqlite_errors():
                pipeline.__enter__()
            self._pipeline = pipeline
        params = _params(params)
        with _sqlite_errors(), self.raw.cursor() as cursor:
            cursor.execute(to_postgres(sql, params is not None), params)

    def flush(self, raise_errors: bool = True) -> None:
        """Collect the answers of the writes sent with :meth:`execute_later`; the first
        failure among them is raised (as sqlite3's class) unless ``raise_errors`` is off."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is None:
            return
        try:
            with _sqlite_errors():
                pipeline.__exit__(None, None, None)
        except sqlite3.Error:
            if raise_errors:
                raise

    def insert_many(self, sql_head: str, rows: list[tuple], tail: str = "") -> None:
        """``sql_head`` (``INSERT [OR IGNORE] INTO table (columns)``, SQLite's spelling) of
        every row, then ``tail``, as one statement: ``SELECT * FROM unnest(...)`` of one array
        per column, bound server-side. The store's multi-row VALUES statements, bound
        client-side, were re-parsed and re-quoted by psycopg at every call (their text is too
        long for its cache), which cost more CPU than everything else in a batch; a row per
        statement would cost PostgreSQL a statement per row. The rows go in in order, in one
        statement, as a multi-row VALUES would put them."""
        self.flush()
        match = _INSERT_HEAD.search(sql_head)
        table, columns = match.group(1), [c.strip() for c in match.group(2).split(",")]
        types = self._column_types(table, columns)
        arrays = ", ".join(f"?::{types[column]}[]" for column in columns)
        sql = to_postgres(f"{sql_head} SELECT * FROM unnest({arrays}){tail}", True)
        with _sqlite_errors(), psycopg.Cursor(self.raw) as cursor:
            cursor.execute(sql, [list(values) for values in zip(*rows, strict=True)])

    def _column_types(self, table: str, columns: list[str]) -> dict[str, str]:
        """The table's column types, read once per connection (a migration adds columns but
        never changes a type; a column not seen yet has them read again)."""
        types = self._types.get(table)
        if types is None or not types.keys() >= set(columns):
            with _sqlite_errors():
                types = self._types[table] = dict(self.raw.execute(
                    "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                    [table]).fetchall())
        return types

    def copy_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """``rows`` into ``table`` with ``COPY ... FROM STDIN``: what a plain multi-row
        INSERT would store, a constraint broken failing the whole COPY the same way."""
        self.flush()
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with _sqlite_errors(), self.raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def executescript(self, script: str) -> None:
        for statement in split_script(script):
            self.execute(statement)

    def _special(self, sql: str, params) -> _Rows | None:
        """Statements PostgreSQL has no word for, answered the way SQLite answers them."""
        head = sql.lstrip()[:16].upper()
        if head.startswith("BEGIN"):
            # SQLite refuses a transaction inside a transaction; PostgreSQL would only warn,
            # and the inner COMMIT would then commit the outer one's work.
            if self.in_transaction:
                raise sqlite3.OperationalError(
                    "cannot start a transaction within a transaction")
            with _sqlite_errors():
                self.raw.execute("BEGIN")
                if head.startswith("BEGIN IMMEDIATE"):
                    self.raw.execute(f"SELECT pg_advisory_xact_lock({WRITER_LOCK})")
            return _Rows([], -1, None)
        if head.startswith(("COMMIT", "END")) and (
                self.raw.info.transaction_status == TransactionStatus.INERROR):
            # A statement failed inside the transaction (and was caught): PostgreSQL would
            # answer this COMMIT with a ROLLBACK and no error, and the caller would believe
            # its writes committed.
            with _sqlite_errors():
                self.raw.execute("ROLLBACK")
            raise sqlite3.OperationalError(
                "the transaction was rolled back: a statement in it failed")
        if head.startswith("PRAGMA"):
            return self._pragma(sql)
        if head.startswith("DROP TRIGGER"):
            match = _DROP_TRIGGER.match(sql)
            if match is not None:
                return self._drop_trigger(match.group(2), bool(match.group(1)))
        return None

    def _pragma(self, sql: str) -> _Rows:
        match = _PRAGMA.match(sql)
        if match is None:
            raise sqlite3.OperationalError(f"not understood on PostgreSQL: {sql.strip()}")
        name, value, argument = match.group(1).lower(), match.group(2), match.group(3)
        if name == "user_version":
            return self._user_version(None if value is None else int(value))
        if name == "table_info":
            with _sqlite_errors():
                rows = self.raw.execute(
                    "SELECT ordinal_position - 1, column_name, data_type, "
                    "CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END, column_default, 0 "
                    "FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = %s ORDER BY ordinal_position", [argument]).fetchall()
            return _Rows(rows, -1, None)
        if name == "database_list":
            return _Rows([(0, "main", "")], -1, None)
        # Connection settings of SQLite's own (cache size, busy timeout, journal, foreign
        # keys): PostgreSQL has these always on, or configured on the server.
        return _Rows([], -1, None)

    def _user_version(self, value: int | None) -> _Rows:
        with _sqlite_errors():
            self.raw.execute(
                f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version BIGINT NOT NULL)")
            row = self.raw.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
            if value is None:
                return _Rows([(row[0] if row else 0,)], -1, None)
            if row is None:
                self.raw.execute(f"INSERT INTO {VERSION_TABLE} VALUES (%s)", [value])
            else:
                self.raw.execute(f"UPDATE {VERSION_TABLE} SET version = %s", [value])
        return _Rows([], 1, None)

    def _drop_trigger(self, name: str, if_exists: bool) -> _Rows:
        with _sqlite_errors():
            row = self.raw.execute(
                "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = %s", [name]
            ).fetchone()
            if row is None:
                if if_exists:
                    return _Rows([], 0, None)
                raise sqlite3.OperationalError(f"no such trigger: {name}")
            self.raw.execute(f"DROP TRIGGER {name} ON {row[0]}")
            self.raw.execute(f"DROP FUNCTION IF EXISTS {name}_fn()")
        return _Rows([], 0, None)

    def close(self) -> None:
        self._pipeline = None
        self.raw.close()


def _params(params):
    if params is None:
        return None
    if isinstance(params, dict):
        return params or None
    params = list(params)
    return params or None


class PgTable:
    """``db[name]``: the table calls the migrations and a few writers make."""

    # SQLite's names: the dialect turns them into PostgreSQL's, as for any CREATE TABLE.
    TYPES = {str: "TEXT", int: "INTEGER", float: "REAL", bytes: "BLOB", bool: "INTEGER"}

    def __init__(self, db: PgDatabase, name: str):
        self.db = db
        self.name = name

    def create(self, columns: dict, pk=None, not_null=(), defaults=None, foreign_keys=(),
               **_ignored) -> PgTable:
        defaults = defaults or {}
        keys = (pk,) if isinstance(pk, str) else tuple(pk or ())
        lines = []
        for column, kind in columns.items():
            if keys == (column,) and kind is int:
                lines.append(f"{column} BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
                continue
            line = f"{column} {self.TYPES[kind]}"
            if column in not_null or column in keys:
                line += " NOT NULL"
            if column in defaults:
                line += f" DEFAULT {_literal(defaults[column])}"
            lines.append(line)
        if keys and not (len(keys) == 1 and columns.get(keys[0]) is int):
            lines.append(f"PRIMARY KEY ({', '.join(keys)})")
        for foreign in foreign_keys:
            column, other, *rest = foreign
            target = rest[0] if rest else "id"
            lines.append(f"FOREIGN KEY ({column}) REFERENCES {other} ({target})")
        self.db.conn.execute(f"CREATE TABLE {self.name} ({', '.join(lines)})")
        return self

    def create_index(self, columns, unique: bool = False, index_name: str | None = None,
                     if_not_exists: bool = False) -> PgTable:
        name = index_name or f"idx_{self.name}_{'_'.join(columns)}"
        self.db.conn.execute(
            f"CREATE {'UNIQUE ' if unique else ''}INDEX {'IF NOT EXISTS ' if if_not_exists else ''}"
            f"{name} ON {self.name} ({', '.join(columns)})"
        )
        return self

    def insert(self, record: dict, **_ignored) -> PgTable:
        columns = list(record)
        self.db.conn.execute(
            f"INSERT INTO {self.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            [record[column] for column in columns],
        )
        return self


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class PgDatabase:
    """One PostgreSQL connection of the store, read and written as its SQLite ``Database``."""

    engine = "postgres"

    def __init__(self, conn: PgConnection, pool=None):
        self.conn = conn
        self.pool = pool

    @property
    def identity(self) -> str:
        """What names this database in messages (never the password)."""
        return self.conn.identity

    @property
    def cache_key(self) -> tuple:
        """What keys this database's rows in the process's caches (``hour_runs``): the
        server and database by name, the database's oid (a database dropped and made again
        has a new one) and the server's start time (a cluster made again at the same address
        has started since), so two databases never share an entry."""
        return self.conn.cache_key()

    def execute(self, sql: str, params=None) -> _Rows:
        return self.conn.execute(sql, params)

    def executescript(self, script: str) -> None:
        self.conn.executescript(script)

    def stream(self, sql: str, params=None) -> Iterator[tuple]:
        return self.conn.stream(sql, params)

    def query(self, sql: str, params=None) -> Iterator[dict]:
        self.conn.flush()
        params = _params(params)
        with _sqlite_errors(), self.conn.raw.cursor(row_factory=dict_row) as cursor:
            cursor.execute(to_postgres(sql, params is not None), params)
            rows = cursor.fetchall()
        yield from rows

    def __getitem__(self, name: str) -> PgTable:
        return PgTable(self, name)

    def close(self) -> None:
        self.conn.close()


UNREADABLE_URL = "a PostgreSQL URL that cannot be read"


def safe_identity(url: str) -> str:
    """user@host:port/db for messages and cache keys, the defaults filled in as libpq would,
    never the password. A URL libpq cannot parse is named by a fixed phrase: the parser's
    own message quotes the part it could not read, which is often the password."""
    import os

    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return UNREADABLE_URL
    user = info.get("user") or os.environ.get("PGUSER") or ""
    host = info.get("host") or os.environ.get("PGHOST") or "localhost"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = info.get("dbname") or user
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{dbname}"


def url_problem(url: str) -> str | None:
    """Why libpq cannot read ``url`` (without quoting it), or None."""
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return ("the URL cannot be read (a password or name with '%', spaces or '@' must be "
                "percent-encoded, e.g. %25 for '%'; or put the password in ~/.pgpass)")
    return None


def connect(url: str) -> PgDatabase:
    """One connection (outside any pool): for the CLI's one-shot commands and the tests."""
    with _sqlite_errors():
        raw = psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)
    configure(raw)
    return PgDatabase(PgConnection(raw, safe_identity(url)))


# How long the pool keeps retrying a connection it failed to open before it gives that attempt
# up. Its retries back off (1, 2, 4, 8 s ...) for as long as this window lasts: with the
# library's 5 minutes, a store whose PostgreSQL was down a minute would wait up to another
# minute after it came back. Past the window, the next request for a connection starts a
# fresh attempt at once, so recovery follows PostgreSQL's restart within seconds.
RECONNECT_WINDOW_S = 10.0


# The store's reads are many small index and rollup reads. A UNION ALL over 20 sites costs
# more than parallel_setup_cost, so PostgreSQL started two parallel workers to read ~1,300
# rollup rows and took 2-3x as long as reading them serially (README, figure 16). Off for the
# store's own connections, unless the URL's options (or PGOPTIONS) set it otherwise. Set with
# SET once connected, not as an ``options`` startup parameter, which PgBouncer refuses.
SERIAL_PLANS = "SET max_parallel_workers_per_gather = 0"


def wants_serial_plans(url: str) -> bool:
    """True unless the URL's ``options`` (else PGOPTIONS) already choose parallel workers."""
    given = conninfo_to_dict(url).get("options") or os.environ.get("PGOPTIONS", "")
    return "max_parallel_workers_per_gather" not in given


def configure_for(url: str):
    """The pool's ``configure`` for connections to ``url``: :func:`configure`, then serial
    plans unless the operator chose otherwise."""
    serial = wants_serial_plans(url)

    def configure_connection(conn: psycopg.Connection) -> None:
        configure(conn)
        if serial:
            conn.execute(SERIAL_PLANS)

    return configure_connection


def open_pools(url: str, read_url: str | None, max_size: int) -> dict:
    """The process's pools: "primary", and "replica" when a read URL is given. Opening waits
    for one connection each, so a wrong URL or a server that is down fails here, at start,
    with PostgreSQL's own sentence."""
    from psycopg_pool import ConnectionPool

    pools = {}
    try:
        for role, target in (("primary", url), ("replica", read_url)):
            if not target:
                continue
            pool = ConnectionPool(
                target, min_size=1, max_size=max_size, open=False,
                configure=configure_for(target),
                # connect_timeout: a host that does not answer (a replica's machine gone)
                # fails a new connection in seconds, not after the kernel's minutes.
                kwargs={"autocommit": True, "cursor_factory": psycopg.ClientCursor,
                        "connect_timeout": CONNECT_TIMEOUT_S},
                name=f"central-{role}", check=ConnectionPool.check_connection,
                reconnect_timeout=RECONNECT_WINDOW_S,
            )
            pools[role] = pool
            pool.open(wait=True, timeout=10)
            pool.identity = safe_identity(target)  # type: ignore[attr-defined]
            pool.reach_check = _ReachCheck()  # type: ignore[attr-defined]
    except Exception as error:
        close_pools(pools)
        reason = url_problem(target) or _reason(error)
        raise sqlite3.OperationalError(
            f"cannot connect to PostgreSQL at {safe_identity(target)}: {reason}") from error
    return pools


def _reason(error: BaseException) -> str:
    # The pool's timeout hides the connection's own error: find the first line of it.
    text = str(error.__cause__ or error).strip() or type(error).__name__
    return text.splitlines()[0]


# A busy pool (every connection lent out under a burst) is waited for this long before the
# request is answered 503. A server that is down must not cost every request that long: a
# request that has no connection after DOWN_CHECK_AFTER_S asks whether the server answers at all.
POOL_WAIT_S = 30.0
DOWN_CHECK_AFTER_S = 1.0
# One new connection answers for every thread waiting on the same pool within this window, so
# a burst of waiters does not turn into a burst of connection attempts (max_connections).
DOWN_CHECK_SHARED_S = 1.0


# The server answered, so it is up: it has no connection slot left (SQLSTATE 53300), which is
# what a burst that has every pooled connection lent out may meet. Wait for the pool.
_LIMIT_SENTENCES = ("too many clients", "remaining connection slots are reserved")


def _at_connection_limit(error: psycopg.OperationalError) -> bool:
    text = str(error)
    return getattr(error, "sqlstate", None) == "53300" or any(
        sentence in text for sentence in _LIMIT_SENTENCES)


class _ReachCheck:
    """Whether a pool's server accepts a new connection, asked at most once a window."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.asked_at = -DOWN_CHECK_SHARED_S
        self.error: psycopg.OperationalError | None = None

    def raise_if_unreachable(self, pool) -> None:
        with self.lock:
            if time.monotonic() - self.asked_at >= DOWN_CHECK_SHARED_S:
                self.error = None
                try:
                    psycopg.connect(pool.conninfo, connect_timeout=CONNECT_TIMEOUT_S).close()
                except psycopg.OperationalError as error:
                    if not _at_connection_limit(error):
                        self.error = error
                self.asked_at = time.monotonic()
            error = self.error
        if error is not None:
            raise error


def from_pool(pool) -> PgDatabase:
    with _sqlite_errors():
        raw = _connection_within(pool, DOWN_CHECK_AFTER_S)
        if raw is None:
            # Down (refused, unreachable): its own sentence, now (503). Up (or at its
            # connection limit): the pool is only busy, so wait for a connection as ever.
            pool.reach_check.raise_if_unreachable(pool)
            raw = pool.getconn(timeout=POOL_WAIT_S - DOWN_CHECK_AFTER_S)
    return PgDatabase(PgConnection(raw, pool.identity), pool)


def _connection_within(pool, seconds: float):
    """A pooled connection, or None if none comes within ``seconds``."""
    from psycopg_pool import PoolTimeout

    try:
        return pool.getconn(timeout=seconds)
    except PoolTimeout as waited:
        # The library's timeout and the errors chained inside it sit in reference cycles
        # through their tracebacks, whose frames reach the callers' (f_back), storage's
        # _thread_connection among them. Left to the cyclic collector, that frame would keep
        # the thread's connection holder alive after the thread ended, and its connection out
        # of the pool (a pool of 1 then waited 30 s after PostgreSQL came back). Cut them here.
        _drop_tracebacks(waited)
        return None


def _drop_tracebacks(error: BaseException | None) -> None:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


def give_back(pools: dict, db: PgDatabase) -> None:
    pool = getattr(db, "pool", None)
    if pool is None:
        db.close()
        return
    try:
        db.conn.flush(raise_errors=False)
        if db.conn.in_transaction and not db.conn.broken:
            db.conn.raw.rollback()
        pool.putconn(db.conn.raw)
    except Exception:  # noqa: BLE001 - a pool already closed, a connection already gone
        db.close()


def close_pools(pools: dict) -> None:
    for pool in pools.values():
        pool.close(timeout=5)
