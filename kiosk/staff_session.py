"""Whether the staff screen is open: unlocked by the PIN, locked again after a while untouched."""

from __future__ import annotations

from kiosk.config import Settings
from kiosk.idle import IdleTimer
from kiosk.pin import PinLock
from kiosk.shared.timeutil import Clock, utc_now


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
