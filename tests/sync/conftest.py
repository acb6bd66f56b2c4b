"""Fixtures for the sync tests: a kiosk store, the real central store behind a fault-injecting
proxy, and what that store holds for the kiosk's device."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from kiosk.store import RecordedEvent, Store
from sync.client import SyncClient
from tests.support.central_server import (
    LiveCentral,
    central_server,  # noqa: F401  (a fixture)
)
from tests.sync.scripted_server import Forwarder, ScriptedServer

# For clients that never reach a server (construction, settings): the real store's tokens come
# from ``device``.
UNSENT_TOKEN = "dev_never-sent"
# Small timeouts keep the hang and reset cases quick. The read timeout leaves room for a real
# store's answer on a busy machine (the suite runs on three processes, both engines).
TEST_TIMEOUTS = (0.5, 2.0)
WIRE_COLUMNS = "id, device_seq, type, occurred_at, visit_id, data"


def tap(store: Store, score: int = 5) -> RecordedEvent:
    """A patient's rating, as the rating screen records it."""
    return store.record(
        "rating.submitted", {"score": score, "scale": 5, "tags": [], "misuse": False}
    )


def check_in(store: Store, number: int) -> RecordedEvent:
    data = {"ticket": f"A-{number:03d}", "appointment_at": None}
    return store.record("visit.checked_in", data, visit_id=str(uuid.uuid4()))


class StoredEvents:
    """What the real central store holds for one device, read from its database each time."""

    def __init__(self, server: LiveCentral, device_id: str):
        self.server = server
        self.device_id = device_id

    @property
    def stored(self) -> list[dict]:
        """The device's events in device_seq order, in the wire format (``data`` parsed)."""
        rows = self.server.rows(
            f"SELECT {WIRE_COLUMNS} FROM events WHERE device_id = ? ORDER BY device_seq",
            [self.device_id],
        )
        return [{**row, "data": json.loads(row["data"])} for row in rows]

    def stored_of_type(self, kind: str) -> list[dict]:
        return [event for event in self.stored if event["type"] == kind]


@pytest.fixture
def kiosk_store(tmp_path) -> Iterator[Store]:
    opened = Store(tmp_path / "kiosk" / "kiosk.sqlite")
    yield opened
    opened.close()


@pytest.fixture
def device(central_server):  # noqa: F811  (the fixture above)
    return central_server.add_device()


@pytest.fixture
def central(central_server, device) -> StoredEvents:  # noqa: F811
    return StoredEvents(central_server, device.device_id)


@pytest.fixture
def proxy(central_server) -> Iterator[ScriptedServer]:  # noqa: F811
    """A fault-injecting pass-through to the real central server."""
    server = ScriptedServer(Forwarder(central_server.base_url))
    yield server
    server.close()


@pytest.fixture
def client(kiosk_store, proxy, device) -> Iterator[SyncClient]:
    """The kiosk's client, with its real device token, talking to the store through ``proxy``."""
    made = SyncClient(kiosk_store, proxy.url, device.token, timeouts=TEST_TIMEOUTS)
    yield made
    made.close()
