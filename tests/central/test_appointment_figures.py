"""The appointment-aware figures of GET /api/v1/metrics, checked by hand on a live server.

The morning of 2 March 2026 (minutes after 09:00 UTC; London is on GMT, so local = UTC):

    visit  appt  in    called  out   arrival               adjusted wait       chair
    A1     0     -10   4       20    early (10 before)     4 - 0 = 4           16
    A2     15    13    25      40    on time (2 before)    25 - 15 = 10        15
    A3     30    35    38      50    on time (5 after: edge) 38 - 35 = 3       12
    A4     30    42    70      80    late (12 after)       70 - 42 = 28        10
    A5     45    20    40      55    early (25 before)     40 - 45 = -5        15   called early
    A6     60    58    75      -     on time               75 - 60 = 15 (edge) -    in the chair
    A7     60    61    -       -     on time               -                   -    still waiting
    A8     45*   50    60      70    on time (5 after)     60 - 50 = 10        10   * set later
    A9     75**  70    72      90    -                     -                   18   ** cleared later
    N1     -     0     8       30    -                     -                   22
    C1     90    85    -       -     cancelled: left out of everything

appointments 8 (A1-A8): early 2 (A1 A5), on time 5 (A2 A3 A6 A7 A8), late 1 (A4).
adjusted waits (called, with an appointment), sorted: -5 3 4 10 10 15 28, n = 7:
median 10; p90 at rank 6 x 0.9 = 5.4: 15 + 0.4 x 13 = 20.2. A7, still waiting, is read long
after the morning: more than 15 minutes past its appointment, so a miss already (overdue 1);
within 15 min 6 of 7 + 1 = 75 %.
chair times (checked out), sorted: 10 10 12 15 15 16 18 22, n = 8: median 15;
p90 at rank 7 x 0.9 = 6.3: 18 + 0.3 x 4 = 19.2.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
import time_machine

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_optional, parse_rfc3339, to_rfc3339
from sync.central import auth, rollups
from sync.central.dashboard.demo import _appointment
from sync.central.ingest import ingest_batch
from sync.central.metrics_query import MetricsQuery, compute_metrics
from sync.central.migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from sync.central.repair import repair_store
from sync.central.rollups import _visit_triggers, appointment_hour_counts
from sync.central.storage import CentralStore
from tests.support.appointments import booked_visit, morning_events
from tests.support.older_schemas import as_before_site_rollups
from tests.support.wire_events import WireEvents, at

RANGE = {"from": at(-30), "to": at(180)}
EXPECTED = {
    "appointments": 8,
    "arrivals_early": 2,
    "arrivals_on_time": 5,
    "arrivals_late": 1,
    "adjusted_waits": 7,
    "adjusted_wait_median_min": 10.0,
    "adjusted_wait_p90_min": 20.2,
    "overdue_waiting": 1,
    "pct_seen_within_15_min": 75.0,
    "chair_times": 8,
    "chair_median_min": 15.0,
    "chair_p90_min": 19.2,
}
APPOINTMENT_KEYS = tuple(EXPECTED)


@pytest.fixture
def morning(central_server):
    central_server.set_site(timezone="Europe/London")
    desk = central_server.add_device(name="Desk 1")
    results = central_server.post_events(desk, morning_events()).json()["results"]
    assert {r["status"] for r in results} == {"stored"}, results
    return central_server


def test_appointment_figures_match_the_hand_computed_ones(morning):
    token = morning.add_reporting_token()

    figures = morning.metrics(token, site="Test Clinic", **RANGE).json()

    assert {key: figures[key] for key in APPOINTMENT_KEYS} == EXPECTED
    assert figures["visits"] == 10  # C1 cancelled; the rest counted as before


def test_the_kiosks_own_report_gives_the_same_figures(morning):
    """One definition: kiosk.shared.metrics.report over the stored rows agrees."""
    rows = morning.rows("SELECT * FROM visits WHERE voided = 0")
    visits = [
        metrics.VisitTimes(
            checked_in_at=parse_rfc3339(row["checked_in_at"]),
            called_at=parse_optional(row["called_at"]),
            checked_out_at=parse_optional(row["checked_out_at"]),
            appointment_at=parse_optional(row["appointment_at"]),
            cancelled=row["cancel_reason"] is not None,
        )
        for row in rows
    ]
    report = metrics.report(visits, [], 15.0, now=datetime.now(UTC))
    assert {key: report[key] for key in APPOINTMENT_KEYS} == EXPECTED


def test_a_range_without_appointments_answers_zero_and_null(morning):
    token = morning.add_reporting_token()

    figures = morning.metrics(token, **{"from": at(300), "to": at(400)}).json()

    assert figures["appointments"] == figures["adjusted_waits"] == figures["chair_times"] == 0
    assert figures["pct_seen_within_15_min"] is None
    assert figures["adjusted_wait_median_min"] is None and figures["chair_p90_min"] is None


def test_per_device_figures_leave_other_desks_out(morning):
    token = morning.add_reporting_token()
    other = morning.add_device(name="Desk 2")
    kiosk = WireEvents()
    morning.post_events(other, booked_visit(kiosk, "B-001", 0, 30, 50, 60)[1])  # late, 20

    both = morning.metrics(token, **RANGE).json()
    first = morning.metrics(token, device=morning.rows(
        "SELECT id FROM devices WHERE name = 'Desk 1'")[0]["id"], **RANGE).json()

    assert (both["appointments"], both["arrivals_late"], both["adjusted_waits"]) == (9, 2, 8)
    assert {key: first[key] for key in APPOINTMENT_KEYS} == EXPECTED


def test_visits_still_waiting_past_15_minutes_count_as_misses(central_server):
    """Read at 10:40 (minute 100), pinned:

        visit  appt  in   called  later of in/appt  by now   counts as
        V1     0     -5   10      0                 -        seen, 10 (within)
        V2     15    10   40      15                -        seen, 25 (miss)
        W1     60    55   -       60                40 min   overdue: a miss already
        W2     90    80   -       90                10 min   not yet counted
        W3     70    90   -       90 (came late)    10 min   not yet counted
        W4     -     50   -       -                 -        no appointment: left out

    within 15 min: 1 of (2 called + 1 overdue) = 33.33 % (it would be 50 % if W1 were left out).
    """
    with time_machine.travel(parse_rfc3339(at(100)), tick=True):
        central_server.set_site(timezone="Europe/London")
        desk = central_server.add_device(name="Desk 1")
        kiosk = WireEvents()
        events: list[dict] = []
        for ticket, appt, arrived, called in [
            ("V-001", 0, -5, 10), ("V-002", 15, 10, 40), ("W-001", 60, 55, None),
            ("W-002", 90, 80, None), ("W-003", 70, 90, None), ("W-004", None, 50, None),
        ]:
            events += booked_visit(kiosk, ticket, appt, arrived, called)[1]
        central_server.post_events(desk, events)
        token = central_server.add_reporting_token()
        figures = central_server.metrics(token, **RANGE).json()
        rows = central_server.rows("SELECT * FROM visits WHERE voided = 0")
        now = datetime.now(UTC)

    assert (figures["adjusted_waits"], figures["overdue_waiting"]) == (2, 1)
    assert figures["pct_seen_within_15_min"] == 33.33
    kiosk_report = metrics.appointment_report(
        [metrics.VisitTimes(checked_in_at=parse_rfc3339(row["checked_in_at"]),
                            called_at=parse_optional(row["called_at"]),
                            appointment_at=parse_optional(row["appointment_at"]))
         for row in rows],
        now,
    )
    assert (kiosk_report["overdue_waiting"], kiosk_report["pct_seen_within_15_min"]) == (1, 33.33)


def test_the_openapi_description_lists_the_new_fields_as_optional(central_server):
    spec = requests.get(central_server.url("/openapi.json"), timeout=10).json()
    schema = spec["components"]["schemas"]["Metrics"]
    for key in APPOINTMENT_KEYS:
        assert key in schema["properties"], key
        assert key not in schema.get("required", []), key
    assert "15 minutes" in schema["properties"]["pct_seen_within_15_min"]["description"]


def test_an_appointment_correction_with_a_bad_value_is_rejected_with_a_reason(central_server):
    desk = central_server.add_device(name="Desk 1")
    kiosk = WireEvents()
    visit, events = booked_visit(kiosk, "A-001", None, 0)
    bad = kiosk.event("visit.corrected", at(2), visit, {"field": "appointment_at",
                                                        "value": "tomorrow at nine"})
    results = central_server.post_events(desk, [*events, bad]).json()["results"]
    assert [r["status"] for r in results] == ["stored", "rejected"]
    assert "RFC 3339" in results[1]["reason"]
    [row] = central_server.rows("SELECT appointment_at FROM visits")
    assert row["appointment_at"] is None


# -- a daylight-saving day --------------------------------------------------------------------

# 29 March 2026, London: at 01:00 GMT the clocks go forward to 02:00 BST. An overnight clinic.
DST_START = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)


def test_figures_across_the_clocks_going_forward(central_server):
    """Appointment at 00:45 GMT, arrival 00:40 GMT, called at 02:05 BST (01:05 UTC): the
    adjusted wait is 20 real minutes (the wall clocks say 80). A 09:00 BST appointment
    (08:00 UTC) reached at 08:50 BST and called at 09:20 BST: 20 minutes; out at 09:50 BST."""
    central_server.set_site(timezone="Europe/London")
    desk = central_server.add_device(name="Desk 1")
    token = central_server.add_reporting_token()
    kiosk = WireEvents()
    night = booked_visit(kiosk, "A-001", 45, 40, 65, 80, start=DST_START)[1]
    morning = booked_visit(kiosk, "A-002", 8 * 60, 7 * 60 + 50, 8 * 60 + 20, 8 * 60 + 50,
                           start=DST_START)[1]
    assert {r["status"] for r in central_server.post_events(desk, night + morning).json()[
        "results"]} == {"stored"}

    # The site's local day: 00:00 GMT to 00:00 BST the next day, 23 hours.
    day_start, day_end = metrics.local_day_bounds(DST_START.date(), "Europe/London")
    assert day_end - day_start == timedelta(hours=23)
    figures = central_server.metrics(token, **{"from": to_rfc3339(day_start),
                                               "to": to_rfc3339(day_end)}).json()

    assert figures["appointments"] == 2
    assert (figures["arrivals_early"], figures["arrivals_on_time"]) == (1, 1)  # 10 and 5 before
    assert figures["adjusted_wait_median_min"] == 20.0
    assert figures["pct_seen_within_15_min"] == 0.0
    assert (figures["chair_median_min"], figures["chair_times"]) == (22.5, 2)  # 15 and 30


# -- the migration and the one read path ------------------------------------------------------


def test_the_migration_fills_in_visits_stored_before_it(tmp_path):
    """A store at the schema before ``_appointment_figures`` with visits in it: migrating
    derives their chair time, adjusted wait and arrival class, counts them in the hourly
    rollup, and the figures read them."""
    store = stored_morning(tmp_path)
    try:
        db = store.db
        columns = ("chair_min", "adjusted_wait_min", "arrival")
        saved = {row[0]: row[1:] for row in db.execute(
            f"SELECT id, {', '.join(columns)} FROM visits")}
        hour_columns = tuple(appointment_hour_counts("visits"))
        saved_hours = db.execute(
            f"SELECT site, device_id, hour, {', '.join(hour_columns)} FROM visit_hours "
            "ORDER BY 1, 2, 3").fetchall()
        as_before_appointment_figures(db)
        assert migrate(db) == SCHEMA_VERSION
        after = {row[0]: row[1:] for row in db.execute(
            f"SELECT id, {', '.join(columns)} FROM visits")}
        assert after == saved
        assert db.execute(
            f"SELECT site, device_id, hour, {', '.join(hour_columns)} FROM visit_hours "
            "ORDER BY 1, 2, 3").fetchall() == saved_hours
        assert sum(row[3] + row[4] + row[5] for row in saved_hours) == EXPECTED["appointments"]
        figures = compute_metrics(db, MetricsQuery(parse_rfc3339(RANGE["from"]),
                                                   parse_rfc3339(RANGE["to"])),
                                  parse_rfc3339(at(200)))
        assert {key: figures[key] for key in APPOINTMENT_KEYS} == EXPECTED
    finally:
        store.close()


def stored_morning(directory) -> CentralStore:
    """A store (closed by the caller) holding the morning, ingested as a kiosk sends it."""
    store = CentralStore(directory)
    with store.write() as db:
        device, _ = auth.add_device(db, "Test Clinic", "Desk 1")
    ingest_batch(store, device, morning_events(), parse_rfc3339(at(200)))
    return store


def as_before_appointment_figures(db) -> None:
    """Rebuild the store as the schema before ``_appointment_figures`` left it, with its rows.
    The migrations after it are undone too (each adds one column), so they run again."""
    later = {"_site_languages": ("sites", "languages"), "_rating_languages": ("ratings", "lang"),
             "_dashboard_language": ("users", "language")}
    # Index changes: the rollup keys' (PostgreSQL only: nothing to undo on SQLite) and the
    # ratings' range index, which holds ratings.lang and so goes back before that column does.
    indexes = {"_covered_rollup_keys", "_covered_rating_ranges"}
    names = [m.__name__ for m in MIGRATIONS]
    after = names[names.index("_appointment_figures") + 1:]
    tables = {"_site_rollups"}  # the per-site rollups, read from the per-desk ones when made
    assert set(after) == set(later) | indexes | tables, (
        f"undo {set(after) - set(later) - indexes - tables} here")
    as_before_site_rollups(db)
    db.execute("DROP INDEX idx_ratings_site_occurred_at")
    db.execute("CREATE INDEX idx_ratings_site_occurred_at ON ratings (site, occurred_at)")
    for table, column in later.values():
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    for name, (when, body) in _visit_triggers(versioned=True).items():
        db.execute(f"DROP TRIGGER {name}")
        db.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")
    for column in appointment_hour_counts("visits"):
        db.execute(f"ALTER TABLE visit_hours DROP COLUMN {column}")
    for name in ("idx_visits_appointments", "idx_visits_chair"):
        db.execute(f"DROP INDEX {name}")
    for column in ("chair_min", "adjusted_wait_min", "arrival"):
        db.execute(f"ALTER TABLE visits DROP COLUMN {column}")
    db.conn.execute(
        f"PRAGMA user_version = {[m.__name__ for m in MIGRATIONS].index('_appointment_figures')}"
    )


def test_the_backfill_works_in_chunks_without_firing_the_rollup_per_visit(tmp_path, monkeypatch):
    """Filling in the stored visits reads them a chunk at a time (3 here, so the morning's 11
    take four) and leaves the hourly rollup's per-visit triggers out: each hour is counted
    again once (its ``changes`` up by 1), not taken out and put back per visit (up by 2 each)."""
    monkeypatch.setattr(rollups, "BACKFILL_CHUNK", 3)
    step = [m.__name__ for m in MIGRATIONS].index("_appointment_figures")
    store = stored_morning(tmp_path)
    try:
        db = store.db
        saved = db.execute(
            "SELECT id, chair_min, adjusted_wait_min, arrival FROM visits ORDER BY id").fetchall()
        as_before_appointment_figures(db)
        changes = dict(db.execute("SELECT hour, changes FROM visit_hours").fetchall())
        assert migrate(db, target=step + 1) == step + 1
        assert db.execute("SELECT id, chair_min, adjusted_wait_min, arrival FROM visits "
                          "ORDER BY id").fetchall() == saved
        after = dict(db.execute("SELECT hour, changes FROM visit_hours").fetchall())
        assert after == {hour: n + 1 for hour, n in changes.items()}
    finally:
        store.close()


@pytest.mark.parametrize("seed", range(4))
def test_random_booked_visits_give_the_kiosk_reports_figures(tmp_path, seed):
    """Any mix of early, late, unbooked, called-early, corrected visits and any range: the
    store's figures are kiosk.shared.metrics.report's over the same visits."""
    rng = random.Random(seed)
    store = CentralStore(tmp_path)
    try:
        with store.write() as db:
            device, _ = auth.add_device(db, "Test Clinic", "Desk 1")
        kiosk, events = WireEvents(), []
        for n in range(120):
            arrived = rng.uniform(0, 480)
            appt = None if rng.random() < 0.3 else round((arrived + rng.uniform(-30, 30)) / 15) * 15
            called = arrived + rng.uniform(0, 40) if rng.random() < 0.9 else None
            out = called + rng.uniform(3, 30) if called is not None and rng.random() < 0.8 \
                else None
            visit, part = booked_visit(kiosk, f"R-{n:03d}", appt, arrived, called, out)
            events += part
            if rng.random() < 0.1:
                events.append(kiosk.corrected(visit, at(arrived + 0.5), "appointment_at",
                                              at(round(arrived / 15) * 15)))
            if called is None and rng.random() < 0.2:
                events.append(kiosk.cancelled(visit, at(arrived + 1)))
        ingest_batch(store, device, events, parse_rfc3339(at(600)))
        start = parse_rfc3339(at(rng.uniform(-10, 200)))
        end = parse_rfc3339(at(rng.uniform(250, 520)))
        figures = compute_metrics(store.db, MetricsQuery(start, end), parse_rfc3339(at(600)))
        visits = [
            metrics.VisitTimes(
                checked_in_at=parse_rfc3339(row["checked_in_at"]),
                called_at=parse_optional(row["called_at"]),
                checked_out_at=parse_optional(row["checked_out_at"]),
                appointment_at=parse_optional(row["appointment_at"]),
                cancelled=row["cancel_reason"] is not None,
            )
            for row in store.db.query("SELECT * FROM visits WHERE voided = 0")
            if start <= parse_rfc3339(row["checked_in_at"]) < end
        ]
        expected = metrics.appointment_report(visits, parse_rfc3339(at(600)))
        assert {key: figures[key] for key in APPOINTMENT_KEYS} == expected
        assert expected["appointments"] > 10
    finally:
        store.close()


def test_a_later_correction_is_never_hidden_by_the_cached_hours(morning):
    """The API's whole hours come from per-hour runs kept in memory (``hour_runs``): a visit
    edited in an hour already read makes that hour read again. A-002's appointment moves from
    09:15 to 09:20: it arrived 7 minutes early and waited 5, so the adjusted waits become
    -5 3 4 5 10 15 28 (median 5) and the arrivals 3 early, 4 on time, 1 late."""
    token = morning.add_reporting_token()
    assert morning.metrics(token, **RANGE).json()["adjusted_wait_median_min"] == 10.0
    [a2] = morning.rows("SELECT id FROM visits WHERE ticket = 'A-002'")
    other_desk = morning.add_device(name="Desk 2")
    fix = WireEvents().corrected(a2["id"], at(100), "appointment_at", at(20))
    assert morning.post_events(other_desk, [fix]).json()["results"][0]["status"] == "stored"

    figures = morning.metrics(token, **RANGE).json()

    assert figures["adjusted_wait_median_min"] == 5.0
    assert (figures["arrivals_early"], figures["arrivals_on_time"],
            figures["arrivals_late"]) == (3, 4, 1)


def test_the_demo_rounds_booked_times_to_the_nearest_quarter_hour():
    """The demo books 6 minutes before to 19 after the arrival, rounded to the nearest
    quarter-hour: the appointment is then 13.5 minutes before to 26.5 after the arrival (a
    floor would put some 21 minutes before it)."""
    rng = random.Random(7)
    arrival = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    offsets = []
    for n in range(2000):
        visit_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        when = arrival + timedelta(minutes=n % 60, seconds=n % 7)
        booked = _appointment(visit_id, when)
        if booked is not None:
            appointment = parse_rfc3339(booked)
            assert appointment.minute % 15 == 0 and appointment.second == 0
            offsets.append((appointment - when).total_seconds() / 60)
    assert -13.5 <= min(offsets) < -10 and 23 < max(offsets) <= 26.5


def test_a_repair_reads_the_visits_columns_once_not_per_visit(tmp_path):
    """Repair (migration 4's, run on an older schema) rebuilds every suspect visit; which
    columns the table has is asked once for all of them, not once per visit."""
    store = stored_morning(tmp_path)
    try:
        statements: list[str] = []
        with store.write() as db:
            # What an old store held before ingest refused it: every visit looks suspect.
            db.execute("UPDATE visits SET wait_min = -1")
            db.conn.set_trace_callback(statements.append)
            try:
                repair_store(db, parse_rfc3339(at(200)))
            finally:
                db.conn.set_trace_callback(None)
        rebuilt = [sql for sql in statements if "INTO visits" in sql or "INTO [visits]" in sql]
        assert len(rebuilt) >= 10
        assert len([sql for sql in statements if "table_info(visits)" in sql]) == 1
        assert not store.db.execute("SELECT 1 FROM visits WHERE wait_min < 0").fetchall()
    finally:
        store.close()
