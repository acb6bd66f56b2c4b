"""Patients' comments on the central store: kept apart, redacted again, read with permission.

A comment arrives inside a ``rating.submitted`` event (``"comment"``), already redacted by the
kiosk; it is redacted once more here (an old or a third-party client may not have done it),
taken out of the stored event's data and kept in ``rating_comments`` alone. So there is one
place that holds patients' free text: one table to purge after ``comment_retention_days``
(default 90, shorter than the rest), and one read path guarded by ``can_read_comments``.
Comments never reach the kiosk, the alerts or the figures. A comment from a site whose
``comments`` setting is off is dropped at ingest (the rating is stored without it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from kiosk.shared.redaction import redact
from kiosk.shared.timeutil import to_rfc3339
from sync.central.retention import max_retention_days

MAX_SHOWN = 200  # the newest comments a page lists


def split_comment(data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(the event's data without its comment, the comment redacted, or None if there is none
    or nothing is left of it)."""
    if "comment" not in data:
        return data, None
    rest = {key: value for key, value in data.items() if key != "comment"}
    comment = redact(data["comment"] or "").strip()
    return rest, comment or None


def site_takes_comments(db: Database, site: str) -> bool:
    """Whether ``site`` turned its comment box on (``site set --comments on``). A comment from
    a site that did not is dropped at ingest, whatever its kiosk sends: a kiosk can pin
    ``comments = on`` in its own configuration, but only the site's manager decides to keep
    patients' free text."""
    row = db.execute("SELECT comments FROM sites WHERE name = ?", [site]).fetchone()
    return bool(row and row[0])


def store_comment(db: Database, rating_id: str, device_id: str, site: str, occurred_at: str,
                  comment: str) -> None:
    db.execute(
        "INSERT OR IGNORE INTO rating_comments (rating_id, device_id, site, occurred_at, comment)"
        " VALUES (?, ?, ?, ?, ?)", [rating_id, device_id, site, occurred_at, comment],
    )


def can_read_comments(db: Database, user_id: str) -> bool:
    """The one check for the comments permission (``user add --can-read-comments``)."""
    row = db.execute("SELECT can_read_comments FROM users WHERE id = ?", [user_id]).fetchone()
    return bool(row and row[0])


def set_comments_permission(db: Database, user_id: str, allowed: bool) -> None:
    db.execute("UPDATE users SET can_read_comments = ? WHERE id = ?", [int(allowed), user_id])


def comments_between(db: Database, site: str | None, start: datetime, end: datetime,
                     limit: int = MAX_SHOWN) -> list[dict[str, Any]]:
    """The newest comments in [start, end), with the answer they came with: only for a
    caller that checked ``can_read_comments``."""
    sql = (
        "SELECT c.site, c.occurred_at, c.comment, r.score, "
        "CASE WHEN d.id IS NULL THEN 0 ELSE 1 END AS dont_know "
        "FROM rating_comments c LEFT JOIN ratings r ON r.id = c.rating_id "
        "LEFT JOIN dont_know_answers d ON d.id = c.rating_id "
        "WHERE c.occurred_at >= ? AND c.occurred_at < ?"
    )
    params: list[Any] = [to_rfc3339(start), to_rfc3339(end)]
    if site:
        sql += " AND c.site = ?"
        params.append(site)
    sql += " ORDER BY c.occurred_at DESC LIMIT ?"
    params.append(limit)
    columns = ("site", "occurred_at", "comment", "score", "dont_know")
    return [dict(zip(columns, row, strict=True)) for row in db.execute(sql, params)]


def purge_comments(db: Database, retention_days: int, now: datetime) -> int:
    """Delete comments older than ``retention_days``; the ratings they came with stay."""
    if not isinstance(retention_days, int) or retention_days < 1:
        raise ValueError("comment retention must be a whole number of days ≥ 1")
    longest = max_retention_days(now)
    if retention_days > longest:
        # Bounded as ``purge --days`` is: a cutoff before the year 1 is no date at all.
        raise ValueError(
            f"a comment retention of {retention_days:,} days reaches back before the year 1; "
            f"use at most {longest:,} days (nothing was deleted)"
        )
    cutoff = to_rfc3339(now - timedelta(days=retention_days))
    return db.execute("DELETE FROM rating_comments WHERE occurred_at < ?", [cutoff]).rowcount
