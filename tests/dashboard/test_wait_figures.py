"""The dashboard's wait figures: the metric function's, and never stale after an edit."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.shared import metrics
from sync.central import auth
from sync.central.dashboard import panels, wait_cache
from sync.central.ingest import ingest_batch
from sync.central.sites import get_site, update_site
from sync.central.storage import CentralStore
from tests.support.wire_events import wire_event


@pytest.mark.parametrize("seed", range(40))
def test_wait_summary_is_the_metric_functions(seed):
    rng = random.Random(seed)
    size = rng.choice([0, 1, 2, 3, 10, 101, 2500])
    waits = [rng.choice([rng.uniform(-2, 60), 15.0, 7.5, 0.0]) for _ in range(size)]
    target = rng.choice([15.0, 7.5, 10.0])
    current = [rng.uniform(0, 40) for _ in range(rng.randint(0, 3))]
    within = sum(1 for wait in waits if wait <= target)
    expected = {
        "waits": len(waits),
        "wait_median_min": metrics.round_figure(metrics.median(waits)),
        "wait_p90_min": metrics.round_figure(metrics.percentile(waits, 90)),
        "pct_within_target": metrics.round_figure(metrics.pct(within, len(waits))),
        "longest_current_wait_min": metrics.round_figure(max(current)) if current else None,
    }
    assert metrics.wait_summary(list(waits), target, current) == expected


def _expected_waits(db) -> dict:
    waits = [
        row[0]
        for row in db.execute(
            "SELECT wait_min FROM visits WHERE voided = 0 AND cancel_reason IS NULL "
            "AND wait_min IS NOT NULL"
        )
    ]
    return metrics.wait_summary(waits, 15.0)


def _trend_waits(db, sites, day) -> dict:
    data = panels.trends(db, sites, day, day, None)
    (row,) = [d for d in data["days"] if d["waits"]]
    return {key: row[key] for key in ("waits", "wait_median_min", "wait_p90_min")}


def test_cached_hours_are_read_again_once_a_visit_changes(tmp_path, central_database_url):
    wait_cache.WAIT_RUNS.clear()
    wait_cache.LOCAL_WAITS.clear()
    store = CentralStore(tmp_path, database_url=central_database_url)
    try:
        with store.write() as db:
            device, _ = auth.add_device(db, "Cache Clinic", "Desk 1")
        day = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # London is on UTC in March before DST
        events, seq = [], 0
        for index in range(12):
            visit_id = str(uuid.uuid4())
            at = day + timedelta(minutes=7 * index)
            for kind, when, data in (
                ("visit.checked_in", at, {"ticket": f"C-{index:03d}"}),
                ("visit.called", at + timedelta(minutes=3 + index), {}),
            ):
                seq += 1
                events.append(wire_event(seq, kind, when, visit_id, data))
        ingest_batch(store, device, events, day + timedelta(hours=3))
        sites = [get_site(store.db, "Cache Clinic")]

        def figures():
            expected = _expected_waits(store.db)
            return _trend_waits(store.db, sites, day.date()), {
                key: expected[key] for key in ("waits", "wait_median_min", "wait_p90_min")
            }

        seen, expected = figures()
        assert seen == expected and seen["waits"] == 12
        assert len(wait_cache.WAIT_RUNS), "the hours were not kept (on either engine)"
        assert len(wait_cache.LOCAL_WAITS), "the days were not kept (on either engine)"
        assert figures()[0] == seen  # from the cache now

        # A wait fixed later (as another tool or a correction would): same count, new value.
        with store.write() as db:
            db.execute(
                "UPDATE visits SET wait_min = 90.0 WHERE ticket IN ('C-009', 'C-010', 'C-011')"
            )
        seen, expected = figures()
        assert seen == expected and seen["wait_p90_min"] == 90.0

        # A visit voided: one wait fewer.
        with store.write() as db:
            db.execute("UPDATE visits SET voided = 1 WHERE ticket = 'C-000'")
        seen, expected = figures()
        assert seen == expected and seen["waits"] == 11
    finally:
        store.close()
        wait_cache.WAIT_RUNS.clear()


def test_each_site_and_desk_is_measured_against_its_own_sites_target(tmp_path):
    """Compare and the live queue: a 20-minute wait is over a 10-minute target and within a
    30-minute one, whatever the other sites' targets."""
    now = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # fixed: the test never straddles midnight
    store = CentralStore(tmp_path)
    try:
        with store.write() as db:
            update_site(db, "Strict", timezone="UTC", target_wait_min=10)
            update_site(db, "Relaxed", timezone="UTC", target_wait_min=30)
            strict, _ = auth.add_device(db, "Strict", "Desk 1")
            relaxed, _ = auth.add_device(db, "Relaxed", "Desk 1")
        for device in (strict, relaxed):
            done, waiting = str(uuid.uuid4()), str(uuid.uuid4())
            start = now - timedelta(minutes=40)
            events = [
                wire_event(1, "visit.checked_in", start, done, {"ticket": "D-001"}),
                wire_event(2, "visit.called", start + timedelta(minutes=20), done, {}),
                wire_event(3, "visit.checked_in", now - timedelta(minutes=20), waiting,
                           {"ticket": "D-002"}),
            ]
            ingest_batch(store, device, events, now)
        sites = [get_site(store.db, "Strict"), get_site(store.db, "Relaxed")]
        names = {strict.id: "Strict desk", relaxed.id: "Relaxed desk"}
        today = now.date()
        compared = panels.compare(store.db, sites, today - timedelta(days=1), today, names)
        within = {row["name"]: row["pct_within_target"] for row in compared["sites"]}
        assert within == {"Strict": 0.0, "Relaxed": 100.0}
        desks = {row["name"]: row["pct_within_target"] for row in compared["desks"]}
        assert desks == {"Strict desk": 0.0, "Relaxed desk": 100.0}
        queue = panels.live_queue(store.db, sites, None, now)
        over = {d["desk"]: [v["over_target"] for v in d["visits"]] for d in queue["desks"]}
        # Each desk: the visit in the chair (waited 20) and the one waiting (20 so far).
        assert over == {"Relaxed · Desk 1": [False, False], "Strict · Desk 1": [True, True]}
    finally:
        store.close()


def test_one_hour_cache_class_serves_the_waits_and_the_appointment_figures():
    """The dashboard's waits and the API's adjusted waits and chair times share one cache
    class (hour_runs.HourRuns), told apart only by column, count column and condition."""
    from sync.central import hour_runs

    caches = (wait_cache.WAIT_RUNS, hour_runs.ADJUSTED_RUNS, hour_runs.CHAIR_RUNS)
    assert {type(cache) for cache in caches} == {hour_runs.HourRuns}
    assert [(c.column, c.count_column) for c in caches] == [
        ("wait_min", "waits"), ("adjusted_wait_min", "appt_called"), ("chair_min", "appt_chair")]
