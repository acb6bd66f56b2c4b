"""The process-wide cache of each UTC hour's sorted waits, so a dashboard page reads from the
database only the hours that changed since the last look (typically the current one).

Kept apart from the readers because it is the one piece of state the dashboard holds between
requests: its correctness rests on the ``visit_hours.changes`` counter (migration 3).
"""

from __future__ import annotations

import os
import threading

from sqlite_utils import Database

from sync.central.dashboard.windows import Window
from sync.central.figures import COUNTED_VISIT, device_clause, next_hour

# The called visits checked in within a window: the waits the percentiles need.
WAITS_WHERE = (
    f"site = ? AND checked_in_at >= ? AND checked_in_at < ? AND {COUNTED_VISIT} "
    "AND wait_min IS NOT NULL"
)


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
        extra, extra_params = device_clause(device)
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
