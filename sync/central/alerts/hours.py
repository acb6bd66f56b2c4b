"""A site's opening hours: per weekday, in the site's own zone.

Written as ``mon-fri 08:00-18:00, sat 09:00-12:30`` (days ``mon`` .. ``sun``, a range of days
or one day, then one ``HH:MM-HH:MM`` span; a day not named is closed) or ``always``. Outside
them a silent kiosk or a long wait raises no alert: nobody is there to hear it, or to wait.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlite_utils import Database

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS_TEXT = "mon-fri 08:00-18:00"
ALWAYS = "always"
_PART = re.compile(
    r"^(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
    r"(?P<open>\d{2}:\d{2})-(?P<close>\d{2}:\d{2})$"
)

# weekday (0 = Monday) -> (opens, closes) as "HH:MM"; None for "always".
Hours = dict[int, tuple[str, str]] | None


class InvalidHours(ValueError):
    """Opening hours that cannot be read; the message shows the expected shape."""


def _clock(text: str, whole: str) -> str:
    try:
        time.fromisoformat(text)
    except ValueError:
        raise InvalidHours(f"{text!r} in {whole!r} is not a time of day like 08:00") from None
    return text


def parse_hours(text: str) -> Hours:
    """``mon-fri 08:00-18:00, sat 09:00-12:00`` or ``always`` -> :data:`Hours`."""
    whole = text.strip().lower()
    if whole == ALWAYS:
        return None
    hours: dict[int, tuple[str, str]] = {}
    for part in (piece.strip() for piece in whole.split(",")):
        match = _PART.match(part)
        if not match or match["first"] not in DAYS or (match["last"] or "mon") not in DAYS:
            raise InvalidHours(
                f"opening hours {text!r} must look like 'mon-fri 08:00-18:00, sat 09:00-12:00' "
                "(days mon..sun) or 'always'"
            )
        opens, closes = _clock(match["open"], text), _clock(match["close"], text)
        if opens >= closes:
            raise InvalidHours(f"in {part!r} the opening time must be before the closing time")
        first = DAYS.index(match["first"])
        last = DAYS.index(match["last"] or match["first"])
        if last < first:
            raise InvalidHours(f"in {part!r} the days must run forward, like mon-fri")
        for day in range(first, last + 1):
            hours[day] = (opens, closes)
    return hours


def format_hours(hours: Hours) -> str:
    if hours is None:
        return ALWAYS
    return ", ".join(
        f"{DAYS[day]} {opens}-{closes}" for day, (opens, closes) in sorted(hours.items())
    )


def is_open(hours: Hours, timezone: str, now: datetime) -> bool:
    """Whether ``now`` (UTC-aware) falls in the hours, read on the site's wall clock."""
    if hours is None:
        return True
    local = now.astimezone(ZoneInfo(timezone))
    span = hours.get(local.weekday())
    return span is not None and span[0] <= local.strftime("%H:%M") < span[1]


def opened_at(hours: Hours, timezone: str, now: datetime) -> datetime | None:
    """When today's opening hours began (UTC), read on the site's wall clock for that date,
    so a day the clocks change still opens at its written time; None when ``now`` is outside
    them, or the site is always open (it never opens: it never closed)."""
    if hours is None or not is_open(hours, timezone, now):
        return None
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    opens = time.fromisoformat(hours[local.weekday()][0])
    return datetime.combine(local.date(), opens, tzinfo=zone).astimezone(UTC)


def site_hours(db: Database, site: str) -> Hours:
    row = db.execute("SELECT opening_hours FROM sites WHERE name = ?", [site]).fetchone()
    if row is None or row[0] is None:
        return parse_hours(DEFAULT_HOURS_TEXT)
    stored = json.loads(row[0])
    return None if stored is None else {int(day): tuple(span) for day, span in stored.items()}


def set_site_hours(db: Database, site: str, text: str) -> str:
    """Store the site's opening hours (the site must exist); returns them as text."""
    hours = parse_hours(text)
    db.execute(
        "UPDATE sites SET opening_hours = ? WHERE name = ?",
        [json.dumps(None if hours is None else {str(d): list(s) for d, s in hours.items()}), site],
    )
    return format_hours(hours)
