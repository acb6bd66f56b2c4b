"""A walk through every screen with realistic content, for screenshots and size checks.

``tour(make_kiosk, clock)`` yields ``(name, driver)`` with the named screen on display.
"""

from __future__ import annotations

from collections.abc import Iterator


def tour(make_kiosk, clock) -> Iterator[tuple[str, object]]:
    desk = make_kiosk(pin=None, staff_lock_s=3600)
    desk.tap("2")
    desk.tap("4")
    yield "01-pin-setup", desk

    desk.tap("6")
    desk.tap("8")
    desk.tap("OK")
    desk.type_pin("2468")
    yield "02-staff-empty", desk

    flow = desk.flow
    first, second = flow.check_in(), flow.check_in()
    clock.advance(minutes=6)
    third = flow.check_in()
    clock.advance(minutes=5)
    flow.call_in(first["id"])
    clock.advance(minutes=6, seconds=25)
    flow.check_in()
    clock.advance(minutes=2, seconds=40)
    flow.call_in(third["id"])
    flow.check_in()
    clock.advance(seconds=3)
    desk.tap("Check in")
    desk.advance(2)
    yield "03-staff", desk

    desk.tap("With appointment")
    yield "03b-appointment-picker", desk

    desk.tap("Back")

    desk.tap(desk.row(second["ticket"], "More"))
    yield "04-visit", desk

    desk.tap("Fix a time")
    desk.tap("\u22125 min")
    yield "05-fix", desk

    desk.tap("Save the time")
    desk.tap(desk.row(first["ticket"], "Check out"))
    yield "06-rating", desk

    desk.tap("Poor")
    desk.tap("Waiting time")
    yield "07-followup", desk

    desk.tap("Send")
    yield "08-thanks", desk

    desk.advance(flow.settings.thanks_s)
    desk.tap("Lock")
    for _ in range(4):  # the first wrong PINs straight into the model: frames cost time
        flow.pin.verify("1111")
    desk.type_pin("1111")
    yield "09-pin-locked-out", desk

    tablet = make_kiosk(role="ratings", rating_scale=4)
    yield "10-rating-tablet-4-faces", tablet

    for _ in range(3):
        tablet.tap(tablet.corner())
    yield "11-pin-tablet", tablet

    tablet.type_pin("2468")
    yield "12-staff-tablet", tablet
