"""The live queue's running waits are on the store's clock, whatever the kiosk's clock says."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from kiosk.shared import metrics
from sync.central import auth
from sync.central.dashboard import panels
from sync.central.ingest import ingest_batch
from sync.central.sites import get_site
from sync.central.storage import CentralStore
from tests.support.wire_events import wire_event

NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # server clock
KIOSK_BEHIND = timedelta(hours=3)


def test_waits_still_running_are_corrected_by_the_devices_clock_skew(tmp_path):
    store = CentralStore(tmp_path)
    try:
        with store.write() as db:
            device, _ = auth.add_device(db, "Skewed Clinic", "Desk 1")
        kiosk_now = NOW - KIOSK_BEHIND
        waiting, in_chair = str(uuid.uuid4()), str(uuid.uuid4())
        events = [
            # Waiting for 5 minutes (by the kiosk's own clock, 3 hours behind the store's).
            wire_event(
                1, "visit.checked_in", kiosk_now - timedelta(minutes=5), waiting, {"ticket": "S-1"}
            ),
            # Waited 12 minutes, called 20 minutes ago: a difference of one clock's timestamps.
            wire_event(
                2,
                "visit.checked_in",
                kiosk_now - timedelta(minutes=32),
                in_chair,
                {"ticket": "S-2"},
            ),
            wire_event(3, "visit.called", kiosk_now - timedelta(minutes=20), in_chair, {}),
        ]
        ingest_batch(store, device, events, NOW)
        with store.write() as db:
            db.execute(
                "UPDATE devices SET clock_skew_s = ? WHERE id = ?",
                [KIOSK_BEHIND.total_seconds(), device.id],
            )
        db = store.db
        sites = [get_site(db, "Skewed Clinic")]
        queue = panels.live_queue(db, sites, None, NOW)
        waits = {visit["ticket"]: visit["wait_min"] for visit in queue["desks"][0]["visits"]}
        assert waits == {"S-1": 5.0, "S-2": 12.0}
        assert panels.today(db, sites, None, NOW)["longest_current_wait_min"] == 5.0

        # A skew within the tolerance is transit time, not a wrong clock: left alone.
        with store.write() as db:
            db.execute("UPDATE devices SET clock_skew_s = 30 WHERE id = ?", [device.id])
        queue = panels.live_queue(store.db, sites, None, NOW)
        waits = {visit["ticket"]: visit["wait_min"] for visit in queue["desks"][0]["visits"]}
        assert waits == {"S-1": 185.0, "S-2": 12.0}
    finally:
        store.close()


def test_a_visit_checked_in_before_the_sites_midnight_stays_in_the_live_queue(tmp_path):
    store = CentralStore(tmp_path)
    try:
        with store.write() as db:
            device, _ = auth.add_device(db, "Late Clinic", "Desk 1")
        site = get_site(store.db, "Late Clinic")
        today = metrics.local_today(NOW, site.timezone)
        _start, midnight = metrics.local_day_bounds(today, site.timezone)
        now = midnight + timedelta(minutes=10)
        before_midnight, abandoned = str(uuid.uuid4()), str(uuid.uuid4())
        ingest_batch(store, device, [
            wire_event(1, "visit.checked_in", now - timedelta(minutes=25), before_midnight,
                       {"ticket": "L-1"}),
            wire_event(2, "visit.checked_in", now - metrics.QUEUE_HORIZON - timedelta(minutes=1),
                       abandoned, {"ticket": "L-2"}),
        ], now)

        queue = panels.live_queue(store.db, [site], None, now)

        waits = {visit["ticket"]: visit["wait_min"] for visit in queue["desks"][0]["visits"]}
        assert waits == {"L-1": 25.0}
    finally:
        store.close()
