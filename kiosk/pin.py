"""The staff PIN: an Argon2id hash in the local store, and a lockout that grows and survives
restarts, so guessing the PIN at the screen takes longer than anyone stands there."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kiosk.errors import PinError, PinLocked
from kiosk.shared.timeutil import Clock, parse_rfc3339, to_rfc3339, utc_now
from kiosk.store import Store


class PinLock:
    """The staff PIN: an Argon2id hash in the store; a lockout that grows and survives restarts.

    The first ``FREE_ATTEMPTS`` wrong PINs cost nothing; each one after that locks entry for
    ``BASE_LOCK_S`` doubled per extra failure, capped at ``MAX_LOCK_S``.
    """

    FREE_ATTEMPTS = 5
    BASE_LOCK_S = 30
    MAX_LOCK_S = 15 * 60
    MIN_DIGITS, MAX_DIGITS = 4, 8

    def __init__(self, store: Store, clock: Clock = utc_now, hasher: PasswordHasher | None = None):
        self.store = store
        self.clock = clock
        self.hasher = hasher or PasswordHasher()

    def has_pin(self) -> bool:
        return self.store.get_meta("pin_hash") is not None

    def check_format(self, pin: str) -> None:
        """PinError unless ``pin`` could be a PIN: set-up checks it before asking to confirm."""
        if not (isinstance(pin, str) and pin.isdigit()
                and self.MIN_DIGITS <= len(pin) <= self.MAX_DIGITS):
            raise PinError(f"A PIN is {self.MIN_DIGITS} to {self.MAX_DIGITS} digits.")

    def set_pin(self, new_pin: str, current_pin: str | None = None) -> None:
        """Set the first PIN, or change it (which needs the current one)."""
        self.check_format(new_pin)
        if self.has_pin() and (current_pin is None or not self.verify(current_pin)):
            raise PinError("The current PIN is needed to change it.")
        self.store.set_meta({"pin_hash": self.hasher.hash(new_pin)})

    def seconds_locked(self) -> float:
        until = self.store.get_meta("pin_locked_until")
        if until is None:
            return 0.0
        now = self.clock()
        left = (parse_rfc3339(until) - now).total_seconds()
        if left > self.MAX_LOCK_S:
            # Longer than the longest lock: it was set while the clock ran ahead (a wrong time,
            # then an NTP fix), and would shut staff out for as long as it was ahead. It ends
            # the longest lock from now instead, kept across a restart like any lockout.
            left = float(self.MAX_LOCK_S)
            self.store.set_meta({"pin_locked_until": to_rfc3339(now + timedelta(seconds=left))})
        return max(0.0, left)

    def verify(self, pin: str) -> bool:
        """True for the right PIN; False for a wrong one; PinLocked while locked out."""
        left = self.seconds_locked()
        if left > 0:
            raise PinLocked(left)
        stored = self.store.get_meta("pin_hash")
        if stored is None:
            raise PinError("No staff PIN is set yet.")
        try:
            ok = (isinstance(pin, str) and pin.isdigit()
                  and self.hasher.verify(stored, pin))
        except (VerificationError, InvalidHashError):
            ok = False
        if ok:
            self.store.set_meta({"pin_failures": None, "pin_locked_until": None})
            return True
        failures = int(self.store.get_meta("pin_failures", "0")) + 1
        update: dict[str, str | None] = {"pin_failures": str(failures)}
        if failures >= self.FREE_ATTEMPTS:
            lock_s = min(self.MAX_LOCK_S, self.BASE_LOCK_S * 2 ** (failures - self.FREE_ATTEMPTS))
            update["pin_locked_until"] = to_rfc3339(self.clock() + timedelta(seconds=lock_s))
        self.store.set_meta(update)
        return False

    def failures(self) -> int:
        return int(self.store.get_meta("pin_failures", "0"))
