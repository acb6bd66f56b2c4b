"""The kiosk's local SQLite store: the events table (the outbox) and its projections.

Every event is written in one ``BEGIN IMMEDIATE`` transaction together with its projection
(``visits``, ``ratings``) and the device's sequence counter, with ``synchronous=FULL`` in WAL
mode: when ``record()`` returns, the tap is on disk and survives a power cut. The pusher reads
unsynced events in ``device_seq`` order and marks them synced or rejected.

A face whose follow-up is still open is *held* (``hold_rating``: one durable commit at the
face tap) until its tags are sent; a kiosk that dies meanwhile records the held face, without
tags, when it next opens the store. So no face pressed is lost, and the event is still written
once, complete, as the wire format has it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from kiosk.shared.timeutil import Clock, parse_rfc3339, to_rfc3339, utc_now
from kiosk.shared.wire import Event

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 5000
# The meta key of the face held while its follow-up is open (see the module's docstring).
HELD_RATING = "held_rating"


class StoreError(RuntimeError):
    """The local store could not do what was asked; the message says what and why."""


class StoreFull(StoreError):
    """The disk is full: the last action was not saved."""


class StoreCorrupt(StoreError):
    """The database file is damaged and was moved aside."""


# An event as written to the outbox is exactly the wire format's event.
RecordedEvent = Event


def _migration_1(db: Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["events"].create(
        {
            "id": str,
            "device_seq": int,
            "type": str,
            "occurred_at": str,
            "visit_id": str,
            "data": str,
            "synced_at": str,
            "sync_error": str,
        },
        pk="id",
        not_null={"device_seq", "type", "occurred_at", "data"},
    )
    db["events"].create_index(["device_seq"], unique=True)
    db["visits"].create(
        {
            "id": str,
            "ticket": str,
            "ticket_no": int,
            "day": str,
            "appointment_at": str,
            "checked_in_at": str,
            "called_at": str,
            "checked_out_at": str,
            "cancelled_at": str,
            "cancel_reason": str,
            "status": str,
        },
        pk="id",
    )
    db["visits"].create_index(["day", "status"])
    db["ratings"].create(
        {
            "id": str,
            "visit_id": str,
            "score": int,
            "scale": int,
            "tags": str,
            "misuse": int,
            "occurred_at": str,
        },
        pk="id",
    )
    db["ratings"].create_index(["occurred_at"])


def _migration_2(db: Database) -> None:
    # The pusher asks for "unsynced, in order" on every wake-up: keep that an index scan even
    # when a year of synced events sits in the table.
    db.execute(
        "CREATE INDEX IF NOT EXISTS events_outbox ON events(device_seq) "
        "WHERE synced_at IS NULL AND sync_error IS NULL"
    )
    db["visits"].add_column("last_change", str)


def _migration_3(db: Database) -> None:
    # The staff screen shows the sync state every second: "rejected" and "last synced" must be
    # index lookups, not a scan of a year of synced events. Partial indexes, so a tap's insert
    # (not synced, not rejected) adds no entry to either.
    db.execute(
        "CREATE INDEX IF NOT EXISTS events_rejected ON events(device_seq) "
        "WHERE sync_error IS NOT NULL"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS events_synced_at ON events(synced_at) "
        "WHERE synced_at IS NOT NULL"
    )


MIGRATIONS: dict[int, Callable[[Database], None]] = {
    1: _migration_1,
    2: _migration_2,
    3: _migration_3,
}
# Rows a purge deletes per transaction, so a tap never waits behind a long delete.
PURGE_CHUNK = 2000


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _is_full(error: sqlite3.Error) -> bool:
    return "full" in str(error).lower() or getattr(error, "sqlite_errorcode", 0) == 13


class Store:
    """One kiosk's local database. Thread-safe: the UI and the pusher share one instance."""

    def __init__(self, path: Path | str, clock: Clock = utc_now, target_version: int | None = None):
        self.path = Path(path)
        self.clock = clock
        self.recovered_from: Path | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[RecordedEvent], None]] = []
        self.db = self._open_checked()
        self.migrate(SCHEMA_VERSION if target_version is None else target_version)
        self.device_id = self._meta_default("device_id", lambda: str(uuid.uuid4()))
        self.recovered_rating: RecordedEvent | None = self._record_held_rating()

    # -- opening, integrity, migrations -------------------------------------------------

    def _open_checked(self) -> Database:
        """Open the file; a damaged one is moved aside so the kiosk starts clean, not in a loop."""
        conn = None
        try:
            conn = _connect(self.path)
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(verdict)
            return Database(conn)
        except sqlite3.DatabaseError as error:
            if _is_full(error):
                raise StoreFull(f"the disk holding {self.path} is full: {error}") from None
            if conn is not None:
                conn.close()
            stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            tries = 1
            while aside.exists():  # a second damaged file within the second: keep both
                tries += 1
                aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{tries}")
            for suffix in ("", "-wal", "-shm"):
                source = Path(str(self.path) + suffix)
                if source.exists():
                    shutil.move(str(source), str(aside) + suffix)
            self.recovered_from = aside
            return Database(_connect(self.path))

    def schema_version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def migrate(self, target: int = SCHEMA_VERSION) -> None:
        """Run the migrations between the file's version and ``target``, each in a transaction."""
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this kiosk's "
                f"{SCHEMA_VERSION}: install the newer kiosk version"
            )
        for version in range(current + 1, target + 1):
            with self._write():
                MIGRATIONS[version](self.db)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                    [str(version)],
                )

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the lock; a full disk becomes StoreFull."""
        with self._lock:
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
                if _is_full(error):
                    raise StoreFull(
                        "the disk is full: the last action was not saved. Free some space "
                        "(or call IT); everything saved before it is safe."
                    ) from None
                raise StoreError(f"the local database refused a write: {error}") from None

    def _query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self.db.execute(sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", [key])
        return rows[0]["value"] if rows else default

    def set_meta(self, values: dict[str, str | None]) -> None:
        with self._write() as conn:
            for key, value in values.items():
                if value is None:
                    conn.execute("DELETE FROM meta WHERE key = ?", [key])
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [key, value]
                    )

    def _meta_default(self, key: str, make: Callable[[], str]) -> str:
        value = self.get_meta(key)
        if value is None:
            value = make()
            self.set_meta({key: value})
        return value

    # -- writing events --------------------------------------------------------------------

    def on_record(self, listener: Callable[[RecordedEvent], None]) -> None:
        """Call ``listener`` after each committed event (the pusher wakes up on it)."""
        self._listeners.append(listener)

    def record(
        self,
        event_type: str,
        data: dict[str, Any],
        visit_id: str | None = None,
        occurred_at: datetime | None = None,
        project: dict[str, Any] | None = None,
        event_id: str | None = None,
    ) -> RecordedEvent:
        """Append one event and apply its projection in one durable transaction.

        ``project`` carries projection-only columns (e.g. the visit's local day and ticket
        number) that are derived on the kiosk and are not part of the wire format.
        ``event_id`` is given for a held rating (its id was chosen when it was held).
        """
        moment = to_rfc3339(occurred_at or self.clock())
        event_id = event_id or str(uuid.uuid4())
        with self._write() as conn:
            # The unique index on device_seq makes MAX a single b-tree step, and reading it
            # inside BEGIN IMMEDIATE keeps the sequence gapless without a counter row to write
            # on every tap (purge always keeps the newest event, so MAX never goes back).
            seq = conn.execute("SELECT COALESCE(MAX(device_seq), 0) + 1 FROM events").fetchone()[0]
            conn.execute(
                "INSERT INTO events(id, device_seq, type, occurred_at, visit_id, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [event_id, seq, event_type, moment, visit_id, json.dumps(data)],
            )
            event = RecordedEvent(event_id, seq, event_type, moment, visit_id, data)
            _project(conn, event, project or {})
        for listener in list(self._listeners):
            listener(event)
        return event

    # -- a face held while its follow-up is open ---------------------------------------------

    def hold_rating(
        self, data: dict[str, Any], visit_id: str | None, occurred_at: datetime
    ) -> str:
        """Keep a chosen face on disk until ``record(..., event_id=<returned id>)`` writes it
        complete. One row, replaced by the next hold; a hold whose event exists is spent, so
        the send tap's transaction stays the plain event write. A face still held and not
        recorded (the disk was full when it should have been) is recorded first: StoreFull
        if it still cannot be, and then the earlier face stays held."""
        self._record_unsent_hold()
        event_id = str(uuid.uuid4())
        held = {"id": event_id, "data": data, "visit_id": visit_id,
                "occurred_at": to_rfc3339(occurred_at)}
        self.set_meta({HELD_RATING: json.dumps(held)})
        return event_id

    def _held(self) -> dict[str, Any] | None:
        try:
            held = json.loads(self.get_meta(HELD_RATING) or "null")
            return held if isinstance(held, dict) and isinstance(held.get("id"), str) else None
        except ValueError:
            return None

    def _record_unsent_hold(self) -> RecordedEvent | None:
        held = self._held()
        if held is None or self._query("SELECT 1 FROM events WHERE id = ?", [held["id"]]):
            return None  # nothing held, or held and since sent
        try:
            occurred_at = parse_rfc3339(held["occurred_at"])
            data, visit_id = held["data"], held["visit_id"]
        except (ValueError, KeyError, TypeError):
            return None  # not what hold_rating writes (edited by hand?): nothing to recover
        return self.record(
            "rating.submitted", data, visit_id=visit_id, occurred_at=occurred_at,
            event_id=held["id"],
        )

    def _record_held_rating(self) -> RecordedEvent | None:
        """At open: the face a dead kiosk held is recorded now, as it was held (no tags)."""
        if self.get_meta(HELD_RATING) is None:
            return None
        try:
            event = self._record_unsent_hold()
        except StoreFull:
            return None  # kept held: recorded at a later start, or before the next hold
        self.set_meta({HELD_RATING: None})
        return event

    def _drop_spent_hold(self) -> None:
        """A hold whose event exists is spent; dropped before a purge could delete that event
        and make the hold look unsent (which would record the face a second time)."""
        held = self._held()
        if held is not None and self._query("SELECT 1 FROM events WHERE id = ?", [held["id"]]):
            self.set_meta({HELD_RATING: None})

    # -- reading for the UI ------------------------------------------------------------------

    def visit(self, visit_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM visits WHERE id = ?", [visit_id])
        return rows[0] if rows else None

    def visits_on_day(self, day: str) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM visits WHERE day = ? ORDER BY checked_in_at", [day])

    def queue(self, day: str) -> list[dict[str, Any]]:
        """Visits still waiting or in the chair today, earliest check-in first."""
        return self._query(
            "SELECT * FROM visits WHERE day = ? AND status IN ('waiting', 'in_chair') "
            "ORDER BY checked_in_at",
            [day],
        )

    def next_ticket_number(self, day: str) -> int:
        rows = self._query("SELECT MAX(ticket_no) AS n FROM visits WHERE day = ?", [day])
        return (rows[0]["n"] or 0) + 1

    def ratings_between(self, start: str, end: str) -> list[dict[str, Any]]:
        return self._query(
            "SELECT * FROM ratings WHERE occurred_at >= ? AND occurred_at < ? ORDER BY occurred_at",
            [start, end],
        )

    def last_rating_at(self) -> str | None:
        rows = self._query("SELECT MAX(occurred_at) AS at FROM ratings")
        return rows[0]["at"]

    def last_event_for_visit(self, visit_id: str) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT * FROM events WHERE visit_id = ? AND type LIKE 'visit.%' "
            "ORDER BY device_seq DESC LIMIT 1",
            [visit_id],
        )
        return rows[0] if rows else None

    def events(self) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM events ORDER BY device_seq")

    # -- the outbox --------------------------------------------------------------------------

    def unsynced(self, limit: int = 500) -> list[RecordedEvent]:
        rows = self._query(
            "SELECT id, device_seq, type, occurred_at, visit_id, data FROM events "
            "WHERE synced_at IS NULL AND sync_error IS NULL ORDER BY device_seq LIMIT ?",
            [limit],
        )
        return [
            RecordedEvent(
                r["id"], r["device_seq"], r["type"], r["occurred_at"], r["visit_id"],
                json.loads(r["data"]),
            )
            for r in rows
        ]

    def mark_synced(self, event_ids: list[str]) -> None:
        stamp = to_rfc3339(self.clock())
        with self._write() as conn:
            conn.executemany(
                "UPDATE events SET synced_at = ? WHERE id = ?", [(stamp, i) for i in event_ids]
            )

    def mark_rejected(self, rejections: dict[str, str]) -> None:
        """Quarantine events the central store refused: kept, shown, never retried."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE events SET sync_error = ? WHERE id = ?",
                [(reason or "rejected", i) for i, reason in rejections.items()],
            )

    def sync_status(self) -> dict[str, Any]:
        """Backlog, rejected and last sync: three index lookups (it runs every second on the
        staff screen, whatever the size of the history)."""
        with self._lock:
            backlog = self.db.execute(
                "SELECT COUNT(*) FROM events WHERE synced_at IS NULL AND sync_error IS NULL"
            ).fetchone()[0]
            rejected = self.db.execute(
                "SELECT COUNT(*) FROM events WHERE sync_error IS NOT NULL"
            ).fetchone()[0]
            last = self.db.execute(
                "SELECT MAX(synced_at) FROM events WHERE synced_at IS NOT NULL"
            ).fetchone()[0]
        return {"backlog": backlog, "rejected": rejected, "last_synced_at": last}

    def rejected_events(self) -> list[dict[str, Any]]:
        return self._query(
            "SELECT id, device_seq, type, occurred_at, sync_error FROM events "
            "WHERE sync_error IS NOT NULL ORDER BY device_seq"
        )

    # -- retention -----------------------------------------------------------------------------

    def purge(self, retention_days: int) -> int:
        """Delete data older than the retention period; unsynced events are never deleted, and
        neither is the newest event, which carries the device's sequence forward. Deleted a
        chunk per transaction, so the first purge of a long history never holds up a tap."""
        cutoff = to_rfc3339(self.clock() - timedelta(days=retention_days))
        self._drop_spent_hold()
        gone = self._delete_in_chunks(
            "events",
            "occurred_at < ? AND (synced_at IS NOT NULL OR sync_error IS NOT NULL) "
            "AND device_seq < (SELECT MAX(device_seq) FROM events)",
            [cutoff],
        )
        self._delete_in_chunks("ratings", "occurred_at < ?", [cutoff])
        self._delete_in_chunks(
            "visits", "checked_in_at < ? AND status NOT IN ('waiting', 'in_chair')", [cutoff]
        )
        return gone

    def _delete_in_chunks(self, table: str, where: str, params: list[Any]) -> int:
        deleted = 0
        while True:
            with self._write() as conn:
                count = conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN "
                    f"(SELECT rowid FROM {table} WHERE {where} LIMIT {PURGE_CHUNK})",
                    params,
                ).rowcount
            deleted += count
            if count < PURGE_CHUNK:
                return deleted


# -- projection: how each event changes the visits and ratings tables --------------------------


def _project(conn: sqlite3.Connection, event: RecordedEvent, extra: dict[str, Any]) -> None:
    kind, at, visit_id, data = event.type, event.occurred_at, event.visit_id, event.data
    if kind == "visit.checked_in":
        conn.execute(
            "INSERT INTO visits(id, ticket, ticket_no, day, appointment_at, checked_in_at, "
            "status, last_change) VALUES (?, ?, ?, ?, ?, ?, 'waiting', ?)",
            [visit_id, data["ticket"], extra.get("ticket_no"), extra.get("day"),
             data.get("appointment_at"), at, kind],
        )
    elif kind == "visit.called":
        _update_visit(conn, visit_id, called_at=at, status="in_chair", last_change=kind)
    elif kind == "visit.checked_out":
        _update_visit(conn, visit_id, checked_out_at=at, status="done", last_change=kind)
    elif kind == "visit.cancelled":
        _update_visit(
            conn, visit_id, cancelled_at=at, cancel_reason=data["reason"],
            status=data["reason"], last_change=kind,
        )
    elif kind == "visit.corrected":
        _update_visit(conn, visit_id, **{data["field"]: data["value"]})
    elif kind == "visit.undone":
        _project_undo(conn, visit_id, data["action"])
    elif kind == "rating.submitted":
        conn.execute(
            "INSERT INTO ratings(id, visit_id, score, scale, tags, misuse, occurred_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [event.id, visit_id, data["score"], data["scale"], json.dumps(data.get("tags", [])),
             int(data.get("misuse", False)), at],
        )


def _project_undo(conn: sqlite3.Connection, visit_id: str, action: str) -> None:
    previous = "visit.undone"
    if action == "visit.checked_in":
        _update_visit(conn, visit_id, status="voided", last_change=previous)
    elif action == "visit.called":
        _update_visit(conn, visit_id, called_at=None, status="waiting", last_change=previous)
    elif action == "visit.checked_out":
        _update_visit(conn, visit_id, checked_out_at=None, status="in_chair", last_change=previous)
    elif action == "visit.cancelled":
        row = conn.execute("SELECT called_at FROM visits WHERE id = ?", [visit_id]).fetchone()
        status = "in_chair" if row and row[0] else "waiting"
        _update_visit(
            conn, visit_id, cancelled_at=None, cancel_reason=None, status=status,
            last_change=previous,
        )


def _update_visit(conn: sqlite3.Connection, visit_id: str | None, **columns: Any) -> None:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(
        f"UPDATE visits SET {assignments} WHERE id = ?", [*columns.values(), visit_id]
    )
