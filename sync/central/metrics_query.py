"""The API's metrics: SQL picks the rows of a range, ``kiosk.shared.metrics`` does every
calculation.

Visits are selected by check-in time and ratings by ``occurred_at``, both as index range scans.
Waits are read as the projection's ``wait_min`` column and summarised by the kiosk's own
``metrics.wait_summary``. Ratings are counted in SQL per (scale, score, linked, wait bucket),
so a year of ratings is a few dozen rows by the time Python sees them; the bucket edges come
from ``kiosk.shared.metrics.WAIT_BUCKETS`` so the SQL cannot drift from the definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from kiosk.shared.wire import MAX_AHEAD
from sync.central.sites import get_site, list_sites

DEFAULT_RANGE = timedelta(hours=24)
# A range's ends must leave room for the day of arithmetic done around them (the default
# 24 hours, whole hours, local days) inside Python's years 1-9999.
EARLIEST_BOUND = datetime(1, 1, 2, tzinfo=UTC)
LATEST_BOUND = datetime(9999, 12, 30, tzinfo=UTC)
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
        start = parse_rfc3339(from_text) if from_text else max(end, EARLIEST_BOUND) - DEFAULT_RANGE
    except ValueError as error:
        raise InvalidRange(
            f"'from' must be an RFC 3339 instant like 2026-11-23T09:00:00Z ({error})"
        ) from None
    for name, moment in (("to", end), ("from", start)):
        if not EARLIEST_BOUND <= moment <= LATEST_BOUND:
            raise InvalidRange(
                f"'{name}' must lie between {EARLIEST_BOUND.date()} and {LATEST_BOUND.date()}"
            )
    if start >= end:
        raise InvalidRange("'from' must be before 'to'")
    return start, end


def on_server_clock(device_instant: datetime, clock_skew_s: float | None) -> datetime:
    """A kiosk's timestamp moved onto the store's clock, for comparing it with *now*.

    Waits are differences of one kiosk's own timestamps and need no correction; only a wait
    still running (now - checked_in_at) mixes two clocks. ``clock_skew_s`` is the device's
    latest heartbeat's received_at - occurred_at; below CLOCK_SKEW_TOLERANCE_S it is network
    and queueing time, not a wrong clock, and is left alone.
    """
    if clock_skew_s is None or abs(clock_skew_s) < CLOCK_SKEW_TOLERANCE_S:
        return device_instant
    if clock_skew_s < -MAX_AHEAD.total_seconds():
        # Only a heartbeat from before the plausible window (migration 4 repairs those) can
        # say a kiosk runs more than a day ahead; trusting it would invent a wait of years.
        return device_instant
    return device_instant + timedelta(seconds=clock_skew_s)


def current_wait_min(checked_in_at: datetime, clock_skew_s: float | None, now: datetime) -> float:
    """How long a visit still waiting has waited by now, on the store's clock; never below 0
    (a check-in stamped a little ahead of the store's clock has not started waiting yet)."""
    return max(0.0, metrics.minutes_between(on_server_clock(checked_in_at, clock_skew_s), now))


HOUR = timedelta(hours=1)
BUCKET_INDEX = {name: index for index, (name, _, _) in enumerate(metrics.WAIT_BUCKETS)}


def split_at_hours(
    start: datetime, end: datetime
) -> tuple[tuple[str, str] | None, list[tuple[datetime, datetime]]]:
    """[start, end) as its whole UTC hours, as the rollups' hour keys [first, last), and the
    partial hours at either end, which are read from the rows."""
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += HOUR
    last = end.replace(minute=0, second=0, microsecond=0)
    if first >= last:
        return None, [(start, end)]
    edges = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return (to_rfc3339(first)[:13], to_rfc3339(last)[:13]), edges


def _site_names(db: Database, query: MetricsQuery) -> list[str]:
    if query.site is not None:
        return [query.site]
    return [row[0] for row in db.execute("SELECT name FROM sites UNION SELECT site FROM devices")]


def _device_clause(query: MetricsQuery) -> tuple[str, list]:
    return ("AND device_id = ?", [query.device]) if query.device is not None else ("", [])


def visit_figures(db: Database, query: MetricsQuery, target_min: float, now: datetime) -> dict:
    """The visit half of ``kiosk.shared.metrics.report``, same definitions, same
    ``metrics.wait_summary``: visits checked in within the range, not cancelled (voided ones
    never happened), the waits of those that were called, the longest wait still running.

    Read per site, so every read is a range of an index that starts with the site: counts
    from the hourly rollup (``visit_hours``, kept by triggers) for whole hours and from the
    rows for the partial hours at the ends; waits are the projection's ``wait_min`` (computed
    by ``metrics.minutes_between`` at ingest) from a covering index; visits still waiting are
    read only in the hours whose rollup says some are. A waiting visit's check-in is moved
    onto the store's clock (``on_server_clock``), so a kiosk whose clock is hours off does
    not report a wait of hours, or of minus hours.
    """
    device, device_params = _device_clause(query)
    whole, edges = split_at_hours(query.start, query.end)
    counted = "voided = 0 AND cancel_reason IS NULL"
    visits = checked_out = 0
    waits: list[float] = []
    waiting_ranges: list[tuple[str, str]] = []
    for site in _site_names(db, query):
        if whole is not None:
            rows = db.execute(
                "SELECT hour, SUM(visits), SUM(checked_out), SUM(visits) - SUM(waits) "
                f"FROM visit_hours WHERE site = ? AND hour >= ? AND hour < ? {device} "
                "GROUP BY hour HAVING SUM(visits) > 0",
                [site, *whole, *device_params],
            ).fetchall()
            for hour, n, out, not_called in rows:
                visits += n
                checked_out += out
                if not_called:
                    waiting_ranges.append((site, hour))
        for a, b in edges:
            n, out = db.execute(
                f"SELECT COUNT(*), COUNT(checked_out_at) FROM visits WHERE site = ? "
                f"AND checked_in_at >= ? AND checked_in_at < ? AND {counted} {device}",
                [site, to_rfc3339(a), to_rfc3339(b), *device_params],
            ).fetchone()
            visits += n
            checked_out += out
        waits += (
            row[0]
            for row in db.execute(
                "SELECT wait_min FROM visits WHERE site = ? AND checked_in_at >= ? "
                f"AND checked_in_at < ? AND {counted} AND wait_min IS NOT NULL {device}",
                [site, to_rfc3339(query.start), to_rfc3339(query.end), *device_params],
            )
        )
    current = [
        current_wait_min(parse_rfc3339(checked_in_at), skew, now)
        for checked_in_at, skew in _still_waiting(db, query, waiting_ranges, edges)
    ]
    result = {"visits": visits, "checked_out": checked_out}
    result.update(metrics.wait_summary(waits, target_min, current))
    return result


def _still_waiting(
    db: Database,
    query: MetricsQuery,
    hours: list[tuple[str, str]],
    edges: list[tuple[datetime, datetime]],
) -> list[tuple[str, float | None]]:
    """(checked_in_at, the device's clock skew) of the visits not yet called, not cancelled:
    in the given (site, UTC hour)s and in the partial hours at the range's ends."""
    device, device_params = _device_clause(query)
    ranges = [
        (site, f"{hour}:00:00.000Z", f"{next_hour(hour)}:00:00.000Z") for site, hour in hours
    ]
    ranges += [
        (site, to_rfc3339(a), to_rfc3339(b)) for site in _site_names(db, query) for a, b in edges
    ]
    found = []
    for site, a, b in ranges:
        found += db.execute(
            "SELECT checked_in_at, "
            "(SELECT clock_skew_s FROM devices WHERE devices.id = visits.device_id) "
            "FROM visits WHERE site = ? AND checked_in_at >= ? AND checked_in_at < ? "
            "AND voided = 0 AND cancel_reason IS NULL AND called_at IS NULL "
            # The unary + keeps SQLite on the (site, checked_in_at) range: offered the index on
            # (site, checked_out_at) for "IS NULL" it took it, and read every visit never
            # checked out (the 28-day metrics went from 71 ms to 952 ms on a million rows).
            f"AND +checked_out_at IS NULL {device}",
            [site, a, b, *device_params],
        ).fetchall()
    return found


def next_hour(hour: str) -> str:
    """'2026-11-23T09' -> '2026-11-23T10': the rollups' key of the following UTC hour (a
    bound every timestamp of the hour sorts below)."""
    moment = datetime.fromisoformat(hour + ":00+00:00") + HOUR
    return moment.strftime("%Y-%m-%dT%H")


def _bucket_case() -> str:
    """SQL giving a rating's bucket index, with ``metrics.bucket_of``'s edges."""
    whens = " ".join(
        f"WHEN wait_min < {high} THEN {index}"
        for index, (_, _, high) in enumerate(metrics.WAIT_BUCKETS[:-1])
    )
    last = len(metrics.WAIT_BUCKETS) - 1
    return f"CASE WHEN wait_min IS NULL THEN NULL {whens} ELSE {last} END"


def rating_counts(db: Database, query: MetricsQuery) -> list[dict]:
    """(scale, score, linked, bucket) -> n over the range, misuse left out.

    Whole hours from the hourly rollup (``rating_hours``: misuse-free counts per face, link
    and wait bucket, kept by triggers), the partial hours at the ends from the rows.
    """
    device, device_params = _device_clause(query)
    whole, edges = split_at_hours(query.start, query.end)
    result = []
    for site in _site_names(db, query):
        if whole is not None:
            for scale, score, linked, bucket, n in db.execute(
                "SELECT scale, score, linked, bucket, SUM(n) FROM rating_hours "
                f"WHERE site = ? AND hour >= ? AND hour < ? {device} GROUP BY 1, 2, 3, 4 "
                "HAVING SUM(n) > 0",
                [site, *whole, *device_params],
            ):
                result.append({"scale": scale, "score": score, "linked": linked,
                               "bucket": BUCKET_INDEX.get(bucket), "n": n})
        for a, b in edges:
            result += db.query(
                "SELECT scale, score, visit_id IS NOT NULL AS linked, "
                f"{_bucket_case()} AS bucket, COUNT(*) AS n FROM ratings WHERE site = ? "
                f"AND occurred_at >= ? AND occurred_at < ? AND misuse = 0 {device} "
                "GROUP BY 1, 2, 3, 4",
                [site, to_rfc3339(a), to_rfc3339(b), *device_params],
            )
    return result


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
