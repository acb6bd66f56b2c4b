"""A central store on a real SQLite file, one enrolled kiosk, and the clock as a parameter."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sync.central.auth import Device, add_device
from sync.central.ingest import ingest_batch
from sync.central.storage import CentralStore
from tests.support.central_server import central_server  # noqa: F401  (a fixture)
from tests.support.wire_events import MORNING, WireEvents

SITE = "Test Clinic"


def minutes(n: float) -> datetime:
    """MORNING (a Monday, 09:00 UTC: inside the default opening hours) plus n minutes."""
    return MORNING + timedelta(minutes=n)


class Clinic:
    """One site with one kiosk; ``send`` ingests wire events as a batch received at ``now``."""

    def __init__(self, store: CentralStore):
        self.store = store
        with store.write() as db:
            self.device: Device = add_device(db, SITE, "Desk 1")[0]
        self.kiosk = WireEvents()

    def send(self, events: list[dict], received: datetime) -> list[str]:
        results = ingest_batch(self.store, self.device, events, received)
        return [result["status"] for result in results]

    def rate(self, scores: list[int], at: datetime, misuse: bool = False) -> None:
        from kiosk.shared.timeutil import to_rfc3339

        events = [self.kiosk.rating(score, to_rfc3339(at), misuse=misuse) for score in scores]
        assert set(self.send(events, at)) == {"stored"}

    def alerts(self) -> list[dict]:
        return self.store.query("SELECT * FROM alerts ORDER BY id")


@pytest.fixture
def clinic(tmp_path):
    store = CentralStore(tmp_path / "central")
    yield Clinic(store)
    store.close()
