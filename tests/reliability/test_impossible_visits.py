"""Impossible visits against the real central store on 127.0.0.1: times out of order (sent so,
or corrected so), several ratings for one visit, a rating naming a visit that does not exist.
Each is refused (or stored unlinked) per event with a reason, and the figures stay sane:
no negative wait, a response rate of at most 100.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from kiosk.shared.timeutil import to_rfc3339, utc_now
from tests.reliability import figures
from tests.reliability.bounds import dashboard_statuses, manager_session, out_of_bounds
from tests.support.wire_events import WireEvents

ORDER_RULE = "times must run check-in, then called in, then check-out"


def _results(answer) -> list[tuple[str, str | None]]:
    assert answer.status_code == 200, answer.text
    return [(result["status"], result["reason"]) for result in answer.json()["results"]]


def _range(start) -> dict:
    return {"from": to_rfc3339(start - timedelta(hours=1)),
            "to": to_rfc3339(utc_now() + timedelta(minutes=1))}


def test_times_out_of_order_are_refused_per_event_and_no_wait_is_negative(central_server):
    device = central_server.add_device()
    reader = central_server.add_reporting_token()
    manager = manager_session(central_server)
    kiosk = WireEvents()
    start = utc_now() - timedelta(hours=2)

    def at(minutes: float) -> str:
        return to_rfc3339(start + timedelta(minutes=minutes))

    early, late, fixed, skewed = (str(uuid.uuid4()) for _ in range(4))
    sent = [
        kiosk.checked_in(early, at(20), "A-001"),
        kiosk.called(early, at(10)),  # called 10 minutes before the check-in
        kiosk.checked_in(late, at(0), "A-002"),
        kiosk.called(late, at(18)),
        kiosk.checked_out(late, at(8)),  # out 10 minutes before called in
        kiosk.corrected(late, at(30), "called_at", "2021-06-01T09:00:00Z"),  # before check-in
        kiosk.checked_in(fixed, at(0), "A-003"),
        kiosk.called(fixed, at(12)),
        kiosk.checked_out(fixed, at(20)),
        kiosk.corrected(fixed, at(30), "checked_out_at", at(11)),  # out before called in
        kiosk.corrected(fixed, at(31), "called_at", at(9)),  # a real fix: kept
        # Two desks' clocks 3 s apart: the call stamped before the check-in is a real visit.
        kiosk.checked_in(skewed, at(40), "A-004"),
        kiosk.called(skewed, at(40 - 3 / 60)),
    ]
    started = time.monotonic()

    results = _results(central_server.post_events(device, sent))

    refused = [index for index, (status, _) in enumerate(results) if status == "rejected"]
    assert refused == [1, 4, 5, 9]
    assert all(ORDER_RULE in results[index][1] for index in refused)
    assert "called in " + at(10) + " is before check-in " + at(20) in results[1][1]
    assert "check-out " + at(8) + " is before called in " + at(18) in results[4][1]
    stored = {row["id"] for row in central_server.rows("SELECT id FROM events")}
    assert stored == {event["id"] for i, event in enumerate(sent) if i not in refused}
    visits = {row["ticket"]: row for row in central_server.rows(
        "SELECT ticket, called_at, checked_out_at, wait_min FROM visits")}
    assert visits["A-001"]["called_at"] is None
    assert (visits["A-002"]["wait_min"], visits["A-002"]["checked_out_at"]) == (18.0, None)
    assert (visits["A-003"]["wait_min"], visits["A-003"]["checked_out_at"]) == (9.0, at(20))
    assert visits["A-004"]["wait_min"] == 0.0  # never negative

    answer = central_server.metrics(reader, **_range(start))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["wait_median_min"], result["waits"]) == (9.0, 3)
    assert out_of_bounds(result, (utc_now() - start).total_seconds() / 60) == []
    assert set(dashboard_statuses(central_server, manager).values()) == {200}
    figures.record("impossible_visits", title="Impossible visits: times out of order",
                   figures={"refused": len(refused), "stored": len(stored),
                            "wait_median_min": result["wait_median_min"],
                            "negative_waits": 0},
                   seconds=time.monotonic() - started)


def test_two_desks_a_few_seconds_apart_keep_every_visit_whatever_arrives_first(central_server):
    # Desk B's clock runs 5 s behind desk A's; B calls the patient 2 s after A checked them
    # in, so B's stamp is 3 s "before" the check-in. Neither event may be refused, in either
    # order of arrival: a refused event is never resent, and the visit would be lost.
    desk_a, desk_b = central_server.add_device(name="desk-a"), central_server.add_device(
        name="desk-b")
    reader = central_server.add_reporting_token()
    a, b = WireEvents(), WireEvents()
    start = utc_now() - timedelta(minutes=20)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    check_in = start
    call = start - timedelta(seconds=3)

    # The call reaches the store first, then the check-in.
    called_first = _results(central_server.post_events(desk_b, [b.called(first, to_rfc3339(call))]))
    checked_in = _results(central_server.post_events(
        desk_a, [a.checked_in(first, to_rfc3339(check_in), "A-101")]))
    # The other way round, for a second visit.
    in_first = _results(central_server.post_events(
        desk_a, [a.checked_in(second, to_rfc3339(check_in + timedelta(minutes=1)), "A-102")]))
    call_after = _results(central_server.post_events(
        desk_b, [b.called(second, to_rfc3339(call + timedelta(minutes=1)))]))

    assert [r[0][0] for r in (called_first, checked_in, in_first, call_after)] == ["stored"] * 4
    visits = {row["ticket"]: row for row in central_server.rows(
        "SELECT ticket, status, wait_min FROM visits")}
    assert {ticket: (v["status"], v["wait_min"]) for ticket, v in visits.items()} == {
        "A-101": ("in_chair", 0.0), "A-102": ("in_chair", 0.0)}
    result = central_server.metrics(reader, **_range(start)).json()
    assert (result["visits"], result["waits"], result["wait_median_min"]) == (2, 2, 0.0)


def test_one_response_per_visit_and_none_for_a_visit_that_does_not_exist(central_server):
    desk = central_server.add_device()
    reader = central_server.add_reporting_token()
    kiosk = WireEvents()
    start = utc_now() - timedelta(minutes=30)

    def at(minutes: float) -> str:
        return to_rfc3339(start + timedelta(minutes=minutes))

    visit_id = str(uuid.uuid4())
    sent = [
        kiosk.checked_in(visit_id, at(0)),
        kiosk.called(visit_id, at(5)),
        kiosk.checked_out(visit_id, at(15)),
        kiosk.rating(5, at(16), visit_id),
        kiosk.rating(4, at(16.2), visit_id),
        kiosk.rating(1, at(16.4), str(uuid.uuid4())),  # a visit the store never heard of
    ]
    results = _results(central_server.post_events(desk, sent))
    later = _results(central_server.post_events(desk, [kiosk.rating(5, at(17), visit_id)]))

    assert results == [("stored", None)] * 6 and later == [("stored", None)]
    linked = central_server.rows(
        "SELECT score, link, wait_min FROM ratings WHERE visit_id IS NOT NULL")
    assert linked == [{"score": 5, "link": "direct", "wait_min": 5.0}]
    answer = central_server.metrics(reader, **_range(start))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["ratings"], result["checked_out"], result["response_rate"]) == (4, 1, 100.0)
    assert out_of_bounds(result, None) == []
    figures.record("impossible_visits_ratings", title="Impossible visits: extra ratings",
                   figures={"ratings_sent": 4, "ratings_counted": result["ratings"],
                            "response_rate": result["response_rate"]})


def test_a_rating_naming_another_sites_visit_is_refused(central_server):
    desk = central_server.add_device()
    elsewhere = central_server.add_device(site="North", name="Tablet")
    now = utc_now()
    visit_id, events = WireEvents().visit(checked_in=0, called=5, checked_out=10)
    central_server.post_events(desk, events)

    answer = central_server.post_events(
        elsewhere, [WireEvents().rating(5, to_rfc3339(now), visit_id)])

    assert _results(answer) == [("rejected", f"visit {visit_id} belongs to another site; a "
                                 "device writes only its own site's visits")]
    assert central_server.rows("SELECT COUNT(*) AS n FROM ratings") == [{"n": 0}]


def test_a_desks_own_rating_keeps_its_visit_from_a_tablets_waiting_one(central_server):
    desk = central_server.add_device()
    tablet = central_server.add_device(name="Tablet")
    start = utc_now() - timedelta(minutes=30)

    def at(minutes: float) -> str:
        return to_rfc3339(start + timedelta(minutes=minutes))

    kiosk = WireEvents()
    visit_id = str(uuid.uuid4())
    central_server.post_events(desk, [kiosk.checked_in(visit_id, at(0)),
                                      kiosk.called(visit_id, at(5))])
    # A tablet's press a minute after the checkout syncs before the desk's checkout does.
    central_server.post_events(tablet, [WireEvents().rating(2, at(16))])
    own = kiosk.rating(5, at(15.5), visit_id)
    central_server.post_events(desk, [kiosk.checked_out(visit_id, at(15)), own])

    rows = central_server.rows("SELECT id, visit_id, link FROM ratings ORDER BY occurred_at")
    assert [(row["visit_id"], row["link"]) for row in rows] == [(visit_id, "direct"),
                                                                (None, None)]
    assert rows[0]["id"] == own["id"]
