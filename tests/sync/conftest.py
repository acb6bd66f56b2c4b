"""Fixtures for the sync tests: a kiosk store, a scripted fake central, a fault-injecting proxy
in front of the real central server, and a deadline poll (never a fixed sleep)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kiosk.store import RecordedEvent, Store
from sync.client import SyncClient
from tests.support.central_server import central_server  # noqa: F401  (a fixture)
from tests.sync.scripted_server import FakeCentral, Forwarder, ScriptedServer

TOKEN = "dev_test-token"
# Small timeouts keep the hang and reset cases quick; loopback answers in milliseconds.
TEST_TIMEOUTS = (0.5, 0.5)


def tap(store: Store, score: int = 5) -> RecordedEvent:
    """A patient's rating, as the rating screen records it."""
    return store.record(
        "rating.submitted", {"score": score, "scale": 5, "tags": [], "misuse": False}
    )


def check_in(store: Store, number: int) -> RecordedEvent:
    data = {"ticket": f"A-{number:03d}", "appointment_at": None}
    return store.record("visit.checked_in", data, visit_id=str(uuid.uuid4()))


@pytest.fixture
def kiosk_store(tmp_path) -> Iterator[Store]:
    opened = Store(tmp_path / "kiosk" / "kiosk.sqlite")
    yield opened
    opened.close()


@pytest.fixture
def fake_central() -> FakeCentral:
    return FakeCentral(TOKEN)


@pytest.fixture
def scripted(fake_central) -> Iterator[ScriptedServer]:
    server = ScriptedServer(fake_central)
    yield server
    server.close()


@pytest.fixture
def client(kiosk_store, scripted) -> Iterator[SyncClient]:
    made = SyncClient(kiosk_store, scripted.url, TOKEN, timeouts=TEST_TIMEOUTS)
    yield made
    made.close()


@pytest.fixture
def device(central_server):  # noqa: F811  (the fixture above)
    return central_server.add_device()


@pytest.fixture
def proxy(central_server) -> Iterator[ScriptedServer]:  # noqa: F811
    """A fault-injecting pass-through to the real central server."""
    server = ScriptedServer(Forwarder(central_server.base_url))
    yield server
    server.close()
