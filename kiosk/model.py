"""Everything the touchscreen does, as plain Python over the local store. No Kivy import.

- ``FrontDesk``: the visit state machine (check in, call in, check out, cancel / no-show,
  undo of the last action within a short window, correction of a forgotten time) and the
  figures the staff screen shows.
- ``RatingFlow``: face -> optional follow-up tags -> thanks -> idle, with misuse flagging.
- ``PinLock`` and ``StaffSession``: the staff PIN (Argon2id, persistent growing lockout) and
  the staff screen's inactivity lock.
- ``IdleTimer``: a countdown over an injected clock, so tests drive time without sleeping.

Every refusal is a ``ModelError`` whose message is a sentence for the person at the desk.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kiosk.config import Settings
from kiosk.shared import metrics
from kiosk.shared.timeutil import Clock, parse_optional, parse_rfc3339, to_rfc3339, utc_now
from kiosk.store import RecordedEvent, Store, StoreError

log = logging.getLogger(__name__)

VISIT_TIME_FIELDS = ("checked_in_at", "called_at", "checked_out_at")
# A timestamp this far ahead of the kiosk's clock is a typing mistake, not a forgotten time.
FUTURE_TOLERANCE = timedelta(minutes=1)
NEAR_TARGET_FRACTION = 0.75


class ModelError(ValueError):
    """An action the kiosk refuses; the message says why in words for the desk."""


class InvalidTransition(ModelError):
    """The visit is not in a state where that action makes sense."""


class NothingToUndo(ModelError):
    """There is no recent action left to undo."""


class PinError(ModelError):
    """A PIN was wrong, malformed, or entered while locked out."""


class PinLocked(PinError):
    """Too many wrong PINs: entry is locked for a while."""

    def __init__(self, seconds_left: float):
        self.seconds_left = seconds_left
        super().__init__(f"Too many wrong PINs. Try again in {_human_seconds(seconds_left)}.")


def _human_seconds(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    return f"{round(seconds / 60)} min"


class IdleTimer:
    """Counts down from the last touch; plain state over an injected clock."""

    def __init__(self, timeout_s: float, clock: Clock):
        self.timeout_s = timeout_s
        self.clock = clock
        self._last = clock()

    def touch(self) -> None:
        self._last = self.clock()

    def remaining(self) -> float:
        elapsed = (self.clock() - self._last).total_seconds()
        return max(0.0, self.timeout_s - elapsed)

    def expired(self) -> bool:
        return self.remaining() <= 0


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

    # -- the day and the queue -------------------------------------------------------------

    def today(self) -> str:
        return metrics.local_today(self.clock(), self.settings.timezone).isoformat()

    def queue(self) -> list[QueueEntry]:
        now = self.clock()
        target = self.settings.target_wait_min
        entries = []
        for row in self.store.queue(self.today()):
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

    def waiting(self) -> list[QueueEntry]:
        return [e for e in self.queue() if e.status == "waiting"]

    def in_chair(self) -> list[QueueEntry]:
        return [e for e in self.queue() if e.status == "in_chair"]

    def staff_summary(self) -> dict[str, Any]:
        """Today's wait figures for the staff screen: never anything about ratings."""
        figures = self.today_report()
        keys = ("visits", "waits", "wait_median_min", "wait_p90_min", "pct_within_target",
                "longest_current_wait_min")
        return {key: figures[key] for key in keys}

    def today_report(self) -> dict[str, Any]:
        """Every metric of PRODUCT.md over today (site-local day), misuse excluded."""
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
        return self._apply(visit, "visit.called", {})

    def check_out(self, visit_id: str) -> dict[str, Any]:
        visit = self._visit(visit_id)
        if visit["status"] == "waiting":
            raise InvalidTransition(f"{visit['ticket']} has not been called in yet: call in first.")
        self._require(visit, ("in_chair",), "check out")
        return self._apply(visit, "visit.checked_out", {})

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

    # -- undo ------------------------------------------------------------------------------

    def undo_remaining(self) -> float:
        """Seconds left to undo the last action (0 when there is none)."""
        if self.last_action is None:
            return 0.0
        elapsed = (self.clock() - self.last_action.at).total_seconds()
        return max(0.0, self.settings.undo_window_s - elapsed)

    def undo_label(self) -> str | None:
        if self.undo_remaining() <= 0:
            return None
        words = {
            "visit.checked_in": "check-in",
            "visit.called": "call-in",
            "visit.checked_out": "check-out",
            "visit.cancelled": "cancellation",
        }
        return f"Undo {words[self.last_action.event_type]} of {self.last_action.ticket}"

    def undo(self) -> dict[str, Any]:
        if self.undo_remaining() <= 0:
            self.last_action = None
            raise NothingToUndo("Nothing to undo: the last action is too old or already undone.")
        action = self.last_action
        self.last_action = None
        self.store.record("visit.undone", {"action": action.event_type}, visit_id=action.visit_id)
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

    def _apply(self, visit: dict, event_type: str, data: dict, remember: bool = True) -> dict:
        event = self.store.record(event_type, data, visit_id=visit["id"])
        if remember:
            self._remember(event, visit["ticket"])
        return self.store.visit(visit["id"])

    def _remember(self, event: RecordedEvent, ticket: str) -> None:
        self.last_action = LastAction(
            event.visit_id, event.type, ticket, parse_rfc3339(event.occurred_at)
        )

    def _clock_time(self, instant: str) -> str:
        return parse_rfc3339(instant).astimezone(ZoneInfo(self.settings.timezone)).strftime("%H:%M")


class RatingFlow:
    """The patient's rating: face -> optional follow-up -> thanks -> idle.

    States: ``ask`` (faces shown), ``followup`` (tags shown), ``thanks``, and ``done`` once a
    desk device should hand the screen back to staff. The rating is written once, when it is
    complete: at the face when no follow-up is asked, else when the tags are sent, skipped, or
    the follow-up is abandoned (timed out, or the screen taken back; then without tags). Until
    then the face is held on disk (``Store.hold_rating``), so not even a crash loses it.
    """

    def __init__(self, store: Store, settings: Settings, clock: Clock = utc_now):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.state = "ask"
        self.visit_id: str | None = None
        self.score: int | None = None
        self.tags: list[str] = []
        self.last_saved: RecordedEvent | None = None
        self._pending_at: datetime | None = None
        self._misuse = False
        self._held_id: str | None = None
        self.timer = IdleTimer(settings.idle_timeout_s, clock)

    @property
    def always_on(self) -> bool:
        """A ratings tablet shows the faces forever; a desk hands back to staff when done."""
        return self.settings.role == "ratings"

    def start(self, visit_id: str | None = None) -> None:
        """Turn to the patient; ``visit_id`` links the rating to the visit just checked out.

        A face still waiting for its follow-up is saved first, without tags: it was pressed.
        """
        if self.state == "followup":
            self._save_abandoned()
        self.state = "ask"
        self.visit_id = visit_id
        self.score = None
        self.tags = []
        self._pending_at = None
        self.timer = IdleTimer(self.settings.idle_timeout_s, self.clock)

    def choose(self, score: int) -> str:
        """A face was pressed; returns the next state."""
        scale = self.settings.rating_scale
        if self.state != "ask":
            raise ModelError("A face was already chosen.")
        if not 1 <= score <= scale:
            raise ModelError(f"score {score} is outside 1..{scale}")
        self.score = score
        self._pending_at = self.clock()
        self._misuse = self._is_misuse(self._pending_at)
        if self._wants_followup(score):
            self._held_id = self.store.hold_rating(
                self._rating_data(), self.visit_id, self._pending_at
            )
            self.state = "followup"
            self.timer = IdleTimer(self.settings.idle_timeout_s, self.clock)
        else:
            self._save()
        return self.state

    def toggle_tag(self, tag: str) -> list[str]:
        if self.state != "followup":
            raise ModelError("Follow-up tags come after a face.")
        if tag not in self.settings.followup_tags:
            raise ModelError(f"'{tag}' is not one of this kiosk's follow-up tags.")
        if tag in self.tags:
            self.tags.remove(tag)
        else:
            self.tags.append(tag)
        self.timer.touch()
        return list(self.tags)

    def send_followup(self) -> str:
        if self.state != "followup":
            raise ModelError("There is no follow-up to send.")
        self._save()
        return self.state

    def skip_followup(self) -> str:
        if self.state != "followup":
            raise ModelError("There is no follow-up to skip.")
        self.tags = []
        self._save()
        return self.state

    def remaining(self) -> float | None:
        """Seconds until the screen goes back to idle by itself; None when it stays."""
        if self.state == "ask" and self.always_on:
            return None
        if self.state == "done":
            return None
        return self.timer.remaining()

    def tick(self) -> str:
        """Called by the UI about once a second: moves on when a countdown has run out."""
        if not self.timer.expired() or self.state == "done":
            return self.state
        if self.state == "followup":
            self._save_abandoned()
        elif self.state == "thanks" or self.state == "ask":
            self._finish()
        return self.state

    def _wants_followup(self, score: int) -> bool:
        mode = self.settings.followup_for
        if mode == "never":
            return False
        return mode == "all" or metrics.is_negative(score, self.settings.rating_scale)

    def _is_misuse(self, at: datetime) -> bool:
        last = self.store.last_rating_at()
        if last is None:
            return False
        return (at - parse_rfc3339(last)).total_seconds() < self.settings.misuse_interval_s

    def _save_abandoned(self) -> None:
        """The follow-up was left (timed out, or the screen taken back): the face without tags.
        If the disk cannot take it now, the face stays held on disk (recorded at the next
        start or before the next held face) and the screen moves on all the same: a full disk
        must not trap the patient's screen, and the face is already safe."""
        self.tags = []
        try:
            self._save()
        except StoreError as error:
            log.warning("kiosk: a face stays held on disk for now: %s", error)
            self._held_id = None
            self.state = "thanks"
            self.timer = IdleTimer(self.settings.thanks_s, self.clock)

    def _rating_data(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "scale": self.settings.rating_scale,
            "tags": list(self.tags),
            "misuse": self._misuse,
        }

    def _save(self) -> None:
        self.last_saved = self.store.record(
            "rating.submitted",
            self._rating_data(),
            visit_id=self.visit_id,
            occurred_at=self._pending_at,
            event_id=self._held_id,
        )
        self._held_id = None
        self.state = "thanks"
        self.timer = IdleTimer(self.settings.thanks_s, self.clock)

    def _finish(self) -> None:
        if self.always_on:
            self.start()
        else:
            self.state = "done"
            self.visit_id = None


class PinLock:
    """The staff PIN: an Argon2id hash in the store; a lockout that grows and survives restarts.

    The first ``FREE_ATTEMPTS`` wrong PINs cost nothing; each one after that locks entry for
    ``BASE_LOCK_S`` doubled per extra failure, capped at ``MAX_LOCK_S``.
    """

    FREE_ATTEMPTS = 5
    BASE_LOCK_S = 30
    MAX_LOCK_S = 15 * 60
    MIN_DIGITS, MAX_DIGITS = 4, 8

    def __init__(self, store: Store, clock: Clock = utc_now, hasher: PasswordHasher | None = None):
        self.store = store
        self.clock = clock
        self.hasher = hasher or PasswordHasher()

    def has_pin(self) -> bool:
        return self.store.get_meta("pin_hash") is not None

    def check_format(self, pin: str) -> None:
        """PinError unless ``pin`` could be a PIN: set-up checks it before asking to confirm."""
        self._check_format(pin)

    def _check_format(self, pin: str) -> None:
        if not (isinstance(pin, str) and pin.isdigit()
                and self.MIN_DIGITS <= len(pin) <= self.MAX_DIGITS):
            raise PinError(f"A PIN is {self.MIN_DIGITS} to {self.MAX_DIGITS} digits.")

    def set_pin(self, new_pin: str, current_pin: str | None = None) -> None:
        """Set the first PIN, or change it (which needs the current one)."""
        self._check_format(new_pin)
        if self.has_pin() and (current_pin is None or not self.verify(current_pin)):
            raise PinError("The current PIN is needed to change it.")
        self.store.set_meta({"pin_hash": self.hasher.hash(new_pin)})

    def seconds_locked(self) -> float:
        until = self.store.get_meta("pin_locked_until")
        if until is None:
            return 0.0
        return max(0.0, (parse_rfc3339(until) - self.clock()).total_seconds())

    def verify(self, pin: str) -> bool:
        """True for the right PIN; False for a wrong one; PinLocked while locked out."""
        left = self.seconds_locked()
        if left > 0:
            raise PinLocked(left)
        stored = self.store.get_meta("pin_hash")
        if stored is None:
            raise PinError("No staff PIN is set yet.")
        try:
            ok = (isinstance(pin, str) and pin.isdigit()
                  and self.hasher.verify(stored, pin))
        except (VerificationError, InvalidHashError):
            ok = False
        if ok:
            self.store.set_meta({"pin_failures": None, "pin_locked_until": None})
            return True
        failures = int(self.store.get_meta("pin_failures", "0")) + 1
        update: dict[str, str | None] = {"pin_failures": str(failures)}
        if failures >= self.FREE_ATTEMPTS:
            lock_s = min(self.MAX_LOCK_S, self.BASE_LOCK_S * 2 ** (failures - self.FREE_ATTEMPTS))
            update["pin_locked_until"] = to_rfc3339(self.clock() + timedelta(seconds=lock_s))
        self.store.set_meta(update)
        return False

    def failures(self) -> int:
        return int(self.store.get_meta("pin_failures", "0"))


class StaffSession:
    """Whether the staff screen is open; it locks itself after a period without a touch."""

    def __init__(self, pin: PinLock, settings: Settings, clock: Clock = utc_now):
        self.pin = pin
        self.clock = clock
        self.unlocked = False
        self.timer = IdleTimer(settings.staff_lock_s, clock)

    def unlock(self, pin: str) -> bool:
        if self.pin.verify(pin):
            self.unlocked = True
            self.timer.touch()
            return True
        return False

    def touch(self) -> None:
        self.timer.touch()

    def lock(self) -> None:
        self.unlocked = False

    def tick(self) -> bool:
        """Lock when idle for too long; returns whether the screen is still unlocked."""
        if self.unlocked and self.timer.expired():
            self.unlocked = False
        return self.unlocked


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
