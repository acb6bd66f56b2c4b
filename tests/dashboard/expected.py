"""The figures the dashboard should show, computed the slow, obvious way: every raw row of the
range through ``kiosk.shared.metrics.report`` (no rollups, no SQL grouping), to check the pages
by."""

from __future__ import annotations

from datetime import date, datetime

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_optional, parse_rfc3339, to_rfc3339


def rows_in(data_dir, first: date, last: date, site: str | None = None):
    db = data_dir.connect()
    try:
        visits, ratings = [], []
        for name, zone in db.execute("SELECT name, timezone FROM sites").fetchall():
            if site and name != site:
                continue
            start = to_rfc3339(metrics.local_day_bounds(first, zone)[0])
            end = to_rfc3339(metrics.local_day_bounds(last, zone)[1])
            visits += [
                dict(row)
                for row in db.query(
                    "SELECT * FROM visits WHERE site = ? AND checked_in_at >= ? "
                    "AND checked_in_at < ? AND voided = 0",
                    [name, start, end],
                )
            ]
            ratings += [
                dict(row)
                for row in db.query(
                    "SELECT * FROM ratings WHERE site = ? AND occurred_at >= ? AND occurred_at < ?",
                    [name, start, end],
                )
            ]
        return visits, ratings
    finally:
        db.close()


def today_report(data_dir, now: datetime) -> dict:
    """:func:`report` over each site's rows of its own local today, as the Today page counts
    them: a site in another zone (one a test added in the store's default zone) may be on
    another date, e.g. between 23:00 and midnight UTC while London is on summer time."""
    db = data_dir.connect()
    try:
        zones = db.execute("SELECT name, timezone FROM sites").fetchall()
    finally:
        db.close()
    visits, ratings = [], []
    for name, zone in zones:
        day = metrics.local_today(now, zone)
        site_visits, site_ratings = rows_in(data_dir, day, day, name)
        visits += site_visits
        ratings += site_ratings
    return _report(visits, ratings, now)


def as_visit(row: dict) -> metrics.VisitTimes:
    return metrics.VisitTimes(
        checked_in_at=parse_rfc3339(row["checked_in_at"]),
        called_at=parse_optional(row["called_at"]),
        checked_out_at=parse_optional(row["checked_out_at"]),
        cancelled=row["cancel_reason"] is not None,
    )


def as_rating(row: dict) -> metrics.RatingRow:
    return metrics.RatingRow(
        score=row["score"],
        scale=row["scale"],
        misuse=bool(row["misuse"]),
        linked=row["visit_id"] is not None,
        wait_min=row["wait_min"],
    )


def report(data_dir, first: date, last: date, now: datetime, site: str | None = None) -> dict:
    return _report(*rows_in(data_dir, first, last, site), now)


def _report(visits: list[dict], ratings: list[dict], now: datetime) -> dict:
    return metrics.report([as_visit(v) for v in visits], [as_rating(r) for r in ratings], 15.0, now)


def shown(value, unit: str = "") -> str:
    """How the dashboard writes a figure."""
    if value is None:
        return "—"
    return f"{value:,.1f}{unit}" if isinstance(value, float) else f"{value:,}{unit}"
