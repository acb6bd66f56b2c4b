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
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from kiosk.shared import metrics
from sync.central.batched import each
from sync.central.dashboard.local_sums import LocalSums, local_sums
from sync.central.dashboard.wait_cache import (
    LOCAL_WAITS,
    WAITS_WHERE,
    window_runs_many,
    window_waits_many,
)
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
from sync.central.hour_runs import database_identity
from sync.central.rollups import RATING_FACES, count_sum, face_column

NO_WAIT = "none"  # the bucket key of ratings with no linked (called) visit


def rating_groups(
    db: Database, wins: list[Window], group: str, device: str | None = None
) -> dict[str, RatingGroup]:
    """Counts per (scale, score) in each group, misuse left out, merged over the windows.
    Two statements at most, whatever the number of windows (``split``)."""
    return _rating_groups(db, wins, group, device)[0]


def rating_groups_of_desks_and_sites(
    db: Database, wins: list[Window]
) -> tuple[dict[str, RatingGroup], dict[str, RatingGroup]]:
    """``rating_groups`` per desk and per site from the one read per desk: a window's desks
    add up to its site (Compare; a second read grouped by site cost as much again)."""
    return _rating_groups(db, wins, "device", None, sites=True)


def _rating_groups(db: Database, wins: list[Window], group: str, device: str | None,
                   sites: bool = False) -> tuple[dict[str, RatingGroup], dict[str, RatingGroup]]:
    result: dict[str, RatingGroup] = defaultdict(RatingGroup)
    per_site: dict[str, RatingGroup] = defaultdict(RatingGroup)
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

    for win, (hours, rows) in zip(wins, split(db, wins, rollup, from_rows), strict=True):
        for k, scale, score, linked, n in rows:
            if hours is not None:
                k = local_key(group, k, hours)
            entries = [result[NO_WAIT if k in (None, "") and group == "bucket" else k]]
            if sites:
                entries.append(per_site[win.site.name])
            for entry in entries:
                entry.add(scale, score, n, bool(linked))
    return dict(result), dict(per_site)


def split(db: Database, wins: list[Window], rollup, from_rows):
    """(the window's ``hour_map``, its rows) for each window, in order: the windows made of
    whole local hours read by ``rollup(win)``'s SELECT, the others (an offset of part of an
    hour) by ``from_rows(win)``'s; each kind for every window in one statement
    (``batched.each``), not one per site."""
    maps = [hour_map(win.site.timezone, win.start, win.end) for win in wins]
    whole = [win for win, hours in zip(wins, maps, strict=True) if hours is not None]
    other = [win for win, hours in zip(wins, maps, strict=True) if hours is None]
    whole_rows = iter(each(db, [rollup(win) for win in whole]))
    other_rows = iter(each(db, [from_rows(win) for win in other]))
    return [(hours, next(whole_rows) if hours is not None else next(other_rows))
            for hours in maps]


# The ``visit_hours`` sums a page grouped by local time needs (visits, waits, appointments),
# in the order ``visit_local_sums`` gives them.
HOUR_SUMS = ("visits", "checked_out", "waits", "changes", "appt_early", "appt_on_time",
             "appt_late", "appt_called", "appt_within")


def visit_local_sums(
    db: Database, wins: list[Window], device: str | None = None
) -> list[LocalSums | None]:
    """``local_sums`` of every ``HOUR_SUMS`` column of ``visit_hours`` (of ``site_visit_hours``,
    one row per hour, for every desk): Trends reads the visit rollup once for its visits,
    waits and appointments (``sums=``) rather than three times."""
    table = "site_visit_hours" if device is None else "visit_hours"
    return local_sums(db, wins, table, [(column, None) for column in HOUR_SUMS], device)


def sums_of(sums: LocalSums, group: str, *columns: str) -> dict[str, tuple[int, ...]]:
    """Those columns of a window's ``visit_local_sums`` per key of ``group``."""
    at = [HOUR_SUMS.index(column) for column in columns]
    return {key: tuple(row[i] for i in at) for key, row in sums.of(group).items()}


def rating_groups_by(
    db: Database, wins: list[Window], groups: tuple[str, ...], device: str | None = None
) -> dict[str, dict[str, RatingGroup]]:
    """``rating_groups`` for several groupings by local time ('day', 'hour', 'all') from one
    read of the hourly rollup for every window, grouped by local day and hour in the database
    (``local_sums``, a column per face of ``RATING_FACES`` plus the linked ones). A window the
    rollup cannot serve (an offset of part of an hour) or holding a scale outside
    ``RATING_FACES`` is read by ``rating_groups`` as before.
    """
    result: dict[str, dict[str, RatingGroup]] = {g: defaultdict(RatingGroup) for g in groups}
    if device is None:
        # Every desk: the per-site rollup, one row per hour with a column per face.
        found = local_sums(db, wins, "site_rating_hours", [
            ("n", None), ("linked", None),
            *((face_column(scale, score), None) for scale, score in RATING_FACES),
        ], counted="n")
    else:
        faces = [("n", f"scale = {sc} AND score = {k}") for sc, k in RATING_FACES]
        found = local_sums(db, wins, "rating_hours", [("n", None), ("n", "linked = 1"), *faces],
                           device, counted="n")
    fallback = []
    for win, sums in zip(wins, found, strict=True):
        if sums is None or any(row[0] != sum(n or 0 for n in row[2:])
                               for row in (*sums.day.values(), *sums.hour.values())):
            # A face outside RATING_FACES: the generic read counts (and refuses) it.
            fallback.append(win)
            continue
        for group in groups:
            for key, (_, linked, *counts) in sums.of(group).items():
                entry = result[group][key]
                entry.linked += linked or 0
                for face, n in zip(RATING_FACES, counts, strict=True):
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
    sums: list[LocalSums | None] | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Waiting minutes of the called visits checked in within the windows, per group, for
    several groupings from one read.

    Only what the grouping and the percentiles need is read, from a covering partial index
    (cancelled and voided visits are out, as in ``metrics.report``). Local days, hours of the
    day and 'all' come from the sorted runs ``wait_cache`` keeps per group and per UTC hour,
    read again only where the group's sums say it changed (``_local_waits``); desks are read
    one by one, filtered in SQL. Each kind of read goes for every window and desk in one
    statement (``batched.each``): a fixed number of statements whatever the number of sites
    and desks. ``sums``: ``visit_local_sums`` of the same windows and device, read by the
    caller with the other sums it needs (else read here).
    """
    result: dict[str, dict[str, list[float]]] = {g: defaultdict(list) for g in groups}
    extra, extra_params = device_clause(device)
    if "device" in groups or "site" in groups:
        desks_of = _devices_by_site(db) if device is None else None
        desks = [(win, device_id) for win in wins
                 for device_id in ([device] if device else desks_of.get(win.site.name, []))]
        whole = [hour_map(win.site.timezone, win.start, win.end) is not None
                 for win, _ in desks]
        runs = iter(window_waits_many(
            db, [desk for desk, ok in zip(desks, whole, strict=True) if ok]))
        found = [next(runs) if ok else None for ok in whole]
        rows = iter(each(db, [(
            f"SELECT wait_min FROM visits WHERE {WAITS_WHERE} AND device_id = ?",
            [win.site.name, win.start, win.end, device_id],
        ) for (win, device_id), desk_runs in zip(desks, found, strict=True)
            if desk_runs is None]))
        for (win, device_id), desk_runs in zip(desks, found, strict=True):
            waits = list(desk_runs) if desk_runs is not None else [row[0] for row in next(rows)]
            if waits and "device" in groups:
                result["device"][device_id].extend(waits)
            if waits and "site" in groups:
                result["site"][win.site.name].extend(waits)
    local_groups = [g for g in groups if g in ("day", "hour", "all")]
    if local_groups:
        if sums is None:
            sums = visit_local_sums(db, wins, device)
        by_rows = _local_waits(db, wins, sums, device, local_groups, result)
        # An offset of part of an hour (or a rollup out of step): each row's local time.
        _group_rows_by_local_time(db, by_rows, extra, extra_params, groups, result)
    return {g: dict(v) for g, v in result.items()}


def _local_waits(db: Database, wins: list[Window], sums: list[LocalSums | None],
                 device: str | None, local_groups: list[str], result) -> list[Window]:
    """Adds each window's waits per local day, hour of the day and in all to ``result``; gives
    back the windows to read from the rows instead. A group whose SUM(waits) and SUM(changes)
    in ``sums`` are those its cached sorted run was read under (``wait_cache.LOCAL_WAITS``)
    costs no read; the windows holding any other are read hour by hour
    (``wait_cache.WAIT_RUNS``: only the hours that changed reach the database)."""
    store = database_identity(db)
    kinds = sorted(({"day"} if {"day", "all"} & set(local_groups) else set())
                   | ({"hour"} & set(local_groups)))
    known: dict[int, dict[tuple[str, str], tuple[float, ...]]] = {}
    missing: dict[int, dict[tuple[str, str], tuple]] = defaultdict(dict)
    for index, (win, win_sums) in enumerate(zip(wins, sums, strict=True)):
        if win_sums is None:
            continue
        known[index] = {}
        for kind in kinds:
            # A local day is the same hours in any window of whole local days (as every
            # Window made by ``windows`` is); an hour of the day is one hour of each day of
            # its window, and a day cut by a window's ends is that window's own.
            bounds = None if kind == "day" and _whole_local_days(win) else (win.start, win.end)
            for key, signature in sums_of(win_sums, kind, "waits", "changes").items():
                if not signature[0]:
                    continue
                cache_key = (store, win.site.name, win.site.timezone, device, kind, key, bounds)
                run = LOCAL_WAITS.get(cache_key, signature) if store is not None else None
                if run is None:
                    missing[index][(kind, key)] = (cache_key, signature)
                else:
                    known[index][(kind, key)] = run
    by_rows = [win for win, win_sums in zip(wins, sums, strict=True) if win_sums is None]
    order = sorted(missing)
    read = window_runs_many(db, [(wins[index], device) for index in order])
    for index, win_runs in zip(order, read, strict=True):
        win = wins[index]
        if win_runs is None:
            by_rows.append(win)
            del known[index]
            continue
        hours = hour_map(win.site.timezone, win.start, win.end)
        parts: dict[tuple[str, str], list[float]] = defaultdict(list)
        for utc_hour, run in win_runs:
            local = hours[utc_hour]
            parts[("day", local[:10])].extend(run)
            parts[("hour", local[11:])].extend(run)
        for group_key, (cache_key, signature) in missing[index].items():
            run = tuple(sorted(parts.get(group_key, ())))
            known[index][group_key] = run
            # Kept only when as many waits as the sums counted: no write came in between.
            if store is not None and len(run) == signature[0]:
                LOCAL_WAITS.put(cache_key, signature, run)
    for runs in known.values():
        for (kind, key), run in runs.items():
            if kind in local_groups:
                result[kind][key].extend(run)
            if kind == "day" and "all" in local_groups:
                result["all"][""].extend(run)
    return by_rows


def _whole_local_days(win: Window) -> bool:
    hours = hour_map(win.site.timezone, win.start, win.end)
    if not hours:
        return False
    first, last = next(iter(hours.values())), next(reversed(hours.values()))
    return first.endswith(" 00") and last.endswith(" 23")


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
    return _visit_counts(db, wins, group, device)[0]


def visit_counts_of_desks_and_sites(
    db: Database, wins: list[Window]
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """``visit_counts`` per desk and per site from the one read per desk."""
    return _visit_counts(db, wins, "device", None, sites=True)


def _visit_counts(db: Database, wins: list[Window], group: str, device: str | None,
                  sites: bool = False):
    result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_site: dict[str, list[int]] = defaultdict(lambda: [0, 0])
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

    for win, (hours, rows) in zip(wins, split(db, wins, rollup, from_rows), strict=True):
        for k, visits, checked_out in rows:
            if hours is not None:
                k = local_key(group, k, hours)
            for entry in (result[k], per_site[win.site.name]) if sites else (result[k],):
                entry[0] += visits
                entry[1] += checked_out
    return ({k: (v[0], v[1]) for k, v in result.items() if v[0]},
            {k: (v[0], v[1]) for k, v in per_site.items() if v[0]})


def visit_counts_by(
    db: Database, wins: list[Window], groups: tuple[str, ...], device: str | None = None,
    sums: list[LocalSums | None] | None = None,
) -> dict[str, dict[str, tuple[int, int]]]:
    """``visit_counts`` for several groupings by local time ('day', 'hour', 'all') from one
    rollup read for every window grouped by the database, or from ``sums``
    (``visit_local_sums`` of the same windows and device) without one."""
    result: dict[str, dict[str, list[int]]] = {g: defaultdict(lambda: [0, 0]) for g in groups}
    if sums is None:
        sums = visit_local_sums(db, wins, device)
    fallback = [win for win, win_sums in zip(wins, sums, strict=True) if win_sums is None]
    if fallback:
        for group in groups:
            for key, (visits, checked_out) in visit_counts(db, fallback, group, device).items():
                result[group][key][0] += visits
                result[group][key][1] += checked_out
    for win_sums in sums:
        if win_sums is None:
            continue
        for group in groups:
            for key, (visits, checked_out) in sums_of(
                    win_sums, group, "visits", "checked_out").items():
                entry = result[group][key]
                entry[0] += visits
                entry[1] += checked_out
    return {g: {k: (v[0], v[1]) for k, v in part.items() if v[0]} for g, part in result.items()}


def appointment_counts_in(
    db: Database, wins: list[Window], group: str, device: str | None = None,
    sums: list[LocalSums | None] | None = None,
) -> dict[str, dict]:
    """Per local day, desk or site, ``metrics.appointment_counts``: booked visits per arrival
    class, those called, and how many of them were seen within 15 minutes. From the hourly
    rollup's appointment counts where the window is whole local hours (a 90-day range is
    ~2,000 rows a site, not every visit), else counted by the database over the covering
    index; each kind for every window in one statement (``split``). ``sums``
    (``visit_local_sums`` of the same windows and device) stand for the rollup's read where the
    group is by local time (days, hours of the day, 'all')."""
    if sums is not None and group not in LOCAL_KEYS:
        raise ValueError(f"visit_local_sums are by local time: no {group!r} in them")
    return _appointment_counts(db, wins, group, device, sums)[0]


def appointment_counts_of_desks_and_sites(
    db: Database, wins: list[Window]
) -> tuple[dict[str, dict], dict[str, dict]]:
    """``appointment_counts_in`` per desk and per site from the one read per desk."""
    return _appointment_counts(db, wins, "device", None, None, sites=True)


def _appointment_counts(db: Database, wins: list[Window], group: str, device: str | None,
                        sums: list[LocalSums | None] | None, sites: bool = False):
    extra, params = device_clause(device)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_site: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
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

    if sums is not None:
        _add_local_appointments(sums, group, totals)
        # The windows of part-hour offsets, which have no sums, from their rows as below.
        wins = [win for win, win_sums in zip(wins, sums, strict=True) if win_sums is None]
    for win, (hours, rows) in zip(wins, split(db, wins, rollup, from_rows), strict=True):
        for row in rows:
            key = local_key(group, row[0], hours) if hours is not None else row[0]
            for entry in (totals[key], per_site[win.site.name]) if sites else (totals[key],):
                if hours is not None:
                    for name, n in zip(APPOINTMENT_NAMES, row[1:], strict=True):
                        entry[name] += n or 0
                    continue
                _, arrival, n, called, within = row
                entry[arrival] += n
                entry["called"] += called
                entry["within"] += within or 0
    return tuple({
        key: metrics.appointment_counts(counts, counts["called"], counts["within"])
        for key, counts in part.items()
        if any(counts.values())
    } for part in (totals, per_site))


# The appointment counts of ``metrics.appointment_counts``, and the rollup columns holding them.
APPOINTMENT_NAMES = ("early", "on_time", "late", "called", "within")
APPOINTMENT_SUMS = tuple(f"appt_{name}" for name in APPOINTMENT_NAMES)


def _add_local_appointments(sums: list[LocalSums | None], group: str, totals) -> None:
    """``visit_local_sums``' appointment counts of ``group`` added to ``appointment_counts_in``'s
    totals."""
    for win_sums in sums:
        if win_sums is None:
            continue
        for key, counts in sums_of(win_sums, group, *APPOINTMENT_SUMS).items():
            entry = totals[key]
            for name, n in zip(APPOINTMENT_NAMES, counts, strict=True):
                entry[name] += n or 0
