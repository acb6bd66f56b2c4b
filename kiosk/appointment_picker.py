"""The appointment-time picker at the desk, as plain state: no Kivy, no keyboard.

A busy desk enters an appointment in one tap on a quarter-hour button. The buttons are the
quarter-hours of the site's local clock around a moment (now at check-in; the check-in time
when an appointment is set or fixed later): two before it, for the patient who is running
late, and the next ones after it. "Earlier" and "Later" move the whole row by an hour, for
the rare appointment further away. Quarter-hours are found on the local wall clock and stepped
in UTC, so a day whose clocks change (23 or 25 hours) still offers every real quarter-hour once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kiosk.errors import ModelError

QUARTER = timedelta(minutes=15)
# Quarter-hours before the anchor's own and the anchor's own plus those after it: eight
# buttons in two rows of four, from half an hour before to an hour and a quarter after.
BEFORE = 2
CHOICES = 8
SHIFT = timedelta(hours=1)


def quarter_floor(moment: datetime, tz_name: str) -> datetime:
    """The latest local quarter-hour at or before ``moment`` (UTC-aware in, UTC-aware out).

    Subtracting the local minutes past the quarter works for every zone whose offset is a
    whole number of quarter-hours (all of them today, Nepal's +05:45 included).
    """
    local = moment.astimezone(ZoneInfo(tz_name))
    past = timedelta(minutes=local.minute % 15, seconds=local.second,
                     microseconds=local.microsecond)
    return moment - past


def quarter_hours(anchor: datetime, tz_name: str, shift_hours: int = 0) -> list[datetime]:
    """The picker's choices around ``anchor``, earliest first, moved by ``shift_hours``."""
    first = quarter_floor(anchor, tz_name) - BEFORE * QUARTER + shift_hours * SHIFT
    return [first + n * QUARTER for n in range(CHOICES)]


def repeated_wall_time(moment: datetime, tz_name: str) -> bool:
    """Whether the local wall-clock time of ``moment`` happens twice that day (the hour the
    clocks go back): its two readings (PEP 495's ``fold``) have different UTC offsets."""
    zone = ZoneInfo(tz_name)
    wall = moment.astimezone(zone).replace(tzinfo=None)
    first, second = (wall.replace(tzinfo=zone, fold=fold) for fold in (0, 1))
    return first.utcoffset() != second.utcoffset()


class AppointmentPicker:
    """One open picker: for a new check-in (``visit_id`` None) or for a visit already checked in.

    ``current`` is the visit's appointment time as recorded (None for none), so the screen can
    mark it; ``anchor`` is the moment the choices are laid out around.
    """

    def __init__(self, tz_name: str, anchor: datetime, visit_id: str | None = None,
                 ticket: str | None = None, current: datetime | None = None):
        self.tz_name = tz_name
        self.anchor = anchor
        self.visit_id = visit_id
        self.ticket = ticket
        self.current = current
        self.shift_hours = 0

    @property
    def for_check_in(self) -> bool:
        return self.visit_id is None

    def choices(self) -> list[datetime]:
        return quarter_hours(self.anchor, self.tz_name, self.shift_hours)

    def labels(self) -> list[str]:
        """The choices as the desk's wall clock shows them, e.g. '09:15' (see ``label``)."""
        return [self.label(moment) for moment in self.choices()]

    def local(self, moment: datetime) -> str:
        """The wall-clock time alone, e.g. '09:15'."""
        return moment.astimezone(ZoneInfo(self.tz_name)).strftime("%H:%M")

    def label(self, moment: datetime) -> str:
        """``local``, with the zone's abbreviation only where the wall clock shows that time
        twice (the night the clocks go back: '01:30 BST', then '01:30 GMT'), so the two
        buttons are told apart; every other day's labels stay short."""
        if not repeated_wall_time(moment, self.tz_name):
            return self.local(moment)
        return moment.astimezone(ZoneInfo(self.tz_name)).strftime("%H:%M %Z")

    def chosen_index(self) -> int | None:
        """Which button shows the recorded appointment time (None when none does)."""
        if self.current is None:
            return None
        for index, moment in enumerate(self.choices()):
            if moment == self.current:
                return index
        return None

    def earlier(self) -> None:
        self.shift_hours -= 1

    def later(self) -> None:
        self.shift_hours += 1

    def choice(self, index: int) -> datetime:
        choices = self.choices()
        if not 0 <= index < len(choices):
            raise ModelError(f"There is no appointment button {index + 1}: tap one of the times.")
        return choices[index]
