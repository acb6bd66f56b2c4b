"""The dashboard's figures: SQL selects and counts a range, ``kiosk.metrics`` computes.

Every figure comes from the metric functions (``rating_summary``, ``wait_summary``,
``response_rate``, ``by_wait_bucket``'s bucket edges) fed with SQL-aggregated inputs: ratings
arrive as counts per (scale, score) and group, waits as the bare list of minutes the
percentiles need. Days and hours are the site's local time, DST included: each site's range
is turned into UTC bounds, and the local hour of a row is computed in SQL with the UTC offset
in force at that instant (see :func:`local_hour_sql`), so no row is parsed in Python.
Ranges over several sites are read per site (each with its own time zone) and merged.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from kiosk import metrics
from kiosk.timeutil import parse_rfc3339, to_rfc3339
from sync.central.auth import list_devices
from sync.central.sites import SiteConfig

SILENT_AFTER = timedelta(minutes=5)
# Visits still "waiting" after this long were abandoned (nobody closed them), not queued.
QUEUE_HORIZON = timedelta(hours=12)
THRESHOLD = metrics.SMALL_NUMBER_THRESHOLD
NO_WAIT = "none"  # the bucket key of ratings with no linked (called) visit

Counts = dict[tuple[int, int], int]


@dataclass(frozen=True)
class Window:
    """One site's share of a range of local days, as UTC bounds [start, end)."""

    site: SiteConfig
    start: str
    end: str

    @property
    def start_dt(self) -> datetime:
        return parse_rfc3339(self.start)

    @property
    def end_dt(self) -> datetime:
        return parse_rfc3339(self.end)


def windows(sites: list[SiteConfig], first: date, last: date) -> list[Window]:
    result = []
    for site in sites:
        start = metrics.local_day_bounds(first, site.timezone)[0]
        end = metrics.local_day_bounds(last, site.timezone)[1]
        result.append(Window(site, to_rfc3339(start), to_rfc3339(end)))
    return result


def _offset_minutes(moment: datetime, zone: ZoneInfo) -> int:
    return int(moment.astimezone(zone).utcoffset().total_seconds() // 60)


def local_hour_sql(column: str, window: Window) -> str:
    """SQL for ``column``'s local 'YYYY-MM-DD HH' at the window's site, exact across DST.

    The UTC offset is constant between transitions, so the range is cut at each transition
    (found hour by hour, then to the minute) and a CASE picks the segment's offset.
    """
    zone = ZoneInfo(window.site.timezone)
    start, end = window.start_dt, window.end_dt
    segments: list[tuple[datetime, int]] = []  # (segment start, offset minutes)
    current = _offset_minutes(start, zone)
    moment = start
    while moment < end:
        following = min(moment + timedelta(hours=1), end)
        if _offset_minutes(following, zone) != current:
            low, high = moment, following  # offset(low) == current != offset(high)
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if _offset_minutes(middle, zone) == current:
                    low = middle
                else:
                    high = middle
            current = _offset_minutes(high, zone)
            segments.append((high.replace(second=0, microsecond=0), current))
        moment = following
    modifier = f"'{_offset_minutes(start, zone):+d} minutes'"
    for boundary, offset in reversed(segments):
        modifier = (
            f"CASE WHEN {column} < '{to_rfc3339(boundary)}' THEN {modifier} "
            f"ELSE '{offset:+d} minutes' END"
        )
    return f"strftime('%Y-%m-%d %H', {column}, {modifier})"


def bucket_sql() -> str:
    """A rating's wait bucket name in SQL, with the edges of ``metrics.WAIT_BUCKETS``."""
    whens = " ".join(
        f"WHEN wait_min < {high} THEN '{name}'" for name, _, high in metrics.WAIT_BUCKETS[:-1]
    )
    return f"CASE WHEN wait_min IS NULL THEN NULL {whens} ELSE '{metrics.WAIT_BUCKETS[-1][0]}' END"


GROUPS = {
    "all": lambda local: "''",
    "day": lambda local: f"substr({local}, 1, 10)",
    "hour": lambda local: f"substr({local}, 12, 2)",
    "device": lambda local: "device_id",
    "bucket": lambda local: bucket_sql(),
    "site": lambda local: "site",
}


def _device_clause(device: str | None) -> tuple[str, list]:
    return ("AND device_id = ?", [device]) if device else ("", [])


@dataclass
class RatingGroup:
    counts: Counts
    linked: int = 0

    def summary(self) -> dict:
        return metrics.rating_summary(self.counts)


def rating_groups(
    db: Database, wins: list[Window], group: str, device: str | None = None
) -> dict[str, RatingGroup]:
    """Counts per (scale, score) in each group, misuse left out, merged over the windows."""
    result: dict[str, RatingGroup] = defaultdict(lambda: RatingGroup({}))
    extra, extra_params = _device_clause(device)
    for win in wins:
        key = GROUPS[group](local_hour_sql("occurred_at", win))
        rows = db.execute(
            f"SELECT {key} AS k, scale, score, visit_id IS NOT NULL AS linked, COUNT(*) "
            "FROM ratings WHERE site = ? AND occurred_at >= ? AND occurred_at < ? "
            f"AND misuse = 0 {extra} GROUP BY 1, 2, 3, 4",
            [win.site.name, win.start, win.end, *extra_params],
        ).fetchall()
        for k, scale, score, linked, n in rows:
            entry = result[NO_WAIT if k is None else k]
            entry.counts[(scale, score)] = entry.counts.get((scale, score), 0) + n
            if linked:
                entry.linked += n
    return dict(result)


def wait_lists(
    db: Database, wins: list[Window], group: str, device: str | None = None
) -> dict[str, list[float]]:
    """Waiting minutes of the called visits checked in within the windows, per group.

    Only the one column the percentiles need is fetched; cancelled and voided visits are out,
    as in ``metrics.report``.
    """
    result: dict[str, list[float]] = defaultdict(list)
    extra, extra_params = _device_clause(device)
    for win in wins:
        key = GROUPS[group](local_hour_sql("checked_in_at", win))
        rows = db.execute(
            f"SELECT {key}, wait_min FROM visits WHERE site = ? AND checked_in_at >= ? "
            "AND checked_in_at < ? AND voided = 0 AND cancel_reason IS NULL "
            f"AND wait_min IS NOT NULL {extra}",
            [win.site.name, win.start, win.end, *extra_params],
        ).fetchall()
        for k, wait in rows:
            result[k].append(wait)
    return dict(result)


def visit_counts(
    db: Database, wins: list[Window], group: str, device: str | None = None
) -> dict[str, tuple[int, int]]:
    """(visits, checked out) per group: checked in within the windows, not cancelled."""
    result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    extra, extra_params = _device_clause(device)
    for win in wins:
        key = GROUPS[group](local_hour_sql("checked_in_at", win))
        rows = db.execute(
            f"SELECT {key}, COUNT(*), COUNT(checked_out_at) FROM visits WHERE site = ? "
            "AND checked_in_at >= ? AND checked_in_at < ? AND voided = 0 "
            f"AND cancel_reason IS NULL {extra} GROUP BY 1",
            [win.site.name, win.start, win.end, *extra_params],
        ).fetchall()
        for k, visits, checked_out in rows:
            result[k][0] += visits
            result[k][1] += checked_out
    return {k: (v[0], v[1]) for k, v in result.items()}


def target_of(sites: list[SiteConfig]) -> float:
    """The target the sites share, else the default (as the metrics API does)."""
    targets = {site.target_wait_min for site in sites}
    return targets.pop() if len(targets) == 1 else metrics.DEFAULT_TARGET_MIN


def figures(
    ratings: RatingGroup | None,
    waits: list[float] | None,
    counts: tuple[int, int] | None,
    target: float,
    current: list[float] = (),
) -> dict:
    """One group's headline figures, with the public API's field names."""
    ratings = ratings or RatingGroup({})
    visits, checked_out = counts or (0, 0)
    result = {"visits": visits, "checked_out": checked_out}
    result.update(ratings.summary())
    result["response_rate"] = metrics.response_rate(ratings.linked, checked_out)
    result.update(metrics.wait_summary(waits or [], target, current))
    return result


def today_windows(sites: list[SiteConfig], now: datetime) -> list[Window]:
    """Each site's own local today (sites in different zones have different todays)."""
    result = []
    for site in sites:
        day = metrics.local_today(now, site.timezone)
        result += windows([site], day, day)
    return result


# --- panels -------------------------------------------------------------------------------


def today(db: Database, sites: list[SiteConfig], device: str | None, now: datetime) -> dict:
    """Today's figures (each site's own local today) and its longest current wait."""
    wins = today_windows(sites, now)
    current = [
        metrics.minutes_between(parse_rfc3339(row["checked_in_at"]), now)
        for row in queue_rows(db, wins, device, now)
        if row["status"] == "waiting"
    ]
    result = figures(
        rating_groups(db, wins, "all", device).get(""),
        wait_lists(db, wins, "all", device).get(""),
        visit_counts(db, wins, "all", device).get(""),
        target_of(sites),
        current,
    )
    result["target_wait_min"] = target_of(sites)
    result["day"] = metrics.local_today(now, sites[0].timezone).isoformat() if sites else None
    return result


def queue_rows(db: Database, wins: list[Window], device: str | None, now: datetime) -> list[dict]:
    """Visits waiting or in the chair right now, oldest check-in first."""
    extra, extra_params = _device_clause(device)
    horizon = to_rfc3339(now - QUEUE_HORIZON)
    rows: list[dict] = []
    for win in wins:
        rows += db.query(
            "SELECT v.ticket, v.status, v.checked_in_at, v.called_at, v.site, "
            "d.name AS desk FROM visits v LEFT JOIN devices d ON d.id = v.device_id "
            "WHERE v.site = ? AND v.checked_in_at >= ? AND v.status IN ('waiting', 'in_chair') "
            f"{extra.replace('device_id', 'v.device_id')}",
            [win.site.name, max(win.start, horizon), *extra_params],
        )
    return sorted(rows, key=lambda row: row["checked_in_at"])


def live_queue(db: Database, sites: list[SiteConfig], device: str | None, now: datetime) -> dict:
    """The queue per desk, with each visit's wait so far (or its wait, once called)."""
    day_windows = today_windows(sites, now)
    desks: dict[str, list[dict]] = defaultdict(list)
    target = target_of(sites)
    for row in queue_rows(db, day_windows, device, now):
        checked_in = parse_rfc3339(row["checked_in_at"])
        waiting = row["status"] == "waiting"
        wait = metrics.minutes_between(
            checked_in, now if waiting else parse_rfc3339(row["called_at"])
        )
        desks[f"{row['site']} · {row['desk'] or 'unknown desk'}"].append(
            {
                "ticket": row["ticket"],
                "status": "waiting" if waiting else "in the chair",
                "wait_min": round(wait, 1),
                "over_target": wait > target,
            }
        )
    return {
        "as_of": to_rfc3339(now),
        "target_wait_min": target,
        "desks": [{"desk": name, "visits": visits} for name, visits in sorted(desks.items())],
    }


def trends(
    db: Database, sites: list[SiteConfig], first: date, last: date, device: str | None
) -> dict:
    wins = windows(sites, first, last)
    target = target_of(sites)
    days = []
    day_ratings = rating_groups(db, wins, "day", device)
    day_waits = wait_lists(db, wins, "day", device)
    day_counts = visit_counts(db, wins, "day", device)
    day = first
    while day <= last:
        key = day.isoformat()
        days.append(
            {
                "day": key,
                **figures(day_ratings.get(key), day_waits.get(key), day_counts.get(key), target),
            }
        )
        day += timedelta(days=1)
    hour_ratings = rating_groups(db, wins, "hour", device)
    hour_waits = wait_lists(db, wins, "hour", device)
    hour_counts = visit_counts(db, wins, "hour", device)
    keys = sorted(set(hour_ratings) | set(hour_waits) | set(hour_counts))
    hours = [
        {
            "hour": f"{key}:00",
            **figures(hour_ratings.get(key), hour_waits.get(key), hour_counts.get(key), target),
        }
        for key in keys
    ]
    return {"days": days, "hours": hours, "target_wait_min": target}


def rating_by_wait(
    db: Database, sites: list[SiteConfig], first: date, last: date, device: str | None
) -> dict:
    groups = rating_groups(db, windows(sites, first, last), "bucket", device)
    rows = []
    for name, _, _ in metrics.WAIT_BUCKETS:
        summary = (groups.get(name) or RatingGroup({})).summary()
        rows.append(
            {
                "bucket": name,
                "ratings": summary["ratings"],
                "pct_positive": summary["pct_positive"],
                "happy_index": summary["happy_index"],
            }
        )
    no_wait = groups.get(NO_WAIT)
    return {"buckets": rows, "without_wait": no_wait.summary()["ratings"] if no_wait else 0}


def followup_reasons(
    db: Database, sites: list[SiteConfig], first: date, last: date, device: str | None
) -> dict:
    """Tags chosen with negative ratings (the bottom two faces), per local day and in all."""
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    negatives = 0
    extra, extra_params = _device_clause(device)
    for win in windows(sites, first, last):
        base = (
            "FROM ratings WHERE site = ? AND occurred_at >= ? AND occurred_at < ? "
            f"AND misuse = 0 AND score <= 2 {extra}"
        )
        params = [win.site.name, win.start, win.end, *extra_params]
        negatives += db.execute(f"SELECT COUNT(*) {base}", params).fetchone()[0]
        local = local_hour_sql("occurred_at", win)
        rows = db.execute(
            f"SELECT substr({local}, 1, 10), tag.value, COUNT(*) "
            f"FROM (SELECT occurred_at, tags {base}) r, json_each(r.tags) tag GROUP BY 1, 2",
            params,
        ).fetchall()
        for day, tag, n in rows:
            per_day[day][tag] += n
            totals[tag] += n
    tags = sorted(totals, key=lambda tag: (-totals[tag], tag))
    return {
        "negatives": negatives,
        "tags": [
            {
                "tag": tag,
                "n": totals[tag],
                "pct_of_negative": metrics._round(metrics.pct(totals[tag], negatives)),
            }
            for tag in tags
        ],
        "days": [{"day": day, "tags": dict(per_day[day])} for day in sorted(per_day)],
    }


def compare(
    db: Database, sites: list[SiteConfig], first: date, last: date, device_names: dict[str, str]
) -> dict:
    """Sites and desks side by side; a group under the threshold has its figures hidden."""
    wins = windows(sites, first, last)
    target = target_of(sites)

    def rows_for(group: str, label) -> list[dict]:
        ratings = rating_groups(db, wins, group)
        waits = wait_lists(db, wins, group)
        counts = visit_counts(db, wins, group)
        rows = []
        for key in sorted(set(ratings) | set(waits) | set(counts), key=lambda k: label(k)):
            row = {
                "name": label(key),
                **figures(ratings.get(key), waits.get(key), counts.get(key), target),
            }
            row["ratings_hidden"] = row["ratings"] < THRESHOLD
            row["waits_hidden"] = row["waits"] < THRESHOLD
            rows.append(row)
        return rows

    return {
        "sites": rows_for("site", lambda key: key),
        "desks": rows_for("device", lambda key: device_names.get(key, "unknown desk")),
        "threshold": THRESHOLD,
        "target_wait_min": target,
    }


def devices(db: Database, sites: list[SiteConfig], now: datetime) -> list[dict]:
    names = {site.name for site in sites}
    silent_before = to_rfc3339(now - SILENT_AFTER)
    rows = []
    for row in list_devices(db):
        if row["site"] not in names:
            continue
        row["silent"] = not row["revoked"] and (
            row["last_seen_at"] is None or row["last_seen_at"] < silent_before
        )
        row["silent_for_min"] = (
            round(metrics.minutes_between(parse_rfc3339(row["last_seen_at"]), now), 1)
            if row["last_seen_at"]
            else None
        )
        rows.append(row)
    return rows


def tags_of(row: dict) -> list[str]:
    return json.loads(row["tags"]) if row.get("tags") else []
