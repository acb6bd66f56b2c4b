"""The API's waits, adjusted waits and chair times of whole hours come from sorted runs kept per
range (``hour_runs.HourRuns.ranges_many``), checked against the range's rollup sums: asked
again unchanged, the figures are the same without reading a visit; after a correction, they
are the figures read cold."""

from __future__ import annotations

from datetime import timedelta

from sync.central import auth
from sync.central.ingest import ingest_batch
from sync.central.metrics_query import MetricsQuery, compute_metrics
from tests.benchmarks.statement_counts import CountingDb, clear_caches
from tests.support.appointments import morning_events
from tests.support.wire_events import MORNING, WireEvents, at

NOW = MORNING + timedelta(hours=5)
# Whole hours, so every figure but the current waits comes from the rollups and the runs.
QUERY = MetricsQuery(MORNING - timedelta(hours=1), MORNING + timedelta(hours=4))


def _cold(db) -> dict:
    clear_caches()
    return compute_metrics(db, QUERY, NOW)


def test_a_range_asked_again_reads_no_visit_and_a_correction_is_seen(central_store):
    with central_store.write() as db:
        device = auth.add_device(db, "Cache Clinic", "Desk 1")[0]
    ingest_batch(central_store, device, morning_events(), NOW)
    db = central_store.db
    cold = _cold(db)
    assert cold["waits"] > 0 and cold["chair_median_min"] is not None
    assert cold["adjusted_waits"] > 0
    warm = CountingDb(db)
    assert compute_metrics(warm, QUERY, NOW) == cold
    # Only the current waits' rows (visits not called yet) are read, not the values.
    assert not any("wait_min" in sql or "chair_min" in sql for sql in warm.sql
                   if "FROM visits" in sql), warm.sql

    visit_id = db.execute("SELECT id FROM visits WHERE ticket = 'A-002'").fetchone()[0]
    kiosk = WireEvents(first_seq=1000)
    answers = ingest_batch(central_store, device,
                           [kiosk.corrected(visit_id, at(100), "called_at", at(38))], NOW)
    assert [a["status"] for a in answers] == ["stored"], answers
    changed = compute_metrics(db, QUERY, NOW)
    assert changed == _cold(db)
    assert changed["wait_median_min"] != cold["wait_median_min"]
    clear_caches()


def test_an_hour_emptied_of_visits_still_counts_in_the_check(central_store):
    """A visit undone empties its hour's rollup row (0 visits, its changes bumped) and a visit
    in a new hour brings the count of waits back: the check must still see the change. Read
    with only the hours that have visits, the sums came back to those the run was kept under,
    and the old waits were served."""
    now = MORNING + timedelta(hours=8)
    query = MetricsQuery(MORNING - timedelta(hours=1), MORNING + timedelta(hours=6))
    with central_store.write() as db:
        device = auth.add_device(db, "Check Clinic", "Desk 1")[0]
    kiosk = WireEvents()
    _, first = kiosk.visit(5, 15, 30, "A-001")
    later, second = kiosk.visit(65, 75, 90, "A-002")
    ingest_batch(central_store, device, first + second, now)
    db = central_store.db
    clear_caches()
    compute_metrics(db, query, now)  # keeps the range's run
    ingest_batch(central_store, device, [kiosk.undone(later, at(95), "visit.checked_in")], now)
    ingest_batch(central_store, device, kiosk.visit(185, 235, 240, "A-003")[1], now)
    warm = compute_metrics(db, query, now)
    clear_caches()
    assert warm == compute_metrics(db, query, now)
    assert warm["wait_median_min"] == 30.0
