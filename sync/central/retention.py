"""Retention: data older than the configured period is deleted from the central store.

The product's rule: "Data older than the configured retention period is purged on both sides." The
kiosk purges its synced events (``kiosk.store.Store.purge``, run by the sync loop); the central
store runs ``python main.py purge --data DIR [--days 400]`` (nightly from the systemd timer
``install --central`` writes), and the embedded store of ``python main.py`` purges itself daily
by the kiosk's settings (``sync.central.retention_schedule``).
Events and ratings go by ``occurred_at``, visits by check-in time (a visit never checked in,
whose other events are all older, goes by its last update). The dashboard's rollups follow by
their own triggers. Alerts go by when they were closed (with their history and deliveries;
an open one stays). Device, site and login records are not data about visits and stay.
Events set aside by migration 4 (``sync.central.repair``) go by when they were received.
FFT "Don't know" answers go by ``occurred_at`` like ratings. Patients' comments have their own,
shorter retention (``sync.central.comments.purge_comments``, run by the same command).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from kiosk.shared.timeutil import to_rfc3339

DEFAULT_RETENTION_DAYS = 400  # the kiosk's default too (kiosk.config.Settings.retention_days)
# Patients' comments (sync.central.comments): the kiosk's default too.
DEFAULT_COMMENT_RETENTION_DAYS = 90
MIN_RETENTION_DAYS = 1
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)  # datetime's first day: a cutoff cannot be earlier


def max_retention_days(now: datetime) -> int:
    """The longest retention whose cutoff is still a date (from 1 January of the year 1)."""
    return (now - EARLIEST).days


def purge(db: Database, retention_days: int, now: datetime) -> dict[str, int]:
    """Delete what is older than ``retention_days`` before ``now``; rows deleted per table."""
    if not isinstance(retention_days, int) or retention_days < MIN_RETENTION_DAYS:
        raise ValueError(f"retention must be a whole number of days ≥ {MIN_RETENTION_DAYS}")
    longest = max_retention_days(now)
    if retention_days > longest:
        raise ValueError(
            f"a retention of {retention_days:,} days reaches back before the year 1; use at "
            f"most {longest:,} days (nothing was deleted)"
        )
    cutoff = to_rfc3339(now - timedelta(days=retention_days))
    events = db.execute("DELETE FROM events WHERE occurred_at < ?", [cutoff]).rowcount
    # Events set aside by migration 4 are events too; their own instants are the implausible
    # ones, so they go by when they arrived.
    events += db.execute(
        "DELETE FROM events_set_aside WHERE received_at < ?", [cutoff]
    ).rowcount
    # Alerts closed before the cutoff go with their history and deliveries; an alert still
    # open stays, however old.
    closed = "SELECT id FROM alerts WHERE closed_at IS NOT NULL AND closed_at < ?"
    db.execute(f"DELETE FROM alert_history WHERE alert_id IN ({closed})", [cutoff])
    db.execute(f"DELETE FROM alert_deliveries WHERE alert_id IN ({closed})", [cutoff])
    # A comment never outlives its rating, whatever the comments' own retention says.
    db.execute("DELETE FROM rating_comments WHERE occurred_at < ?", [cutoff])
    alerts = db.execute(
        "DELETE FROM alerts WHERE closed_at IS NOT NULL AND closed_at < ?", [cutoff]
    ).rowcount
    return {
        "alerts": alerts,
        "events": events,
        "ratings": db.execute("DELETE FROM ratings WHERE occurred_at < ?", [cutoff]).rowcount,
        # The FFT's "Don't know" answers have no score: counted apart, so "ratings" keeps
        # meaning the faces it always meant.
        "dont_know": db.execute(
            "DELETE FROM dont_know_answers WHERE occurred_at < ?", [cutoff]
        ).rowcount,
        "visits": db.execute(
            "DELETE FROM visits WHERE checked_in_at < ? "
            "OR (checked_in_at IS NULL AND updated_at < ?)",
            [cutoff, cutoff],
        ).rowcount,
    }
