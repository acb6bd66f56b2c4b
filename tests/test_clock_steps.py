"""The kiosk's clock may step back (an NTP fix after a wrong time, a time set by hand, a
Raspberry Pi without a real-time clock booting on an old date): nothing that counts time
from an earlier moment may then run for as long as the clock went back, refuse a tap, or
record a visit's times out of order (the central store would refuse those events)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kiosk.desk import FrontDesk
from kiosk.disk_guard import DiskGuard
from kiosk.errors import NothingToUndo, PinLocked
from kiosk.pin import PinLock
from kiosk.rating_flow import RatingFlow
from kiosk.shared.timeutil import parse_rfc3339
from kiosk.store import StoreFull
from tests.support.kiosk_flow import type_pin

A_YEAR_S = 365 * 24 * 3600


def test_a_lockout_set_while_the_clock_ran_a_year_ahead_lasts_no_longer_than_the_longest(
        store, clock, fast_hasher):
    pin = PinLock(store, clock, fast_hasher)
    pin.set_pin("2468")
    clock.advance(seconds=A_YEAR_S)
    for _ in range(PinLock.FREE_ATTEMPTS):
        assert pin.verify("0000") is False
    clock.advance(seconds=-A_YEAR_S)  # the NTP fix
    assert 0 < pin.seconds_locked() <= PinLock.MAX_LOCK_S
    with pytest.raises(PinLocked):
        pin.verify("2468")
    clock.advance(seconds=PinLock.MAX_LOCK_S)
    assert pin.seconds_locked() == 0 and pin.verify("2468") is True


def test_an_unlocked_staff_screen_still_locks_after_its_idle_time(make_flow, clock):
    flow = make_flow()
    type_pin(flow, "2468")
    assert flow.screen() == "staff" and flow.staff.unlocked
    clock.advance(minutes=-60)
    flow.tick()  # the screen ticks every second: the step is seen at once
    assert flow.staff.unlocked
    clock.advance(seconds=flow.settings.staff_lock_s + 1)
    flow.tick()
    assert not flow.staff.unlocked and flow.screen() == "pin"


def test_an_action_stamped_after_the_step_back_cannot_be_undone_an_hour_later(desk, clock):
    desk.check_in()
    clock.advance(minutes=-60)
    assert desk.undo_remaining() == 0 and desk.undo_label() is None
    clock.advance(minutes=30)
    with pytest.raises(NothingToUndo):
        desk.undo()


def test_ratings_after_the_clock_stepped_back_are_not_taken_for_repeated_presses(
        store, settings, clock):
    flow = RatingFlow(store, replace(settings, role="ratings", thanks_s=1), clock)
    for step_s in (0, 60, -3600, 360):
        clock.advance(seconds=step_s)
        flow.start()
        flow.choose(5)
    flags = [row["misuse"] for row in store.ratings_between("0001", "9999")]
    assert flags == [0, 0, 0, 0]
    assert FrontDesk(store, settings, clock).today_report()["ratings"] == 4


def test_the_disk_guard_checks_again_after_the_clock_stepped_back(store, clock):
    free = {"bytes": 10**12}
    guard = DiskGuard(store, 100, 400, clock, free_bytes=lambda _folder: free["bytes"])
    clock.advance(seconds=A_YEAR_S)
    assert guard.check_if_due() is None
    clock.advance(seconds=-A_YEAR_S)
    free["bytes"] = 1
    clock.advance(seconds=61)
    assert guard.check_if_due() is not None  # low, and said so, not silent for a year


def test_a_call_and_a_checkout_after_the_clock_stepped_back_keep_the_visits_order(desk, clock):
    first, second = desk.check_in(), None
    clock.advance(minutes=20)
    second = desk.check_in()
    clock.advance(minutes=-40)
    desk.call_in(first["id"])
    desk.call_in(second["id"])
    checked_out = desk.check_out(second["id"])
    for visit in (desk.store.visit(first["id"]), checked_out):
        times = [parse_rfc3339(visit[key]) for key in ("checked_in_at", "called_at",
                                                      "checked_out_at") if visit[key]]
        assert times == sorted(times), visit
    summary = desk.staff_summary()
    assert summary["wait_median_min"] is not None and summary["wait_median_min"] >= 0


def test_a_ratings_tablet_left_on_its_pin_pad_goes_back_to_the_faces(make_flow, clock):
    flow = make_flow(role="ratings")
    for _ in range(3):
        flow.corner_tap()
    assert flow.screen() == "pin"
    clock.advance(seconds=flow.settings.staff_lock_s - 1)
    flow.tick()
    assert flow.screen() == "pin"  # staff who are typing their PIN keep the pad
    clock.advance(seconds=2)
    flow.tick()
    assert flow.screen() == "rating"
    # Unlocked, then left: the staff screen locks, then the pad goes back to the faces.
    for _ in range(3):
        flow.corner_tap()
    type_pin(flow, "2468")
    assert flow.screen() == "staff"
    clock.advance(seconds=flow.settings.staff_lock_s + 1)
    flow.tick()
    clock.advance(seconds=flow.settings.staff_lock_s + 1)
    flow.tick()
    assert flow.screen() == "rating"


def test_a_checkout_rated_by_its_patient_can_no_longer_be_undone(make_flow, store):
    flow = make_flow()
    type_pin(flow, "2468")
    visit = flow.check_in()
    flow.call_in(visit["id"])
    flow.check_out(visit["id"])
    flow.rating.choose(4)
    assert flow.desk.undo_remaining() == 0
    with pytest.raises(NothingToUndo):
        flow.undo()
    rated = [row for row in store.ratings_between("0001", "9999")
             if row["visit_id"] == visit["id"]]
    assert len(rated) == 1


def test_an_undo_the_full_disk_refused_can_be_tried_again(desk, store, monkeypatch):
    visit = desk.check_in()
    real = store.record

    def full(*args, **kwargs):
        raise StoreFull("database or disk is full")

    monkeypatch.setattr(store, "record", full)
    with pytest.raises(StoreFull):
        desk.undo()
    monkeypatch.setattr(store, "record", real)
    assert desk.undo()["id"] == visit["id"]
