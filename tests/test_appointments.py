"""Appointment times at the desk: the picker's quarter-hours, check-in with one, setting or
fixing one later (a ``visit.corrected`` with ``field: "appointment_at"``), and the refusals.
Pinned clocks; no window (tests/ui/test_appointment_window.py taps the real screen)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.appointment_picker import AppointmentPicker, quarter_floor, quarter_hours
from kiosk.config import load_settings
from kiosk.errors import InvalidTransition, ModelError
from kiosk.flow import KioskFlow
from kiosk.shared.wire import EventRejected, validate_event
from kiosk.store import Store
from tests.support.clock import FakeClock


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def labels(moments, tz="Europe/London") -> list[str]:
    return [AppointmentPicker(tz, moments[0]).local(m) for m in moments]


@pytest.fixture
def make_flow(tmp_path, fast_hasher):
    flows = []

    def make(start: datetime, timezone: str = "Europe/London") -> tuple[KioskFlow, FakeClock]:
        clock = FakeClock(start)
        settings = load_settings(environ={}, data_dir=str(tmp_path / f"k{len(flows)}"),
                                 timezone=timezone)
        store = Store(settings.database_path, clock=clock)
        flow = KioskFlow(store, settings, clock=clock, hasher=fast_hasher)
        flow.pin.set_pin("2468")
        flow._pin_set = True
        for digit in "2468":
            flow.pin_digit(digit)
        flow.pin_submit()
        flows.append(flow)
        return flow, clock

    yield make
    for flow in flows:
        flow.store.close()


def corrections(store, visit_id) -> list[dict]:
    return [json.loads(e["data"]) for e in store.events()
            if e["visit_id"] == visit_id and e["type"] == "visit.corrected"]


# -- the quarter-hours ------------------------------------------------------------------------


def test_quarter_hours_run_from_half_an_hour_before_to_an_hour_and_a_quarter_after():
    # 09:07:30 in London in November (GMT): the quarter is 09:00.
    moments = quarter_hours(utc(2026, 11, 23, 9, 7, 30), "Europe/London")
    assert labels(moments) == ["08:30", "08:45", "09:00", "09:15", "09:30", "09:45", "10:00",
                               "10:15"]


def test_quarter_hours_follow_the_site_clock_not_utc():
    # 09:07 UTC is 14:52 in Kathmandu (+05:45): its quarter is 14:45, which is 09:00 UTC.
    moment = utc(2026, 11, 23, 9, 7)
    assert quarter_floor(moment, "Asia/Kathmandu") == utc(2026, 11, 23, 9, 0)
    first = quarter_hours(moment, "Asia/Kathmandu")[0]
    assert AppointmentPicker("Asia/Kathmandu", moment).local(first) == "14:15"
    # On the quarter exactly, that quarter is the anchor's own.
    assert quarter_floor(utc(2026, 11, 23, 9, 15), "Europe/London") == utc(2026, 11, 23, 9, 15)


def test_quarter_hours_across_the_clocks_going_forward():
    # 29 March 2026, London: 01:00 GMT becomes 02:00 BST. At 00:50 GMT the choices skip the
    # hour that does not exist and are 15 real minutes apart throughout.
    moments = quarter_hours(utc(2026, 3, 29, 0, 50), "Europe/London")
    assert labels(moments) == ["00:15", "00:30", "00:45", "02:00", "02:15", "02:30", "02:45",
                               "03:00"]
    assert {b - a for a, b in zip(moments, moments[1:], strict=False)} == {timedelta(minutes=15)}


def test_quarter_hours_across_the_clocks_going_back():
    # 25 October 2026, London: 02:00 BST becomes 01:00 GMT; 01:00-01:45 happen twice and the
    # picker offers each real quarter-hour once (so a label can repeat).
    moments = quarter_hours(utc(2026, 10, 25, 0, 40), "Europe/London")
    assert labels(moments) == ["01:00", "01:15", "01:30", "01:45", "01:00", "01:15", "01:30",
                               "01:45"]
    assert moments[4] - moments[0] == timedelta(hours=1)


def test_the_repeated_times_of_the_clocks_going_back_show_their_zone():
    # 25 October 2026, London, 00:50 UTC (01:50 BST): 01:15-01:45 BST, then the same wall
    # times in GMT; 01:00 happens twice too (00:00 UTC in BST), 02:00 only once.
    picker = AppointmentPicker("Europe/London", utc(2026, 10, 25, 0, 50))
    assert picker.labels() == ["01:15 BST", "01:30 BST", "01:45 BST", "01:00 GMT",
                               "01:15 GMT", "01:30 GMT", "01:45 GMT", "02:00"]
    assert len(set(picker.labels())) == 8
    # Any other day keeps its labels short, the night the clocks go forward included.
    assert "BST" not in "".join(AppointmentPicker("Europe/London",
                                                  utc(2026, 3, 29, 0, 50)).labels())


def test_a_check_in_on_a_repeated_time_says_which_one(make_flow):
    flow, _ = make_flow(utc(2026, 10, 25, 1, 10))  # 01:10 GMT, the second 01:10 of the night
    flow.open_appointment_check_in()
    assert flow.appointment.labels()[:3] == ["01:30 BST", "01:45 BST", "01:00 GMT"]
    flow.pick_appointment(0)
    assert "appointment 01:30 BST" in flow.banner().text


def test_opening_the_picker_clears_the_last_actions_banner(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    visit = flow.check_in()
    assert flow.banner() is not None  # "Checked in: ticket ..." about that patient
    flow.open_appointment_check_in()
    assert flow.banner() is None
    flow.cancel_appointment()
    flow.notify("Called in: ticket A-017.", "info")
    flow.open_visit(visit["id"])
    flow.open_appointment_fix()
    assert flow.banner() is None


def test_earlier_and_later_move_the_row_by_an_hour():
    picker = AppointmentPicker("Europe/London", utc(2026, 11, 23, 9, 7))
    picker.later()
    assert picker.labels()[0] == "09:30"
    picker.earlier()
    picker.earlier()
    assert picker.labels()[0] == "07:30"
    with pytest.raises(ModelError, match="no appointment button 9"):
        picker.choice(8)


# -- at check-in ------------------------------------------------------------------------------


def test_check_in_without_an_appointment_is_still_one_call(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    visit = flow.check_in()
    assert visit["appointment_at"] is None
    assert flow.screen() == "staff"


def test_check_in_with_an_appointment_is_one_more_tap(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    flow.open_appointment_check_in()
    assert flow.screen() == "appointment"
    assert flow.appointment.labels()[3] == "09:15"
    visit = flow.pick_appointment(3)
    assert visit["appointment_at"] == "2026-11-23T09:15:00.000Z"
    assert flow.screen() == "staff"
    assert "appointment 09:15" in flow.banner().text
    [event] = [e for e in flow.store.events() if e["visit_id"] == visit["id"]]
    assert json.loads(event["data"])["appointment_at"] == "2026-11-23T09:15:00.000Z"


def test_a_late_patient_gets_an_appointment_time_already_past(make_flow):
    # 08:45 GMT is 09:45 in Paris: the patient booked for 09:15 there and is half an hour late.
    flow, _ = make_flow(utc(2026, 11, 23, 8, 45), timezone="Europe/Paris")
    flow.open_appointment_check_in()
    assert flow.appointment.labels()[:2] == ["09:15", "09:30"]
    visit = flow.pick_appointment(0)
    assert visit["appointment_at"] == "2026-11-23T08:15:00.000Z"


def test_no_appointment_in_the_picker_checks_in_without_one(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    flow.open_appointment_check_in()
    visit = flow.no_appointment()
    assert visit["appointment_at"] is None and visit["ticket"] == "A-001"
    assert flow.screen() == "staff"


def test_back_from_the_picker_checks_no_one_in(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    flow.open_appointment_check_in()
    flow.cancel_appointment()
    assert flow.screen() == "staff"
    assert flow.store.events() == []


def test_picking_with_no_picker_open_says_what_to_do(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    with pytest.raises(ModelError, match="Tap With appointment"):
        flow.pick_appointment(0)


def test_locking_the_desk_closes_the_picker(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    flow.open_appointment_check_in()
    flow.lock()
    assert flow.appointment is None and flow.screen() == "pin"


# -- later, from the visit's "More…" ---------------------------------------------------------


def test_an_appointment_set_later_is_a_logged_correction(make_flow):
    flow, clock = make_flow(utc(2026, 11, 23, 9, 7))
    visit = flow.check_in()
    clock.advance(minutes=20)
    flow.open_visit(visit["id"])
    flow.open_appointment_fix()
    # Laid out around the check-in (09:07), not the clock now (09:27).
    assert flow.appointment.labels()[2] == "09:00"
    assert flow.appointment.chosen_index() is None
    flow.pick_appointment(2)
    assert flow.store.visit(visit["id"])["appointment_at"] == "2026-11-23T09:00:00.000Z"
    assert corrections(flow.store, visit["id"]) == [
        {"field": "appointment_at", "value": "2026-11-23T09:00:00.000Z"}]
    assert flow.screen() == "staff"
    assert "set to 09:00" in flow.banner().text


def test_an_appointment_can_be_moved_then_cleared(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    flow.open_appointment_check_in()
    visit = flow.pick_appointment(3)  # 09:15
    flow.open_visit(visit["id"])
    flow.open_appointment_fix()
    assert flow.appointment.chosen_index() == 3
    with pytest.raises(ModelError, match="already has that appointment time"):
        flow.pick_appointment(3)
    flow.pick_appointment(4)
    flow.open_visit(visit["id"])
    flow.open_appointment_fix()
    flow.no_appointment()
    assert flow.store.visit(visit["id"])["appointment_at"] is None
    assert corrections(flow.store, visit["id"]) == [
        {"field": "appointment_at", "value": "2026-11-23T09:30:00.000Z"},
        {"field": "appointment_at", "value": None},
    ]
    # Every correction is a valid wire event (a current central store accepts it).
    for event in flow.store.events():
        validate_event({k: event[k] for k in ("id", "device_seq", "type", "occurred_at",
                                              "visit_id")} | {"data": json.loads(event["data"])})


def test_clearing_an_appointment_that_is_not_there_records_nothing(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    visit = flow.check_in()
    flow.open_visit(visit["id"])
    flow.open_appointment_fix()
    assert flow.no_appointment() is None
    assert corrections(flow.store, visit["id"]) == []


def test_an_undone_visit_gets_no_appointment(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    visit = flow.check_in()
    flow.undo()
    with pytest.raises(InvalidTransition, match="was undone"):
        flow.desk.set_appointment(visit["id"], utc(2026, 11, 23, 9, 15))
    flow.open_visit(visit["id"])
    with pytest.raises(ModelError, match="was undone"):
        flow.open_appointment_fix()


def test_an_appointment_half_a_day_from_the_check_in_is_refused(make_flow):
    flow, _ = make_flow(utc(2026, 11, 23, 9, 7))
    with pytest.raises(ModelError, match="within 12 hours of the check-in"):
        flow.desk.check_in(appointment_at=utc(2026, 11, 23, 21, 15))
    assert flow.store.events() == []
    visit = flow.check_in()
    with pytest.raises(ModelError, match="within 12 hours of the check-in"):
        flow.desk.set_appointment(visit["id"], utc(2026, 11, 22, 21, 0))
    with pytest.raises(ModelError, match="needs a time zone"):
        flow.desk.set_appointment(visit["id"], datetime(2026, 11, 23, 9, 15))
    assert corrections(flow.store, visit["id"]) == []


# -- the wire addition ------------------------------------------------------------------------


def _corrected(field: str, value) -> dict:
    return {"id": "9b2f4e1c-3a57-4f6e-8d0c-2b7a1e5c9f10", "device_seq": 3,
            "type": "visit.corrected", "occurred_at": "2026-11-23T09:20:00Z",
            "visit_id": "0d6c3f8e-1b2a-4c5d-9e7f-a1b2c3d4e5f6",
            "data": {"field": field, "value": value}}


def test_the_wire_takes_an_appointment_correction_and_its_clearing():
    assert validate_event(_corrected("appointment_at", "2026-11-23T09:15:00Z")).data[
        "value"] == "2026-11-23T09:15:00Z"
    assert validate_event(_corrected("appointment_at", None)).data["value"] is None


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("called_at", None, "is not an RFC 3339 instant"),
        ("appointment_at", "09:15", "is not an RFC 3339 instant"),
        ("appointment", "2026-11-23T09:15:00Z", "is not one of checked_in_at"),
    ],
)
def test_the_wire_refuses_a_bad_correction_with_a_reason(field, value, reason):
    with pytest.raises(EventRejected, match=reason):
        validate_event(_corrected(field, value))
