"""A morning of booked visits (tests/central/test_appointment_figures.py has the table and
the figures worked out by hand), shared by the API and the dashboard tests."""

from __future__ import annotations

import uuid
from datetime import datetime

from tests.support.wire_events import WireEvents, at


def booked_visit(kiosk: WireEvents, ticket: str, appointment: float | None, checked_in: float,
                 called: float | None = None, checked_out: float | None = None,
                 start: datetime | None = None) -> tuple[str, list[dict]]:
    """A visit at minute offsets, checked in with an appointment time (or none)."""
    stamp = (lambda m: at(m)) if start is None else (lambda m: at(m, start))
    visit_id = str(uuid.uuid4())
    data = {"ticket": ticket,
            "appointment_at": None if appointment is None else stamp(appointment)}
    events = [kiosk.event("visit.checked_in", stamp(checked_in), visit_id, data)]
    if called is not None:
        events.append(kiosk.called(visit_id, stamp(called)))
    if checked_out is not None:
        events.append(kiosk.checked_out(visit_id, stamp(checked_out)))
    return visit_id, events


def morning_events() -> list[dict]:
    kiosk = WireEvents()
    events: list[dict] = []
    for ticket, appt, arrived, called, out in [
        ("A-001", 0, -10, 4, 20), ("A-002", 15, 13, 25, 40), ("A-003", 30, 35, 38, 50),
        ("A-004", 30, 42, 70, 80), ("A-005", 45, 20, 40, 55), ("A-006", 60, 58, 75, None),
        ("A-007", 60, 61, None, None), ("N-001", None, 0, 8, 30),
    ]:
        events += booked_visit(kiosk, ticket, appt, arrived, called, out)[1]
    a8, a8_events = booked_visit(kiosk, "A-008", None, 50)
    events += a8_events + [kiosk.corrected(a8, at(52), "appointment_at", at(45)),
                           kiosk.called(a8, at(60)), kiosk.checked_out(a8, at(70))]
    a9, a9_events = booked_visit(kiosk, "A-009", 75, 70, 72, 90)
    events += a9_events + [kiosk.event("visit.corrected", at(91), a9,
                                       {"field": "appointment_at", "value": None})]
    c1, c1_events = booked_visit(kiosk, "C-001", 90, 85)
    events += c1_events + [kiosk.cancelled(c1, at(86))]
    return events
