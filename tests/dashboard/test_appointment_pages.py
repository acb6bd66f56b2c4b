"""The appointment-aware figures on the Today, Trends and Compare pages, in real Chromium.

Their own store holds only the booked morning of tests/support/appointments.py (figures worked
out by hand in tests/central/test_appointment_figures.py), at a London site; the server's clock
is pinned (time-machine, ticking) to noon that day, so "today" is that day whenever this runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from sync.central import auth
from sync.central.dashboard import accounts
from sync.central.ingest import ingest_batch
from sync.central.sites import update_site
from sync.central.storage import CentralStore
from tests.dashboard.conftest import SCREENSHOTS
from tests.support.appointments import morning_events
from tests.support.central_server import running_central
from tests.support.hashing import fast_hasher

pytestmark = pytest.mark.browser

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday; London is on GMT
DAY = "2026-03-02"
SITE = "North"
USER, PASSWORD = "manager", "calm waters 2026"


@pytest.fixture(scope="module")
def booked(tmp_path_factory):
    with time_machine.travel(NOON, tick=True):
        directory = tmp_path_factory.mktemp("appointments")
        accounts.set_hasher(fast_hasher())
        store = CentralStore(directory)
        with store.write() as db:
            update_site(db, SITE, timezone="Europe/London")
            device, _ = auth.add_device(db, SITE, "Desk 1")
            accounts.add_user(db, USER, PASSWORD)
        ingest_batch(store, device, morning_events(), NOON)
        store.close()
        with running_central(directory) as server:
            yield server


@pytest.fixture
def signed_in(page, booked):
    page.goto(booked.url("/login?next=/"))
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_selector("#tile-happy-index")
    return page


def tile(page, key: str) -> tuple[str, str]:
    return (page.inner_text(f"#{key} .tile-value").strip(),
            page.inner_text(f"#{key} .tile-detail").strip())


def test_today_shows_the_hand_computed_appointment_figures(signed_in):
    page = signed_in
    # A7 (appointment 10:00, in at 10:01) is still waiting at noon: a miss already, 6 of 8.
    assert tile(page, "tile-seen-within-15") == (
        "75.0 %", "n = 7 booked, called + 1 waiting over 15 min · from arrival if late")
    assert tile(page, "tile-adjusted-wait") == ("10.0 min", "median · p90 20.2 min · n = 7")
    assert tile(page, "tile-arrivals") == (
        "2 · 5 · 1", "of 8 with an appointment · ±5 min is on time")
    assert tile(page, "tile-chair-time") == (
        "15.0 min", "median · p90 19.2 min · n = 8 checked out")
    # The figures already there are unchanged by the new ones.
    assert tile(page, "tile-visits")[0] == "10"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "appointments-today.png"
    page.screenshot(path=str(shot), full_page=True)


def test_trends_lists_the_appointment_figures_per_day(signed_in, booked):
    page = signed_in
    page.goto(booked.url(f"/trends?site={SITE}&from={DAY}&to={DAY}"))
    page.click("summary")
    cells = page.locator(f'#trend-table tr[data-day="{DAY}"] td').all_inner_texts()
    headers = page.locator("#trend-table th").all_inner_texts()
    row = dict(zip(headers, cells, strict=True))
    assert row["Seen ≤ 15 min of appt."] == "85.7 %"
    assert row["Appts called (n)"] == "7"
    assert row["Late arrivals"] == "1"


def test_compare_hides_appointment_figures_under_the_small_number_rule(signed_in, booked):
    page = signed_in
    page.goto(booked.url(f"/compare?site={SITE}&from={DAY}&to={DAY}"))
    row = page.locator('#compare-desks tr[data-name="North · Desk 1"]')
    text = row.inner_text()
    assert "fewer than 30 appointments" in text  # 7 called with an appointment
    assert "85.7" not in text
