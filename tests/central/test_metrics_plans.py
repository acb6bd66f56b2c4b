"""The metrics API reads visits as ranges of an index that starts with the site and the
check-in time: a query SQLite answers from another index (or by a scan) reads every visit of a
site, which is how the 28-day figures once went from 71 ms to 952 ms on a million rows."""

from __future__ import annotations

from datetime import timedelta

from kiosk.shared.timeutil import utc_now
from sync.central.dashboard import demo
from sync.central.metrics_query import MetricsQuery, compute_metrics
from sync.central.storage import CentralStore

# What ANALYZE wrote for ``visits`` in a 60,000-visit demo store (61,546 rows:
# ``demo.fill(store, days=28, visits=60_000)``, then ``SELECT idx, stat FROM sqlite_stat1``).
# SQLite plans from these figures, not from the rows: a small store given them is planned as
# that large one, so the plan is checked without filling 60,000 visits (20 s). With these
# statistics SQLite once judged "site = ? AND checked_out_at IS NULL" a one-row search on the
# (site, checked_out_at) index.
LARGE_STORE_VISIT_STATS = {
    "idx_visits_appointments": "41544 20772 1 1 1 1 1 1",
    "idx_visits_chair": "59588 29794 1 1 1 1 1",
    "idx_visits_checked_in_at": "61546 1",
    "idx_visits_desk_waits": "59649 29825 11930 1 1 1 1",
    "idx_visits_device_id_checked_in_at": "61546 12310 1",
    "idx_visits_site_checked_in_at": "61546 30773 1",
    "idx_visits_site_checked_out_at": "61546 30773 1",
    "idx_visits_waits": "59649 29825 1 1 1 1 1",
    "sqlite_autoindex_visits_1": "61546 1",
}


def _plan_as_a_large_store(db) -> None:
    db.execute("ANALYZE")
    indexes = {row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'visits'")}
    # An index added since these figures were taken would be planned from the small store's
    # own figures, and this test would no longer say what it claims: take them again then.
    assert indexes == set(LARGE_STORE_VISIT_STATS), sorted(indexes ^ set(LARGE_STORE_VISIT_STATS))
    with db.conn:
        db.conn.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'visits'")
        db.conn.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('visits', ?, ?)",
                            LARGE_STORE_VISIT_STATS.items())
    db.execute("ANALYZE sqlite_schema")  # SQLite reads sqlite_stat1 again


def test_visits_still_waiting_are_read_as_a_range_on_site_and_check_in(tmp_path):
    store = CentralStore(tmp_path)
    demo.fill(store, days=28, visits=2_000)
    db = store.db
    _plan_as_a_large_store(db)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    now = utc_now()
    for days in (1, 28):
        query = MetricsQuery(site=None, device=None, start=now - timedelta(days=days), end=now)
        compute_metrics(db, query, now)
    db.conn.set_trace_callback(None)
    # The read of visits still waiting: the one with a condition another index could serve.
    visit_reads = [s for s in statements if "FROM visits" in s and "called_at IS NULL" in s]
    assert visit_reads
    for statement in visit_reads:
        plan = " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}"))
        assert "checked_in_at>" in plan or "checked_in_at>=" in plan, (statement, plan)
        assert "SCAN visits" not in plan and "checked_out_at" not in plan, (statement, plan)
    store.close()
