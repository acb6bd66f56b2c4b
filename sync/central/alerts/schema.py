"""The alert tables, applied as one numbered migration of the central schema."""

from __future__ import annotations

from sqlite_utils import Database


def create_alert_tables(db: Database) -> None:
    # Opening hours per weekday (JSON, see hours.py); NULL means the default hours.
    db.execute("ALTER TABLE sites ADD COLUMN opening_hours TEXT")
    # Only the rules a person changed are stored: a site without rows has every rule on at
    # its default, so a new site is covered the moment its first kiosk is enrolled.
    db["alert_rules"].create(
        {"site": str, "rule": str, "enabled": int, "params": str, "updated_at": str},
        pk=("site", "rule"),
        not_null={"enabled", "params", "updated_at"},
    )
    # AUTOINCREMENT: an id is never handed out twice, so a delivery, a history row or a
    # person's note that names an alert or channel can never come to mean a newer one.
    db.execute("""
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            site TEXT NOT NULL,
            rule TEXT NOT NULL,
            subject TEXT NOT NULL,  -- '' for the site as a whole, a device id for a kiosk's rule
            state TEXT NOT NULL,  -- open | notified | acknowledged | closed
            summary TEXT NOT NULL,
            figures TEXT NOT NULL,  -- JSON: the figures, each with its n
            opened_at TEXT NOT NULL,
            last_fired_at TEXT,
            notified_at TEXT,
            acknowledged_at TEXT,
            acknowledged_by TEXT,
            ack_comment TEXT,
            cleared_since TEXT,
            closed_at TEXT,
            closed_by TEXT
        )""")
    db["alerts"].create_index(["site", "rule", "subject", "state"])
    db["alerts"].create_index(["opened_at"])
    db["alerts"].create_index(["state"])
    db["alert_history"].create(
        {"id": int, "alert_id": int, "at": str, "action": str, "actor": str, "note": str},
        pk="id",
        not_null={"alert_id", "at", "action"},
    )
    db["alert_history"].create_index(["alert_id"])
    db.execute("""
        CREATE TABLE alert_channels (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,  -- webhook | email
            site TEXT,  -- NULL: every site
            settings TEXT NOT NULL,  -- JSON (url, secret, format; or smtp host, port, ...)
            created_at TEXT NOT NULL
        )""")
    # The outbox: one row per alert and channel (the unique index is what makes a delivery
    # at most once), retried with backoff until sent or given up.
    db["alert_deliveries"].create(
        {
            "id": int,
            "alert_id": int,
            "channel_id": int,
            "status": str,  # pending | sending | sent | failed
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "sent_at": str,
            "created_at": str,
        },
        pk="id",
        defaults={"attempts": 0},
        not_null={"alert_id", "channel_id", "status", "attempts", "created_at"},
    )
    db["alert_deliveries"].create_index(["alert_id", "channel_id"], unique=True)
    db["alert_deliveries"].create_index(["status", "next_attempt_at"])
