"""The appointment picker in a real (offscreen) window: taps counted, the store checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "screenshots" / "appointments"


class CountingTaps:
    """The driver, counting every tap a person would make."""

    def __init__(self, driver):
        self.driver = driver
        self.taps = 0

    def tap(self, target) -> None:
        self.taps += 1
        self.driver.tap(target)


def test_check_in_stays_one_tap_and_an_appointment_costs_one_more(make_kiosk):
    # The pinned clock reads 09:00 UTC on 23 November: 09:00 in London (GMT).
    kiosk = make_kiosk(timezone="Europe/London", staff_lock_s=900)
    kiosk.type_pin("2468")
    person = CountingTaps(kiosk)

    person.tap("Check in")
    assert person.taps == 1
    [plain] = kiosk.store._query("SELECT * FROM visits")
    assert plain["appointment_at"] is None and kiosk.screen == "staff"

    person.taps = 0
    assert "Checked in" in kiosk.banner()
    person.tap("With appointment")
    assert kiosk.screen == "appointment"
    assert kiosk.banner() == ""  # the last check-in's banner is not about this patient
    shown = [b.text for b in kiosk.buttons() if b.text[:2].isdigit()]
    assert shown == ["08:30", "08:45", "09:00", "09:15", "09:30", "09:45", "10:00", "10:15"]
    kiosk.screenshot(SHOTS / "picker-at-check-in.png")
    person.tap("09:15")
    assert person.taps == 2
    assert kiosk.screen == "staff"
    booked = kiosk.store._query("SELECT * FROM visits WHERE appointment_at IS NOT NULL")
    assert [v["appointment_at"] for v in booked] == ["2026-11-23T09:15:00.000Z"]
    assert "appointment 09:15" in kiosk.banner()

    person.taps = 0
    person.tap("With appointment")
    person.tap("No appointment")
    assert person.taps == 2 and kiosk.screen == "staff"
    assert kiosk.store._query("SELECT COUNT(*) AS n FROM visits WHERE appointment_at IS NULL"
                              )[0]["n"] == 2


def test_more_sets_or_fixes_the_appointment_later(make_kiosk, ui_clock):
    kiosk = make_kiosk(timezone="Europe/London", staff_lock_s=900)
    kiosk.type_pin("2468")
    kiosk.tap("Check in")
    [visit] = kiosk.store._query("SELECT * FROM visits")
    kiosk.advance(600)

    kiosk.tap(kiosk.row(visit["ticket"], "More"))
    assert "no appointment time" in kiosk.app.root.manager.current_screen.status_text
    kiosk.tap("Appointment")
    assert kiosk.screen == "appointment"
    kiosk.tap("+ 1 hour")
    kiosk.tap("\u2212 1 hour")
    kiosk.tap("08:45")
    assert kiosk.screen == "staff"
    assert kiosk.store.visit(visit["id"])["appointment_at"] == "2026-11-23T08:45:00.000Z"

    kiosk.tap(kiosk.row(visit["ticket"], "More"))
    assert "appointment 08:45" in kiosk.app.root.manager.current_screen.status_text
    kiosk.tap("Appointment")
    kiosk.screenshot(SHOTS / "picker-fixing-a-visit.png")
    kiosk.tap("No appointment")
    assert kiosk.store.visit(visit["id"])["appointment_at"] is None
    corrected = [json.loads(e["data"]) for e in kiosk.store.events()
                 if e["type"] == "visit.corrected"]
    assert corrected == [{"field": "appointment_at", "value": "2026-11-23T08:45:00.000Z"},
                         {"field": "appointment_at", "value": None}]


def test_the_night_the_clocks_go_back_the_repeated_times_show_their_zone(make_kiosk, ui_clock):
    # 25 October 2026, London, 00:50 UTC = 01:50 BST: 01:00-01:59 happen twice tonight.
    ui_clock.now = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)
    kiosk = make_kiosk(timezone="Europe/London", staff_lock_s=900)
    kiosk.type_pin("2468")
    kiosk.tap("With appointment")
    shown = [b.text for b in kiosk.buttons() if b.text[:2].isdigit()]
    assert shown == ["01:15 BST", "01:30 BST", "01:45 BST", "01:00 GMT", "01:15 GMT",
                     "01:30 GMT", "01:45 GMT", "02:00"]
    kiosk.screenshot(SHOTS / "picker-clocks-going-back.png")
    kiosk.tap("01:30 GMT")
    [visit] = kiosk.store._query("SELECT * FROM visits")
    assert visit["appointment_at"] == "2026-10-25T01:30:00.000Z"
    assert "appointment 01:30 GMT" in kiosk.banner()
