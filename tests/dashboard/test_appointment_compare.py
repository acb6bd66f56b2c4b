"""Compare's appointment figures when they are shown (30 or more booked visits called), per
desk and for the site, in real Chromium, against figures worked out by hand.

3 March 2026 (London on GMT), the server's clock pinned (time-machine, ticking) to noon.
Visits from 06:00 UTC, one every 5 minutes per desk, each checked out 10 minutes after its call:

    Desk 1: 32 booked, all called. Visits 0-3 arrive 10 min after the appointment (late),
            the rest 2 min before (on time). Visits 0-23 are called 5 min after the later of
            arrival and appointment (within 15), 24-31 after 20 (missed).
            Seen within 15 min: 24 of 32 = 75.0 %; late arrivals 4.
    Desk 2: 30 booked, all called; visits 0-1 late (8 min after), 0-26 within 15.
            27 of 30 = 90.0 %; late arrivals 2.
    Site:   62 called, 51 within = 82.26 % (shown 82.3 %); late arrivals 6.
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
from tests.support.appointments import booked_visit
from tests.support.central_server import running_central
from tests.support.hashing import fast_hasher
from tests.support.wire_events import WireEvents

pytestmark = pytest.mark.browser

NOON = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
FIRST = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
DAY = "2026-03-03"
SITE = "North"
USER, PASSWORD = "manager", "calm waters 2026"


def desk_events(visits: int, late: int, within: int, late_by: float) -> list[dict]:
    kiosk, events = WireEvents(), []
    for n in range(visits):
        appointment = 5 * n
        arrived = appointment + late_by if n < late else appointment - 2
        called = max(arrived, appointment) + (5 if n < within else 20)
        events += booked_visit(kiosk, f"A-{n:03d}", appointment, arrived, called, called + 10,
                               start=FIRST)[1]
    return events


@pytest.fixture(scope="module")
def two_desks(tmp_path_factory):
    with time_machine.travel(NOON, tick=True):
        directory = tmp_path_factory.mktemp("appointment-compare")
        accounts.set_hasher(fast_hasher())
        store = CentralStore(directory)
        with store.write() as db:
            update_site(db, SITE, timezone="Europe/London")
            first, _ = auth.add_device(db, SITE, "Desk 1")
            second, _ = auth.add_device(db, SITE, "Desk 2")
            accounts.add_user(db, USER, PASSWORD)
        ingest_batch(store, first, desk_events(32, late=4, within=24, late_by=10), NOON)
        ingest_batch(store, second, desk_events(30, late=2, within=27, late_by=8), NOON)
        store.close()
        with running_central(directory) as server:
            yield server


APPOINTMENT_COLUMNS = ("Appts called (n)", "Seen ≤ 15 min of appt.", "Late arrivals")


def row(page, table: str, name: str) -> dict[str, str]:
    """The row's last three cells, the appointment columns (the ratings' cells before them
    are one merged "fewer than 30 responses" cell: this day has no ratings)."""
    headers = page.locator(f"#{table} thead th").all_inner_texts()
    assert tuple(headers[-3:]) == APPOINTMENT_COLUMNS
    cells = page.locator(f'#{table} tr[data-name="{name}"] > *').all_inner_texts()
    return dict(zip(APPOINTMENT_COLUMNS, cells[-3:], strict=True))


def test_compare_shows_each_desks_appointment_figures_from_30_called(page, two_desks):
    page.goto(two_desks.url("/login?next=/"))
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_selector("#tile-happy-index")
    page.goto(two_desks.url(f"/compare?site={SITE}&from={DAY}&to={DAY}"))

    desk_1 = row(page, "compare-desks", "North · Desk 1")
    desk_2 = row(page, "compare-desks", "North · Desk 2")
    site = row(page, "compare-sites", SITE)

    assert (desk_1["Appts called (n)"], desk_1["Seen ≤ 15 min of appt."],
            desk_1["Late arrivals"]) == ("32", "75.0 %", "4")
    assert (desk_2["Appts called (n)"], desk_2["Seen ≤ 15 min of appt."],
            desk_2["Late arrivals"]) == ("30", "90.0 %", "2")
    assert (site["Appts called (n)"], site["Seen ≤ 15 min of appt."],
            site["Late arrivals"]) == ("62", "82.3 %", "6")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "appointments-compare.png"), full_page=True)
