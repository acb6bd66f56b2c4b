"""A real central store with demo data on 127.0.0.1, and one warm headless Chromium.

The store is filled through the kiosks' ingest path (``demo.fill``), plus a site whose name
and desk name carry markup and a spreadsheet formula, as another tool might have written them.
Chromium is Debian's (never ``playwright install``); one persistent context for the session
keeps V8's code cache, so plotly.min.js is parsed once, and cookies are cleared per test.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from kiosk.shared import metrics
from kiosk.shared.timeutil import utc_now
from sync.central import auth
from sync.central.dashboard import accounts, demo
from sync.central.ingest import ingest_batch
from sync.central.storage import CentralStore
from tests.support.central_server import running_central
from tests.support.engines import StoreAt, parametrize_session
from tests.support.hashing import fast_hasher
from tests.support.wire_events import wire_event

MANAGER = "manager"
PASSWORD = "calm waters 2026"
MARKUP_SITE = "<b>x</b>"
MARKUP_DESK = "<b>x</b>"
FORMULA_DESK = "=SUM(A1)"
# Every site the tests' store is filled with (a test that adds a site may leave it in the
# store's default zone: tests/dashboard/expected.py reads each site's own).
ZONE = "Europe/London"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Hermetic: any CDN reference fails at once instead of loading from the internet.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def _rated_visits(store: CentralStore, device: auth.Device, count: int, ticket_prefix: str,
                  lang: str | None = None) -> None:
    """``count`` visits at ``device``, each rated (in ``lang``, if given), all of them today in
    the site's zone.

    Their timeline (about 90 minutes at full length) is squeezed into the part of today that
    has passed, at most the last two hours, so the Today page has them at 00:05 as at 15:00.
    """
    now = utc_now()
    midnight, _ = metrics.local_day_bounds(metrics.local_today(now, ZONE), ZONE)
    start = max(midnight, now - timedelta(hours=2))
    scale = (now - start) / timedelta(hours=2)
    events, seq = [], 0

    def add(kind, minutes, visit_id, data):
        nonlocal seq
        seq += 1
        events.append(wire_event(seq, kind, start + minutes * scale * timedelta(minutes=1),
                                 visit_id, data))

    for i in range(count):
        visit_id = str(uuid.uuid4())
        add("visit.checked_in", i, visit_id, {"ticket": f"{ticket_prefix}-{i + 1:03d}"})
        add("visit.called", i + 4 + i % 20, visit_id, {})
        add("visit.checked_out", i + 30 + i % 20, visit_id, {})
        rating = {"score": 1 + i % 5, "scale": 5, "tags": [], "misuse": False}
        if lang is not None:
            rating["lang"] = lang
        add("rating.submitted", i + 31 + i % 20, visit_id, rating)
    ingest_batch(store, device, events, now)


def pytest_generate_tests(metafunc):
    # The whole suite runs on SQLite, then on PostgreSQL (one filled store per engine).
    parametrize_session(metafunc, "dashboard_engine")


@pytest.fixture(scope="session")
def dashboard_engine(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def data_dir(dashboard_engine, request):
    """The suite's store (``StoreAt``: its folder and, on PostgreSQL, its database)."""
    with tempfile.TemporaryDirectory(prefix="dashboard-tests-") as name:
        database_url = None
        if dashboard_engine == "postgres":
            cluster = request.getfixturevalue("postgres_cluster")
            database_url = cluster.create_database(f"dashboard_{uuid.uuid4().hex[:12]}")
        where = StoreAt(Path(name), database_url)
        # Cheap Argon2id for the tests' logins: the same algorithm, a fraction of the time.
        accounts.set_hasher(fast_hasher())
        store = where.open()
        demo.fill(store, days=35)
        with store.write() as db:
            accounts.add_user(db, MANAGER, PASSWORD)
            # Written straight to the table, as another tool could: `site set` would refuse it.
            db.execute(
                "INSERT INTO sites (name, timezone) VALUES (?, ?)", [MARKUP_SITE, ZONE]
            )
            markup, _ = auth.add_device(db, "Riverside Medical", "placeholder")
            formula, _ = auth.add_device(db, "Riverside Medical", "placeholder-2")
            db.execute(
                "UPDATE devices SET site = ?, name = ? WHERE id = ?",
                [MARKUP_SITE, MARKUP_DESK, markup.id],
            )
            db.execute(
                "UPDATE devices SET site = ?, name = ? WHERE id = ?",
                [MARKUP_SITE, FORMULA_DESK, formula.id],
            )
        _rated_visits(store, auth.Device(markup.id, MARKUP_SITE, MARKUP_DESK), 40, "M", "es")
        _rated_visits(store, auth.Device(formula.id, MARKUP_SITE, FORMULA_DESK), 2, "F", "ar")
        store.close()
        yield where


@pytest.fixture(scope="session")
def central(data_dir):
    with running_central(data_dir.path, database_url=data_dir.database_url) as server:
        yield server


@pytest.fixture(scope="session")
def browser_context(central, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    downloads = tmp_path_factory.mktemp("downloads")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            headless=True,
            args=CHROMIUM_ARGS,
            base_url=central.base_url,
            viewport={"width": 1440, "height": 900},
            accept_downloads=True,
            downloads_path=str(downloads),
        )
        context.set_default_timeout(15_000)
        yield context
        context.close()


@pytest.fixture
def page(browser_context):
    """A fresh, logged-out tab (cookies cleared) in the warm browser."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    tab.set_viewport_size({"width": 1440, "height": 900})
    yield tab
    tab.close()


def log_in(page, name: str = MANAGER, password: str = PASSWORD, next_path: str = "/") -> None:
    page.goto(f"/login?next={next_path}")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login")


@pytest.fixture
def logged_in(page):
    log_in(page)
    page.wait_for_selector("#tile-happy-index")
    return page
