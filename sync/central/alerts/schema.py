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
    db["alerts"].create(
        {
            "id": int,
            "site": str,
            "rule": str,
            "subject": str,  # '' for the site as a whole, a device id for a kiosk's rule
            "state": str,  # open | notified | acknowledged | closed
            "summary": str,
            "figures": str,  # JSON: the figures, each with its n
            "opened_at": str,
            "last_fired_at": str,
            "notified_at": str,
            "acknowledged_at": str,
            "acknowledged_by": str,
            "ack_comment": str,
            "cleared_since": str,
            "closed_at": str,
            "closed_by": str,
        },
        pk="id",
        not_null={"site", "rule", "subject", "state", "summary", "figures", "opened_at"},
    )
    db["alerts"].create_index(["site", "rule", "subject", "state"])
    db["alerts"].create_index(["opened_at"])
    db["alerts"].create_index(["state"])
    db["alert_history"].create(
        {"id": int, "alert_id": int, "at": str, "action": str, "actor": str, "note": str},
        pk="id",
        not_null={"alert_id", "at", "action"},
    )
    db["alert_history"].create_index(["alert_id"])
    db["alert_channels"].create(
        {
            "id": int,
            "kind": str,  # webhook | email
            "site": str,  # NULL: every site
            "settings": str,  # JSON (url, secret, format; or smtp host, port, security, ...)
            "created_at": str,
        },
        pk="id",
        not_null={"kind", "settings", "created_at"},
    )
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
