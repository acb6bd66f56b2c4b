"""Counts and waits of a range grouped by local day, hour, desk, site or wait bucket: from the
hourly rollups where a window is made of whole local hours, else from the rows.

The dashboard's grouped reads; each returns the inputs ``sync.central.figures.headline`` turns
into figures (ratings as counts per (scale, score), waits as the bare list the percentiles
need, visits as (visits, checked out)). Ranges over several sites are read per site (each
with its own time zone) and merged; each kind of read goes for every site (and desk) in one
statement (``sync.central.batched``), so a page's statements do not grow with the group.
"""

from __future__ import annotations

from collections import defaultdict
from operator import itemgetter
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from kiosk.shared import metrics
from sync.central.batched import each
from sync.central.dashboard.wait_cache import WAITS_WHERE, window_runs_many
from sync.central.dashboard.windows import (
    GROUPS,
    LOCAL_KEYS,
    ROLLUP_KEYS,
    Window,
    hour_map,
    local_hour_sql,
    local_key,
    local_text,
)
from sync.central.figures import (
    COUNTED_VISIT,
    IN_RANGE,
    RatingGroup,
    device_clause,
)
from sync.central.rollups import count_sum

NO_WAIT = "none"  # the bucket key of ratings with no linked (called) visit


def rating_groups(
    db: Database, wins: list[Window], group: str, device: str | None = None
) -> dict[str, RatingGroup]:
    """Counts per (scale, score) in each group, misuse left out, merged over the windows.
    Two statements at most, whatever the number of windows (``split``)."""
    result: dict[str, RatingGroup] = defaultdict(RatingGroup)
    extra, extra_params = device_clause(device)

    def rollup(win: Window) -> tuple[str, list]:
        return (
            f"SELECT {ROLLUP_KEYS[group]}, scale, score, linked, {count_sum('n')} "
            f"FROM rating_hours WHERE site = ? AND hour >= ? AND hour < ? {extra} "
            "GROUP BY 1, 2, 3, 4 HAVING SUM(n) > 0",
            [win.site.name, win.start[:13], win.end[:13], *extra_params],
        )

    def from_rows(win: Window) -> tuple[str, list]:
        key = GROUPS[group](local_hour_sql("occurred_at", win))
        return (
            f"SELECT {key} AS k, scale, score, visit_id IS NOT NULL AS linked, COUNT(*) "
            "FROM ratings WHERE site = ? AND occurred_at >= ? AND occurred_at < ? "
            f"AND misuse = 0 {extra} GROUP BY 1, 2, 3, 4",
            [win.site.name, win.start, win.end, *extra_params],
        )

    for hours, rows in split(db, wins, rollup, from_rows):
        for k, scale, score, linked, n in rows:
            if hours is not None:
                k = local_key(group, k, hours)
            entry = result[NO_WAIT if k in (None, "") and group == "bucket" else k]
            entry.counts[(scale, score)] = entry.counts.get((scale, score), 0) + n
            if linked:
                entry.linked += n
    return dict(result)


def split(db: Database, wins: list[Window], rollup, from_rows, rollup_rows=None):
    """(the window's ``hour_map``, its rows) for each window, in order: the windows made of
    whole local hours read by ``rollup(win)``'s SELECT, the others (an offset of part of an
    hour) by ``from_rows(win)``'s; each kind for every window in one statement
    (``batched.each``), not one per site. ``rollup_rows``: the whole windows' rows as
    ``rollup`` would read them, already read (``sums_of``)."""
    maps = [hour_map(win.site.timezone, win.start, win.end) for win in wins]
    whole = [win for win, hours in zip(wins, maps, strict=True) if hours is not None]
    other = [win for win, hours in zip(wins, maps, strict=True) if hours is None]
    if rollup_rows is None:
        rollup_rows = each(db, [rollup(win) for win in whole])
    whole_rows = iter(rollup_rows)
    other_rows = iter(each(db, [from_rows(win) for win in other]))
    return [(hours, next(whole_rows) if hours is not None else next(other_rows))
            for hours in maps]


# The ``visit_hours`` sums a page grouped by local time needs (visits, waits, appointments),
# in the order ``visit_hour_sums`` gives them after the hour.
HOUR_SUMS = ("visits", "checked_out", "waits", "changes", "appt_early", "appt_on_time",
             "appt_late", "appt_called", "appt_within")
# As integers on both engines (``rollups.count_sum``).
HOUR_SUMS_SQL = ", ".join(count_sum(column) for column in HOUR_SUMS)


def visit_hour_sums(
    db: Database, wins: list[Window], device: str | None = None
) -> list[list[tuple] | None]:
    """Per window, in order: (UTC hour, the SUM of each ``HOUR_SUMS`` column) for every hour
    the rollup holds in the window, or None for a window not made of whole local hours (its
    rows are read instead). One statement for every window (``batched.each``): Trends reads
    the rollup once for its visits, waits and appointments (``sums=``) rather than three
    times: some 40,000 rollup rows each over 90 days of 20 sites at 10 million events
    (benchmark figure 16)."""
    extra, params = device_clause(device)
    maps = [hour_map(win.site.timezone, win.start, win.end) for win in wins]
    found = iter(each(db, [(
        f"SELECT hour, {HOUR_SUMS_SQL} FROM visit_hours "
        f"WHERE site = ? AND hour >= ? AND hour < ? {extra} GROUP BY hour",
        [win.site.name, win.start[:13], win.end[:13], *params],
    ) for win, hours in zip(wins, maps, strict=True) if hours is not None]))
    return [next(found) if hours is not None else None for hours in maps]


def sums_of(sums: list[list[tuple] | None], *columns: str) -> list[list[tuple]]:
    """(UTC hour, those columns' sums) of each window ``visit_hour_sums`` read, in order: the
    rows each reader's own rollup SELECT would give, for its windows of whole local hours."""
    pick = itemgetter(0, *(1 + HOUR_SUMS.index(column) for column in columns))
    return [list(map(pick, rows)) for rows in sums if rows is not None]


# Every face of the supported scales, as the columns of a per-hour pivot of the rollup.
FACES = tuple((scale, score) for scale in (5, 4) for score in range(scale, 0, -1))


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
    result: dict[str, dict[str, RatingGroup]] = {g: defaultdict(RatingGroup) for g in groups}
    extra, extra_params = device_clause(device)
    faces = ", ".join(count_sum("n", f"scale = {sc} AND score = {k}") for sc, k in FACES)
    maps = [hour_map(win.site.timezone, win.start, win.end) for win in wins]
    whole = [(win, hours) for win, hours in zip(wins, maps, strict=True) if hours is not None]
    fallback = [win for win, hours in zip(wins, maps, strict=True) if hours is None]
    # Every window's pivot in one statement (batched.each), not one per site.
    found = each(db, [(
        f"SELECT hour, {count_sum('n')}, {count_sum('n', 'linked = 1')}, "
        f"{faces} FROM rating_hours "
        f"WHERE site = ? AND hour >= ? AND hour < ? {extra} GROUP BY hour "
        "HAVING SUM(n) > 0",
        [win.site.name, win.start[:13], win.end[:13], *extra_params],
    ) for win, _ in whole])
    for (win, hours), rows in zip(whole, found, strict=True):
        if any(row[1] != sum(n or 0 for n in row[3:]) for row in rows):
            fallback.append(win)  # a face outside FACES: the generic read counts (and refuses) it
            continue
        for hour, _, linked, *counts in rows:
            local = hours[hour]
            for group in groups:
                entry = result[group][LOCAL_KEYS[group](local)]
                entry.linked += linked or 0
                for face, n in zip(FACES, counts, strict=True):
                    if n:
                        entry.counts[face] = entry.counts.get(face, 0) + n
    if fallback:
        for group in groups:
            for key, part in rating_groups(db, fallback, group, device).items():
                entry = result[group][key]
                entry.linked += part.linked
                for face, n in part.counts.items():
                    entry.counts[face] = entry.counts.get(face, 0) + n
    return {g: dict(v) for g, v in result.items()}


def wait_lists_by(
    db: Database, wins: list[Window], groups: tuple[str, ...], device: str | None = None,
    sums: list[list[tuple] | None] | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Waiting minutes of the called visits checked in within the windows, per group, for
    several groupings from one read.

    Only what the grouping and the percentiles need is read, from a covering partial index
    (cancelled and voided visits are out, as in ``metrics.report``). Days and hours are made
    of whole UTC hours, whose sorted waits ``wait_cache.WAIT_RUNS`` keeps (reading only the
    hours that changed); desks are read one by one, filtered in SQL. Each kind of read goes
    for every window and desk in one statement (``batched.each``): a fixed number of
    statements whatever the number of sites and desks. ``sums``: ``visit_hour_sums`` of the
    same windows and device, whose waits and changes per hour stand for the rollup's read.
    """
    result: dict[str, dict[str, list[float]]] = {g: defaultdict(list) for g in groups}
    extra, extra_params = device_clause(device)
    if "device" in groups or "site" in groups:
        desks_of = _devices_by_site(db) if device is None else None
        desks = [(win, device_id) for win in wins
                 for device_id in ([device] if device else desks_of.get(win.site.name, []))]
        whole = [hour_map(win.site.timezone, win.start, win.end) is not None
                 for win, _ in desks]
        runs = iter(window_runs_many(
            db, [desk for desk, ok in zip(desks, whole, strict=True) if ok]))
        found = [next(runs) if ok else None for ok in whole]
        rows = iter(each(db, [(
            f"SELECT wait_min FROM visits WHERE {WAITS_WHERE} AND device_id = ?",
            [win.site.name, win.start, win.end, device_id],
        ) for (win, device_id), desk_runs in zip(desks, found, strict=True)
            if desk_runs is None]))
        for (win, device_id), desk_runs in zip(desks, found, strict=True):
            if desk_runs is not None:
                waits = [wait for _, run in desk_runs for wait in run]
            else:
                waits = [row[0] for row in next(rows)]
            if waits and "device" in groups:
                result["device"][device_id].extend(waits)
            if waits and "site" in groups:
                result["site"][win.site.name].extend(waits)
    local_groups = [g for g in groups if g in ("day", "hour", "all")]
    if local_groups:
        maps = [hour_map(win.site.timezone, win.start, win.end) for win in wins]
        runs = iter(window_runs_many(
            db, [(win, device) for win, hours in zip(wins, maps, strict=True)
                 if hours is not None],
            None if sums is None else sums_of(sums, "waits", "changes")))
        found = [next(runs) if hours is not None else None for hours in maps]
        # An offset of part of an hour (or a rollup out of step): each row's local time.
        by_rows = [win for win, win_runs in zip(wins, found, strict=True) if win_runs is None]
        _group_rows_by_local_time(db, by_rows, extra, extra_params, groups, result)
        for hours, win_runs in zip(maps, found, strict=True):
            if win_runs is None:
                continue
            # Each UTC hour's waits, sorted: a group is the concatenation of its hours' runs,
            # which its one sort then merges rather than sorts from scratch.
            for utc_hour, run in win_runs:
                local = hours[utc_hour]
                for group in local_groups:
                    result[group][LOCAL_KEYS[group](local)].extend(run)
    return {g: dict(v) for g, v in result.items()}


def _group_rows_by_local_time(db, wins: list[Window], extra, extra_params, groups,
                              result) -> None:
    found = each(db, [(
        f"SELECT checked_in_at, wait_min FROM visits WHERE {WAITS_WHERE} {extra}",
        [win.site.name, win.start, win.end, *extra_params],
    ) for win in wins])
    for win, rows in zip(wins, found, strict=True):
        zone = ZoneInfo(win.site.timezone)
        for checked_in_at, wait in rows:
            if "all" in groups:
                result["all"][""].append(wait)
            if "day" not in groups and "hour" not in groups:
                continue
            local = local_text(checked_in_at, zone)
            if "day" in groups:
                result["day"][local[:10]].append(wait)
            if "hour" in groups:
                result["hour"][local[11:]].append(wait)


def _devices_by_site(db: Database) -> dict[str, list[str]]:
    """Every site's desks, in one statement."""
    desks: dict[str, list[str]] = defaultdict(list)
    for device_id, site in db.execute("SELECT id, site FROM devices").fetchall():
        desks[site].append(device_id)
    return desks


def visit_counts(
    db: Database, wins: list[Window], group: str, device: str | None = None
) -> dict[str, tuple[int, int]]:
    """(visits, checked out) per group: checked in within the windows, not cancelled."""
    result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    extra, extra_params = device_clause(device)

    def rollup(win: Window) -> tuple[str, list]:
        return (
            f"SELECT {ROLLUP_KEYS[group]}, {count_sum('visits')}, {count_sum('checked_out')} "
            "FROM visit_hours "
            f"WHERE site = ? AND hour >= ? AND hour < ? {extra} GROUP BY 1",
            [win.site.name, win.start[:13], win.end[:13], *extra_params],
        )

    def from_rows(win: Window) -> tuple[str, list]:
        key = GROUPS[group](local_hour_sql("checked_in_at", win))
        return (
            f"SELECT {key}, COUNT(*), COUNT(checked_out_at) FROM visits WHERE site = ? "
            f"AND checked_in_at >= ? AND checked_in_at < ? AND {COUNTED_VISIT} {extra} "
            "GROUP BY 1",
            [win.site.name, win.start, win.end, *extra_params],
        )

    for hours, rows in split(db, wins, rollup, from_rows):
        for k, visits, checked_out in rows:
            if hours is not None:
                k = local_key(group, k, hours)
            result[k][0] += visits
            result[k][1] += checked_out
    return {k: (v[0], v[1]) for k, v in result.items() if v[0]}


def visit_counts_by(
    db: Database, wins: list[Window], groups: tuple[str, ...], device: str | None = None,
    sums: list[list[tuple] | None] | None = None,
) -> dict[str, dict[str, tuple[int, int]]]:
    """``visit_counts`` for several groupings by local time from one rollup read for every
    window (``batched.each``), or from ``sums`` (``visit_hour_sums`` of the same windows and
    device) without one."""
    result: dict[str, dict[str, list[int]]] = {g: defaultdict(lambda: [0, 0]) for g in groups}
    extra, extra_params = device_clause(device)
    maps = [hour_map(win.site.timezone, win.start, win.end) for win in wins]
    whole = [(win, hours) for win, hours in zip(wins, maps, strict=True) if hours is not None]
    fallback = [win for win, hours in zip(wins, maps, strict=True) if hours is None]
    if fallback:
        for group in groups:
            for key, (visits, checked_out) in visit_counts(db, fallback, group, device).items():
                result[group][key][0] += visits
                result[group][key][1] += checked_out
    found = sums_of(sums, "visits", "checked_out") if sums is not None else each(db, [(
        f"SELECT hour, {count_sum('visits')}, {count_sum('checked_out')} FROM visit_hours "
        "WHERE site = ? "
        f"AND hour >= ? AND hour < ? {extra} GROUP BY hour",
        [win.site.name, win.start[:13], win.end[:13], *extra_params],
    ) for win, _ in whole])
    for (_, hours), rows in zip(whole, found, strict=True):
        for hour, visits, checked_out in rows:
            local = hours[hour]
            for group in groups:
                entry = result[group][LOCAL_KEYS[group](local)]
                entry[0] += visits
                entry[1] += checked_out
    return {g: {k: (v[0], v[1]) for k, v in part.items() if v[0]} for g, part in result.items()}


def appointment_counts_in(
    db: Database, wins: list[Window], group: str, device: str | None = None,
    sums: list[list[tuple] | None] | None = None,
) -> dict[str, dict]:
    """Per local day, desk or site, ``metrics.appointment_counts``: booked visits per arrival
    class, those called, and how many of them were seen within 15 minutes. From the hourly
    rollup's appointment counts where the window is whole local hours (a 90-day range is
    ~2,000 rows a site, not every visit), else counted by the database over the covering
    index; each kind for every window in one statement (``split``). ``sums``
    (``visit_hour_sums`` of the same windows and device) stand for the rollup's read where the
    group is read per hour (local days and hours)."""
    if sums is not None and ROLLUP_KEYS[group] != "hour":
        raise ValueError(f"visit_hour_sums are per hour: no {group!r} in them")
    extra, params = device_clause(device)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seen = metrics.seen_within_sql("adjusted_wait_min")

    def rollup(win: Window) -> tuple[str, list]:
        return (
            f"SELECT {ROLLUP_KEYS[group]}, {count_sum('appt_early')}, "
            f"{count_sum('appt_on_time')}, {count_sum('appt_late')}, "
            f"{count_sum('appt_called')}, {count_sum('appt_within')} FROM visit_hours "
            f"WHERE site = ? AND hour >= ? AND hour < ? {extra} GROUP BY 1",
            [win.site.name, win.start[:13], win.end[:13], *params],
        )

    def from_rows(win: Window) -> tuple[str, list]:
        key_sql = GROUPS[group](local_hour_sql("checked_in_at", win))
        return (
            f"SELECT {key_sql}, arrival, COUNT(*), COUNT(adjusted_wait_min), SUM({seen}) "
            f"FROM visits WHERE {IN_RANGE} AND arrival IS NOT NULL {extra} GROUP BY 1, 2",
            [win.site.name, win.start, win.end, *params],
        )

    rollup_rows = None if sums is None else sums_of(
        sums, "appt_early", "appt_on_time", "appt_late", "appt_called", "appt_within")
    for hours, rows in split(db, wins, rollup, from_rows, rollup_rows):
        if hours is not None:
            for key, early, on_time, late, called, within in rows:
                entry = totals[local_key(group, key, hours)]
                for name, n in (("early", early), ("on_time", on_time), ("late", late),
                                ("called", called), ("within", within)):
                    entry[name] += n or 0
            continue
        for key, arrival, n, called, within in rows:
            entry = totals[key]
            entry[arrival] += n
            entry["called"] += called
            entry["within"] += within or 0
    return {
        key: metrics.appointment_counts(counts, counts["called"], counts["within"])
        for key, counts in totals.items()
        if any(counts.values())
    }
