"""A countdown from the last touch, over an injected clock, so tests drive time without sleeping.

The patient screens, the follow-up and the staff screen's lock all count down the same way.
"""

from __future__ import annotations

from kiosk.shared.timeutil import Clock


class IdleTimer:
    """Counts down from the last touch; plain state over an injected clock."""

    def __init__(self, timeout_s: float, clock: Clock):
        self.timeout_s = timeout_s
        self.clock = clock
        self._last = clock()

    def touch(self) -> None:
        self._last = self.clock()

    def remaining(self) -> float:
        now = self.clock()
        elapsed = (now - self._last).total_seconds()
        if elapsed < 0:
            # The clock stepped back (an NTP fix, a time set by hand): count from the step, or
            # an unlocked staff screen would stay open for as long as the clock went back.
            self._last, elapsed = now, 0.0
        return max(0.0, self.timeout_s - elapsed)

    def expired(self) -> bool:
        return self.remaining() <= 0
