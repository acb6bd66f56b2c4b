"""The event schema both ends share: the wire format (README, "Wire format"), validated per event.

An event is ``{"id", "device_seq", "type", "occurred_at", "visit_id", "data"}``. Unknown types
and unknown fields (top level or inside ``data``) are rejected with a reason a person can read.
No field may carry free text but one: ticket codes are short codes and tags come from a fixed
vocabulary shape. The exception is a rating's optional ``comment`` (a site turns it on), at
most 500 characters, which the kiosk redacts before writing it and the central store redacts
again on ingest (``kiosk.shared.redaction``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kiosk.shared.languages import BCP47_PATTERN
from kiosk.shared.timeutil import parse_rfc3339

PROTOCOL_VERSION = 1
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 1024 * 1024

EVENT_FIELDS = ("id", "device_seq", "type", "occurred_at", "visit_id", "data")
VISIT_FIELDS = ("checked_in_at", "called_at", "checked_out_at")
# What `visit.corrected` may change: a visit's times, and (an addition old stores reject per
# event, see the README's Wire format) its appointment time, which may also be cleared (null).
CORRECTABLE_FIELDS = (*VISIT_FIELDS, "appointment_at")
CLEARABLE_FIELDS = ("appointment_at",)
CANCEL_REASONS = ("cancelled", "no_show")
# What `visit.undone` may take back: the visit's latest state change.
UNDOABLE_TYPES = ("visit.checked_in", "visit.called", "visit.checked_out", "visit.cancelled")
# ASCII digits only (``\d`` takes Arabic-Indic ones too) and matched whole (``$`` lets a
# trailing newline through): a ticket is printed and read out at the desk.
TICKET_PATTERN = re.compile(r"[A-Z]{1,3}-[0-9]{1,4}")
TAG_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_TAGS = 6
MAX_COMMENT_CHARS = 500  # kiosk.shared.redaction cuts a comment to this too
VERSION_PATTERN = re.compile(r"[0-9A-Za-z.+-]{1,32}")
# A heartbeat's counts (events waiting in the outbox, events quarantined): a kiosk holds far
# fewer; the bound keeps every count inside SQLite's 64-bit integers and every sum of them.
MAX_COUNT = 10**9
# RFC 3339's date-time, strictly: ASCII digits, 'T' between date and time, seconds present,
# a 'Z' or a ±hh:mm offset. ISO 8601's other spellings (week dates, basic format, a space for
# the 'T') are refused, so every end reads an instant the same way.
RFC3339_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# The plausible window for any instant a kiosk sends: nothing happened before the product
# existed, and no kiosk's clock may run more than a day ahead of the store's. Outside it the
# event is refused (never stored), so no figure and no device row can be built on it.
PRODUCT_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=1)
# The shape ``str(uuid.UUID(...))`` produces; every kiosk sends it, so most ids need no parsing.
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

DEFAULT_TAGS = (
    "waiting_time",
    "friendliness",
    "explanation",
    "billing",
    "cleanliness",
    "other",
)


class EventRejected(ValueError):
    """An event that does not follow the wire format; the message says why."""


@dataclass(frozen=True)
class Event:
    id: str
    device_seq: int
    type: str
    occurred_at: str
    visit_id: str | None
    data: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device_seq": self.device_seq,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "visit_id": self.visit_id,
            "data": self.data,
        }


def _check_keys(obj: dict, allowed: tuple[str, ...], required: tuple[str, ...], where: str):
    # Loops rather than set arithmetic: run for every event, and the usual event passes both.
    for key in obj:
        if key not in allowed:
            unknown = sorted(set(obj) - set(allowed))
            raise EventRejected(f"unknown field(s) in {where}: {', '.join(unknown)}")
    for key in required:
        if key not in obj:
            missing = [key for key in required if key not in obj]
            raise EventRejected(f"missing field(s) in {where}: {', '.join(missing)}")


def _check_uuid(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise EventRejected(f"{name} must be a UUID string")
    if CANONICAL_UUID.fullmatch(value):
        return value  # already what str(uuid.UUID(value)) would give back
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise EventRejected(f"{name} {value!r} is not a UUID") from None


def parse_wire_instant(value: Any) -> datetime:
    """A strict RFC 3339 instant as a UTC datetime; ValueError with a sentence if not."""
    if not isinstance(value, str) or not RFC3339_INSTANT.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an RFC 3339 instant like 2026-11-23T09:15:02Z "
            "(date, 'T', time with seconds, then 'Z' or an offset like +01:00)"
        )
    return parse_rfc3339(value)


def _check_instant(value: Any, name: str, received_at: datetime | None = None) -> str:
    try:
        moment = parse_wire_instant(value)
    except ValueError as error:
        raise EventRejected(f"{name}: {error}") from None
    if received_at is not None:
        check_plausible(moment, name, received_at)
    return value


def _shown(moment: datetime) -> str:
    # isoformat, not strftime: strftime writes year 1 as '1', not '0001'.
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def check_plausible(moment: datetime, name: str, received_at: datetime) -> None:
    """EventRejected unless ``moment`` lies in the plausible window (see PRODUCT_EPOCH)."""
    if moment < PRODUCT_EPOCH:
        raise EventRejected(
            f"{name} {_shown(moment)} is before {PRODUCT_EPOCH:%Y-%m-%d}, when no "
            "kiosk existed: the kiosk's clock is wrong; set it and record the event again"
        )
    if moment - received_at > MAX_AHEAD:
        raise EventRejected(
            f"{name} {_shown(moment)} is more than a day ahead of the central "
            "store's clock: the kiosk's clock is wrong; set it and record the event again"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _data_checked_in(data: dict, received_at: datetime | None) -> None:
    _check_keys(data, ("ticket", "appointment_at"), ("ticket",), "data of visit.checked_in")
    ticket = data["ticket"]
    if not isinstance(ticket, str) or not TICKET_PATTERN.fullmatch(ticket):
        raise EventRejected(f"ticket {ticket!r} is not a ticket code like 'A-017'")
    if data.get("appointment_at") is not None:
        _check_instant(data["appointment_at"], "appointment_at", received_at)


def _data_empty(data: dict, received_at: datetime | None) -> None:
    _check_keys(data, (), (), "data (must be {})")


def _data_cancelled(data: dict, received_at: datetime | None) -> None:
    _check_keys(data, ("reason",), ("reason",), "data of visit.cancelled")
    if data["reason"] not in CANCEL_REASONS:
        raise EventRejected(f"reason {data['reason']!r} is not one of {', '.join(CANCEL_REASONS)}")


def _data_corrected(data: dict, received_at: datetime | None) -> None:
    _check_keys(data, ("field", "value"), ("field", "value"), "data of visit.corrected")
    field = data["field"]
    if field not in CORRECTABLE_FIELDS:
        raise EventRejected(f"field {field!r} is not one of {', '.join(CORRECTABLE_FIELDS)}")
    if data["value"] is None and field in CLEARABLE_FIELDS:
        return  # no appointment after all
    _check_instant(data["value"], "value", received_at)


def _data_undone(data: dict, received_at: datetime | None) -> None:
    _check_keys(data, ("action",), ("action",), "data of visit.undone")
    if data["action"] not in UNDOABLE_TYPES:
        raise EventRejected(f"action {data['action']!r} is not one of {', '.join(UNDOABLE_TYPES)}")


RATING_FIELDS = ("score", "scale", "tags", "misuse", "dont_know", "comment", "survey", "lang")
# The survey an answer was asked as. Only "fft" is sent (by the FFT screen): the FFT return
# counts only answers asked as the FFT question. An answer without it was asked as faces.
SURVEY_FFT = "fft"


def _data_rating(data: dict, received_at: datetime | None) -> None:
    _check_keys(data, RATING_FIELDS, ("score", "scale"), "data of rating")
    scale, score = data["scale"], data["score"]
    if not _is_int(scale) or scale not in (4, 5):
        raise EventRejected(f"scale {scale!r} is not 5 or 4")
    dont_know = data.get("dont_know", False)
    if not isinstance(dont_know, bool):
        raise EventRejected("dont_know must be true or false")
    if dont_know:
        # The FFT's sixth answer has no place on the scale: it carries no score at all.
        if score is not None:
            raise EventRejected(f"a \"Don't know\" answer has score null, not {score!r}")
        if scale != 5:
            raise EventRejected("a \"Don't know\" answer is an FFT answer: its scale is 5")
        if data.get("tags"):
            raise EventRejected("a \"Don't know\" answer has no face to follow up: send its "
                                "tags as an empty list or leave them out")
    elif not _is_int(score) or not 1 <= score <= scale:
        raise EventRejected(f"score {score!r} is outside 1..{scale}")
    if "survey" in data:
        if data["survey"] != SURVEY_FFT:
            raise EventRejected(f"survey {data['survey']!r} is not {SURVEY_FFT!r}: send "
                                "\"survey\": \"fft\" for an FFT answer, or leave it out")
        if scale != 5:
            raise EventRejected("an FFT answer (survey \"fft\") has scale 5")
    comment = data.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS):
        raise EventRejected(f"comment must be a text of at most {MAX_COMMENT_CHARS} characters")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise EventRejected(f"tags must be a list of at most {MAX_TAGS} tag names")
    for tag in tags:
        if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
            raise EventRejected(f"tag {tag!r} is not a tag name like 'waiting_time'")
    if not isinstance(data.get("misuse", False), bool):
        raise EventRejected("misuse must be true or false")
    # Optional (kiosks before the language row send none): the screen's language, BCP 47. Any
    # well-formed tag is kept, so a newer kiosk's language is counted by an older store too.
    lang = data.get("lang")
    if lang is not None and (not isinstance(lang, str) or not BCP47_PATTERN.fullmatch(lang)):
        raise EventRejected(f"lang {lang!r} is not a BCP 47 language tag like 'es' or 'zh-Hans'")


def _data_heartbeat(data: dict, received_at: datetime | None) -> None:
    _check_keys(data, ("backlog", "version", "rejected"), ("backlog", "version"), "heartbeat")
    for key in ("backlog", "rejected"):
        if key in data and (not _is_int(data[key]) or not 0 <= data[key] <= MAX_COUNT):
            raise EventRejected(f"{key} must be a whole number from 0 to {MAX_COUNT}")
    version = data["version"]
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise EventRejected(f"version {version!r} is not a version string")


DATA_VALIDATORS = {
    "visit.checked_in": _data_checked_in,
    "visit.called": _data_empty,
    "visit.checked_out": _data_empty,
    "visit.cancelled": _data_cancelled,
    "visit.corrected": _data_corrected,
    "visit.undone": _data_undone,
    "rating.submitted": _data_rating,
    "device.heartbeat": _data_heartbeat,
}
EVENT_TYPES = tuple(DATA_VALIDATORS)
VISIT_EVENT_TYPES = tuple(t for t in EVENT_TYPES if t.startswith("visit."))


def validate_event(obj: Any, received_at: datetime | None = None) -> Event:
    """Return the event if it follows the wire format; raise EventRejected with a reason if not.

    With ``received_at`` (the store's clock when the batch arrived), every instant of the
    event (``occurred_at`` and any inside ``data``) must also lie in the plausible window.
    """
    if not isinstance(obj, dict):
        raise EventRejected("an event must be a JSON object")
    _check_keys(obj, EVENT_FIELDS, EVENT_FIELDS[:4] + ("data",), "event")
    event_id = _check_uuid(obj["id"], "id")
    seq = obj["device_seq"]
    if not _is_int(seq) or seq < 1:
        raise EventRejected(f"device_seq {seq!r} must be a whole number ≥ 1")
    kind = obj["type"]
    if not isinstance(kind, str) or kind not in DATA_VALIDATORS:
        raise EventRejected(f"unknown event type {kind!r}")
    occurred_at = _check_instant(obj["occurred_at"], "occurred_at", received_at)
    visit_id = obj.get("visit_id")
    if visit_id is not None:
        visit_id = _check_uuid(visit_id, "visit_id")
    if kind in VISIT_EVENT_TYPES and visit_id is None:
        raise EventRejected(f"{kind} needs a visit_id")
    if kind == "device.heartbeat" and visit_id is not None:
        raise EventRejected("device.heartbeat takes no visit_id")
    data = obj["data"]
    if not isinstance(data, dict):
        raise EventRejected("data must be a JSON object")
    DATA_VALIDATORS[kind](data, received_at)
    return Event(event_id, seq, kind, occurred_at, visit_id, data)
