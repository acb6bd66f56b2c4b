"""The dashboard's figures: SQL selects and counts a range, ``kiosk.shared.metrics`` computes.

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
import os
import threading
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from sync.central.auth import list_devices
from sync.central.metrics_query import current_wait_min, next_hour
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
# The rollup column each grouping reads ("hour" is mapped to local time in Python).
ROLLUP_KEYS = {
    "all": "''",
    "day": "hour",
    "hour": "hour",
    "device": "device_id",
    "bucket": "bucket",
    "site": "site",
}


@lru_cache(maxsize=256)
def hour_map(timezone: str, start: str, end: str) -> dict[str, str] | None:
    """UTC hour ('2026-11-23T09') -> local 'YYYY-MM-DD HH' for each hour of [start, end).

    None when the zone's offset is not a whole number of hours in the range (India, Nepal,
    parts of Australia): an hourly rollup cannot be cut at their local hours, so the rows
    themselves are read instead.
    """
    zone = ZoneInfo(timezone)
    moment, stop = parse_rfc3339(start), parse_rfc3339(end)
    mapping = {}
    while moment < stop:
        local = moment.astimezone(zone)
        if local.utcoffset().total_seconds() % 3600:
            return None
        mapping[to_rfc3339(moment)[:13]] = local.strftime("%Y-%m-%d %H")
        moment += timedelta(hours=1)
    return mapping


def _local_key(group: str, key, hours: dict[str, str]):
    if group == "day":
        return hours[key][:10]
    if group == "hour":
        return hours[key][11:]
    return key


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
        hours = hour_map(win.site.timezone, win.start, win.end)
        if hours is not None:
            key = ROLLUP_KEYS[group]
            rows = db.execute(
                f"SELECT {key}, scale, score, linked, SUM(n) FROM rating_hours WHERE site = ? "
                f"AND hour >= ? AND hour < ? {extra} GROUP BY 1, 2, 3, 4 HAVING SUM(n) > 0",
                [win.site.name, win.start[:13], win.end[:13], *extra_params],
            ).fetchall()
        else:
            key = GROUPS[group](local_hour_sql("occurred_at", win))
            rows = db.execute(
                f"SELECT {key} AS k, scale, score, visit_id IS NOT NULL AS linked, COUNT(*) "
                "FROM ratings WHERE site = ? AND occurred_at >= ? AND occurred_at < ? "
                f"AND misuse = 0 {extra} GROUP BY 1, 2, 3, 4",
                [win.site.name, win.start, win.end, *extra_params],
            ).fetchall()
            hours = None
        for k, scale, score, linked, n in rows:
            if hours is not None:
                k = _local_key(group, k, hours)
            entry = result[NO_WAIT if k in (None, "") and group == "bucket" else k]
            entry.counts[(scale, score)] = entry.counts.get((scale, score), 0) + n
            if linked:
                entry.linked += n
    return dict(result)


# Every face of the supported scales, as the columns of a per-hour pivot of the rollup.
FACES = tuple((scale, score) for scale in (5, 4) for score in range(scale, 0, -1))
LOCAL_KEYS = {
    "day": lambda local: local[:10],
    "hour": lambda local: local[11:],
    "all": lambda local: "",
}


def rating_groups_by(
    db: Database, wins: list[Window], groups: tuple[str, ...], device: str | None = None
) -> dict[str, dict[str, RatingGroup]]:
    """``rating_groups`` for several groupings by local time ('day', 'hour', 'all') from one
    read of the hourly rollup per window.

    SQLite sums each UTC hour's counts into one row (a column per face of ``FACES``, plus the
    linked ones), so a 90-day range is ~1,000 rows per site, each mapped to its local day and
    hour in Python. A window the rollup cannot serve (an offset of part of an hour) or holding
    a scale outside ``FACES`` is read by ``rating_groups`` as before.
    """
    result: dict[str, dict[str, RatingGroup]] = {
        g: defaultdict(lambda: RatingGroup({})) for g in groups
    }
    extra, extra_params = _device_clause(device)
    faces = ", ".join(f"SUM(n) FILTER (WHERE scale = {sc} AND score = {k})" for sc, k in FACES)
    for win in wins:
        hours = hour_map(win.site.timezone, win.start, win.end)
        rows = None
        if hours is not None:
            rows = db.execute(
                f"SELECT hour, SUM(n), SUM(n) FILTER (WHERE linked), {faces} FROM rating_hours "
                f"WHERE site = ? AND hour >= ? AND hour < ? {extra} GROUP BY hour "
                "HAVING SUM(n) > 0",
                [win.site.name, win.start[:13], win.end[:13], *extra_params],
            ).fetchall()
            if any(row[1] != sum(n or 0 for n in row[3:]) for row in rows):
                rows = None  # a face outside FACES: let the generic read count (and refuse) it
        if rows is None:
            for group in groups:
                for key, part in rating_groups(db, [win], group, device).items():
                    entry = result[group][key]
                    entry.linked += part.linked
                    for face, n in part.counts.items():
                        entry.counts[face] = entry.counts.get(face, 0) + n
            continue
        for hour, _, linked, *counts in rows:
            local = hours[hour]
            for group in groups:
                entry = result[group][LOCAL_KEYS[group](local)]
                entry.linked += linked or 0
                for face, n in zip(FACES, counts, strict=True):
                    if n:
                        entry.counts[face] = entry.counts.get(face, 0) + n
    return {g: dict(v) for g, v in result.items()}


def _local_text(checked_in_at: str, zone: ZoneInfo) -> str:
    return parse_rfc3339(checked_in_at).astimezone(zone).strftime("%Y-%m-%d %H")


def wait_lists(
    db: Database, wins: list[Window], group: str, device: str | None = None
) -> dict[str, list[float]]:
    return wait_lists_by(db, wins, (group,), device)[group]


WAITS_WHERE = (
    "site = ? AND checked_in_at >= ? AND checked_in_at < ? AND voided = 0 "
    "AND cancel_reason IS NULL AND wait_min IS NOT NULL"
)


def wait_lists_by(
    db: Database, wins: list[Window], groups: tuple[str, ...], device: str | None = None
) -> dict[str, dict[str, list[float]]]:
    """Waiting minutes of the called visits checked in within the windows, per group, for
    several groupings from one read.

    Only what the grouping and the percentiles need is read, from a covering partial index
    (cancelled and voided visits are out, as in ``metrics.report``). Days and hours are made
    of whole UTC hours, whose sorted waits ``WAIT_RUNS`` keeps (reading only the hours that
    changed); desks are read one by one, filtered in SQLite.
    """
    result: dict[str, dict[str, list[float]]] = {g: defaultdict(list) for g in groups}
    extra, extra_params = _device_clause(device)
    for win in wins:
        params = [win.site.name, win.start, win.end, *extra_params]
        if "device" in groups or "site" in groups:
            ids = [device] if device else _site_devices(db, win.site.name)
            whole_hours = hour_map(win.site.timezone, win.start, win.end) is not None
            for device_id in ids:
                runs = WAIT_RUNS.runs(db, win, device_id) if whole_hours else None
                if runs is not None:
                    waits = [wait for _, run in runs for wait in run]
                else:
                    waits = [
                        row[0]
                        for row in db.execute(
                            f"SELECT wait_min FROM visits WHERE {WAITS_WHERE} AND device_id = ?",
                            [*params[:3], device_id],
                        )
                    ]
                if waits and "device" in groups:
                    result["device"][device_id].extend(waits)
                if waits and "site" in groups:
                    result["site"][win.site.name].extend(waits)
        local_groups = [g for g in groups if g in ("day", "hour", "all")]
        if not local_groups:
            continue
        hours = hour_map(win.site.timezone, win.start, win.end)
        runs = None if hours is None else WAIT_RUNS.runs(db, win, device)
        if runs is None:
            # An offset of part of an hour (or a rollup out of step): each row's local time.
            _group_rows_by_local_time(db, win, params, extra, groups, result)
            continue
        # Each UTC hour's waits, sorted: a group is the concatenation of its hours' runs,
        # which its one sort then merges rather than sorts from scratch.
        for utc_hour, run in runs:
            local = hours[utc_hour]
            for group in local_groups:
                result[group][LOCAL_KEYS[group](local)].extend(run)
    return {g: dict(v) for g, v in result.items()}


class WaitRuns:
    """Each UTC hour's waits (per site, or per site and desk), sorted, kept in memory.

    An hour is read again only when its ``visit_hours`` row says it changed: ``changes`` is
    bumped by the rollup triggers on every visit of the hour added, removed or edited
    (migration 3), so a cached hour is exactly what the table holds. A range therefore reads
    from the database only the hours that changed since the last look (typically the current
    one), and a year of waits (under ``max_values``) stays in memory as sorted runs.
    """

    def __init__(self, max_values: int = 2_000_000):
        self.max_values = max_values
        self._runs: dict[tuple, tuple[int, int, tuple[float, ...]]] = {}
        self._values = 0
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self._values = 0

    def runs(
        self, db: Database, win: Window, device: str | None
    ) -> list[tuple[str, tuple[float, ...]]] | None:
        """(UTC hour, its sorted waits) for the window's hours that have waits, in order;
        None when the rows do not match the rollup (read the rows instead)."""
        extra, extra_params = _device_clause(device)
        per_hour = db.execute(
            "SELECT hour, SUM(waits), SUM(changes) FROM visit_hours WHERE site = ? "
            f"AND hour >= ? AND hour < ? {extra} GROUP BY hour HAVING SUM(waits) > 0 "
            "ORDER BY hour",
            [win.site.name, win.start[:13], win.end[:13], *extra_params],
        ).fetchall()
        store = _database_identity(db)
        base = (store, win.site.name, device or "")
        known: dict[str, tuple[float, ...]] = {}
        stale = []
        for index, (hour, n, changes) in enumerate(per_hour):
            cached = self._runs.get((*base, hour))
            if cached is not None and cached[:2] == (n, changes):
                known[hour] = cached[2]
            else:
                stale.append(index)
        if stale:
            # One read from the first stale hour to the last, in check-in order (the covering
            # index's order): the rollup says how many waits each hour holds, so each hour is
            # a slice, sorted on its own.
            first, last = stale[0], stale[-1]
            span = per_hour[first : last + 1]
            waits = [
                wait
                for (wait,) in db.execute(
                    f"SELECT wait_min FROM visits WHERE {WAITS_WHERE} {extra} "
                    "ORDER BY checked_in_at",
                    [win.site.name, span[0][0], next_hour(span[-1][0]), *extra_params],
                )
            ]
            if sum(n for _, n, _ in span) != len(waits):
                return None
            offset = 0
            for hour, n, changes in span:
                known[hour] = run = tuple(sorted(waits[offset : offset + n]))
                offset += n
                if store is not None:
                    self._put((*base, hour), (n, changes, run))
        return [(hour, known[hour]) for hour, _, _ in per_hour]

    def _put(self, key: tuple, entry: tuple[int, int, tuple[float, ...]]) -> None:
        with self._lock:
            old = self._runs.pop(key, None)
            self._values += entry[0] - (old[0] if old else 0)
            self._runs[key] = entry
            while self._values > self.max_values and self._runs:
                _, evicted = self._runs.pop(next(iter(self._runs)))
                self._values -= evicted[0]


WAIT_RUNS = WaitRuns()


def _database_identity(db: Database) -> tuple | None:
    """The database file (path, inode): the cache's key, so two stores never share hours."""
    path = db.execute("PRAGMA database_list").fetchone()[2]
    if not path:
        return None  # in memory: nothing to key a cache on
    try:
        return (path, os.stat(path).st_ino)
    except OSError:
        return None


def _group_rows_by_local_time(db, win: Window, params, extra, groups, result) -> None:
    zone = ZoneInfo(win.site.timezone)
    rows = db.execute(
        f"SELECT checked_in_at, wait_min FROM visits WHERE {WAITS_WHERE} {extra}", params
    ).fetchall()
    for checked_in_at, wait in rows:
        if "all" in groups:
            result["all"][""].append(wait)
        if "day" not in groups and "hour" not in groups:
            continue
        local = _local_text(checked_in_at, zone)
        if "day" in groups:
            result["day"][local[:10]].append(wait)
        if "hour" in groups:
            result["hour"][local[11:]].append(wait)


def _site_devices(db: Database, site: str) -> list[str]:
    return [row[0] for row in db.execute("SELECT id FROM devices WHERE site = ?", [site])]


def visit_counts(
    db: Database, wins: list[Window], group: str, device: str | None = None
) -> dict[str, tuple[int, int]]:
    """(visits, checked out) per group: checked in within the windows, not cancelled."""
    result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    extra, extra_params = _device_clause(device)
    for win in wins:
        hours = hour_map(win.site.timezone, win.start, win.end)
        if hours is not None:
            rows = db.execute(
                f"SELECT {ROLLUP_KEYS[group]}, SUM(visits), SUM(checked_out) FROM visit_hours "
                f"WHERE site = ? AND hour >= ? AND hour < ? {extra} GROUP BY 1",
                [win.site.name, win.start[:13], win.end[:13], *extra_params],
            ).fetchall()
        else:
            key = GROUPS[group](local_hour_sql("checked_in_at", win))
            rows = db.execute(
                f"SELECT {key}, COUNT(*), COUNT(checked_out_at) FROM visits WHERE site = ? "
                "AND checked_in_at >= ? AND checked_in_at < ? AND voided = 0 "
                f"AND cancel_reason IS NULL {extra} GROUP BY 1",
                [win.site.name, win.start, win.end, *extra_params],
            ).fetchall()
        for k, visits, checked_out in rows:
            if hours is not None:
                k = _local_key(group, k, hours)
            result[k][0] += visits
            result[k][1] += checked_out
    return {k: (v[0], v[1]) for k, v in result.items() if v[0]}


def visit_counts_by(
    db: Database, wins: list[Window], groups: tuple[str, ...], device: str | None = None
) -> dict[str, dict[str, tuple[int, int]]]:
    """``visit_counts`` for several groupings by local time from one rollup read per window."""
    result: dict[str, dict[str, list[int]]] = {g: defaultdict(lambda: [0, 0]) for g in groups}
    extra, extra_params = _device_clause(device)
    for win in wins:
        hours = hour_map(win.site.timezone, win.start, win.end)
        if hours is None:
            for group in groups:
                for key, (visits, checked_out) in visit_counts(db, [win], group, device).items():
                    result[group][key][0] += visits
                    result[group][key][1] += checked_out
            continue
        rows = db.execute(
            "SELECT hour, SUM(visits), SUM(checked_out) FROM visit_hours WHERE site = ? "
            f"AND hour >= ? AND hour < ? {extra} GROUP BY hour",
            [win.site.name, win.start[:13], win.end[:13], *extra_params],
        ).fetchall()
        for hour, visits, checked_out in rows:
            local = hours[hour]
            for group in groups:
                entry = result[group][LOCAL_KEYS[group](local)]
                entry[0] += visits
                entry[1] += checked_out
    return {g: {k: (v[0], v[1]) for k, v in part.items() if v[0]} for g, part in result.items()}


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
    result.update(wait_summary(waits or [], target, current))
    return result


def wait_summary(waits: list[float], target: float, current=()) -> dict:
    """``metrics.wait_summary``, the same figures, with one sort of ``waits`` (in place).

    The median and p90 are ``metrics.median`` / ``metrics.percentile`` themselves over the
    sorted list (their own sort of a sorted list is a single linear pass), and the count within
    the target is a bisection of it, so a group of 25,000 waits is not walked three more times
    in Python. ``tests/dashboard/test_wait_summary.py`` checks it against the metric function.
    """
    waits.sort()
    current = list(current)
    return {
        "waits": len(waits),
        "wait_median_min": metrics._round(metrics.median(waits)),
        "wait_p90_min": metrics._round(metrics.percentile(waits, 90)),
        "pct_within_target": metrics._round(metrics.pct(bisect_right(waits, target), len(waits))),
        "longest_current_wait_min": metrics._round(max(current)) if current else None,
    }


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
        current_wait_min(parse_rfc3339(row["checked_in_at"]), row["skew"], now)
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
            "SELECT v.ticket, v.status, v.checked_in_at, v.called_at, v.site, d.name AS desk, "
            "d.clock_skew_s AS skew FROM visits v LEFT JOIN devices d ON d.id = v.device_id "
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
    site_targets = {site.name: site.target_wait_min for site in sites}
    for row in queue_rows(db, day_windows, device, now):
        waiting = row["status"] == "waiting"
        if waiting:
            wait = current_wait_min(parse_rfc3339(row["checked_in_at"]), row["skew"], now)
        else:
            wait = metrics.minutes_between(
                parse_rfc3339(row["checked_in_at"]), parse_rfc3339(row["called_at"])
            )
        desks[f"{row['site']} · {row['desk'] or 'unknown desk'}"].append(
            {
                "ticket": row["ticket"],
                "status": "waiting" if waiting else "in the chair",
                "wait_min": round(wait, 1),
                "over_target": wait > site_targets.get(row["site"], target),
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
    ratings = rating_groups_by(db, wins, ("day", "hour"), device)
    waits = wait_lists_by(db, wins, ("day", "hour"), device)
    counts = visit_counts_by(db, wins, ("day", "hour"), device)
    day_ratings, day_waits, day_counts = ratings["day"], waits["day"], counts["day"]
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
    hour_ratings, hour_waits, hour_counts = ratings["hour"], waits["hour"], counts["hour"]
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
    extra, extra_params = _device_clause(device)
    wins = windows(sites, first, last)
    negatives = sum(
        n
        for (scale, score), n in _merged(rating_groups(db, wins, "all", device)).items()
        if metrics.is_negative(score, scale)
    )
    for win in wins:
        hours = hour_map(win.site.timezone, win.start, win.end)
        if hours is not None:
            rows = db.execute(
                "SELECT hour, tag, SUM(n) FROM negative_tag_hours WHERE site = ? AND hour >= ? "
                f"AND hour < ? {extra} GROUP BY 1, 2 HAVING SUM(n) > 0",
                [win.site.name, win.start[:13], win.end[:13], *extra_params],
            ).fetchall()
            rows = [(hours[hour][:10], tag, n) for hour, tag, n in rows]
        else:
            local = local_hour_sql("occurred_at", win)
            rows = db.execute(
                f"SELECT substr({local}, 1, 10), tag.value, COUNT(DISTINCT ratings.rowid) "
                "FROM ratings, json_each(ratings.tags) tag WHERE site = ? AND occurred_at >= ? "
                f"AND occurred_at < ? AND misuse = 0 AND score <= 2 {extra} GROUP BY 1, 2",
                [win.site.name, win.start, win.end, *extra_params],
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


def _merged(groups: dict[str, RatingGroup]) -> Counts:
    merged: Counts = {}
    for group in groups.values():
        for key, n in group.counts.items():
            merged[key] = merged.get(key, 0) + n
    return merged


def compare(
    db: Database, sites: list[SiteConfig], first: date, last: date, device_names: dict[str, str]
) -> dict:
    """Sites and desks side by side; a group under the threshold has its figures hidden."""
    wins = windows(sites, first, last)
    target = target_of(sites)
    # Each site, and each desk, is measured against its own site's target.
    site_targets = {site.name: site.target_wait_min for site in sites}
    device_sites = dict(db.execute("SELECT id, site FROM devices").fetchall())

    def target_for(group: str, key: str) -> float:
        site = key if group == "site" else device_sites.get(key)
        return site_targets.get(site, target)

    all_waits = wait_lists_by(db, wins, ("site", "device"))

    def rows_for(group: str, label) -> list[dict]:
        ratings = rating_groups(db, wins, group)
        waits = all_waits[group]
        counts = visit_counts(db, wins, group)
        rows = []
        for key in sorted(set(ratings) | set(waits) | set(counts), key=lambda k: label(k)):
            row = {
                "name": label(key),
                **figures(
                    ratings.get(key), waits.get(key), counts.get(key), target_for(group, key)
                ),
                "target_wait_min": target_for(group, key),
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
