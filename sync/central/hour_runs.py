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

from sync.central.batched import each
from sync.central.rollups import count_sum

# The visits every figure counts (not voided or cancelled); ``figures.COUNTED_VISIT`` is this.
COUNTED_VISIT = "voided = 0 AND cancel_reason IS NULL"
HOUR = timedelta(hours=1)
# What one read of runs asks for: (site, first hour, last hour, extra SQL, its parameters).
RunsWanted = tuple[str, str, str, str, list]


def next_hour(hour: str) -> str:
    """'2026-11-23T09' -> '2026-11-23T10': the rollups' key of the following UTC hour (a
    bound every timestamp of the hour sorts below)."""
    moment = datetime.fromisoformat(hour + ":00+00:00") + HOUR
    return moment.strftime("%Y-%m-%dT%H")


class SortedRuns:
    """Sorted runs of values by key, each kept with the signature it was read under (the
    rollup's counts of its rows): a run is given back only for the same signature. At most
    ``max_values`` values in all, each run counted as ``ENTRY_COST`` values more (its key,
    signature and slot: a run of one value costs as much as some 15 values), the oldest-stored
    runs evicted first; safe across threads."""

    ENTRY_COST = 16

    def __init__(self, max_values: int = 2_000_000):
        self.max_values = max_values
        self._runs: dict[tuple, tuple[tuple, tuple[float, ...]]] = {}
        self._values = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._runs)

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self._values = 0

    def get(self, key: tuple, signature: tuple) -> tuple[float, ...] | None:
        entry = self._runs.get(key)
        return entry[1] if entry is not None and entry[0] == signature else None

    def put(self, key: tuple, signature: tuple, run: tuple[float, ...]) -> None:
        with self._lock:
            old = self._runs.pop(key, None)
            self._values += self._cost(run) - (self._cost(old[1]) if old else 0)
            self._runs[key] = (signature, run)
            while self._values > self.max_values and self._runs:
                evicted = self._runs.pop(next(iter(self._runs)))
                self._values -= self._cost(evicted[1])

    def _cost(self, run: tuple[float, ...]) -> int:
        return len(run) + self.ENTRY_COST


class HourRuns:
    """Sorted values of ``column`` per (store, site, desk, UTC hour), checked against the
    rollup's ``count_column`` and ``changes`` before use."""

    def __init__(self, column: str, count_column: str, where: str, max_values: int = 2_000_000):
        self.column = column
        self.count_column = count_column
        # The rows the values come from, as a covering partial index holds them.
        self.where = (f"site = ? AND checked_in_at >= ? AND checked_in_at < ? "
                      f"AND {COUNTED_VISIT} AND {where}")
        self._runs = SortedRuns(max_values)
        # Whole ranges' merged runs: the same value objects as the hours', so a pointer each.
        self._ranges = SortedRuns(max_values)

    def __len__(self) -> int:
        return len(self._runs)

    def clear(self) -> None:
        self._runs.clear()
        self._ranges.clear()

    def rows_select(self, site: str, start: str, end: str, extra: str,
                    params: list) -> tuple[str, list]:
        """The SELECT (and parameters) of the values of the rows checked in within
        [start, end), to read many ranges at once (``batched.each``)."""
        return (f"SELECT {self.column} FROM visits WHERE {self.where} {extra}",
                [site, start, end, *params])

    def hours_many(self, db: Database, wanted: list[RunsWanted]) -> list[list[float] | None]:
        """The values of each (site, first, last, extra, params)'s whole UTC hours
        [first, last) ('2026-11-23T09' keys), hour by hour, each hour's sorted; None where the
        rows do not match the rollup (read the rows instead). Two statements in all."""
        result: list[list[float] | None] = []
        for runs in self.runs_many(db, wanted):
            result.append(None if runs is None else [value for _, run in runs for value in run])
        return result

    def ranges_many(self, db: Database, wanted: list[RunsWanted],
                    signatures: list[tuple[int, int]] | None = None,
                    ) -> list[list[float] | None]:
        """``hours_many``'s values of each range, sorted as one run, each range's run kept with
        the range's SUM(count_column) and SUM(changes): a range asked for again unchanged (a
        report polled, a page reloaded) reads no hour's row (benchmark figure 16, "metrics API
        (28 days)"); the others go to ``hours_many``. ``signatures``: those two sums of each
        range, read by the caller with its own sums (``signature_sql``); else one statement
        reads them for every range."""
        if not wanted:
            return []
        store = database_identity(db)
        if signatures is None:
            signatures = [rows[0] if rows else (0, 0) for rows in each(db, [(
                f"SELECT {self.signature_sql()} FROM visit_hours "
                f"WHERE site = ? AND hour >= ? AND hour < ? {extra}",
                [site, first, last, *params],
            ) for site, first, last, extra, params in wanted])]
        # A SUM over no hour is NULL: nothing counted.
        signatures = [tuple(n or 0 for n in signature) for signature in signatures]
        result: list[list[float] | tuple[float, ...] | None] = []
        missing: list[int] = []
        for index, (asked, signature) in enumerate(zip(wanted, signatures, strict=True)):
            site, first, last, extra, params = asked
            run = None
            if not signature[0]:
                run = ()  # the rollup counts no value in the range
            elif store is not None:
                run = self._ranges.get((store, site, first, last, extra, *params), signature)
            if run is None:
                missing.append(index)
            result.append(run)
        for index, values in zip(missing, self.hours_many(db, [wanted[i] for i in missing]),
                                 strict=True):
            if values is None:
                continue  # the rows disagree with the rollup: the caller reads them
            run = result[index] = tuple(sorted(values))
            site, first, last, extra, params = wanted[index]
            signature = signatures[index]
            if store is not None and len(run) == signature[0]:  # no write came in between
                self._ranges.put((store, site, first, last, extra, *params), signature, run)
        return result

    def signature_sql(self) -> str:
        """The two sums of ``visit_hours`` a range's run is kept with (``ranges_many``)."""
        return f"{count_sum(self.count_column)}, {count_sum('changes')}"

    def runs_many(self, db: Database, wanted: list[RunsWanted],
                  per_hours: list[list[tuple]] | None = None,
                  ) -> list[list[tuple[str, tuple[float, ...]]] | None]:
        """Per (site, first, last, extra, params), in order: (UTC hour, its sorted values) for
        the hours [first, last) that have values, in order, or None when the rows do not match
        the rollup (read the rows instead). The rollup's hours of all of them in one statement,
        then the values of every hour not cached in one more (``batched.each``), so Compare's
        80 desks cost two round trips, not 160.

        ``per_hours``: the rollup's hours already read by the caller (with other sums, in one
        read the page shares), each wanted's (hour, SUM(count_column), SUM(changes)) rows in
        the order of ``wanted``; then only the values are read."""
        if per_hours is None:
            per_hours = self._read_hours(db, wanted)
        else:
            # As the statement's HAVING would: an hour without values has no run.
            per_hours = [[row for row in rows if row[1] > 0] for rows in per_hours]
        store = database_identity(db) if wanted else None
        known: list[dict[str, tuple[float, ...]]] = []
        reads: list[tuple[int, list[tuple]]] = []  # (index in wanted, the hours read again)
        for index, ((site, _, _, extra, params), per_hour) in enumerate(
                zip(wanted, per_hours, strict=True)):
            per_hour.sort()
            base = (store, site, extra, *params)
            known.append({})
            stale = []
            for at, (hour, n, changes) in enumerate(per_hour):
                cached = self._runs.get((*base, hour), (n, changes))
                if cached is not None:
                    known[index][hour] = cached
                else:
                    stale.append(at)
            if stale:
                # From the first stale hour to the last: one range scan of the covering index.
                reads.append((index, per_hour[stale[0]: stale[-1] + 1]))
        values = each(db, [(
            f"SELECT substr(checked_in_at, 1, 13), {self.column} FROM visits "
            f"WHERE {self.where} {wanted[index][3]}",
            [wanted[index][0], f"{span[0][0]}:00:00.000Z", f"{next_hour(span[-1][0])}:00:00.000Z",
             *wanted[index][4]],
        ) for index, span in reads])
        failed = set()
        for (index, span), found in zip(reads, values, strict=True):
            per_hour_values: dict[str, list[float]] = {}
            for hour, value in found:
                per_hour_values.setdefault(hour, []).append(value)
            # The rollup says how many values each hour holds: any other count means the rows
            # and the rollup disagree (a write in between, a repair to come): read the rows.
            if len(found) != sum(n for _, n, _ in span) or any(
                    len(per_hour_values.get(hour, ())) != n for hour, n, _ in span):
                failed.add(index)
                continue
            site, _, _, extra, params = wanted[index]
            for hour, n, changes in span:
                known[index][hour] = run = tuple(sorted(per_hour_values[hour]))
                if store is not None:
                    self._runs.put((store, site, extra, *params, hour), (n, changes), run)
        return [None if index in failed else [(hour, known[index][hour]) for hour, _, _ in per_hour]
                for index, per_hour in enumerate(per_hours)]

    def _read_hours(self, db: Database, wanted: list[RunsWanted]) -> list[list[tuple]]:
        """Each wanted's (hour, SUM(count_column), SUM(changes)) for its hours with values."""
        return each(db, [(
            f"SELECT hour, {count_sum(self.count_column)}, {count_sum('changes')} FROM visit_hours "
            f"WHERE site = ? AND hour >= ? AND hour < ? {extra} GROUP BY hour "
            f"HAVING SUM({self.count_column}) > 0",
            [site, first, last, *params],
        ) for site, first, last, extra, params in wanted])


def database_identity(db: Database) -> tuple | None:
    """The database file (path, inode), or PostgreSQL's database (``PgDatabase.cache_key``):
    the cache's key, so two stores never share hours."""
    cache_key = getattr(db, "cache_key", None)
    if cache_key is not None:
        return cache_key
    path = db.execute("PRAGMA database_list").fetchone()[2]
    if not path:
        return None  # in memory: nothing to key a cache on
    try:
        return (path, os.stat(path).st_ino)
    except OSError:
        return None


# The waits of the called visits: the dashboard's (``dashboard/wait_cache.py``) and the API's.
WAIT_RUNS = HourRuns("wait_min", "waits", "wait_min IS NOT NULL")
ADJUSTED_RUNS = HourRuns("adjusted_wait_min", "appt_called",
                         "arrival IS NOT NULL AND adjusted_wait_min IS NOT NULL")
CHAIR_RUNS = HourRuns("chair_min", "appt_chair", "chair_min IS NOT NULL")
