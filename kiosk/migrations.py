"""The kiosk's local schema, versioned: the migrations, and where the version is kept.

The version is the number of migrations applied, kept in the ``meta`` table (the first
migration creates it). Add a migration by appending a function to ``MIGRATIONS``; never edit
one that has shipped, because kiosks out there have already run it.
"""

from __future__ import annotations

from sqlite_utils import Database

from kiosk.migration_runner import Migration


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


def _rating_events_by_time(db: Database) -> None:
    # Misuse is judged from the latest rating.submitted event, "Don't know" included (the local
    # ratings table leaves it out): a partial index keeps that one b-tree step on every tap,
    # however many visit events sit in the table, and costs nothing on a desk's other taps.
    db.execute(
        "CREATE INDEX IF NOT EXISTS events_ratings_by_time ON events(occurred_at) "
        "WHERE type = 'rating.submitted'"
    )


MIGRATIONS: tuple[Migration, ...] = (_migration_1, _migration_2, _migration_3,
                                     _rating_events_by_time)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: Database) -> int:
    if "meta" not in db.table_names():
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def set_schema_version(db: Database, version: int) -> None:
    db.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", [str(version)]
    )
