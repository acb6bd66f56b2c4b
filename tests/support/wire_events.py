"""Build events in the wire format (README, "Wire format"), one gapless sequence at a time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from kiosk.shared.timeutil import to_rfc3339

# A fixed morning, so hand-computed figures stay true whatever day the tests run.
MORNING = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float, start: datetime = MORNING) -> str:
    return to_rfc3339(start + timedelta(minutes=minutes))


def wire_event(seq: int, kind: str, at: datetime, visit_id: str | None, data: dict) -> dict:
    """One event with an explicit ``device_seq`` (for tests that interleave devices by hand)."""
    return {
        "id": str(uuid.uuid4()),
        "device_seq": seq,
        "type": kind,
        "occurred_at": to_rfc3339(at),
        "visit_id": visit_id,
        "data": data,
    }


class WireEvents:
    """One device's events: each call returns a wire event with the next ``device_seq``."""

    def __init__(self, first_seq: int = 1):
        self.next_seq = first_seq

    def event(self, kind: str, occurred_at: str, visit_id: str | None, data: dict) -> dict:
        event = {
            "id": str(uuid.uuid4()),
            "device_seq": self.next_seq,
            "type": kind,
            "occurred_at": occurred_at,
            "visit_id": visit_id,
            "data": data,
        }
        self.next_seq += 1
        return event

    def checked_in(self, visit_id: str, occurred_at: str, ticket: str = "A-017") -> dict:
        return self.event("visit.checked_in", occurred_at, visit_id, {"ticket": ticket})

    def called(self, visit_id: str, occurred_at: str) -> dict:
        return self.event("visit.called", occurred_at, visit_id, {})

    def checked_out(self, visit_id: str, occurred_at: str) -> dict:
        return self.event("visit.checked_out", occurred_at, visit_id, {})

    def cancelled(self, visit_id: str, occurred_at: str, reason: str = "cancelled") -> dict:
        return self.event("visit.cancelled", occurred_at, visit_id, {"reason": reason})

    def undone(self, visit_id: str, occurred_at: str, action: str) -> dict:
        return self.event("visit.undone", occurred_at, visit_id, {"action": action})

    def corrected(self, visit_id: str, occurred_at: str, field: str, value: str) -> dict:
        return self.event(
            "visit.corrected", occurred_at, visit_id, {"field": field, "value": value}
        )

    def rating(
        self,
        score: int,
        occurred_at: str,
        visit_id: str | None = None,
        scale: int = 5,
        misuse: bool = False,
        tags: tuple[str, ...] = (),
        survey: str | None = None,
    ) -> dict:
        data = {"score": score, "scale": scale, "tags": list(tags), "misuse": misuse}
        if survey is not None:
            data["survey"] = survey  # "fft": asked as the FFT question
        return self.event("rating.submitted", occurred_at, visit_id, data)

    def heartbeat(self, occurred_at: str, backlog: int = 0, version: str = "0.1.0") -> dict:
        return self.event(
            "device.heartbeat", occurred_at, None, {"backlog": backlog, "version": version}
        )

    def visit(
        self,
        checked_in: float,
        called: float | None = None,
        checked_out: float | None = None,
        ticket: str = "A-017",
    ) -> tuple[str, list[dict]]:
        """A whole visit at minute offsets from MORNING: its id and its events."""
        visit_id = str(uuid.uuid4())
        events = [self.checked_in(visit_id, at(checked_in), ticket)]
        if called is not None:
            events.append(self.called(visit_id, at(called)))
        if checked_out is not None:
            events.append(self.checked_out(visit_id, at(checked_out)))
        return visit_id, events


def new_visit_id() -> str:
    return str(uuid.uuid4())
