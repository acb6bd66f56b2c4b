"""Fixtures shared by the logic tests: a fake clock, settings in a temp folder, a real store;
and for every test, the throwaway PostgreSQL cluster (tests/support/postgres.py)."""

from __future__ import annotations

import hypothesis
import pytest

from kiosk.config import load_settings
from kiosk.desk import FrontDesk
from kiosk.flow import KioskFlow
from kiosk.pin import PinLock
from kiosk.rating_flow import RatingFlow
from kiosk.store import Store
from tests.support import hashing
from tests.support.clock import FakeClock
from tests.support.engines import (  # noqa: F401  (fixtures)
    add_option,
    central_database_url,
    central_engine,
    parametrize,
)
from tests.support.kiosk_flow import STAFF_PIN
from tests.support.postgres import (  # noqa: F401  (fixtures, here so there is one cluster a session)
    postgres_cluster,
    postgres_replica,
    postgres_url,
    replica_database,
)

# No example database: a run never replays what an earlier run (or another checkout) left in
# .hypothesis/, and leaves nothing behind itself. A failure prints its example to reproduce it.
hypothesis.settings.register_profile("no-leftovers", database=None, print_blob=True)
hypothesis.settings.load_profile("no-leftovers")


@pytest.fixture(autouse=True, scope="module")
def _english_after_each_module():
    """The kiosk's language is process-wide (kiosk.i18n.use): a module whose tests switched it
    must not leave the next module, in whatever order modules run, reading another language."""
    from kiosk import i18n

    yield
    i18n.use(i18n.DEFAULT_LANGUAGES[0])


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
    return hashing.fast_hasher()


@pytest.fixture
def make_flow(tmp_path, store, clock, fast_hasher):
    """``make(pin=STAFF_PIN, **settings)``: a KioskFlow over the test's store and clock, its
    staff PIN set (``pin=None``: none yet, the first start's set-up)."""
    def make(pin: str | None = STAFF_PIN, **overrides) -> KioskFlow:
        settings = load_settings(environ={}, data_dir=str(tmp_path), **overrides)
        flow = KioskFlow(store, settings, clock=clock, hasher=fast_hasher)
        if pin:
            flow.pin.set_pin(pin)
            flow._pin_set = True
        return flow

    return make


@pytest.fixture
def pin(store, clock, fast_hasher) -> PinLock:
    return PinLock(store, clock, hasher=fast_hasher)


def pytest_addoption(parser):
    add_option(parser)


def pytest_generate_tests(metafunc):
    # The engine suites run each store-using test on SQLite and on PostgreSQL
    # (tests/support/engines.py).
    parametrize(metafunc)
