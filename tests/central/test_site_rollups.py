"""The per-site hourly rollups (``site_rating_hours``, ``site_visit_hours``) hold exactly the
per-desk rollups added up, on both engines: as ingest writes, when a rating is re-paired, a
visit voided or its wait corrected, rows deleted, and after the migration that adds them to a
store that already holds data.

The expectation is computed here in Python from the per-desk rollups (which other tests check
against the rows), never by the SQL under test.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.shared.timeutil import to_rfc3339 as at_text
from sync.central import auth
from sync.central.dashboard import demo
from sync.central.ingest import ingest_batch
from sync.central.migrations import SCHEMA_VERSION, migrate
from sync.central.rollups import (
    RATING_FACES,
    SITE_VISIT_SUMS,
    face_column,
)
from tests.support.older_schemas import as_before_site_rollups
from tests.support.wire_events import wire_event

NOW = datetime(2026, 3, 4, 17, 0, tzinfo=UTC)
FACE_COLUMNS = [face_column(scale, score) for scale, score in RATING_FACES]
VISIT_COUNTS = [name for name in SITE_VISIT_SUMS if name != "changes"]


def desks_added_up(db) -> tuple[dict, dict]:
    """(ratings, visits) per (site, hour) from the per-desk rollups, hours counting nothing
    left out."""
    ratings: dict = defaultdict(lambda: defaultdict(int))
    for site, hour, scale, score, linked, n in db.execute(
            "SELECT site, hour, scale, score, linked, n FROM rating_hours").fetchall():
        counts = ratings[(site, hour)]
        counts["n"] += n
        counts["linked"] += n if linked else 0
        counts[face_column(scale, score)] += n
    visits: dict = defaultdict(lambda: defaultdict(int))
    for site, hour, *values in db.execute(
            f"SELECT site, hour, {', '.join(VISIT_COUNTS)} FROM visit_hours").fetchall():
        for name, value in zip(VISIT_COUNTS, values, strict=True):
            visits[(site, hour)][name] += value
    return _nonzero(ratings), _nonzero(visits)


def visits_from_rows(db) -> dict:
    """Counted visits, checked out and waits per (site, hour), from the visit rows."""
    counts: dict = defaultdict(lambda: defaultdict(int))
    for site, checked_in, checked_out, wait in db.execute(
            "SELECT site, checked_in_at, checked_out_at, wait_min FROM visits WHERE voided = 0 "
            "AND cancel_reason IS NULL AND checked_in_at IS NOT NULL").fetchall():
        hour = counts[(site or "", checked_in[:13])]
        hour["visits"] += 1
        hour["checked_out"] += checked_out is not None
        hour["waits"] += wait is not None
    return _nonzero(counts)


def _first_three(visits: dict) -> dict:
    return _nonzero({key: {name: counts.get(name, 0) for name in ("visits", "checked_out", "waits")}
                     for key, counts in visits.items()})


def assert_counted_alike(db) -> None:
    """Per site = per desk added up, and the per-desk visit counts = the rows'."""
    assert per_site(db) == desks_added_up(db)
    assert _first_three(desks_added_up(db)[1]) == visits_from_rows(db)


def per_site(db) -> tuple[dict, dict]:
    rating_columns = ["n", "linked", *FACE_COLUMNS]
    ratings = {(site, hour): dict(zip(rating_columns, values, strict=True)) for site, hour, *values
               in db.execute(f"SELECT site, hour, {', '.join(rating_columns)} "
                             "FROM site_rating_hours").fetchall()}
    visits = {(site, hour): dict(zip(VISIT_COUNTS, values, strict=True)) for site, hour, *values
              in db.execute(f"SELECT site, hour, {', '.join(VISIT_COUNTS)} "
                            "FROM site_visit_hours").fetchall()}
    return _nonzero(ratings), _nonzero(visits)


def _nonzero(table: dict) -> dict:
    return {key: {name: n for name, n in counts.items() if n}
            for key, counts in table.items() if any(counts.values())}


def changes_of(db, site: str, hour: str) -> int:
    return db.execute("SELECT changes FROM site_visit_hours WHERE site = ? AND hour = ?",
                      [site, hour]).fetchone()[0]


@pytest.fixture
def filled(central_store):
    demo.fill(central_store, days=2, now=NOW)
    return central_store


def test_ingest_counts_every_site_hour_as_its_desks_add_up(filled):
    ratings, visits = desks_added_up(filled.db)
    assert len({site for site, _ in visits}) > 1 and len(visits) > 20
    assert sum(c["n"] for c in ratings.values()) > 50
    assert per_site(filled.db) == (ratings, visits)


def test_a_visit_called_and_rated_in_later_batches_moves_its_hour_in_place(filled):
    """Checked in, then (another batch) called, checked out and rated, then (a third) its
    rating paired: each update keeps the rows in their site's hour (the in-place triggers)."""
    with filled.write() as db:
        device = auth.add_device(db, "Batch Clinic", "Desk 1")[0]
    at = NOW - timedelta(hours=5, minutes=55)
    visit_id = str(uuid.uuid4())
    batches = [
        [wire_event(1, "visit.checked_in", at, visit_id,
                    {"ticket": "B-0001", "appointment_at": at_text(at + timedelta(minutes=5))})],
        [wire_event(2, "visit.called", at + timedelta(minutes=25), visit_id, {}),
         wire_event(3, "visit.checked_out", at + timedelta(minutes=40), visit_id, {})],
        [wire_event(4, "rating.submitted", at + timedelta(minutes=41), None,
                    {"score": 2, "scale": 5, "tags": [], "misuse": False})],
    ]
    hour = at.strftime("%Y-%m-%dT%H")
    assert at.minute < 15  # checked in and appointment in the same hour
    for batch in batches:
        ingest_batch(filled, device, batch, NOW)
        assert_counted_alike(filled.db)
    visits = per_site(filled.db)[1][("Batch Clinic", hour)]
    assert (visits["visits"], visits["checked_out"], visits["waits"]) == (1, 1, 1)
    with filled.write() as db:
        db.execute("UPDATE visits SET called_at = NULL, wait_min = NULL, checked_out_at = NULL "
                   "WHERE id = ?", [visit_id])
    assert_counted_alike(filled.db)
    assert per_site(filled.db)[1][("Batch Clinic", hour)]["visits"] == 1
    assert "waits" not in per_site(filled.db)[1][("Batch Clinic", hour)]


def test_changed_and_deleted_rows_move_the_site_counts_with_the_desks(filled):
    db = filled.db
    site, hour = db.execute(
        "SELECT site, substr(checked_in_at, 1, 13) FROM visits WHERE wait_min IS NOT NULL "
        "ORDER BY checked_in_at LIMIT 1").fetchone()
    before = changes_of(db, site, hour)
    with filled.write() as w:
        # A wait corrected (no count moves: the hour's changes must, for the waits' cache).
        w.execute("UPDATE visits SET wait_min = wait_min + 1 WHERE id = (SELECT id FROM visits "
                  "WHERE site = ? AND substr(checked_in_at, 1, 13) = ? "
                  "AND wait_min IS NOT NULL LIMIT 1)", [site, hour])
    assert changes_of(db, site, hour) > before
    with filled.write() as w:
        w.execute("UPDATE visits SET voided = 1 WHERE id IN "
                  "(SELECT id FROM visits ORDER BY id LIMIT 7)")
        w.execute("UPDATE visits SET cancel_reason = 'left' WHERE id IN "
                  "(SELECT id FROM visits WHERE voided = 0 ORDER BY id DESC LIMIT 5)")
        w.execute("UPDATE ratings SET visit_id = NULL WHERE id IN "
                  "(SELECT id FROM ratings WHERE visit_id IS NOT NULL ORDER BY id LIMIT 9)")
        # A rating moved to another face, another hour and to misuse, and some deleted.
        w.execute("UPDATE ratings SET scale = 4, score = 2 WHERE id IN "
                  "(SELECT id FROM ratings WHERE scale = 5 ORDER BY id DESC LIMIT 4)")
        w.execute("UPDATE ratings SET occurred_at = '2026-03-01T08:30:00.000000Z' WHERE id IN "
                  "(SELECT id FROM ratings ORDER BY occurred_at LIMIT 3)")
        w.execute("UPDATE ratings SET misuse = 1 WHERE id IN "
                  "(SELECT id FROM ratings WHERE misuse = 0 ORDER BY id LIMIT 2)")
        w.execute("DELETE FROM ratings WHERE id IN (SELECT id FROM ratings ORDER BY id LIMIT 6)")
        w.execute("DELETE FROM visits WHERE id IN "
                  "(SELECT id FROM visits WHERE voided = 0 ORDER BY checked_in_at LIMIT 6)")
    assert_counted_alike(db)


def test_the_migration_adds_up_what_a_store_already_holds(filled):
    db = filled.db
    expected = desks_added_up(db)
    as_before_site_rollups(db)
    assert db.execute("SELECT COUNT(*) FROM visit_hours").fetchone()[0] > 20
    assert migrate(db) == SCHEMA_VERSION
    assert per_site(db) == expected
    # And the triggers it made count what comes after.
    with filled.write() as w:
        w.execute("UPDATE visits SET voided = 1 WHERE id IN "
                  "(SELECT id FROM visits ORDER BY id LIMIT 3)")
    assert per_site(db) == desks_added_up(db)
