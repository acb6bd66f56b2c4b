"""The receptionist's desk: today's visits as a state machine over the local store.

Check in, call in, check out, cancel / no-show, undo of the last action within a short window,
correction of a forgotten time, and the figures the staff screen shows. Every refusal is a
``ModelError`` (kiosk/errors.py) whose message is a sentence for the person at the desk.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.config import Settings
from kiosk.errors import InvalidTransition, ModelError, NothingToUndo
from kiosk.i18n import N_, _
from kiosk.shared import metrics
from kiosk.shared.timeutil import Clock, parse_optional, parse_rfc3339, to_rfc3339, utc_now
from kiosk.store import RecordedEvent, Store

VISIT_TIME_FIELDS = ("checked_in_at", "called_at", "checked_out_at")
# A timestamp this far ahead of the kiosk's clock is a typing mistake, not a forgotten time.
FUTURE_TOLERANCE = timedelta(minutes=1)
NEAR_TARGET_FRACTION = 0.75
# An appointment further than this from the check-in belongs to another day's visit: a
# mis-tap, not a patient who came very early or very late.
APPOINTMENT_SPAN = timedelta(hours=12)


# The undo button's label, one whole sentence per action so each language can order it.
UNDO_WORDS = {
    "visit.checked_in": N_("Undo check-in of {ticket}"),
    "visit.called": N_("Undo call-in of {ticket}"),
    "visit.checked_out": N_("Undo check-out of {ticket}"),
    "visit.cancelled": N_("Undo cancellation of {ticket}"),
}


@dataclass(frozen=True)
class QueueEntry:
    visit_id: str
    ticket: str
    status: str  # "waiting" or "in_chair"
    checked_in_at: datetime
    called_at: datetime | None
    wait_min: float  # so far, or final once called
    chair_min: float | None
    level: str  # "ok", "near", "over": the wait against the practice's target


@dataclass
class LastAction:
    visit_id: str
    event_type: str
    ticket: str
    at: datetime


class FrontDesk:
    """The receptionist's actions on today's visits."""

    def __init__(self, store: Store, settings: Settings, clock: Clock = utc_now):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.last_action: LastAction | None = None
        store.on_record(self._on_record)

    def _on_record(self, event) -> None:
        """A rating of the visit whose check-out is the last action closes its undo: undoing
        the check-out then would let the visit be checked out and rated a second time."""
        action = self.last_action
        if (action is not None and event.type == "rating.submitted"
                and event.visit_id == action.visit_id
                and action.event_type == "visit.checked_out"):
            self.last_action = None

    # -- the day and the queue -------------------------------------------------------------

    def today(self) -> str:
        return metrics.local_today(self.clock(), self.settings.timezone).isoformat()

    def queue(self) -> list[QueueEntry]:
        now = self.clock()
        target = self.settings.target_wait_min
        entries = []
        # Open across the local midnight too (metrics.QUEUE_HORIZON), as on the dashboard.
        since = now - metrics.QUEUE_HORIZON
        from_day = metrics.local_today(since, self.settings.timezone).isoformat()
        for row in self.store.queue(to_rfc3339(since), from_day):
            checked_in = parse_rfc3339(row["checked_in_at"])
            called = parse_optional(row["called_at"])
            wait = metrics.minutes_between(checked_in, called or now)
            chair = metrics.minutes_between(called, now) if called else None
            if wait > target:
                level = "over"
            elif wait > target * NEAR_TARGET_FRACTION:
                level = "near"
            else:
                level = "ok"
            entries.append(
                QueueEntry(row["id"], row["ticket"], row["status"], checked_in, called,
                           wait, chair, level)
            )
        return entries

    def staff_summary(self) -> dict[str, Any]:
        """Today's wait figures for the staff screen: never anything about ratings."""
        figures = self.today_report()
        keys = ("visits", "waits", "wait_median_min", "wait_p90_min", "pct_within_target",
                "longest_current_wait_min")
        return {key: figures[key] for key in keys}

    def today_report(self) -> dict[str, Any]:
        """Every metric (README, "Metrics") over today (site-local day), misuse excluded."""
        day = metrics.local_today(self.clock(), self.settings.timezone)
        start, end = metrics.local_day_bounds(day, self.settings.timezone)
        visits = [
            _visit_times(row) for row in self.store.visits_on_day(day.isoformat())
            if row["status"] != "voided"
        ]
        waits_by_visit = {
            row["id"]: metrics.waiting_minutes(_visit_times(row))
            for row in self.store.visits_on_day(day.isoformat())
        }
        ratings = [
            metrics.RatingRow(
                score=row["score"], scale=row["scale"], misuse=bool(row["misuse"]),
                linked=row["visit_id"] is not None,
                wait_min=waits_by_visit.get(row["visit_id"]),
            )
            for row in self.store.ratings_between(to_rfc3339(start), to_rfc3339(end))
        ]
        return metrics.report(visits, ratings, self.settings.target_wait_min, self.clock())

    # -- the visit state machine ----------------------------------------------------------

    def check_in(self, appointment_at: datetime | None = None) -> dict[str, Any]:
        """A new visit with the next ticket code of the day, e.g. 'A-017'. Never a name."""
        if appointment_at is not None:
            self._check_appointment(appointment_at, self.clock())
        day = self.today()
        number = self.store.next_ticket_number(day)
        ticket = f"{self.settings.ticket_prefix}-{number:03d}"
        data = {"ticket": ticket, "appointment_at": _optional_instant(appointment_at)}
        event = self.store.record(
            "visit.checked_in", data, visit_id=_new_id(), project={"day": day, "ticket_no": number}
        )
        self._remember(event, ticket)
        return self.store.visit(event.visit_id)

    def call_in(self, visit_id: str) -> dict[str, Any]:
        visit = self._visit(visit_id)
        if visit["status"] == "in_chair":
            called = self._clock_time(visit["called_at"])
            raise InvalidTransition(f"{visit['ticket']} was already called in at {called}.")
        self._require(visit, ("waiting",), "call in")
        return self._apply(visit, "visit.called", {}, at=self._not_before(visit))

    def check_out(self, visit_id: str) -> dict[str, Any]:
        visit = self._visit(visit_id)
        if visit["status"] == "waiting":
            raise InvalidTransition(f"{visit['ticket']} has not been called in yet: call in first.")
        self._require(visit, ("in_chair",), "check out")
        return self._apply(visit, "visit.checked_out", {}, at=self._not_before(visit))

    def cancel(self, visit_id: str, reason: str = "cancelled") -> dict[str, Any]:
        if reason not in ("cancelled", "no_show"):
            raise ModelError(f"'{reason}' is not a reason: use cancelled or no_show.")
        visit = self._visit(visit_id)
        allowed = ("waiting",) if reason == "no_show" else ("waiting", "in_chair")
        self._require(visit, allowed, "mark as no-show" if reason == "no_show" else "cancel")
        return self._apply(visit, "visit.cancelled", {"reason": reason})

    def correct(self, visit_id: str, field: str, value: datetime) -> dict[str, Any]:
        """Fix a forgotten time. Kept as a `visit.corrected` event: the audit trail."""
        if field not in VISIT_TIME_FIELDS:
            raise ModelError(f"'{field}' cannot be corrected: use one of {VISIT_TIME_FIELDS}.")
        if value.tzinfo is None:
            raise ModelError("the corrected time needs a time zone")
        visit = self._visit(visit_id)
        if visit["status"] == "voided":
            raise InvalidTransition(f"{visit['ticket']} was undone; there is nothing to correct.")
        if visit[field] is None:
            raise InvalidTransition(
                f"{visit['ticket']} has no {_field_words(field)} yet: record it first, then fix it."
            )
        if value > self.clock() + FUTURE_TOLERANCE:
            raise ModelError("That time is in the future: enter when it actually happened.")
        times = {f: parse_optional(visit[f]) for f in VISIT_TIME_FIELDS}
        times[field] = value
        ordered = [times[f] for f in VISIT_TIME_FIELDS if times[f] is not None]
        if ordered != sorted(ordered):
            raise ModelError(
                "Times must run in order: check-in, then called in, then check-out."
            )
        return self._apply(visit, "visit.corrected", {"field": field, "value": to_rfc3339(value)},
                           remember=False)

    def set_appointment(self, visit_id: str, appointment_at: datetime | None) -> dict[str, Any]:
        """Set, move or clear (None) a visit's appointment time after its check-in.

        Kept as a ``visit.corrected`` event with ``field: "appointment_at"`` (README, "Wire
        format"): the audit trail shows who had which appointment time when.
        """
        visit = self._visit(visit_id)
        if visit["status"] == "voided":
            raise InvalidTransition(f"{visit['ticket']} was undone; there is nothing to change.")
        if appointment_at is not None:
            self._check_appointment(appointment_at, parse_rfc3339(visit["checked_in_at"]))
        value = _optional_instant(appointment_at)
        if value == visit["appointment_at"]:
            raise ModelError(f"{visit['ticket']} already has that appointment time.")
        return self._apply(visit, "visit.corrected", {"field": "appointment_at", "value": value},
                           remember=False)

    def _check_appointment(self, appointment_at: datetime, checked_in_at: datetime) -> None:
        if appointment_at.tzinfo is None:
            raise ModelError("the appointment time needs a time zone")
        if abs(appointment_at - checked_in_at) > APPOINTMENT_SPAN:
            hours = int(APPOINTMENT_SPAN.total_seconds() // 3600)
            raise ModelError(
                f"An appointment time must be within {hours} hours of the check-in: "
                "choose the time on the patient's letter or text."
            )

    # -- undo ------------------------------------------------------------------------------

    def undo_remaining(self) -> float:
        """Seconds left to undo the last action (0 when there is none)."""
        if self.last_action is None:
            return 0.0
        elapsed = (self.clock() - self.last_action.at).total_seconds()
        if elapsed < 0:
            return 0.0  # the clock stepped back since: how long ago it was is not known
        return max(0.0, self.settings.undo_window_s - elapsed)

    def undo_label(self) -> str | None:
        if self.undo_remaining() <= 0:
            return None
        return _(UNDO_WORDS[self.last_action.event_type], ticket=self.last_action.ticket)

    def undo(self) -> dict[str, Any]:
        if self.undo_remaining() <= 0:
            self.last_action = None
            raise NothingToUndo(_("Nothing to undo: the last action is too old or already undone."))
        action = self.last_action
        # Forgotten only once recorded: a full disk refusing the write leaves it to try again.
        self.store.record("visit.undone", {"action": action.event_type}, visit_id=action.visit_id)
        self.last_action = None
        return self.store.visit(action.visit_id)

    # -- helpers ---------------------------------------------------------------------------

    def _visit(self, visit_id: str) -> dict[str, Any]:
        visit = self.store.visit(visit_id)
        if visit is None:
            raise ModelError("That visit does not exist on this kiosk.")
        return visit

    def _require(self, visit: dict, allowed: tuple[str, ...], action: str) -> None:
        if visit["status"] not in allowed:
            state = {
                "done": "already checked out",
                "cancelled": "cancelled",
                "no_show": "marked as a no-show",
                "voided": "undone",
                "in_chair": "already called in",
                "waiting": "still waiting",
            }[visit["status"]]
            raise InvalidTransition(f"Cannot {action} {visit['ticket']}: it is {state}.")

    def _not_before(self, visit: dict) -> datetime:
        """Now, or the visit's latest time if the clock has since stepped back (an NTP fix, a
        time set by hand): its times must run check-in, call, check-out, or a wait comes out
        negative and the central store refuses the event as out of order."""
        times = [parse_rfc3339(t) for t in
                 (visit["checked_in_at"], visit.get("called_at"), visit.get("checked_out_at"))
                 if t]
        return max([self.clock(), *times])

    def _apply(self, visit: dict, event_type: str, data: dict, remember: bool = True,
               at: datetime | None = None) -> dict:
        event = self.store.record(event_type, data, visit_id=visit["id"], occurred_at=at)
        if remember:
            self._remember(event, visit["ticket"])
        return self.store.visit(visit["id"])

    def _remember(self, event: RecordedEvent, ticket: str) -> None:
        self.last_action = LastAction(
            event.visit_id, event.type, ticket, parse_rfc3339(event.occurred_at)
        )

    def _clock_time(self, instant: str) -> str:
        return parse_rfc3339(instant).astimezone(ZoneInfo(self.settings.timezone)).strftime("%H:%M")


def _visit_times(row: dict[str, Any]) -> metrics.VisitTimes:
    return metrics.VisitTimes(
        checked_in_at=parse_rfc3339(row["checked_in_at"]),
        called_at=parse_optional(row["called_at"]),
        checked_out_at=parse_optional(row["checked_out_at"]),
        appointment_at=parse_optional(row["appointment_at"]),
        cancelled=row["status"] in ("cancelled", "no_show", "voided"),
    )


def _optional_instant(moment: datetime | None) -> str | None:
    return None if moment is None else to_rfc3339(moment)


def _field_words(field: str) -> str:
    return {"checked_in_at": "check-in time", "called_at": "call-in time",
            "checked_out_at": "check-out time"}[field]


def _new_id() -> str:
    return str(uuid.uuid4())
