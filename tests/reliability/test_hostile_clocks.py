"""Kiosk clocks that lie, against the real central store on 127.0.0.1: instants spelled any
way but strict RFC 3339, instants outside the plausible window (before the product's epoch,
more than a day ahead of the store), a heartbeat from the future, a store poisoned before
these rules (repaired by migration 4), and, with Hypothesis, any mix of instants and event
orders: after it, every figure stays within its bounds and every dashboard page answers 200.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.shared.timeutil import to_rfc3339, utc_now
from kiosk.shared.wire import MAX_AHEAD, PRODUCT_EPOCH, EventRejected, validate_event
from sync.central import auth, retention
from sync.central.migrations import migrate
from sync.central.projections import CLOCK_ALLOWANCE, times_out_of_order
from sync.central.storage import CentralStore, connect, database_path
from tests.reliability import figures
from tests.reliability.bounds import (
    dashboard_statuses,
    manager_session,
    minutes_since,
    out_of_bounds,
)
from tests.support.central_server import running_central
from tests.support.wire_events import WireEvents

NOT_RFC3339 = (
    "2026-W49-2T10:00Z",  # ISO 8601 week date
    "20261201T100000Z",  # ISO 8601 basic format
    "2026-12-01 10:00:00Z",  # a space for the 'T'
    "2026-12-01T10:00Z",  # no seconds
    "2026-12-01T10:00:00",  # no zone
    "2026-12-01",  # a date alone
    "٢٠٢٦-١٢-٠١T10:00:00Z",  # Arabic-Indic digits
)


def _statuses(response: requests.Response) -> list[tuple[str, str | None]]:
    assert response.status_code == 200, response.text
    return [(result["status"], result["reason"]) for result in response.json()["results"]]


def _stored_ids(server) -> set[str]:
    return {row["id"] for row in server.rows("SELECT id FROM events")}


def test_instants_not_in_strict_rfc3339_are_refused_per_event(central_server):
    device = central_server.add_device()
    kiosk = WireEvents()
    now = utc_now()
    bad = [kiosk.heartbeat(text) for text in NOT_RFC3339]
    visit_id = str(uuid.uuid4())
    bad.append(kiosk.event("visit.checked_in", to_rfc3339(now), visit_id,
                           {"ticket": "A-017", "appointment_at": "2026-12-01 10:00:00Z"}))
    good = kiosk.heartbeat(to_rfc3339(now))

    results = _statuses(central_server.post_events(device, [*bad, good]))

    for (status, reason), text in zip(results[:-1], [*NOT_RFC3339, "2026-12-01 10:00:00Z"],
                                      strict=True):
        assert status == "rejected"
        assert f"{text!r} is not an RFC 3339 instant like 2026-11-23T09:15:02Z" in reason
    assert results[-1] == ("stored", None)
    assert _stored_ids(central_server) == {good["id"]}


def test_instants_outside_the_plausible_window_are_refused_and_nothing_breaks(central_server):
    device = central_server.add_device()
    reader = central_server.add_reporting_token()
    manager = manager_session(central_server)
    kiosk = WireEvents()
    now = utc_now()
    checked_in = to_rfc3339(now - timedelta(minutes=4))
    visit_id, other_id = str(uuid.uuid4()), str(uuid.uuid4())
    good = [
        kiosk.checked_in(visit_id, checked_in),
        kiosk.checked_in(other_id, checked_in, ticket="A-018"),
        kiosk.heartbeat(to_rfc3339(now), backlog=2, version="1.0.0"),
    ]
    year_9999 = "9999-12-31T23:59:59Z"
    bad = {
        "heartbeat in 9999": kiosk.heartbeat(year_9999, backlog=7, version="6.6.6"),
        "heartbeat a day and an hour ahead": kiosk.heartbeat(
            to_rfc3339(now + MAX_AHEAD + timedelta(hours=1))),
        "checkout in 9999": kiosk.checked_out(other_id, year_9999),
        "rating in year 1": kiosk.rating(5, "0001-01-01T00:00:00Z"),
        "called in 1970": kiosk.called(visit_id, "1970-01-01T00:00:00Z"),
        "correction to 1970": kiosk.corrected(visit_id, to_rfc3339(now), "checked_in_at",
                                              "1970-01-01T00:00:00Z"),
        "appointment in 9999": kiosk.event(
            "visit.checked_in", checked_in, str(uuid.uuid4()),
            {"ticket": "A-019", "appointment_at": year_9999}),
    }
    started = time.monotonic()

    results = _statuses(central_server.post_events(device, [*good, *bad.values()]))

    assert results[:3] == [("stored", None)] * 3
    reasons = dict(zip(bad, [reason for _, reason in results[3:]], strict=True))
    assert [status for status, _ in results[3:]] == ["rejected"] * len(bad)
    for name, reason in reasons.items():
        words = "is before 2020-01-01" if "1970" in name or "year 1" in name \
            else "more than a day ahead of the central store's clock"
        assert words in reason and "the kiosk's clock is wrong" in reason, (name, reason)
    assert reasons["correction to 1970"].startswith("value 1970-01-01T00:00:00Z")
    assert reasons["appointment in 9999"].startswith("appointment_at 9999-12-31T23:59:59Z")
    assert reasons["rating in year 1"].startswith("occurred_at 0001-01-01T00:00:00Z is before")
    assert _stored_ids(central_server) == {event["id"] for event in good}
    (row,) = central_server.rows(
        "SELECT last_heartbeat_at, backlog, version, clock_skew_s FROM devices")
    assert (row["backlog"], row["version"]) == (2, "1.0.0")
    assert abs(row["clock_skew_s"]) < 60

    answer = central_server.metrics(reader)
    assert answer.status_code == 200, answer.text
    longest = answer.json()["longest_current_wait_min"]
    assert 3.5 <= longest <= minutes_since(checked_in, utc_now()) + 0.1
    assert out_of_bounds(answer.json(), minutes_since(checked_in, utc_now())) == []
    assert set(dashboard_statuses(central_server, manager).values()) == {200}
    figures.record("hostile_clocks", title="Hostile clocks: instants outside the window",
                   figures={"refused": len(bad), "stored": len(good),
                            "not_rfc3339_refused": len(NOT_RFC3339),
                            "longest_current_wait_min": longest},
                   seconds=time.monotonic() - started)


def test_a_heartbeat_from_later_today_never_freezes_the_device_row(central_server):
    device = central_server.add_device()
    kiosk = WireEvents()
    now = utc_now()
    ahead = kiosk.heartbeat(to_rfc3339(now + timedelta(hours=12)), backlog=9, version="1.0.0")
    after = kiosk.heartbeat(to_rfc3339(now), backlog=0, version="1.0.1")

    assert _statuses(central_server.post_events(device, [ahead])) == [("stored", None)]
    assert _statuses(central_server.post_events(device, [after])) == [("stored", None)]

    (row,) = central_server.rows(
        "SELECT last_heartbeat_at, backlog, version, clock_skew_s FROM devices")
    assert (row["backlog"], row["version"]) == (0, "1.0.1")
    assert row["last_heartbeat_at"] == after["occurred_at"]
    assert abs(row["clock_skew_s"]) < 60


def test_a_wait_checked_in_ahead_of_the_store_is_zero_not_negative(central_server):
    device = central_server.add_device()
    reader = central_server.add_reporting_token()
    kiosk = WireEvents()
    now = utc_now()
    kiosk_ahead = to_rfc3339(now + timedelta(minutes=30))

    central_server.post_events(device, [kiosk.checked_in(str(uuid.uuid4()), kiosk_ahead)])

    answer = central_server.metrics(reader, to=to_rfc3339(now + timedelta(hours=1)))
    assert answer.status_code == 200, answer.text
    assert answer.json()["longest_current_wait_min"] == 0.0


# --- a store poisoned before these rules, repaired by migration 4 ---------------------------

def _poisoned_store(data_dir: Path) -> dict:
    """A schema-3 store holding what the old ingest stored from lying kiosks: a heartbeat in
    year 9999 (the device row frozen on it), a visit called in 1970 (a wait of minus decades),
    one called ten minutes before its check-in (a wait of minus ten minutes), three ratings
    linked to one visit and one naming a visit that does not exist."""
    data_dir.mkdir(parents=True)
    db = connect(database_path(data_dir))
    migrate(db, target=3)
    device, _ = auth.add_device(db, "Test Clinic", "Desk 1")
    now = utc_now()
    received = to_rfc3339(now)
    checked_in = now - timedelta(minutes=40)
    poisoned_visit, good_visit, waiting_visit, reversed_visit = (
        str(uuid.uuid4()) for _ in range(4))
    kiosk = WireEvents()
    events = [
        kiosk.heartbeat("9999-12-31T23:59:59.000Z", backlog=3, version="0.9.0"),
        kiosk.checked_in(poisoned_visit, to_rfc3339(checked_in), ticket="A-001"),
        kiosk.called(poisoned_visit, "1970-01-01T00:00:00.000Z"),
        kiosk.checked_out(poisoned_visit, to_rfc3339(checked_in + timedelta(minutes=20))),
        kiosk.checked_in(good_visit, to_rfc3339(checked_in), ticket="A-002"),
        kiosk.called(good_visit, to_rfc3339(checked_in + timedelta(minutes=6))),
        kiosk.checked_out(good_visit, to_rfc3339(checked_in + timedelta(minutes=16))),
        kiosk.checked_in(reversed_visit, to_rfc3339(checked_in), ticket="A-004"),
        kiosk.called(reversed_visit, to_rfc3339(checked_in - timedelta(minutes=10))),
        kiosk.checked_out(reversed_visit, to_rfc3339(checked_in + timedelta(minutes=10))),
        kiosk.checked_in(waiting_visit, to_rfc3339(now - timedelta(minutes=4)), ticket="A-003"),
    ]
    for event in events:
        db["events"].insert({**event, "device_id": device.id, "received_at": received,
                             "data": event["data"]})
    wait_poisoned = (datetime(1970, 1, 1, tzinfo=UTC) - checked_in).total_seconds() / 60
    for visit_id, ticket, called, out, wait, status in (
        (poisoned_visit, "A-001", "1970-01-01T00:00:00.000Z",
         to_rfc3339(checked_in + timedelta(minutes=20)), wait_poisoned, "done"),
        (good_visit, "A-002", to_rfc3339(checked_in + timedelta(minutes=6)),
         to_rfc3339(checked_in + timedelta(minutes=16)), 6.0, "done"),
        (reversed_visit, "A-004", events[8]["occurred_at"], events[9]["occurred_at"], -10.0,
         "done"),
    ):
        db["visits"].insert({"id": visit_id, "device_id": device.id, "site": "Test Clinic",
                             "ticket": ticket, "checked_in_at": to_rfc3339(checked_in),
                             "called_at": called, "checked_out_at": out, "status": status,
                             "voided": 0, "wait_min": wait, "updated_at": received})
    db["visits"].insert({"id": waiting_visit, "device_id": device.id, "site": "Test Clinic",
                         "ticket": "A-003", "checked_in_at": events[-1]["occurred_at"],
                         "status": "waiting", "voided": 0, "updated_at": received})
    rated_at = to_rfc3339(checked_in + timedelta(minutes=17))
    for visit_id in (good_visit, good_visit, good_visit, str(uuid.uuid4())):
        db["ratings"].insert({"id": str(uuid.uuid4()), "device_id": device.id,
                              "site": "Test Clinic", "visit_id": visit_id, "link": "direct",
                              "score": 5, "scale": 5, "tags": "[]", "misuse": 0,
                              "occurred_at": rated_at, "wait_min": 6.0})
    db.execute("UPDATE devices SET last_heartbeat_at = ?, backlog = 3, version = '0.9.0', "
               "clock_skew_s = ? WHERE id = ?",
               ["9999-12-31T23:59:59.000Z", -250_000_000_000.0, device.id])
    db.close()
    return {"device": device.id, "poisoned_visit": poisoned_visit, "good_visit": good_visit,
            "waiting_since": events[-1]["occurred_at"], "heartbeat": events[0]["id"],
            "bad_called": events[2]["id"], "reversed_visit": reversed_visit,
            "reversed_called": events[8]["id"]}


def test_a_store_poisoned_before_the_rules_is_repaired_by_the_migration(tmp_path):
    data_dir = tmp_path / "central"
    made = _poisoned_store(data_dir)
    started = time.monotonic()

    with running_central(data_dir) as server:
        reader = server.add_reporting_token()
        manager = manager_session(server)
        answer = server.metrics(reader)
        statuses = dashboard_statuses(server, manager)
        set_aside = server.rows("SELECT id, reason FROM events_set_aside ORDER BY id")
        visits = {row["id"]: row for row in server.rows("SELECT * FROM visits")}
        linked = server.rows("SELECT visit_id, COUNT(*) AS n FROM ratings "
                             "WHERE visit_id IS NOT NULL GROUP BY visit_id")
        (device,) = server.rows("SELECT * FROM devices")

    assert set(statuses.values()) == {200}, statuses
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert out_of_bounds(result, minutes_since(made["waiting_since"], utc_now())) == []
    assert result["wait_median_min"] == 6.0  # the 1970 call is set aside, not counted
    assert result["response_rate"] == 33.33  # one of the three checked-out visits answered
    assert 3.5 <= result["longest_current_wait_min"] <= 4.6
    reasons = {row["id"]: row["reason"] for row in set_aside}
    assert set(reasons) == {made["heartbeat"], made["bad_called"], made["reversed_called"]}
    assert "more than a day ahead" in reasons[made["heartbeat"]]
    assert "is before 2020-01-01" in reasons[made["bad_called"]]
    assert "put the visit's times out of order (called in " in reasons[made["reversed_called"]]
    reversed_row = visits[made["reversed_visit"]]
    assert reversed_row["called_at"] is None and reversed_row["wait_min"] is None
    poisoned = visits[made["poisoned_visit"]]
    assert poisoned["called_at"] is None and poisoned["wait_min"] is None
    assert linked == [{"visit_id": made["good_visit"], "n": 1}]
    assert device["last_heartbeat_at"] is None and device["clock_skew_s"] is None
    assert device["seq_max"] == 11 and device["seq_stored"] == 8
    store = CentralStore(data_dir)  # what is set aside is purged with the rest, by when it arrived
    try:
        with store.write() as db:
            purged = retention.purge(db, 1, utc_now() + timedelta(days=2))
        assert purged["events"] == 3 + 8
        assert store.query("SELECT COUNT(*) AS n FROM events_set_aside") == [{"n": 0}]
    finally:
        store.close()
    figures.record("hostile_clocks_repair", title="Hostile clocks: a poisoned store repaired",
                   figures={"events_set_aside": len(set_aside),
                            "pages_answering_200": len(statuses),
                            "response_rate_after": result["response_rate"],
                            "wait_median_min_after": result["wait_median_min"]},
                   seconds=time.monotonic() - started)


# --- any instants, any order: the figures stay within bounds -------------------------------

# Minutes from "now" (the store's clock) an instant may be, well beyond the window both ways,
# plus instants anywhere in the years 1 to 9999.
NEAR_MINUTES = st.integers(min_value=-6 * 60, max_value=30 * 60)
ANY_INSTANT = st.datetimes(
    min_value=PRODUCT_EPOCH.replace(year=1, tzinfo=None),
    max_value=PRODUCT_EPOCH.replace(year=9999, tzinfo=None),
)
INSTANT = st.one_of(NEAR_MINUTES, NEAR_MINUTES, NEAR_MINUTES, ANY_INSTANT)
ACTION = st.one_of(
    st.tuples(st.sampled_from(["checked_in", "called", "checked_out"]),
              st.integers(0, 3), INSTANT),
    st.tuples(st.just("corrected"), st.integers(0, 3), INSTANT,
              st.sampled_from(["checked_in_at", "called_at", "checked_out_at"])),
    st.tuples(st.just("undone"), st.integers(0, 3), INSTANT,
              st.sampled_from(["visit.called", "visit.checked_out"])),
    st.tuples(st.just("rating"), st.integers(0, 4), INSTANT, st.integers(1, 5)),
    st.tuples(st.just("heartbeat"), st.integers(0, 0), INSTANT),
)


def _instant(value, now) -> str:
    if isinstance(value, int):
        return to_rfc3339(now + timedelta(minutes=value))
    return value.isoformat(timespec="seconds") + "Z"


def _events_of(actions: list, now) -> list[dict]:
    kiosk = WireEvents()
    visits = [str(uuid.uuid4()) for _ in range(4)]
    unknown_visit = str(uuid.uuid4())
    events = []
    for action in actions:
        kind, index, instant = action[0], action[1], _instant(action[2], now)
        if kind == "checked_in":
            events.append(kiosk.checked_in(visits[index], instant, f"A-{index + 1:03d}"))
        elif kind in ("called", "checked_out"):
            events.append(getattr(kiosk, kind)(visits[index], instant))
        elif kind == "corrected":
            events.append(kiosk.corrected(visits[index], to_rfc3339(now), action[3], instant))
        elif kind == "undone":
            events.append(kiosk.undone(visits[index], to_rfc3339(now), action[3]))
        elif kind == "rating":
            named = [*visits, unknown_visit, None][index] if index < 4 else None
            events.append(kiosk.rating(action[3], instant, named))
        else:
            events.append(kiosk.heartbeat(instant))
    return events


class _Shared:
    """One live store for every example (a fresh device and site each), so examples stay fast."""

    server = None
    reader = None
    manager = None
    count = 0


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(actions=st.lists(ACTION, min_size=1, max_size=14), order=st.randoms(use_true_random=False),
       batch_size=st.integers(1, 6))
def _any_events_keep_every_figure_in_bounds(actions, order, batch_size):
    shared = _Shared
    shared.count += 1
    site = f"Site {shared.count}"
    device = shared.server.add_device(site=site)
    now = utc_now()
    events = _events_of(actions, now)
    order.shuffle(events)  # sequence numbers were given in recorded order: sent in any order
    for start in range(0, len(events), batch_size):
        batch = events[start:start + batch_size]
        answer = shared.server.post_events(device, batch)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["results"]) == len(batch)
    answer = shared.server.metrics(shared.reader, site=site,
                                   **{"from": to_rfc3339(now - timedelta(days=2)),
                                      "to": to_rfc3339(now + timedelta(days=2))})
    assert answer.status_code == 200, answer.text
    after = utc_now()
    waiting = shared.server.rows(
        "SELECT v.checked_in_at, d.clock_skew_s FROM visits v JOIN devices d "
        "ON d.id = v.device_id WHERE v.site = ? AND v.status = 'waiting'", [site])
    (skew,) = shared.server.rows("SELECT clock_skew_s FROM devices WHERE id = ?",
                                 [device.device_id])
    assert skew["clock_skew_s"] is None or skew["clock_skew_s"] >= -MAX_AHEAD.total_seconds() - 5
    ahead_min = max(0.0, -(skew["clock_skew_s"] or 0.0)) / 60
    # A check-in stamped ahead of the store waits 0, never less.
    allowed = (max(0.0, max(minutes_since(row["checked_in_at"], after) for row in waiting)
                   + ahead_min) if waiting else None)
    assert out_of_bounds(answer.json(), allowed) == [], (answer.json(), allowed)
    bad_visits = shared.server.rows(
        "SELECT * FROM visits WHERE site = ? AND (wait_min < 0 OR checked_in_at < ? "
        "OR checked_in_at > ?)",
        [site, to_rfc3339(PRODUCT_EPOCH), to_rfc3339(after + MAX_AHEAD)])
    assert bad_visits == []
    # Times in order, within the clock allowance two desks' stamps may disagree by.
    for visit in shared.server.rows("SELECT * FROM visits WHERE site = ?", [site]):
        assert times_out_of_order(visit, CLOCK_ALLOWANCE) is None, visit
    doubly_linked = shared.server.rows(
        "SELECT visit_id FROM ratings WHERE site = ? AND visit_id IS NOT NULL "
        "GROUP BY visit_id HAVING COUNT(*) > 1", [site])
    assert doubly_linked == []
    for path in ("/", "/dashboard/queue.json", "/devices"):
        page = shared.manager.get(shared.server.url(path) + f"?site={site}", timeout=30)
        assert page.status_code == 200, (path, page.text[:300])


def test_any_instants_and_orders_keep_every_figure_in_bounds(central_server):
    _Shared.server = central_server
    _Shared.reader = central_server.add_reporting_token()
    _Shared.manager = manager_session(central_server)
    _Shared.count = 0
    started = time.monotonic()
    try:
        _any_events_keep_every_figure_in_bounds()
    finally:
        _Shared.server = None
    stored = central_server.rows("SELECT COUNT(*) AS n FROM events")[0]["n"]
    figures.record("hostile_clocks_property", title="Hostile clocks: any instants, any order",
                   figures={"examples": _Shared.count, "events_stored": stored},
                   seconds=time.monotonic() - started)


RECEIVED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # the store's clock, pinned
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))


@settings(max_examples=60, deadline=None)
@given(moment=st.one_of(
    # Mostly around the window's edges, some anywhere in the calendar.
    st.datetimes(min_value=datetime(2019, 12, 30), max_value=datetime(2020, 1, 3),
                 timezones=OFFSETS),
    st.datetimes(min_value=datetime(2026, 11, 30), max_value=datetime(2026, 12, 4),
                 timezones=OFFSETS),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                 timezones=OFFSETS),
),
       fraction=st.sampled_from(["", ".1", ".123", ".123456789"]))
def test_any_strict_instant_is_accepted_exactly_inside_the_window(moment, fraction):
    whole = moment.replace(microsecond=0)
    text = whole.replace(tzinfo=None).isoformat() + fraction + whole.isoformat()[19:]
    event = {**WireEvents().heartbeat(text), "occurred_at": text}
    instant = whole.astimezone(UTC)
    try:
        validate_event(event, RECEIVED)
    except EventRejected as error:
        reason = str(error)
    else:
        reason = None
    if instant < PRODUCT_EPOCH:
        assert reason is not None and "is before 2020-01-01" in reason
    elif instant - RECEIVED > MAX_AHEAD + timedelta(seconds=1):
        assert reason is not None and "more than a day ahead" in reason
    elif instant - RECEIVED <= MAX_AHEAD:
        assert reason is None
