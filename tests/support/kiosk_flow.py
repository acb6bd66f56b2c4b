"""A kiosk's screen model (``KioskFlow``) with its staff PIN already set, and the PIN typed on
its pad: what the tests of screens, PINs and clocks share (the ``make_flow`` fixture in
tests/conftest.py builds it over the test's store and clock)."""

from __future__ import annotations

from kiosk.flow import KioskFlow

STAFF_PIN = "2468"


def type_pin(flow: KioskFlow, pin: str = STAFF_PIN) -> None:
    for digit in pin:
        flow.pin_digit(digit)
    flow.pin_submit()
