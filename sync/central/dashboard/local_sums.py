"""A rollup's sums per local day and per local hour of the day, grouped in the database, with
the settled part of a per-site window kept between requests.

Trends over 90 days groups every hour of 20 sites' windows by local day and hour of the day:
on the 10-million-event store the two grouped reads of the per-site rollups were about 90 ms
of a page with a 200 ms budget (README, figure 16), and all but the last day or two of those
hours never change. So a window of a per-site rollup (``rollups.SITE_ROLLUP_KEYS``) is read
in two parts: the hours before ``settled_from`` (the start of yesterday, UTC), kept in
``SETTLED`` against the part's row count and SUM(changes) (one small read for every window
at once), and the recent hours, read every time. The triggers bump ``changes`` on every row
they touch and never delete one, so a late batch from a kiosk that was offline, a corrected
wait or a re-paired rating in the settled part changes its signature, and it is read again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from sqlite_utils import Database

from kiosk.shared.timeutil import utc_now
from sync.central.batched import each
from sync.central.dashboard.windows import Window, local_group_sql, shifted_day
from sync.central.figures import device_clause
from sync.central.hour_runs import database_identity
from sync.central.rollups import SITE_ROLLUP_KEYS, count_sum


@dataclass(frozen=True)
class LocalSums:
    """One window's rollup sums per local day ('YYYY-MM-DD') and per local hour of the day
    ('HH'), as the database grouped them (``local_sums``)."""

    day: dict[str, tuple[int, ...]]
    hour: dict[str, tuple[int, ...]]

    def of(self, group: str) -> dict[str, tuple[int, ...]]:
        """'day', 'hour', or 'all' (every day's sums added up, keyed '')."""
        if group == "all":
            return {"": _added(self.day.values())} if self.day else {}
        return self.day if group == "day" else self.hour

    def plus(self, other: LocalSums) -> LocalSums:
        """Both parts' sums added up key by key (neither is changed: one may be cached)."""
        return LocalSums(_merged(self.day, other.day), _merged(self.hour, other.hour))


def _added(rows) -> tuple[int, ...]:
    # A FILTERed SUM over no row is NULL: none of that count.
    return tuple(sum(n or 0 for n in column) for column in zip(*rows, strict=True))


def _merged(one: dict, other: dict) -> dict:
    merged = dict(one)
    for key, counts in other.items():
        merged[key] = _added((merged[key], counts)) if key in merged else counts
    return merged


class SettledSums:
    """The settled part's ``LocalSums`` of recently asked windows, each with the signature it
    was read under and the cut it ends at. Bounded by size: an entry costs its values (every
    count of every day and hour of the day) plus ``ENTRY_COST`` for its keys and slots; the
    least recently used go first beyond ``capacity``. When the cut moves on (each UTC
    midnight), the entries of older cuts are dropped: no window will ask for them again.
    Pages are served from a thread pool, hence the lock."""

    ENTRY_COST = 64

    def __init__(self, capacity: int = 2_000_000) -> None:
        self.capacity = capacity
        self.cost = 0
        self._cut = ""
        self._kept: OrderedDict[tuple, tuple[tuple, LocalSums, int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, signature: tuple) -> LocalSums | None:
        with self._lock:
            found = self._kept.get(key)
            if found is None or found[0] != signature:
                return None
            self._kept.move_to_end(key)
            return found[1]

    def put(self, key: tuple, signature: tuple, sums: LocalSums, cut: str) -> None:
        cost = self.ENTRY_COST + sum(len(counts) + 2 for part in (sums.day, sums.hour)
                                     for counts in part.values())
        with self._lock:
            if cut > self._cut:
                self._cut = cut
                for old in [k for k, (_, _, _, c) in self._kept.items() if c != cut]:
                    self.cost -= self._kept.pop(old)[2]
            elif cut < self._cut:
                return  # a request that began before midnight: nothing will ask for it again
            if key in self._kept:
                self.cost -= self._kept.pop(key)[2]
            self._kept[key] = (signature, sums, cost, cut)
            self.cost += cost
            while self.cost > self.capacity and self._kept:
                self.cost -= self._kept.popitem(last=False)[1][2]

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self.cost = 0
            self._cut = ""


SETTLED = SettledSums()


def settled_from() -> str:
    """The first hour read afresh on every request: the start of yesterday, UTC (the hours a
    kiosk's open visits and today's ratings still change, with a day to spare)."""
    return (utc_now() - timedelta(days=1)).strftime("%Y-%m-%dT00")


def local_sums(
    db: Database, wins: list[Window], table: str, sums: list[tuple[str, str | None]],
    device: str | None = None, counted: str | None = None,
) -> list[LocalSums | None]:
    """Per window, in order: the rollup ``table``'s ``sums`` (each a column and an optional
    FILTER condition, ``rollups.count_sum``) per local day and hour of the day, or None for a
    window not made of whole local hours (its rows are read instead). ``counted``: a column
    whose hour's sum must be above 0 (an hour it drops counts nowhere).

    A per-site rollup's windows keep their settled part (the module's docstring): two
    statements whatever the number of windows, the signatures and then the parts to read.
    Any other rollup is read whole, every window in one statement."""
    groupings = [local_group_sql(win) for win in wins]
    store = database_identity(db)
    if table not in SITE_ROLLUP_KEYS or store is None:
        parts = [(index, win.start[:13], win.end[:13]) for index, win in enumerate(wins)
                 if groupings[index] is not None]
        read = _read(db, wins, groupings, parts, table, sums, device, counted)
        return [read.get(index) if grouping is not None else None
                for index, grouping in enumerate(groupings)]
    cut = settled_from()
    settled = [(index, win.start[:13], min(cut, win.end[:13]))
               for index, win in enumerate(wins)
               if groupings[index] is not None and win.start[:13] < cut]
    signatures = each(db, [(
        f"SELECT COUNT(*), {count_sum('changes')} FROM {table} "
        "WHERE site = ? AND hour >= ? AND hour < ?", [wins[index].site.name, start, end],
    ) for index, start, end in settled])
    kept: dict[int, LocalSums] = {}
    wanted: dict[int, tuple] = {}
    parts = []
    for (index, start, end), rows in zip(settled, signatures, strict=True):
        win = wins[index]
        key = (store, table, tuple(sums), counted, win.site.name, win.site.timezone,
               win.start, win.end, end)
        signature = tuple(rows[0])
        found = SETTLED.get(key, signature)
        if found is not None:
            kept[index] = found
        else:
            wanted[index] = (key, signature)
            parts.append((index, start, end))
    # The recent part of every window, under its own index (negative: never a settled one's).
    recent = [(-1 - index, max(cut, win.start[:13]), win.end[:13])
              for index, win in enumerate(wins)
              if groupings[index] is not None and win.end[:13] > cut]
    read = _read(db, wins, groupings, parts + recent, table, sums, device, counted)
    for index, (key, signature) in wanted.items():
        kept[index] = read.get(index, LocalSums({}, {}))
        SETTLED.put(key, signature, kept[index], cut)
    result: list[LocalSums | None] = []
    for index, grouping in enumerate(groupings):
        if grouping is None:
            result.append(None)
            continue
        whole = kept.get(index, LocalSums({}, {}))
        fresh = read.get(-1 - index)
        result.append(whole.plus(fresh) if fresh is not None else whole)
    return result


def _read(
    db: Database, wins: list[Window], groupings: list, parts: list[tuple[int, str, str]],
    table: str, sums: list[tuple[str, str | None]], device: str | None, counted: str | None,
) -> dict[int, LocalSums]:
    """Each part's (window index, first hour, end hour) sums, in one statement.

    The database does the grouping, so a window's thousands of hourly rows never reach
    Python: first per UTC hour, which follows the rollup's key order (a streamed aggregate,
    no sort), into a MATERIALIZED CTE read twice, by local day and by local hour of the day
    (``windows.local_group_sql``, the window's own DST stretches, right for any hours of it).
    Grouping the rows by the local keys directly sorted every row: on the 10-million-event
    store that doubled the read (benchmark figure 16). A per-site rollup already holds one
    row per hour: its columns are read as they are (``sums`` without conditions), since
    grouping them again costs SQLite an aggregate per row (a third of that read)."""
    extra, params = device_clause(device)
    if table in SITE_ROLLUP_KEYS:
        if device is not None or any(where for _, where in sums):
            raise ValueError(f"{table} holds every desk's hour as one row: no filter applies")
        inner = ", ".join(f"{column} AS s{i}" for i, (column, _) in enumerate(sums))
        per_hour = f"AND {counted} > 0" if counted else ""
    else:
        inner = ", ".join(f"{count_sum(column, where)} AS s{i}"
                          for i, (column, where) in enumerate(sums))
        per_hour = f"GROUP BY hour HAVING SUM({counted}) > 0" if counted else "GROUP BY hour"
    outer = ", ".join(count_sum(f"s{i}") for i in range(len(sums)))
    selects = []
    for index, start, end in parts:
        win = wins[index if index >= 0 else -1 - index]
        day_shift, hour_of_day = groupings[index if index >= 0 else -1 - index]
        selects.append((
            f"SELECT * FROM (WITH per_hour AS MATERIALIZED (SELECT hour, {inner} FROM {table} "
            f"WHERE site = ? AND hour >= ? AND hour < ? {extra} {per_hour}) "
            # Same columns in both halves (text, number, sums...): a day's row has its UTC
            # day, an hour of the day's row ''.
            f"SELECT substr(hour, 1, 10), {day_shift}, {outer} FROM per_hour GROUP BY 1, 2 "
            f"UNION ALL SELECT '', {hour_of_day}, {outer} FROM per_hour GROUP BY 2) AS local",
            [win.site.name, start, end, *params]))
    result: dict[int, LocalSums] = {}
    for (index, _, _), rows in zip(parts, each(db, selects), strict=True):
        days: dict[str, tuple[int, ...]] = {}
        hours: dict[str, tuple[int, ...]] = {}
        for utc_day, key, *counts in rows:
            if not utc_day:
                hours[f"{key:02d}"] = tuple(counts)
                continue
            day = shifted_day(utc_day, key)
            # A local day is made of parts of two UTC days: add them up.
            days[day] = _added((days[day], counts)) if day in days else tuple(counts)
        result[index] = LocalSums(days, hours)
    return result
