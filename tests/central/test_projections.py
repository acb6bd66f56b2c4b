"""Projections straight on a central store (no server): out-of-order batches, undo, pairing."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from kiosk.shared import metrics
from kiosk.shared.timeutil import parse_optional, parse_rfc3339
from sync.central.auth import Device, add_device
from sync.central.ingest import ingest_batch
from sync.central.metrics_query import MetricsQuery, compute_metrics
from tests.support.wire_events import MORNING, WireEvents, at, new_visit_id

RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def enrol(central_store):
    def enrol_device(name: str = "Desk 1", site: str = "Test Clinic") -> Device:
        with central_store.write() as db:
            return add_device(db, site, name)[0]

    return enrol_device


def send(store, device: Device, events: list[dict]) -> list[str]:
    return [result["status"] for result in ingest_batch(store, device, events, RECEIVED)]


def visit_row(store, visit_id: str) -> dict:
    return store.query("SELECT * FROM visits WHERE id = ?", [visit_id])[0]


def rating_rows(store) -> list[dict]:
    return store.query("SELECT visit_id, link, wait_min FROM ratings ORDER BY occurred_at")


def test_visit_events_arriving_in_any_order_give_the_same_visit(central_store, enrol):
    desk = enrol()
    kiosk = WireEvents()
    visit_id = new_visit_id()
    events = [
        kiosk.checked_in(visit_id, at(0)),
        kiosk.called(visit_id, at(12)),
        kiosk.corrected(visit_id, at(13), "called_at", at(11)),
        kiosk.checked_out(visit_id, at(30)),
    ]
    shuffled = events[:]
    random.Random(4).shuffle(shuffled)

    for event in shuffled:  # one batch per event, the worst case
        send(central_store, desk, [event])

    row = visit_row(central_store, visit_id)
    assert (row["status"], row["checked_in_at"], row["called_at"]) == ("done", at(0), at(11))
    assert row["wait_min"] == 11.0


def test_a_call_stored_before_its_check_in_waits_for_it(central_store, enrol):
    desk = enrol()
    kiosk = WireEvents()
    visit_id = new_visit_id()
    check_in, call = kiosk.checked_in(visit_id, at(0)), kiosk.called(visit_id, at(9))

    send(central_store, desk, [call])
    assert visit_row(central_store, visit_id)["status"] == "incomplete"
    send(central_store, desk, [check_in])

    row = visit_row(central_store, visit_id)
    assert (row["status"], row["wait_min"], row["site"]) == ("in_chair", 9.0, "Test Clinic")


@pytest.mark.parametrize(
    ("undone", "status", "cleared"),
    [
        ("visit.called", "waiting", "called_at"),
        ("visit.checked_out", "in_chair", "checked_out_at"),
    ],
)
def test_undo_takes_back_the_latest_state_change(central_store, enrol, undone, status, cleared):
    desk = enrol()
    kiosk = WireEvents()
    visit_id = new_visit_id()
    events = [kiosk.checked_in(visit_id, at(0)), kiosk.called(visit_id, at(5))]
    if undone == "visit.checked_out":
        events.append(kiosk.checked_out(visit_id, at(20)))
    events.append(kiosk.undone(visit_id, at(21), undone))

    send(central_store, desk, events)

    row = visit_row(central_store, visit_id)
    assert row["status"] == status and row[cleared] is None


def test_undoing_a_cancellation_puts_the_visit_back(central_store, enrol):
    desk = enrol()
    kiosk = WireEvents()
    visit_id = new_visit_id()
    send(central_store, desk, [kiosk.checked_in(visit_id, at(0)), kiosk.cancelled(visit_id, at(3))])
    assert visit_row(central_store, visit_id)["status"] == "cancelled"

    send(central_store, desk, [kiosk.undone(visit_id, at(4), "visit.cancelled")])

    row = visit_row(central_store, visit_id)
    assert (row["status"], row["cancelled_at"], row["cancel_reason"]) == ("waiting", None, None)


def test_an_undone_check_in_voids_the_visit(central_store, enrol):
    desk = enrol()
    kiosk = WireEvents()
    visit_id = new_visit_id()

    send(central_store, desk, [kiosk.checked_in(visit_id, at(0))])
    send(central_store, desk, [kiosk.undone(visit_id, at(1), "visit.checked_in")])

    row = visit_row(central_store, visit_id)
    assert (row["status"], row["voided"]) == ("voided", 1)


def test_a_ratings_tablet_rating_is_paired_with_the_latest_checkout_within_five_minutes(
    central_store, enrol
):
    desk, tablet = enrol("Desk 1"), enrol("Ratings tablet")
    kiosk = WireEvents()
    earlier, earlier_events = kiosk.visit(checked_in=0, called=4, checked_out=10)
    latest, latest_events = kiosk.visit(checked_in=0, called=6, checked_out=12)
    send(central_store, desk, earlier_events + latest_events)

    send(central_store, tablet, [WireEvents().rating(4, at(14))])

    assert rating_rows(central_store) == [{"visit_id": latest, "link": "paired", "wait_min": 6.0}]
    # The next press pairs with the checkout still unrated.
    send(central_store, tablet, [WireEvents(first_seq=2).rating(5, at(14.5))])
    assert rating_rows(central_store)[1]["visit_id"] == earlier


def test_a_rating_with_no_checkout_in_the_last_five_minutes_stays_unlinked(central_store, enrol):
    desk, tablet = enrol("Desk 1"), enrol("Ratings tablet")
    kiosk = WireEvents()
    send(central_store, desk, kiosk.visit(checked_in=0, called=4, checked_out=10)[1])

    send(central_store, tablet, [WireEvents().rating(4, at(16))])

    assert rating_rows(central_store) == [{"visit_id": None, "link": None, "wait_min": None}]


def test_a_rating_that_syncs_before_its_checkout_is_paired_when_the_checkout_arrives(
    central_store, enrol
):
    desk, tablet = enrol("Desk 1"), enrol("Ratings tablet")
    send(central_store, tablet, [WireEvents().rating(2, at(11))])
    visit_id, events = WireEvents().visit(checked_in=0, called=8, checked_out=10)

    send(central_store, desk, events)

    assert rating_rows(central_store) == [{"visit_id": visit_id, "link": "paired", "wait_min": 8.0}]


def test_a_misuse_press_is_never_paired(central_store, enrol):
    desk, tablet = enrol("Desk 1"), enrol("Ratings tablet")
    send(central_store, desk, WireEvents().visit(checked_in=0, called=8, checked_out=10)[1])

    send(central_store, tablet, [WireEvents().rating(1, at(11), misuse=True)])

    assert rating_rows(central_store)[0]["visit_id"] is None


def test_undoing_a_checkout_frees_its_paired_rating(central_store, enrol):
    desk, tablet = enrol("Desk 1"), enrol("Ratings tablet")
    kiosk = WireEvents()
    visit_id, events = kiosk.visit(checked_in=0, called=8, checked_out=10)
    send(central_store, desk, events)
    send(central_store, tablet, [WireEvents().rating(3, at(11))])

    send(central_store, desk, [kiosk.undone(visit_id, at(12), "visit.checked_out")])

    assert rating_rows(central_store)[0]["visit_id"] is None


def test_a_direct_rating_learns_its_wait_when_the_visit_is_corrected(central_store, enrol):
    desk = enrol()
    kiosk = WireEvents()
    visit_id, events = kiosk.visit(checked_in=0, called=8, checked_out=30)
    send(central_store, desk, events + [kiosk.rating(5, at(31), visit_id)])

    send(central_store, desk, [kiosk.corrected(visit_id, at(32), "called_at", at(25))])

    assert rating_rows(central_store)[0]["wait_min"] == 25.0


def test_an_event_from_the_future_is_stored_but_flagged(central_store, enrol):
    desk = enrol()
    future = WireEvents().heartbeat("2026-03-02T13:00:00Z")  # an hour after it was received

    send(central_store, desk, [future])

    assert central_store.query("SELECT clock_suspect FROM events") == [{"clock_suspect": 1}]


def _random_visits(rng: random.Random, count: int, span_min: float, unrated_p: float) -> list:
    """One kiosk's morning: visits checked in over ``span_min`` minutes, most called and
    checked out, most of those rated (a tenth as misuse), some cancelled; with ``unrated_p``,
    ratings with no visit (a ratings tablet) at random moments too."""
    kiosk = WireEvents()
    events = []
    for n in range(count):
        start = rng.uniform(0, span_min)
        called = start + rng.uniform(0, 50) if rng.random() < 0.85 else None
        out = called + rng.uniform(5, 30) if called is not None and rng.random() < 0.9 else None
        visit_id, visit_events = kiosk.visit(start, called, out, ticket=f"B-{n:03d}")
        events += visit_events
        if out is not None and rng.random() < 0.7:
            score = rng.randint(1, 5)
            events.append(kiosk.rating(score, at(out + 0.5), visit_id, misuse=rng.random() < 0.1))
        if rng.random() < unrated_p:
            events.append(kiosk.rating(rng.randint(1, 5), at(rng.uniform(0, span_min + 20))))
        if rng.random() < 0.1:
            events.append(kiosk.cancelled(visit_id, at(start + 1)))
    return events


def test_sql_aggregated_metrics_equal_the_kiosk_report_on_the_same_rows(central_store, enrol):
    """The central figures are kiosk.shared.metrics' figures: same rows, same numbers."""
    desk = enrol()
    events = _random_visits(random.Random(7), 60, span_min=300, unrated_p=0.0)
    assert set(send(central_store, desk, events)) == {"stored"}
    start, end = MORNING, parse_rfc3339(at(400))
    now = parse_rfc3339(at(200))

    central = compute_metrics(central_store.db, MetricsQuery(start, end), now)

    expected = _kiosk_report(central_store, start, end, now)
    assert {key: central[key] for key in expected} == expected
    assert central["ratings"] > 20 and central["visits"] > 40


def _kiosk_report(store, start, end, now, site=None, device=None) -> dict:
    """kiosk.shared.metrics.report over the rows themselves, selected in Python."""

    def inside(text: str) -> bool:
        return start <= parse_rfc3339(text) < end

    def mine(row: dict) -> bool:
        return site in (None, row["site"]) and device in (None, row["device_id"])

    visits = [
        metrics.VisitTimes(
            checked_in_at=parse_rfc3339(row["checked_in_at"]),
            called_at=parse_optional(row["called_at"]),
            checked_out_at=parse_optional(row["checked_out_at"]),
            cancelled=row["cancel_reason"] is not None,
        )
        for row in store.query("SELECT * FROM visits WHERE voided = 0")
        if inside(row["checked_in_at"]) and mine(row)
    ]
    ratings = [
        metrics.RatingRow(score=row["score"], scale=row["scale"], misuse=bool(row["misuse"]),
                          linked=row["visit_id"] is not None, wait_min=row["wait_min"])
        for row in store.query("SELECT * FROM ratings")
        if inside(row["occurred_at"]) and mine(row)
    ]
    return metrics.report(visits, ratings, 15.0, now)


@pytest.mark.parametrize(
    ("first_min", "last_min"),
    [(0, 600), (37, 263), (61, 119), (5, 50), (120, 180), (-300, 2000)],
    ids=["from-an-hour", "mid-hour-both-ends", "inside-two-hours", "inside-one-hour",
         "whole-hours-only", "wider-than-the-data"],
)
def test_metrics_from_rollups_and_row_edges_equal_the_kiosk_report(
    central_store, enrol, first_min, last_min
):
    """Whole hours come from the hourly rollups, partial ones from the rows: any range, any
    site or device, the figures are kiosk.shared.metrics.report's over the same rows."""
    desks = [enrol("Desk 1", "North"), enrol("Desk 2", "North"), enrol("Desk 3", "South")]
    rng = random.Random(first_min * 1000 + last_min)
    for desk in desks:
        events = _random_visits(rng, 70, span_min=540, unrated_p=0.2)
        assert set(send(central_store, desk, events)) == {"stored"}
    start, end = parse_rfc3339(at(first_min)), parse_rfc3339(at(last_min))
    now = parse_rfc3339(at(300))
    for site, device in [(None, None), ("North", None), ("South", None), (None, desks[1].id),
                         ("North", desks[0].id)]:
        query = MetricsQuery(start, end, site=site, device=device)
        central = compute_metrics(central_store.db, query, now)
        expected = _kiosk_report(central_store, start, end, now, site, device)
        assert {key: central[key] for key in expected} == expected, (site, device)
        assert central["visits"] > 0 or last_min - first_min < 60
