"""How many SQL statements each dashboard page and metrics call sends to the store: on
PostgreSQL each is a loopback round trip, so a page's count is its floor there (figure 16).

``python -m tests.benchmarks.statement_counts DATA_DIR`` (a SQLite store, e.g. figure 16's
``DASHBOARD_10M_DATA/sqlite``) prints each read's count twice: cold (the per-hour caches
empty, as the first read after a start is) and warm (read again at
once). ``PRAGMA`` statements are left out: PostgreSQL's adapter answers them in-process.
The readers are called as the routes call them, on a :class:`CountingDb` that wraps the
store's connection; the route's own few statements (the session, the device names) are not
counted.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from kiosk.shared.timeutil import utc_now
from sync.central.dashboard import local_sums, panels, wait_cache
from sync.central.hour_runs import ADJUSTED_RUNS, CHAIR_RUNS
from sync.central.metrics_query import MetricsQuery, compute_metrics
from sync.central.sites import list_sites
from sync.central.storage import CentralStore


class CountingDb:
    """A store connection that counts the statements sent through it (PRAGMAs left out)."""

    def __init__(self, db):
        self._db = db
        self.statements = 0
        self.sql: list[str] = []  # each counted statement, to tell which tables a read reads

    def _count(self, sql: str) -> None:
        if not sql.lstrip().upper().startswith("PRAGMA"):
            self.statements += 1
            self.sql.append(sql)

    def execute(self, sql, params=None):
        self._count(sql)
        return self._db.execute(sql, params) if params is not None else self._db.execute(sql)

    def query(self, sql, params=None):
        self._count(sql)
        return self._db.query(sql, params) if params is not None else self._db.query(sql)

    def __getattr__(self, name):
        return getattr(self._db, name)


def clear_caches() -> None:
    for cache in (wait_cache.WAIT_RUNS, wait_cache.LOCAL_WAITS, ADJUSTED_RUNS, CHAIR_RUNS,
                  local_sums.SETTLED):
        cache.clear()


def reads(db) -> list[tuple[str, object]]:
    """(name, a call of ``db``) for every read the figure-16 pages and API calls make."""
    now = utc_now()
    today = now.date()
    sites = list_sites(db)
    first = today - timedelta(days=27)
    ninety = today - timedelta(days=89)
    names = {row[0]: row[1] for row in db.execute("SELECT id, name FROM devices")}
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        ("Today", lambda d: (panels.today(d, sites, None, now),
                             panels.live_queue(d, sites, None, now))),
        ("Trends (28 days)", lambda d: panels.trends(d, sites, first, today, None)),
        ("Trends (90 days)", lambda d: panels.trends(d, sites, ninety, today, None)),
        ("Rating by wait", lambda d: panels.rating_by_wait(d, sites, first, today, None)),
        ("Follow-up reasons", lambda d: panels.followup_reasons(d, sites, first, today, None)),
        ("Compare", lambda d: panels.compare(d, sites, first, today, names)),
        ("metrics API (24 h)", lambda d: compute_metrics(
            d, MetricsQuery(now - timedelta(hours=24), now), now)),
        ("metrics API (28 days)", lambda d: compute_metrics(
            d, MetricsQuery(day_start - timedelta(days=27), day_start + timedelta(days=1)), now)),
    ]


def count(db) -> list[tuple[str, int, int]]:
    """(read, statements cold, statements warm) for each read of :func:`reads`."""
    result = []
    for name, call in reads(db):
        clear_caches()
        cold = CountingDb(db)
        call(cold)
        warm = CountingDb(db)
        call(warm)
        result.append((name, cold.statements, warm.statements))
    clear_caches()
    return result


def main(data_dir: str) -> None:
    store = CentralStore(Path(data_dir))
    try:
        print(f"{'read':<24} {'cold':>6} {'warm':>6}")
        for name, cold, warm in count(store.db):
            print(f"{name:<24} {cold:>6} {warm:>6}")
    finally:
        store.close()


if __name__ == "__main__":
    main(sys.argv[1])
