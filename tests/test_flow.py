"""The kiosk's screen-level state machine, without a window."""

from __future__ import annotations

import pytest

from kiosk.config import load_settings
from kiosk.errors import ModelError, PinError
from kiosk.flow import CornerGesture, KioskFlow, PinPad
from tests.support.kiosk_flow import type_pin


def test_first_start_sets_the_pin_typed_twice(make_flow):
    flow = make_flow(pin=None)
    assert flow.screen() == "pin_setup"
    with pytest.raises(PinError, match="4 to 8 digits"):
        type_pin(flow, "12")
    assert flow.screen() == "pin_setup" and flow.setup.stage == "choose"
    type_pin(flow, "1234")
    assert flow.setup.stage == "confirm"
    with pytest.raises(PinError, match="not the same"):
        type_pin(flow, "4321")
    assert flow.setup.stage == "choose" and not flow.pin.has_pin()
    type_pin(flow, "1234")
    type_pin(flow, "1234")
    assert flow.screen() == "staff"


def test_a_wrong_pin_says_how_many_tries_are_left(make_flow, store):
    flow = make_flow()
    with pytest.raises(PinError, match="4 more tries"):
        type_pin(flow, "0000")
    assert flow.screen() == "pin" and store.get_meta("pin_failures") == "1"


def test_checkout_on_a_desk_turns_to_the_patient_then_back(make_flow, clock):
    flow = make_flow()
    type_pin(flow, "2468")
    visit = flow.check_in()
    flow.call_in(visit["id"])
    flow.check_out(visit["id"])
    assert flow.screen() == "rating" and flow.rating.visit_id == visit["id"]
    assert flow.choose_face(5) == "thanks"
    clock.advance(seconds=flow.settings.thanks_s)
    assert flow.tick() == "staff"


def test_a_staff_device_never_shows_the_faces(make_flow):
    flow = make_flow(role="staff")
    type_pin(flow, "2468")
    visit = flow.check_in()
    flow.call_in(visit["id"])
    flow.check_out(visit["id"])
    assert flow.screen() == "staff"


def test_a_ratings_tablet_shows_faces_and_the_corner_leads_to_the_pin(make_flow):
    flow = make_flow(role="ratings")
    assert flow.screen() == "rating" and not flow.can_leave()
    flow.corner_tap()
    flow.corner_tap()
    assert flow.screen() == "rating"
    flow.corner_tap()
    assert flow.screen() == "pin"
    flow.leave_pin()
    assert flow.screen() == "rating"


def test_the_corner_taps_must_come_quickly(clock):
    corner = CornerGesture(clock)
    assert not corner.tap() and not corner.tap()
    clock.advance(seconds=3)
    assert not corner.tap()
    assert not corner.tap()
    assert corner.tap()


def test_the_staff_screen_locks_itself_and_forgets_the_open_visit(make_flow, clock):
    flow = make_flow()
    type_pin(flow, "2468")
    flow.open_visit(flow.check_in()["id"])
    assert flow.screen() == "visit"
    clock.advance(seconds=flow.settings.staff_lock_s)
    assert flow.tick() == "pin"
    assert flow.open_visit_id is None


def test_fix_a_time_with_minute_steps(make_flow, clock, store):
    flow = make_flow()
    type_pin(flow, "2468")
    visit = flow.check_in()
    clock.advance(minutes=12)
    flow.open_visit(visit["id"])
    flow.start_fix()
    assert flow.screen() == "fix" and flow.fix.field == "checked_in_at"
    with pytest.raises(ModelError, match="unchanged"):
        flow.save_fix()
    flow.fix_step(-5)
    flow.fix_step(1)
    assert flow.fix.local() == "08:56"
    flow.save_fix()
    assert flow.screen() == "staff"
    assert store.visit(visit["id"])["checked_in_at"].startswith("2026-11-23T08:56")


def test_no_show_from_the_visit_page(make_flow, store):
    flow = make_flow()
    type_pin(flow, "2468")
    visit = flow.check_in()
    flow.open_visit(visit["id"])
    flow.cancel_visit("no_show")
    assert store.visit(visit["id"])["status"] == "no_show"
    assert flow.screen() == "staff"


def test_patients_only_see_error_messages(make_flow):
    flow = make_flow(role="ratings")
    flow.notify("Checked in: ticket A-001.", "info")
    assert flow.banner() is None
    flow.notify("the disk is full", "error")
    assert flow.banner().text == "The disk is full"


def test_notices_expire(make_flow, clock):
    flow = make_flow()
    flow.notify("hello", "info")
    clock.advance(seconds=11)
    flow.tick()
    assert flow.notice is None


def test_the_pin_pad_keeps_at_most_eight_digits():
    pad = PinPad()
    for _ in range(10):
        pad.press("1")
    pad.back()
    assert pad.take() == "1111111" and pad.digits == ""
    with pytest.raises(ValueError):
        pad.press("x")


SITE = {"site": "North", "target_wait_min": 25.0, "rating_scale": 4,
        "followup_tags": ["waiting_time", "other"], "idle_timeout_s": 40,
        "timezone": "Europe/London", "server_time": "2026-11-23T09:00:00Z"}


def test_the_sites_settings_apply_and_survive_a_restart(make_flow, store, tmp_path, clock,
                                                        fast_hasher):
    flow = make_flow()
    flow.offer_site_settings(SITE)
    assert flow.settings.target_wait_min == 25 and flow.rating.settings.rating_scale == 4
    assert flow.desk.settings.timezone == "Europe/London"
    writes = store.get_meta("site_settings")
    flow.offer_site_settings({**SITE, "server_time": "2026-11-23T09:00:30Z"})  # same settings
    assert store.get_meta("site_settings") == writes
    settings = load_settings(environ={}, data_dir=str(tmp_path))
    restarted = KioskFlow(store, settings, clock=clock, hasher=fast_hasher)  # offline restart
    assert restarted.settings.rating_scale == 4 and restarted.settings.site == "North"


def test_a_new_scale_waits_until_the_patient_has_finished_the_follow_up(make_flow, store):
    flow = make_flow(role="ratings")
    assert flow.choose_face(2) == "followup"
    flow.offer_site_settings(SITE)
    assert flow.settings.rating_scale == 5  # not while a face of the old scale is open
    flow.send_followup()
    flow.tick()
    assert flow.settings.rating_scale == 4
    saved = store.ratings_between("2000", "3000")
    assert [(r["score"], r["scale"]) for r in saved] == [(2, 5)]
