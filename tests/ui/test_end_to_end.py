"""The whole loop, end to end: real taps on the kiosk's window, the real sync loop, a real
central store on 127.0.0.1, and the figures a manager's tools read from its public API."""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta

import pytest
import requests

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.runner import KioskSync
from tests.support.central_server import running_central
from tests.support.clock import FakeClock

SYNC_TIMEOUT_S = 20


@pytest.fixture
def ui_clock() -> FakeClock:
    # The kiosk's clock near the real one: the central store judges instants by its own clock.
    return FakeClock(utc_now().replace(microsecond=0) - timedelta(minutes=30))


def _poll(read, done, what: str):
    """Read until ``done(value)``; the sync loop is a real thread talking real HTTP."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"after {SYNC_TIMEOUT_S} s the central store still shows {what}: {value}")
        time.sleep(0.05)


def test_taps_on_the_desk_reach_the_managers_figures_linked_and_once(make_kiosk, ui_clock,
                                                                      tmp_path):
    with running_central(tmp_path / "central") as central:
        site = "Riverside Dental"
        device = central.add_device(site=site, name="desk-1")
        reporting = {"Authorization": f"Bearer {central.add_reporting_token()}"}
        kiosk = make_kiosk(
            sync_runner=KioskSync(), site=site, central_url=central.base_url,
            central_token=device.token, staff_lock_s=900,
        )
        kiosk.type_pin("2468")
        kiosk.tap("Check in")
        visit_id = [e for e in kiosk.flow.desk.queue() if e.status == "waiting"][0].visit_id
        ticket = kiosk.store.visit(visit_id)["ticket"]
        kiosk.advance(7 * 60)
        kiosk.tap(kiosk.row(ticket, "Call in"))
        kiosk.advance(12 * 60)
        kiosk.tap(kiosk.row(ticket, "Check out"))
        assert kiosk.screen == "rating"
        kiosk.tap("Good")
        if kiosk.screen == "followup":
            kiosk.tap("Skip")
        assert kiosk.screen == "thanks"

        window = {"from": to_rfc3339(ui_clock.now - timedelta(hours=1)),
                  "to": to_rfc3339(utc_now() + timedelta(minutes=1))}
        figures = _poll(
            lambda: central.metrics(reporting["Authorization"][7:], **window).json(),
            lambda m: m["visits"] == 1 and m["ratings"] == 1,
            "not yet one visit and one rating",
        )
        assert figures["response_rate"] == 100.0  # the rating is linked to that visit
        assert figures["wait_median_min"] == 7.0
        assert figures["pct_positive"] == 100.0 and figures["happy_index"] == 75.0
        [bucket] = [b for b in figures["by_wait_bucket"] if b["ratings"]]
        assert bucket["bucket"] == "0-10"

        answer = requests.get(central.url("/api/v1/export/ratings.csv"), params=window,
                              headers=reporting, timeout=10)
        assert answer.status_code == 200, answer.text
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert len(rows) == 1
        assert rows[0]["visit_id"] == visit_id and rows[0]["score"] == "4"
        # Once: the kiosk's outbox is drained, and a later pass sends nothing again.
        _poll(lambda: kiosk.store.sync_status().backlog, lambda n: n == 0, "a backlog")
        stored = central.rows("SELECT type FROM events WHERE device_id = ? AND type != ?",
                              [device.device_id, "device.heartbeat"])
        assert sorted(row["type"] for row in stored) == [
            "rating.submitted", "visit.called", "visit.checked_in", "visit.checked_out"]
