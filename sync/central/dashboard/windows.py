"""A range of local days as UTC bounds per site, and the SQL that reads local time.

Days and hours on the dashboard are each site's local time, DST included: each site's range is
turned into UTC bounds (a :class:`Window`), the hourly rollups' UTC hours are mapped to local
ones (:func:`hour_map`), and where a zone's offset is not whole hours the local hour of a row is
computed in SQL (:func:`local_hour_sql`), so no row is parsed in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339
from sync.central.sites import SiteConfig


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


def today_windows(sites: list[SiteConfig], now: datetime) -> list[Window]:
    """Each site's own local today (sites in different zones have different todays)."""
    result = []
    for site in sites:
        day = metrics.local_today(now, site.timezone)
        result += windows([site], day, day)
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


GROUPS = {
    "all": lambda local: "''",
    "day": lambda local: f"substr({local}, 1, 10)",
    "hour": lambda local: f"substr({local}, 12, 2)",
    "device": lambda local: "device_id",
    "bucket": lambda local: metrics.bucket_sql("wait_min"),
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


LOCAL_KEYS = {
    "day": lambda local: local[:10],
    "hour": lambda local: local[11:],
    "all": lambda local: "",
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


# A rollup's UTC hour key's hour of the day, as a number the shift below is added to.
_UTC_HOUR_OF_DAY = "CAST(substr(hour, 12, 2) AS INTEGER)"


@lru_cache(maxsize=256)
def _hour_shifts(timezone: str, start: str, end: str) -> tuple[tuple[str, int], ...] | None:
    """(first UTC hour key, whole hours to add to reach local time) of each stretch of [start,
    end) with one UTC offset, in order; None where ``hour_map`` is None."""
    hours = hour_map(timezone, start, end)
    if hours is None:
        return None
    shifts: list[tuple[str, int]] = []
    for utc, local in hours.items():
        moved = datetime.fromisoformat(local.replace(" ", "T") + ":00")
        shift = round((moved - datetime.fromisoformat(utc + ":00")) / timedelta(hours=1))
        if not shifts or shifts[-1][1] != shift:
            shifts.append((utc, shift))
    return tuple(shifts)


def local_group_sql(window: Window) -> tuple[str, str] | None:
    """SQL over a rollup's ``hour`` key giving, at the window's site, (the local day's distance
    from the key's UTC day plus one: 0, 1 or 2; the local hour of the day, 0-23), so the
    database groups the rollup by local day and hour and no hour's row reaches Python (a
    90-day range of 20 sites is tens of thousands of them: benchmark figure 16). A CASE picks
    each DST stretch's offset; integer arithmetic alike on both engines (the sum is never
    negative, so division and remainder round the same way). None where ``hour_map`` is."""
    shifts = _hour_shifts(window.site.timezone, window.start, window.end)
    if shifts is None:
        return None
    shift = str(shifts[-1][1])
    for (_, before), (boundary, _) in reversed(list(zip(shifts, shifts[1:], strict=False))):
        shift = f"CASE WHEN hour < '{boundary}' THEN {before} ELSE {shift} END"
    local = f"({_UTC_HOUR_OF_DAY} + {shift} + 24)"
    return f"{local} / 24", f"{local} % 24"


@lru_cache(maxsize=4096)
def shifted_day(utc_day: str, day_shift: int) -> str:
    """The local day of ``local_group_sql``'s (UTC day, day shift)."""
    return (date.fromisoformat(utc_day) + timedelta(days=day_shift - 1)).isoformat()


def local_key(group: str, key, hours: dict[str, str]):
    if group == "day":
        return hours[key][:10]
    if group == "hour":
        return hours[key][11:]
    return key


def local_text(checked_in_at: str, zone: ZoneInfo) -> str:
    return parse_rfc3339(checked_in_at).astimezone(zone).strftime("%Y-%m-%d %H")
