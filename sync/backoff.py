"""How long the pusher waits after a failed pass: full-jitter exponential backoff, Retry-After.

Full jitter (a uniform draw between 0 and the exponential ceiling) keeps a clinic's kiosks from
retrying in lockstep when the central store comes back after an outage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

BASE_DELAY_S = 1.0
MAX_DELAY_S = 60.0


def backoff_delay(
    failures: int,
    random: Callable[[], float],
    base: float = BASE_DELAY_S,
    cap: float = MAX_DELAY_S,
) -> float:
    """Seconds to wait after ``failures`` consecutive failed passes (1 = the first failure)."""
    if failures < 1:
        return 0.0
    # min() before the power would still overflow for a kiosk offline for weeks; clamp the
    # exponent instead.
    ceiling = min(cap, base * 2 ** min(failures - 1, 32))
    return random() * ceiling


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now (≥ 0), or None if absent or unreadable.

    RFC 9110 allows a number of seconds or an HTTP date.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (moment - now).total_seconds())


def retry_delay(
    failures: int,
    retry_after: float | None,
    random: Callable[[], float],
    base: float = BASE_DELAY_S,
    cap: float = MAX_DELAY_S,
) -> float:
    """The wait before the next pass: the server's Retry-After if it gave one, else backoff.

    Both are capped: a misconfigured proxy asking for an hour must not silence a kiosk that long;
    and a Retry-After is never taken as less than ``base``.
    """
    if retry_after is not None:
        # Not below the base delay either: "Retry-After: 0", a negative number or a date in
        # the past would otherwise send the next pass at once, again and again.
        return min(cap, max(base, retry_after))
    return backoff_delay(failures, random, base, cap)
