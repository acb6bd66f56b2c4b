"""The kiosk as a whole, as plain state: which screen is up and what each tap does. No Kivy.

``KioskFlow`` composes the desk's rules (``FrontDesk``, ``RatingFlow``, ``PinLock``,
``StaffSession``) and adds the little state a touchscreen needs between taps: the digits on
the PIN pad, the first-PIN set-up, the visit whose actions page is open, the draft of a
corrected time, the hidden corner gesture and the message banner. The Kivy app only calls
these methods and shows ``screen()``; every test of what a tap *does* runs without a window.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher

from kiosk.appointment_picker import AppointmentPicker
from kiosk.config import Settings
from kiosk.desk import FrontDesk
from kiosk.disk_guard import DiskGuard
from kiosk.errors import ModelError, PinError
from kiosk.i18n import _
from kiosk.pin import PinLock
from kiosk.rating_flow import RatingFlow
from kiosk.shared.timeutil import Clock, parse_optional, parse_rfc3339, utc_now
from kiosk.site_settings import site_part, with_site_settings
from kiosk.staff_session import StaffSession
from kiosk.store import Store, StoreError

# How long a message stays in the banner: long enough to read twice, short enough not to
# blame the next person at the desk for the last one's mistake.
NOTICE_S = 10
# Larger text: every word of the patient screens this much bigger (the layout test checks it fits).
LARGE_TEXT_SCALE = 1.25
# The store's meta key holding the site's settings as last received from the central store.
SITE_SETTINGS_KEY = "site_settings"
log = logging.getLogger(__name__)
# Fields a receptionist can fix from the queue (a checked-out visit has left the queue).
FIXABLE_FIELDS = ("checked_in_at", "called_at")


class PinPad:
    """The digits typed so far on the on-screen keypad (never shown, only counted)."""

    def __init__(self, max_digits: int = PinLock.MAX_DIGITS):
        self.max_digits = max_digits
        self.digits = ""

    def press(self, digit: str) -> None:
        if not (isinstance(digit, str) and len(digit) == 1 and digit.isdigit()):
            raise ValueError(f"{digit!r} is not a digit")
        if len(self.digits) < self.max_digits:
            self.digits += digit

    def back(self) -> None:
        self.digits = self.digits[:-1]

    def take(self) -> str:
        """The digits typed, emptying the pad: a PIN is never left lying in memory for reuse."""
        digits, self.digits = self.digits, ""
        return digits


class PinSetup:
    """The first PIN: typed once, then again to confirm, then stored (hashed) by ``PinLock``."""

    def __init__(self, pin: PinLock):
        self.pin = pin
        self._first: str | None = None

    @property
    def stage(self) -> str:
        return "choose" if self._first is None else "confirm"

    def submit(self, candidate: str) -> bool:
        """True once the PIN is stored; raises PinError for a bad or mismatched one."""
        if self._first is None:
            self.pin.check_format(candidate)
            self._first = candidate
            return False
        first, self._first = self._first, None
        if candidate != first:
            raise PinError("The two PINs were not the same. Please choose a PIN again.")
        self.pin.set_pin(candidate)
        return True

    def restart(self) -> None:
        self._first = None


class CornerGesture:
    """Three taps on the hidden corner within a couple of seconds: how staff reach the PIN.

    Discreet on purpose: a patient tapping around the screen should not stumble into it, and a
    receptionist should not need to hunt for it.
    """

    TAPS = 3
    WINDOW_S = 2.0

    def __init__(self, clock: Clock):
        self.clock = clock
        self._taps: list[datetime] = []

    def tap(self) -> bool:
        now = self.clock()
        window = timedelta(seconds=self.WINDOW_S)
        self._taps = [t for t in self._taps if now - t <= window] + [now]
        if len(self._taps) >= self.TAPS:
            self._taps = []
            return True
        return False


class TimeFix:
    """A forgotten time being corrected with +/- minute steps: no keyboard at a busy desk."""

    def __init__(self, desk: FrontDesk, visit_id: str):
        visit = desk.store.visit(visit_id)
        if visit is None:
            raise ModelError("That visit does not exist on this kiosk.")
        self.desk = desk
        self.visit_id = visit_id
        self.ticket = visit["ticket"]
        self.original = {f: parse_optional(visit[f]) for f in FIXABLE_FIELDS}
        self.fields = tuple(f for f in FIXABLE_FIELDS if self.original[f] is not None)
        self.field = self.fields[-1]
        self.value = self.original[self.field]

    def choose(self, field: str) -> None:
        if field not in self.fields:
            raise ModelError(f"{self.ticket} has no such time to fix yet.")
        self.field = field
        self.value = self.original[field]

    def step(self, minutes: int) -> datetime:
        self.value = self.value + timedelta(minutes=minutes)
        return self.value

    @property
    def changed(self) -> bool:
        return self.value != self.original[self.field]

    def local(self, moment: datetime | None = None) -> str:
        moment = self.value if moment is None else moment
        return moment.astimezone(ZoneInfo(self.desk.settings.timezone)).strftime("%H:%M")

    def save(self) -> dict:
        if not self.changed:
            raise ModelError("The time is unchanged: use + or - to move it first.")
        return self.desk.correct(self.visit_id, self.field, self.value)


@dataclass(frozen=True)
class Notice:
    text: str
    level: str  # "error" or "info"
    until: datetime


class KioskFlow:
    """The whole touchscreen's state. Modes: ``staff`` (behind the PIN) or ``patient`` (faces)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock = utc_now,
        hasher: PasswordHasher | None = None,
    ):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.desk = FrontDesk(store, settings, clock)
        self.rating = RatingFlow(store, settings, clock)
        self.pin = PinLock(store, clock, hasher=hasher)
        self.staff = StaffSession(self.pin, settings, clock)
        self.pad = PinPad()
        self.setup = PinSetup(self.pin)
        self.corner = CornerGesture(clock)
        self.disk = DiskGuard(store, settings.min_free_mb, settings.retention_days, clock)
        self.mode = "patient" if settings.role == "ratings" else "staff"
        self.open_visit_id: str | None = None
        self.fix: TimeFix | None = None
        self.appointment: AppointmentPicker | None = None
        self.notice: Notice | None = None
        self._pin_set = self.pin.has_pin()
        self._site_seen: dict | None = None
        self._site_pending: dict | None = None
        # The first-start enrolment screen's driver (kiosk.enrolment_driver), while the kiosk
        # has no device token and can get one by code; None otherwise.
        self.enrolment = None
        self._use_cached_site_settings()

    # -- what is on screen -------------------------------------------------------------------

    def screen(self) -> str:
        if self.enrolment is not None and not self.enrolment.done:
            return "enrol"
        if not self._pin_set:
            return "pin_setup"
        if self.mode == "patient":
            return {"ask": "rating", "followup": "followup", "comment": "comment",
                    "thanks": "thanks"}.get(
                self.rating.state, "rating"
            )
        if not self.staff.unlocked:
            return "pin"
        if self.appointment is not None:
            return "appointment"
        if self.fix is not None:
            return "fix"
        if self.open_visit_id is not None:
            return "visit"
        return "staff"

    def language(self) -> str:
        """The language of the screen on show: the patient's on the patient screens, the
        kiosk's staff language behind the PIN."""
        if self.mode == "patient":
            return self.rating.language
        return self.settings.staff_screen_language

    def text_scale(self) -> float:
        """How much larger than usual the words are: larger text is one patient's choice."""
        return LARGE_TEXT_SCALE if self.mode == "patient" and self.rating.large_text else 1.0

    def choose_language(self, tag: str) -> None:
        self.rating.choose_language(tag)

    def toggle_large_text(self) -> None:
        self.rating.toggle_large_text()

    @property
    def shows_desk(self) -> bool:
        """A ratings tablet's staff screen has no queue: visits are logged at the desk."""
        return self.settings.role != "ratings"

    def can_leave(self) -> bool:
        """Closing the kiosk app needs an unlocked staff screen."""
        return self.mode == "staff" and self.staff.unlocked

    def tick(self) -> str:
        """About once a second: timers run out, screens move on by themselves."""
        if self.enrolment is not None:
            self.enrolment.pump()
        self._apply_site_settings()
        self.disk.check_in_background()  # the purge it may run must not hold the screen
        self.staff.tick()
        if (self.settings.role == "ratings" and self.mode == "staff" and not self.staff.unlocked
                and self.staff.timer.expired()):
            # A ratings tablet left on its PIN pad (staff walked away, or a patient found the
            # corner) goes back to the faces after the staff screen's idle time: otherwise every
            # patient meanwhile would meet a PIN pad, and no rating would be taken.
            self.leave_pin()
        if self.mode == "patient" and self.rating.tick() == "done":
            self.mode = "staff"
        if not self.staff.unlocked:
            self.open_visit_id = None
            self.fix = None
            self.appointment = None
        if self.notice is not None and self.clock() >= self.notice.until:
            self.notice = None
        return self.screen()

    def touched(self) -> None:
        """Any touch keeps the staff screen open and the patient's question up a while longer."""
        if self.mode == "staff":
            self.staff.touch()
        elif self.rating.state in ("ask", "followup", "comment"):
            self.rating.timer.touch()

    def notify(self, text: str, level: str = "error", seconds: float = NOTICE_S) -> None:
        text = text.strip()
        text = text[:1].upper() + text[1:]
        self.notice = Notice(text, level, self.clock() + timedelta(seconds=seconds))

    def banner(self) -> Notice | None:
        """The message to show now; patients only ever see errors, not the desk's chatter."""
        if self.notice is None or (self.mode == "patient" and self.notice.level != "error"):
            return None
        return self.notice

    def dismiss_notice(self) -> None:
        self.notice = None

    # -- enrolment by code (first start) ---------------------------------------------------------

    def _enrol(self, action, *args) -> None:
        action(*args)
        self.enrolment.pump()  # a request the tap made starts now, not at the next tick

    def enrol_key(self, key: str) -> None:
        self._enrol(self.enrolment.model.type_key, key)

    def enrol_text(self, text: str) -> None:
        self._enrol(self.enrolment.model.type_text, text)

    def enrol_back(self) -> None:
        self._enrol(self.enrolment.model.backspace)

    def enrol_next(self) -> None:
        self._enrol(self.enrolment.model.submit_address)

    def enrol_locally(self) -> None:
        self._enrol(self.enrolment.model.use_locally)

    def enrol_new_code(self) -> None:
        self._enrol(self.enrolment.model.new_code)

    def enrol_change_address(self) -> None:
        self._enrol(self.enrolment.model.change_address)

    def adopt_settings(self, settings: Settings) -> None:
        """The settings an enrolment gave (site, desk name, role): the kiosk starts work."""
        self.settings = self.desk.settings = self.rating.settings = settings
        self.mode = "patient" if settings.role == "ratings" else "staff"
        self._site_seen = None  # the site's settings are fetched again for the new site

    # -- the site's settings from the central store ---------------------------------------------

    def offer_site_settings(self, config: dict | None) -> None:
        """The config last fetched from the central store (None: none yet). Applied at once,
        or, while a patient is choosing follow-up tags or writing a comment, as soon as they
        are done (a face and its tags must stay on one scale)."""
        if config is None:
            return
        part = site_part(config)
        if part == self._site_seen:
            return
        self._site_seen = part
        self._site_pending = part
        self._apply_site_settings()

    def _use_cached_site_settings(self) -> None:
        """The site's settings as last received, so a restart while offline keeps them."""
        try:
            cached = json.loads(self.store.get_meta(SITE_SETTINGS_KEY) or "null")
        except ValueError:
            cached = None
        if isinstance(cached, dict):
            self._site_seen = self._site_pending = cached
            self._apply_site_settings(save=False)

    def _apply_site_settings(self, save: bool = True) -> None:
        if self._site_pending is None or self.rating.state in ("followup", "comment"):
            return
        part, self._site_pending = self._site_pending, None
        settings, refused = with_site_settings(self.settings, part)
        for sentence in refused:
            log.warning("kiosk: %s; keeping this kiosk's own value", sentence)
        self.settings = self.desk.settings = self.rating.settings = settings
        if save:
            try:
                self.store.set_meta({SITE_SETTINGS_KEY: json.dumps(part)})
            except StoreError as error:  # applied all the same, only not kept for a restart
                log.warning("kiosk: could not keep the site's settings: %s", error)

    # -- PIN ---------------------------------------------------------------------------------

    def pin_digit(self, digit: str) -> None:
        self.pad.press(digit)

    def pin_back(self) -> None:
        self.pad.back()

    def pin_submit(self) -> None:
        """The OK key: sets up the first PIN, or unlocks the staff screen."""
        typed = self.pad.take()
        if not self._pin_set:
            if self.setup.submit(typed):
                self._pin_set = True
                self.staff.unlock(typed)
                self.notify(_("The staff PIN is set. Keep it somewhere safe."), "info")
            return
        if not self.staff.unlock(typed):
            left = PinLock.FREE_ATTEMPTS - self.pin.failures()
            if left > 0:
                raise PinError(f"That PIN is not right. {left} more tries before a pause.")
            raise PinError("That PIN is not right. Entry is paused for a while.")
        self.dismiss_notice()

    def leave_pin(self) -> None:
        """Back to the faces from the PIN screen (a ratings tablet only)."""
        self.pad.take()
        if self.settings.role == "ratings":
            self.to_patient()

    # -- the hidden way from the faces to staff mode -------------------------------------------

    def corner_tap(self) -> None:
        if self.corner.tap():
            # Staff took the screen back on purpose: a face not yet pressed is not asked for
            # any more; one pressed is kept (RatingFlow.start saves it without its follow-up).
            self.staff.lock()
            self.staff.touch()  # the PIN pad stays up for the staff screen's idle time
            self.rating.start()
            self.mode = "staff"

    def to_patient(self) -> None:
        """Hand a ratings tablet back to patients (locking staff mode behind it)."""
        self.staff.lock()
        self.rating.start()
        self.mode = "patient"

    def lock(self) -> None:
        self.staff.lock()
        self.open_visit_id = None
        self.fix = None
        self.appointment = None
        if self.settings.role == "ratings":
            self.to_patient()

    # -- the desk --------------------------------------------------------------------------------

    def check_in(self) -> dict:
        visit = self.desk.check_in()
        self.notify(_("Checked in: ticket {ticket}.", ticket=visit["ticket"]), "info")
        return visit

    def call_in(self, visit_id: str) -> dict:
        return self.desk.call_in(visit_id)

    # -- appointment times (kiosk/appointment_picker.py) -----------------------------------------

    def open_appointment_check_in(self) -> None:
        """The second way to check in: with an appointment time, one more tap away."""
        # The banner of the last action (say, the previous check-in) is about another
        # patient; left over the picker it reads as if about this one.
        self.dismiss_notice()
        self.appointment = AppointmentPicker(self.settings.timezone, self.clock())

    def open_appointment_fix(self) -> None:
        """Set, move or clear the open visit's appointment time ("More…" on a visit)."""
        visit = self.store.visit(self._open_id())
        if visit is None or visit["status"] == "voided":
            raise ModelError("That visit was undone; there is nothing to change.")
        self.appointment = AppointmentPicker(
            self.settings.timezone, parse_rfc3339(visit["checked_in_at"]),
            visit_id=visit["id"], ticket=visit["ticket"],
            current=parse_optional(visit["appointment_at"]),
        )
        self.dismiss_notice()  # as above: an earlier banner is not about this visit

    def pick_appointment(self, index: int) -> dict:
        picker = self._picker()
        moment = picker.choice(index)
        if picker.for_check_in:
            visit = self.desk.check_in(appointment_at=moment)
            self.appointment = None
            self.notify(_("Checked in: ticket {ticket}, appointment {time}.",
                          ticket=visit["ticket"], time=picker.label(moment)), "info")
            return visit
        visit = self.desk.set_appointment(picker.visit_id, moment)
        self.notify(_("Appointment for {ticket} set to {time}. The change is logged.",
                      ticket=picker.ticket, time=picker.label(moment)), "info")
        self.close_visit()
        return visit

    def no_appointment(self) -> dict | None:
        """Check in without one, or clear a visit's appointment time."""
        picker = self._picker()
        if picker.for_check_in:
            self.appointment = None
            return self.check_in()
        if picker.current is None:
            self.appointment = None
            return None
        visit = self.desk.set_appointment(picker.visit_id, None)
        self.notify(_("{ticket} now has no appointment time. The change is logged.",
                      ticket=picker.ticket), "info")
        self.close_visit()
        return visit

    def appointment_earlier(self) -> None:
        self._picker().earlier()

    def appointment_later(self) -> None:
        self._picker().later()

    def cancel_appointment(self) -> None:
        self.appointment = None

    def _picker(self) -> AppointmentPicker:
        if self.appointment is None:
            raise ModelError("Tap With appointment, or open a visit, first.")
        return self.appointment

    def check_out(self, visit_id: str) -> dict:
        """On a desk device the screen then turns to the patient, for this visit's rating."""
        visit = self.desk.check_out(visit_id)
        if self.settings.role == "desk":
            self.rating.start(visit_id)
            self.mode = "patient"
        return visit

    def undo(self) -> dict:
        visit = self.desk.undo()
        self.notify(_("Undone: {ticket} is back as it was.", ticket=visit["ticket"]), "info")
        return visit

    def open_visit(self, visit_id: str) -> None:
        if self.store.visit(visit_id) is None:
            raise ModelError("That visit does not exist on this kiosk.")
        self.open_visit_id = visit_id
        self.fix = None

    def close_visit(self) -> None:
        self.open_visit_id = None
        self.fix = None
        self.appointment = None

    def open_visit_entry(self):
        """The open visit as the queue shows it (None once it has left the queue)."""
        for entry in self.desk.queue():
            if entry.visit_id == self.open_visit_id:
                return entry
        return None

    def cancel_visit(self, reason: str) -> dict:
        visit = self.desk.cancel(self._open_id(), reason)
        self.close_visit()
        return visit

    def start_fix(self, field: str | None = None) -> None:
        self.fix = TimeFix(self.desk, self._open_id())
        if field is not None:
            self.fix.choose(field)

    def fix_field(self, field: str) -> None:
        self._fix().choose(field)

    def fix_step(self, minutes: int) -> None:
        self._fix().step(minutes)

    def save_fix(self) -> dict:
        fix = self._fix()
        visit = fix.save()
        self.notify(_("Fixed: {ticket} now shows {time}. The change is logged.",
                      ticket=fix.ticket, time=fix.local()), "info")
        self.close_visit()
        return visit

    def cancel_fix(self) -> None:
        self.fix = None

    def _open_id(self) -> str:
        if self.open_visit_id is None:
            raise ModelError("Choose a visit in the list first.")
        return self.open_visit_id

    def _fix(self) -> TimeFix:
        if self.fix is None:
            raise ModelError("Choose which time to fix first.")
        return self.fix

    # -- the patient -----------------------------------------------------------------------------

    def choose_face(self, score: int) -> str:
        return self.rating.choose(score)

    def toggle_tag(self, tag: str) -> list[str]:
        return self.rating.toggle_tag(tag)

    def send_followup(self) -> str:
        return self.rating.send_followup()

    def skip_followup(self) -> str:
        return self.rating.skip_followup()

    def choose_dont_know(self) -> str:
        return self.rating.choose_dont_know()

    def set_patient_language(self, language: str) -> None:
        """The patient's language, for the comment box's keyboard (``RatingFlow.set_language``)."""
        self.rating.set_language(language)

    def press_key(self, key: str) -> str:
        return self.rating.press_key(key)

    def send_comment(self) -> str:
        return self.rating.send_comment()

    def skip_comment(self) -> str:
        return self.rating.skip_comment()
