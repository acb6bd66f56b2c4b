"""Fixtures shared by the logic tests: a fake clock, settings in a temp folder, a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kiosk.config import load_settings
from kiosk.desk import FrontDesk
from kiosk.pin import PinLock
from kiosk.rating_flow import RatingFlow
from kiosk.store import Store


class FakeClock:
    """A clock tests move by hand: timers and waits without sleeping."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, minutes: float = 0) -> datetime:
        self.now += timedelta(seconds=seconds, minutes=minutes)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path):
    return load_settings(environ={}, data_dir=str(tmp_path), device_name="desk-1")


@pytest.fixture
def store(settings, clock):
    opened = Store(settings.database_path, clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def desk(store, settings, clock) -> FrontDesk:
    return FrontDesk(store, settings, clock)


@pytest.fixture
def rating(store, settings, clock) -> RatingFlow:
    return RatingFlow(store, settings, clock)


@pytest.fixture(scope="session")
def fast_hasher():
    """Argon2id with small costs: the same algorithm, a fraction of the test time."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def pin(store, clock, fast_hasher) -> PinLock:
    return PinLock(store, clock, hasher=fast_hasher)
