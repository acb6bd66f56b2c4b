"""A clock tests move by hand, for every part that takes an injected ``clock``: a callable
returning an aware UTC datetime (the kiosk), or seconds as a float (``FakeClock.seconds``, for
the central store's rate limiters). Timers, waits and lockouts without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Stands still until ``advance``; starts at a fixed Monday morning unless told otherwise."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, minutes: float = 0) -> datetime:
        self.now += timedelta(seconds=seconds, minutes=minutes)
        return self.now

    def seconds(self) -> float:
        """The same moment as seconds (a monotonic-style clock)."""
        return self.now.timestamp()
