"""The kiosk's local store: the events table (the outbox) and the tables the screens read.

A thin façade over the modules that each do one job: ``local_db`` (the file, its pragmas and
its transactions), ``migrations`` (the schema), ``projection`` (how an event changes the
``visits`` and ``ratings`` tables), ``held_face`` (a face kept on disk while its follow-up is
open) and ``retention`` (the chunked purge).

Every event is written in one ``BEGIN IMMEDIATE`` transaction together with its projection
and the device's sequence number, with ``synchronous=FULL`` in WAL mode: when ``record()``
returns, the tap is on disk and survives a power cut. The pusher reads unsynced events in
``device_seq`` order and marks them synced or rejected.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk.config import DEFAULT_COMMENT_RETENTION_DAYS
from kiosk.held_face import HeldFace
from kiosk.local_db import LocalDb, StoreError, StoreFull, open_checked
from kiosk.migration_runner import run_migrations
from kiosk.migrations import MIGRATIONS, SCHEMA_VERSION, schema_version, set_schema_version
from kiosk.projection import project as project_event
from kiosk.retention import purge_before
from kiosk.shared.timeutil import Clock, parse_optional, to_rfc3339, utc_now
from kiosk.shared.wire import Event
from kiosk.sync_status import SyncStatus

__all__ = ["SCHEMA_VERSION", "RecordedEvent", "Store", "StoreError", "StoreFull"]

# An event as written to the outbox is exactly the wire format's event.
RecordedEvent = Event


class Store:
    """One kiosk's local database. Thread-safe: the UI and the pusher share one instance."""

    def __init__(self, path: Path | str, clock: Clock = utc_now, target_version: int | None = None):
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db, self.recovered_from = open_checked(self.path)
        self._local = LocalDb(self.db)
        self._listeners: list[Callable[[RecordedEvent], None]] = []
        self._held = HeldFace(self)
        self.migrate(SCHEMA_VERSION if target_version is None else target_version)
        self.device_id = self._meta_default("device_id", lambda: str(uuid.uuid4()))
        self.recovered_rating: RecordedEvent | None = self._held.recover()

    # -- schema ------------------------------------------------------------------------------

    def schema_version(self) -> int:
        return schema_version(self.db)

    def migrate(self, target: int = SCHEMA_VERSION) -> None:
        """Run the migrations between the file's version and ``target``, each in a transaction."""
        run_migrations(
            self.db, MIGRATIONS, target=target, read_version=schema_version,
            write_version=set_schema_version, transaction=self._write, too_new=self._too_new,
        )

    def _too_new(self, version: int) -> StoreError:
        return StoreError(
            f"{self.path} has schema version {version}, newer than this kiosk's "
            f"{SCHEMA_VERSION}: install the newer kiosk version"
        )

    def close(self) -> None:
        self._local.close()

    # -- transactions ------------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the lock; a full disk becomes StoreFull."""
        return self._local.write()

    def _query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return self._local.query(sql, params)

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
            project_event(conn, event, project or {})
        for listener in list(self._listeners):
            listener(event)
        return event

    # -- a face held while its follow-up is open (kiosk/held_face.py) ------------------------

    def hold_rating(
        self, data: dict[str, Any], visit_id: str | None, occurred_at: datetime
    ) -> str:
        """Keep a chosen face on disk until ``record(..., event_id=<returned id>)`` writes it
        complete (see ``HeldFace.hold``)."""
        return self._held.hold(data, visit_id, occurred_at)

    def has_event(self, event_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM events WHERE id = ?", [event_id]))

    # -- reading for the UI ------------------------------------------------------------------

    def visit(self, visit_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM visits WHERE id = ?", [visit_id])
        return rows[0] if rows else None

    def visits_on_day(self, day: str) -> list[dict[str, Any]]:
        return self._query("SELECT * FROM visits WHERE day = ? ORDER BY checked_in_at", [day])

    def queue(self, since: str, from_day: str) -> list[dict[str, Any]]:
        """Visits still waiting or in the chair that were checked in at ``since`` (RFC 3339)
        or later, whatever their local day, earliest check-in first. ``from_day``: the local
        day of ``since``, so the (day, status) index bounds the search (it runs every second)."""
        return self._query(
            "SELECT * FROM visits WHERE day >= ? AND status IN ('waiting', 'in_chair') "
            "AND checked_in_at >= ? ORDER BY checked_in_at",
            [from_day, since],
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
        """When the latest answer was given, a "Don't know" too: from the events, because the
        local ``ratings`` table keeps out answers with no score, and misuse (two answers
        closer together than ``misuse_interval_s``) is about any answer."""
        rows = self._query(
            "SELECT MAX(occurred_at) AS at FROM events WHERE type = 'rating.submitted'"
        )
        return rows[0]["at"]

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

    def sync_status(self) -> SyncStatus:
        """Backlog, rejected and last sync: three index lookups (it runs every second on the
        staff screen, whatever the size of the history)."""
        scalar = self._local.scalar
        with self._local.lock:  # one snapshot: the pusher may mark events in between
            return SyncStatus(
                backlog=scalar(
                    "SELECT COUNT(*) FROM events WHERE synced_at IS NULL AND sync_error IS NULL"
                ),
                rejected=scalar("SELECT COUNT(*) FROM events WHERE sync_error IS NOT NULL"),
                last_synced_at=parse_optional(
                    scalar("SELECT MAX(synced_at) FROM events WHERE synced_at IS NOT NULL")
                ),
            )

    def rejected_events(self) -> list[dict[str, Any]]:
        return self._query(
            "SELECT id, device_seq, type, occurred_at, sync_error FROM events "
            "WHERE sync_error IS NOT NULL ORDER BY device_seq"
        )

    def reusable_bytes(self) -> int:
        """Bytes of free pages inside the database file, which SQLite fills before it grows
        the file (a purge frees pages, not disk space): the disk guard counts them as room."""
        scalar = self._local.scalar
        with self._local.lock:
            return scalar("PRAGMA freelist_count") * scalar("PRAGMA page_size")

    # -- retention (kiosk/retention.py) -------------------------------------------------------

    def purge(self, retention_days: int, comment_retention_days: int | None = None) -> int:
        """Delete data older than the retention period, a chunk per transaction; unsynced
        events and the newest event are kept. Patients' comments go after
        ``comment_retention_days`` (default ``DEFAULT_COMMENT_RETENTION_DAYS``), synced or not.
        Returns the number of events deleted."""
        self._held.drop_if_spent()
        now = self.clock()
        comment_days = comment_retention_days or DEFAULT_COMMENT_RETENTION_DAYS
        return purge_before(self._write, now - timedelta(days=retention_days),
                            now - timedelta(days=comment_days))
