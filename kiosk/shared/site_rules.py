"""The ranges a site's settings must lie in: one home for the kiosk's config file and the
central store's ``site set``, so a value one side accepts the other never refuses (a kiosk
and the dashboard must measure against the same target).

Pure values and predicates; each side words its own error sentence around them.
"""

from __future__ import annotations

from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk.shared.wire import MAX_TAGS


class Bounds(NamedTuple):
    """An inclusive range; unpack it (``*TARGET_WAIT_MIN``) where a (low, high) pair is taken."""

    low: int
    high: int

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high


# The target wait is a whole number of minutes in this range.
TARGET_WAIT_MIN = Bounds(1, 240)
IDLE_TIMEOUT_S = Bounds(5, 600)
FOLLOWUP_TAG_COUNT = Bounds(1, MAX_TAGS)
RATING_SCALES = (5, 4)  # best face first: 5-point, then 4-point
# A new site's values (the target wait's default is ``metrics.DEFAULT_TARGET_MIN``).
DEFAULT_RATING_SCALE = 5
DEFAULT_IDLE_TIMEOUT_S = 20


def is_target_wait(value: float) -> bool:
    """A whole number of minutes within ``TARGET_WAIT_MIN``."""
    return float(value).is_integer() and TARGET_WAIT_MIN.holds(value)


def is_zone_name(value: object) -> bool:
    """An IANA time zone name the system knows, like 'Europe/London'."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        # OSError: a folder of the zone database ('Europe'), or a name too long for a path
        return False
    return True
