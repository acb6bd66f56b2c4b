"""The API's metrics: SQL picks the rows of a range, ``kiosk.metrics`` does every calculation.

Visits are selected by check-in time and ratings by ``occurred_at``, both as index range scans.
Waits are read as the projection's ``wait_min`` column and summarised by the kiosk's own
``metrics.wait_summary``. Ratings are counted in SQL per (scale, score, linked, wait bucket),
so a year of ratings is a few dozen rows by the time Python sees them; the bucket edges come
from ``kiosk.metrics.WAIT_BUCKETS`` so the SQL cannot drift from the definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from kiosk import metrics
from kiosk.timeutil import parse_rfc3339, to_rfc3339
from sync.central.sites import get_site, list_sites

DEFAULT_RANGE = timedelta(hours=24)
# A heartbeat's received_at - occurred_at smaller than this is transit, not a wrong clock.
CLOCK_SKEW_TOLERANCE_S = 120.0


class InvalidRange(ValueError):
    """A metrics range that cannot be used; the message says why."""


@dataclass(frozen=True)
class MetricsQuery:
    start: datetime
    end: datetime
    site: str | None = None
    device: str | None = None


def parse_range(
    from_text: str | None, to_text: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """[from, to) as UTC instants; defaults: the 24 hours before ``to``, ``to`` = now."""
    try:
        end = parse_rfc3339(to_text) if to_text else now
    except ValueError as error:
        raise InvalidRange(
            f"'to' must be an RFC 3339 instant like 2026-11-23T09:00:00Z ({error})"
        ) from None
    try:
        start = parse_rfc3339(from_text) if from_text else end - DEFAULT_RANGE
    except ValueError as error:
        raise InvalidRange(
            f"'from' must be an RFC 3339 instant like 2026-11-23T09:00:00Z ({error})"
        ) from None
    if start >= end:
        raise InvalidRange("'from' must be before 'to'")
    return start, end


def _filters(query: MetricsQuery, time_column: str) -> tuple[str, list]:
    clauses = [f"{time_column} >= ?", f"{time_column} < ?"]
    params: list = [to_rfc3339(query.start), to_rfc3339(query.end)]
    if query.site is not None:
        clauses.append("site = ?")
        params.append(query.site)
    if query.device is not None:
        clauses.append("device_id = ?")
        params.append(query.device)
    return " AND ".join(clauses), params


def on_server_clock(device_instant: datetime, clock_skew_s: float | None) -> datetime:
    """A kiosk's timestamp moved onto the store's clock, for comparing it with *now*.

    Waits are differences of one kiosk's own timestamps and need no correction; only a wait
    still running (now - checked_in_at) mixes two clocks. ``clock_skew_s`` is the device's
    latest heartbeat's received_at - occurred_at; below CLOCK_SKEW_TOLERANCE_S it is network
    and queueing time, not a wrong clock, and is left alone.
    """
    if clock_skew_s is None or abs(clock_skew_s) < CLOCK_SKEW_TOLERANCE_S:
        return device_instant
    return device_instant + timedelta(seconds=clock_skew_s)


def _visit_scopes(db: Database, query: MetricsQuery) -> list[tuple[str, list]]:
    """(WHERE clause, params) pieces that together cover the query's visits, each one an index
    range scan: per site (the dashboard's covering index on site + check-in time), or one
    device's range."""
    time_range = "checked_in_at >= ? AND checked_in_at < ? AND voided = 0"
    bounds = [to_rfc3339(query.start), to_rfc3339(query.end)]
    if query.device is not None:
        where = f"device_id = ? AND {time_range}"
        if query.site is not None:
            return [(f"{where} AND site = ?", [query.device, *bounds, query.site])]
        return [(where, [query.device, *bounds])]
    if query.site is not None:
        names = [query.site]
    else:
        sites = db.execute("SELECT name FROM sites UNION SELECT site FROM devices")
        names = [row[0] for row in sites]
    return [(f"site = ? AND {time_range}", [name, *bounds]) for name in names]


def visit_figures(db: Database, query: MetricsQuery, target_min: float, now: datetime) -> dict:
    """The visit half of ``kiosk.metrics.report`` over the projection's columns.

    Same definitions, same ``metrics.wait_summary``: visits checked in within the range, not
    cancelled (voided ones never happened); waits are the projection's ``wait_min`` (computed
    by ``metrics.minutes_between`` at ingest), so a month of visits is a list of floats read
    from a covering index, not a million timestamps parsed. A visit still waiting has its
    check-in moved onto the store's clock (``on_server_clock``), so a kiosk whose clock is
    hours off does not report a wait of hours, or of minus hours.
    """
    visits = checked_out = 0
    waits: list[float] = []
    current: list[float] = []
    for where, params in _visit_scopes(db, query):
        not_cancelled = f"{where} AND cancel_reason IS NULL"
        n, out = db.execute(
            f"SELECT COUNT(*), COUNT(checked_out_at) FROM visits WHERE {not_cancelled}", params
        ).fetchone()
        visits += n
        checked_out += out
        waits += (
            row[0]
            for row in db.execute(
                f"SELECT wait_min FROM visits WHERE {not_cancelled} AND wait_min IS NOT NULL",
                params,
            )
        )
        for checked_in_at, skew in db.execute(
            "SELECT checked_in_at, "
            "(SELECT clock_skew_s FROM devices WHERE devices.id = visits.device_id) "
            f"FROM visits WHERE {not_cancelled} AND called_at IS NULL",
            params,
        ):
            arrived = on_server_clock(parse_rfc3339(checked_in_at), skew)
            current.append(metrics.minutes_between(arrived, now))
    result = {"visits": visits, "checked_out": checked_out}
    result.update(metrics.wait_summary(waits, target_min, current))
    return result


def _bucket_case() -> str:
    """SQL giving a rating's bucket index, with ``metrics.bucket_of``'s edges."""
    whens = " ".join(
        f"WHEN wait_min < {high} THEN {index}"
        for index, (_, _, high) in enumerate(metrics.WAIT_BUCKETS[:-1])
    )
    last = len(metrics.WAIT_BUCKETS) - 1
    return f"CASE WHEN wait_min IS NULL THEN NULL {whens} ELSE {last} END"


def rating_counts(db: Database, query: MetricsQuery) -> list[dict]:
    """(scale, score, linked, bucket) -> n over the range, misuse left out."""
    where, params = _filters(query, "occurred_at")
    return list(
        db.query(
            "SELECT scale, score, visit_id IS NOT NULL AS linked, "
            f"{_bucket_case()} AS bucket, COUNT(*) AS n "
            f"FROM ratings WHERE misuse = 0 AND {where} GROUP BY 1, 2, 3, 4",
            params,
        )
    )


def target_for(db: Database, site: str | None) -> float:
    """The site's target; across sites, the target they share, else the default."""
    if site is not None:
        return get_site(db, site).target_wait_min
    targets = {config.target_wait_min for config in list_sites(db)}
    return targets.pop() if len(targets) == 1 else metrics.DEFAULT_TARGET_MIN


def _bucket_row(name: str, counts: dict[tuple[int, int], int]) -> dict:
    summary = metrics.rating_summary(counts)
    return {
        "bucket": name,
        "ratings": summary["ratings"],
        "pct_positive": summary["pct_positive"],
        "happy_index": summary["happy_index"],
    }


def compute_metrics(db: Database, query: MetricsQuery, now: datetime) -> dict:
    """Every API figure for the query, with the field names of ARCHITECTURE.md."""
    target = target_for(db, query.site)
    result = visit_figures(db, query, target, now)
    overall: dict[tuple[int, int], int] = {}
    per_bucket: list[dict[tuple[int, int], int]] = [{} for _ in metrics.WAIT_BUCKETS]
    linked = 0
    for row in rating_counts(db, query):
        key = (row["scale"], row["score"])
        overall[key] = overall.get(key, 0) + row["n"]
        linked += row["n"] if row["linked"] else 0
        if row["bucket"] is not None:
            bucket = per_bucket[row["bucket"]]
            bucket[key] = bucket.get(key, 0) + row["n"]
    result.update(metrics.rating_summary(overall))
    result["response_rate"] = metrics.response_rate(linked, result["checked_out"])
    result["by_wait_bucket"] = [
        _bucket_row(name, counts)
        for (name, _, _), counts in zip(metrics.WAIT_BUCKETS, per_bucket, strict=True)
    ]
    result.update(
        {
            "site": query.site,
            "device": query.device,
            "from": to_rfc3339(query.start),
            "to": to_rfc3339(query.end),
            "target_wait_min": target,
        }
    )
    return result
