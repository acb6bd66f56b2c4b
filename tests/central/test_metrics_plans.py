"""The metrics API reads visits as ranges of an index that starts with the site and the
check-in time: a query SQLite answers from another index (or by a scan) reads every visit of a
site, which is how the 28-day figures once went from 71 ms to 952 ms on a million rows."""

from __future__ import annotations

from datetime import timedelta

from kiosk.shared.timeutil import utc_now
from sync.central.dashboard import demo
from sync.central.metrics_query import MetricsQuery, compute_metrics
from sync.central.storage import CentralStore


def test_visits_still_waiting_are_read_as_a_range_on_site_and_check_in(tmp_path):
    store = CentralStore(tmp_path)
    # Above 50,000 visits the demo is bulk-written and ANALYZEd, as a large store is: with those
    # statistics SQLite once judged "site = ? AND checked_out_at IS NULL" a one-row search.
    demo.fill(store, days=28, visits=60_000)
    db = store.db
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
