"""A process-wide cache of each UTC hour's sorted values of one ``visits`` column, for the
percentiles of long ranges: the dashboard's waits (``dashboard/wait_cache.py``) and the
appointment-aware figures of ``/api/v1/metrics`` (adjusted waits, chair times).

One class, used three times with a column, the ``visit_hours`` column that counts its values
per hour, and the rows' condition: an hour is read again only when its ``visit_hours`` row says
it changed (``changes`` is bumped by the rollup triggers on every visit of the hour added,
removed or edited), so a 28-day range reads from the database only the hours that changed since
the last look. Without it each request brought every value of the range into Python (benchmark
figure 6, "metrics API (28 days)").

Memory: each instance holds at most ``max_values`` values (2 million by default, about 32 bytes
each as floats in tuples: some 64 MB), evicting the oldest-read hours first; three instances,
so at most about 200 MB per process (README, "Performance").
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta

from sqlite_utils import Database

# The visits every figure counts (not voided or cancelled); ``figures.COUNTED_VISIT`` is this.
COUNTED_VISIT = "voided = 0 AND cancel_reason IS NULL"
HOUR = timedelta(hours=1)


def next_hour(hour: str) -> str:
    """'2026-11-23T09' -> '2026-11-23T10': the rollups' key of the following UTC hour (a
    bound every timestamp of the hour sorts below)."""
    moment = datetime.fromisoformat(hour + ":00+00:00") + HOUR
    return moment.strftime("%Y-%m-%dT%H")


class HourRuns:
    """Sorted values of ``column`` per (store, site, desk, UTC hour), checked against the
    rollup's ``count_column`` and ``changes`` before use."""

    def __init__(self, column: str, count_column: str, where: str, max_values: int = 2_000_000):
        self.column = column
        self.count_column = count_column
        # The rows the values come from, as a covering partial index holds them.
        self.where = (f"site = ? AND checked_in_at >= ? AND checked_in_at < ? "
                      f"AND {COUNTED_VISIT} AND {where}")
        self.max_values = max_values
        self._runs: dict[tuple, tuple[int, int, tuple[float, ...]]] = {}
        self._values = 0
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self._values = 0

    def rows(self, db: Database, site: str, start: str, end: str, extra: str,
             params: list) -> list[float]:
        """The values of the rows checked in within [start, end), straight from the table."""
        return [value for (value,) in db.execute(
            f"SELECT {self.column} FROM visits WHERE {self.where} {extra}",
            [site, start, end, *params])]

    def hours(self, db: Database, site: str, first: str, last: str, extra: str,
              params: list) -> list[float] | None:
        """The values of the whole UTC hours [first, last) ('2026-11-23T09' keys), hour by
        hour, each hour's sorted; None when the rows do not match the rollup (read the rows)."""
        runs = self.runs(db, site, first, last, extra, params)
        if runs is None:
            return None
        result: list[float] = []
        for _, run in runs:
            result += run
        return result

    def runs(self, db: Database, site: str, first: str, last: str, extra: str,
             params: list) -> list[tuple[str, tuple[float, ...]]] | None:
        """(UTC hour, its sorted values) for the hours [first, last) that have values, in
        order; None when the rows do not match the rollup (read the rows instead)."""
        per_hour = db.execute(
            f"SELECT hour, SUM({self.count_column}), SUM(changes) FROM visit_hours "
            f"WHERE site = ? AND hour >= ? AND hour < ? {extra} GROUP BY hour "
            f"HAVING SUM({self.count_column}) > 0 ORDER BY hour",
            [site, first, last, *params],
        ).fetchall()
        store = _database_identity(db)
        base = (store, site, extra, *params)
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
            # index's order); the rollup says how many values each hour holds, so each hour is
            # a slice, sorted on its own.
            span = per_hour[stale[0]: stale[-1] + 1]
            values = [value for (value,) in db.execute(
                f"SELECT {self.column} FROM visits WHERE {self.where} {extra} "
                "ORDER BY checked_in_at",
                [site, f"{span[0][0]}:00:00.000Z", f"{next_hour(span[-1][0])}:00:00.000Z",
                 *params],
            )]
            if sum(n for _, n, _ in span) != len(values):
                return None
            offset = 0
            for hour, n, changes in span:
                known[hour] = run = tuple(sorted(values[offset: offset + n]))
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


def _database_identity(db: Database) -> tuple | None:
    """The database file (path, inode): the cache's key, so two stores never share hours."""
    path = db.execute("PRAGMA database_list").fetchone()[2]
    if not path:
        return None  # in memory: nothing to key a cache on
    try:
        return (path, os.stat(path).st_ino)
    except OSError:
        return None


ADJUSTED_RUNS = HourRuns("adjusted_wait_min", "appt_called",
                         "arrival IS NOT NULL AND adjusted_wait_min IS NOT NULL")
CHAIR_RUNS = HourRuns("chair_min", "appt_chair", "chair_min IS NOT NULL")
