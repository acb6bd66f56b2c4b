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
        elapsed = (self.clock() - self._last).total_seconds()
        return max(0.0, self.timeout_s - elapsed)

    def expired(self) -> bool:
        return self.remaining() <= 0
