"""The dashboard's process-wide caches of sorted waits: each UTC hour's, so a page reads from
the database only the hours that changed since the last look (typically the current one); and
each local day's and local hour of the day's, so a page whose groups did not change reads no
hour at all (a 90-day range of 20 sites is tens of thousands of hours: benchmark figure 16).

Kept apart from the readers because it is the one piece of state the dashboard holds between
requests: its correctness rests on the ``visit_hours.changes`` counter (migration 3). The
cache itself is ``hour_runs.HourRuns``, the same class the API's appointment figures use.
"""

from __future__ import annotations

from sqlite_utils import Database

from sync.central.dashboard.windows import Window
from sync.central.figures import device_clause
from sync.central.hour_runs import WAIT_RUNS, SortedRuns

# Each hour's waits of the called visits, counted per hour by visit_hours.waits (``WAIT_RUNS``,
# shared with the API's figures).
# The called visits checked in within a window: the waits the percentiles need.
WAITS_WHERE = WAIT_RUNS.where
# Each (store, site, zone, desk, 'day' or 'hour', local key, window for 'hour') group's sorted
# waits, checked against the group's SUM(waits) and SUM(changes) of visit_hours (of
# site_visit_hours for a whole site: the desk is part of the key), which the page reads
# grouped anyway (``readers.visit_local_sums``).
LOCAL_WAITS = SortedRuns()


def window_runs_many(
    db: Database, wanted: list[tuple[Window, str | None]],
    per_hours: list[list[tuple]] | None = None,
) -> list[list[tuple[str, tuple[float, ...]]] | None]:
    """(UTC hour, its sorted waits) for the hours that have waits, in order, of each (window,
    desk or None), in order; None for one whose rows do not match the rollup (read the rows
    instead). Two statements whatever their number (``HourRuns.runs_many``); one when the
    caller has read each one's (hour, SUM(waits), SUM(changes)) already (``per_hours``)."""
    asked = []
    for win, device in wanted:
        extra, params = device_clause(device)
        asked.append((win.site.name, win.start[:13], win.end[:13], extra, params))
    return WAIT_RUNS.runs_many(db, asked, per_hours)


def window_waits_many(
    db: Database, wanted: list[tuple[Window, str | None]],
) -> list[tuple[float, ...] | None]:
    """The sorted waits of each (window, desk or None), in order, kept per window against its
    rollup sums (``HourRuns.ranges_many``: Compare's 80 desks asked again unchanged cost one
    statement, not 80 desks' hours); None for one whose rows do not match the rollup."""
    asked = []
    for win, device in wanted:
        extra, params = device_clause(device)
        asked.append((win.site.name, win.start[:13], win.end[:13], extra, params))
    return WAIT_RUNS.ranges_many(db, asked)
