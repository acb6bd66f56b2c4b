"""Words and numbers as the screens show them. Pure functions, no Kivy, tested without a window.

Every level of a wait is shown as a colour AND a symbol AND a word, never colour alone; a
face always has its word under it. Every word goes through ``_()`` (kiosk/i18n.py): the tables
below hold English, marked with ``N_`` for extraction, and are translated when shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.disk_guard import DiskLow
from kiosk.i18n import N_, Displayed, _
from kiosk.shared import fft
from kiosk.shared.timeutil import parse_rfc3339
from kiosk.sync_status import SyncStatus

# Best first: the row of faces reads from the happiest on the left.
FACES = {
    5: ((5, N_("Very good"), "very-good"), (4, N_("Good"), "good"), (3, N_("Okay"), "okay"),
        (2, N_("Poor"), "poor"), (1, N_("Very poor"), "very-poor")),
    4: ((4, N_("Very good"), "very-good"), (3, N_("Good"), "good"), (2, N_("Poor"), "poor"),
        (1, N_("Very poor"), "very-poor")),
}

TAG_WORDS = {
    "waiting_time": N_("Waiting time"),
    "friendliness": N_("Friendliness"),
    "explanation": N_("Explanation"),
    "billing": N_("Billing"),
    "cleanliness": N_("Cleanliness"),
    "other": N_("Something else"),
}

LEVELS = {
    "ok": ("\u2713", N_("On target")),
    "near": ("\u25b2", N_("Near target")),
    "over": ("\u26a0", N_("Over target")),
}


def faces(scale: int) -> tuple[tuple[int, str, str], ...]:
    """(score, word, image name) for each face of the scale, happiest first."""
    if scale not in FACES:
        raise ValueError(f"a rating scale is 5 or 4, not {scale!r}")
    return tuple((score, _(word), image) for score, word, image in FACES[scale])


FACE_IMAGES = {5: "very-good", 4: "good", 3: "okay", 2: "poor", 1: "very-poor"}
# The patient's question, per survey: (heading, the line under it).
QUESTIONS = {
    "faces": (N_("How was your visit today?"),
              N_("Tap a face. It takes one second and it is anonymous.")),
    # The FFT's wording is NHS England's; fft.QUESTION is the same English, a test holds them
    # equal (the central store keeps fft's; the kiosk needs a literal to extract).
    "fft": (N_("Overall, how was your experience of our service?"),
            N_("Tap one answer. It is anonymous.")),
}
# The FFT's five graded answers, by score, in NHS England's words (equal to fft.ANSWERS').
FFT_WORDS = {5: N_("Very good"), 4: N_("Good"), 3: N_("Neither good nor poor"),
             2: N_("Poor"), 1: N_("Very poor")}
DONT_KNOW_WORDS = N_("Don't know")


def survey_faces(survey: str, scale: int) -> tuple[tuple[int, str, str], ...]:
    """The faces a survey shows: the FFT's five graded answers in its own words, else the
    site's scale."""
    if survey == "fft":
        return tuple((score, _(FFT_WORDS[score]), FACE_IMAGES[score])
                     for score, _words in fft.fft_faces())
    return faces(scale)


def question(survey: str) -> tuple[str, str]:
    """The patient's question and the line under it, in the patient's language."""
    heading, line = QUESTIONS.get(survey, QUESTIONS["faces"])
    return _(heading), _(line)


def dont_know_words() -> str:
    return _(DONT_KNOW_WORDS)


COMMENT_HEADING = N_("Is there anything you would like to tell us?")
COMMENT_PRIVACY = N_("Please do not write names or personal details. Phone numbers, dates and "
                     "similar details are removed before anything is saved.")
# The comment keyboard's special keys: (symbol, word). The backspace arrow is one that the
# Latin, Arabic and Chinese fonts all draw; "Aa" is the same in every language.
KEY_WORDS = {"shift": ("\u21e7", "Aa"), "backspace": ("\u21e6", N_("Delete")),
             "space": ("", N_("Space"))}


def comment_heading() -> str:
    return _(COMMENT_HEADING)


def comment_privacy() -> str:
    return _(COMMENT_PRIVACY)


def comment_counter(remaining: int) -> str:
    return _("{n} characters left", n=remaining)


def key_word(key: str) -> str:
    """What a key of the comment keyboard shows, in the patient's language."""
    if key not in KEY_WORDS:
        return key
    symbol, word = KEY_WORDS[key]
    shown = word if word == "Aa" else _(word)
    return f"{symbol} {shown}" if symbol else shown


def tag_word(tag: str) -> str:
    """A tag's words; a site's own tag (not in the table) shows as its name, untranslated."""
    if tag in TAG_WORDS:
        return _(TAG_WORDS[tag])
    return tag.replace("_", " ").capitalize()


def level_text(level: str) -> str:
    symbol, word = LEVELS[level]
    return Displayed(f"{symbol} {_(word)}")


def clock_minutes(minutes: float) -> str:
    """A running timer: '7:05' (minutes:seconds), '1:02:05' past the hour."""
    seconds = max(0, int(minutes * 60))
    hours, rest = divmod(seconds, 3600)
    mins, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{mins:02d}:{secs:02d}"
    return f"{mins}:{secs:02d}"


def whole_minutes(minutes: float | None) -> str:
    if minutes is None:
        return "–"
    return _("<1 min") if minutes < 1 else _("{minutes} min", minutes=round(minutes))


def waited_text(minutes: float | None) -> str:
    """A patient in the chair: how long they waited (one sentence, so it translates whole)."""
    if minutes is None:
        return _("waited –")
    if minutes < 1:
        return _("waited <1 min")
    return _("waited {minutes} min", minutes=round(minutes))


def summary_parts(summary: Mapping[str, Any], target_min: int) -> list[tuple[str, str]]:
    """Today's figures as (value, caption) pairs, each with its n where it has one."""
    waits = summary.get("waits") or 0
    median = summary.get("wait_median_min")
    within = summary.get("pct_within_target")
    return [
        (whole_minutes(median) if waits else "–", _("median wait\nn = {count}", count=waits)),
        (f"{round(within)}%" if within is not None and waits else "–",
         _("seen within\n{minutes} min", minutes=target_min)),
        (str(summary.get("visits") or 0), _("visits\ntoday")),
    ]


def sync_lines(
    status: SyncStatus, central_url: str | None, now: datetime, timezone: str
) -> list[str]:
    """The sync corner: where the data goes, when it last went, what is waiting or refused."""
    last = status.last_synced_at
    if central_url is None and not status.configured:
        lines = [_("Recording locally"), _("no central store configured")]
    elif last is None:
        lines = [_("Not synced yet")]
    else:
        lines = [_last_sync(last, now, timezone)]
    lines.append(_("all saved here") if status.backlog == 0
                 else _("{count} waiting to sync", count=status.backlog))
    if status.rejected:
        lines.append("\u26a0 " + _("{count} refused by the central store", count=status.rejected))
    if problem := sync_problem(status):
        lines.append(problem)
    return lines


def disk_line(low: DiskLow | None) -> str | None:
    """The staff screen's word when the disk guard could not make enough room."""
    if low is None:
        return None
    # One short line: the sync corner holds four, and IT finds the figures in the journal.
    return Displayed("\u26a0 " + _("Disk nearly full: tell IT"))


def sync_problem(status: SyncStatus) -> str | None:
    """What the staff should know about the sync loop, in words; None when it is fine."""
    if status.token_refused:
        return _("the central store refused this kiosk's token: ask IT to enrol it again")
    if status.consecutive_failures:
        return _("central store unreachable; saving here and retrying")
    return None


def _last_sync(moment: datetime, now: datetime, timezone: str) -> str:
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return _("Last sync just now")
    if seconds < 3600:
        return _("Last sync {minutes} min ago", minutes=int(seconds // 60))
    return _("Last sync at {time}",
             time=moment.astimezone(ZoneInfo(timezone)).strftime("%H:%M"))


def seconds_left(seconds: float | None) -> int:
    """A countdown as people read it: 3.2 s left shows as 4, and never below 0."""
    if seconds is None or seconds <= 0:
        return 0
    return int(seconds) + (0 if float(seconds).is_integer() else 1)


def undo_text(label: str | None, remaining: float) -> str:
    if not label:
        return _("Nothing to undo")
    return _("\u21b6 {action}  ({seconds} s)", action=label, seconds=seconds_left(remaining))


def lockout_text(seconds: float) -> str:
    """The PIN pad's lockout sentence (also the message of ``PinLocked``): the seconds left as
    the countdown shows them, in minutes from 90 s on."""
    left = max(1, seconds_left(seconds))
    if left >= 90:
        return _("Too many wrong PINs. Try again in {minutes} min.", minutes=round(left / 60))
    return _("Too many wrong PINs. Try again in {seconds} s.", seconds=left)


def local_clock(moment: datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


def appointment_text(appointment_at: str | None, timezone: str) -> str:
    """A visit's appointment time as the desk reads it, e.g. 'appointment 09:15'."""
    if appointment_at is None:
        return "no appointment time"
    return f"appointment {local_clock(parse_rfc3339(appointment_at), timezone)}"


def pin_dots(typed: int, shown_at_least: int = 4) -> str:
    """The PIN as filled and empty circles: how many digits, never which."""
    return " ".join(["\u25cf"] * typed + ["\u25cb"] * max(0, shown_at_least - typed))


def patient_countdown(state: str, seconds: float | None, role: str) -> str:
    """The quiet line at the bottom of the patient screens: when the screen moves on by itself."""
    if seconds is None:
        return ""
    left = seconds_left(seconds)
    if state in ("followup", "comment"):
        return _("Your answer is already counted. This closes by itself in {seconds} s.",
                 seconds=left)
    if state == "thanks":
        return _("Back to the start in {seconds} s.", seconds=left)
    if role == "desk":
        return _("This screen goes back to the desk in {seconds} s.", seconds=left)
    return _("Back to the start in {seconds} s.", seconds=left)


def enrolment_view(model) -> dict[str, str]:
    """The enrolment screen's words for a ``kiosk.enrolment.EnrolmentModel``: a title, what to
    do, the status line, and ``panel`` ("keyboard", "code" or "retry": what the screen shows
    below them)."""
    stage = model.stage
    view = {"reason": model.reason or "", "address": model.url or model.typed,
            "code": model.user_code, "status": "", "panel": "retry"}
    if stage == "address":
        view.update(
            title=_("Connect this kiosk to the central store"),
            explanation=_("Type the central store's address as IT gave it (for example "
                          "{example}), then tap Next.", example="https://kiosk.clinic.example"),
            status=model.error, panel="keyboard")
    elif stage == "asking":
        view.update(title=_("Asking the central store for a code\u2026"),
                    explanation=_("Central store: {address}", address=model.url), panel="none")
    elif stage == "code":
        minutes = max(1, -(-model.seconds_left() // 60))
        view.update(
            title=_("Enrol this kiosk"),
            explanation=_("On the dashboard, open Devices, then \u201cAdd a kiosk\u201d, and "
                          "type this code, or scan the QR code with a phone."),
            status=model.trouble or (
                _("Waiting for approval. The code is valid for 1 more minute.") if minutes == 1
                else _("Waiting for approval. The code is valid for {minutes} more minutes.",
                       minutes=minutes)),
            panel="code")
    elif stage == "denied":
        view.update(title=_("The code was denied"),
                    explanation=_("A manager turned this kiosk down on the dashboard. Ask them, "
                                  "then tap New code."))
    elif stage == "expired":
        view.update(title=_("The code has expired"),
                    explanation=_("Codes last 15 minutes and work once. Tap New code for "
                                  "another one."))
    elif stage == "unreachable":
        view.update(title=_("The central store did not answer"), explanation=model.error,
                    status=_("Central store: {address}", address=model.url))
    elif stage == "local":
        view.update(title=_("Recording locally"), explanation=_("Starting\u2026"), panel="none")
    else:
        view.update(title=_("Enrolled"), explanation=_("Starting\u2026"), panel="none")
    return view
