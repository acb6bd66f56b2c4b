"""The kiosk's sync runner: `python main.py` starts an embedded central store, enrols the
kiosk in it, syncs every tap there and hands out a working dashboard login link."""


import requests

from kiosk.config import load_settings
from kiosk.rating_flow import RatingFlow
from kiosk.store import Store
from kiosk.sync_status import SyncStatus
from sync.runner import KioskSync
from tests.support.waiting import wait_until


def test_embedded_central_store_receives_taps_and_opens_the_dashboard(tmp_path):
    settings = load_settings(environ={}, data_dir=str(tmp_path), site="North", role="ratings",
                             device_name="desk-1")
    store = Store(settings.database_path)
    said = []
    runner = KioskSync(embedded=True, port=0, announce=said.append)
    assert runner.status() == SyncStatus()
    runner.start(store, settings)
    try:
        assert runner.central.url in said[0] and "/login/once?token=" in said[0]
        flow = RatingFlow(store, settings)
        flow.choose(5)
        central_events = runner.central.store.db
        wait_until(lambda: central_events.execute(
            "SELECT COUNT(*) FROM events WHERE type = 'rating.submitted'").fetchone()[0] == 1)
        status = wait_until(lambda: (s := runner.status()).last_synced_at and s.backlog == 0
                          and s)
        assert status.configured is True and not status.trouble
        assert status.site_name in (None, "North")
        session = requests.Session()
        page = session.get(runner.dashboard_link, timeout=10)
        assert page.status_code == 200 and page.url.rstrip("/") == runner.central.url
        again = requests.get(runner.dashboard_link, timeout=10, allow_redirects=False)
        assert again.status_code == 401 and "Log in" in again.text  # the link works once
    finally:
        runner.stop()
        store.close()
    assert not runner.central.running


def test_the_kiosk_alone_without_a_central_url_records_locally(tmp_path):
    settings = load_settings(environ={}, data_dir=str(tmp_path))
    store = Store(settings.database_path)
    runner = KioskSync()
    runner.start(store, settings)
    try:
        assert runner.central is None
        assert runner.status().configured is False
    finally:
        runner.stop()
        store.close()


def test_the_sites_settings_on_the_central_store_reach_the_kiosk(tmp_path):
    """`site set` on the central store -> GET /api/v1/config -> the kiosk's flow, for every key
    the kiosk does not pin; a site the embedded store does not know takes the kiosk's own."""
    from kiosk.flow import KioskFlow
    from sync.central.sites import get_site, update_site
    from sync.central.storage import CentralStore

    central_dir = tmp_path / "central"
    central_dir.mkdir()
    existing = CentralStore(central_dir)
    with existing.write() as db:
        update_site(db, "North", target_wait_min=30, followup_tags=["billing", "other"])
    existing.close()
    settings = load_settings(environ={}, data_dir=str(tmp_path), site="North",
                             device_name="desk-1", idle_timeout_s=45)
    store = Store(settings.database_path)
    runner = KioskSync(embedded=True, embedded_data_dir=central_dir, port=0,
                       announce=lambda _text: None)
    runner.start(store, settings)
    try:
        flow = KioskFlow(store, settings)
        config = wait_until(runner.site_config)
        flow.offer_site_settings(config)
        assert flow.settings.target_wait_min == 30
        assert flow.settings.followup_tags == ("billing", "other")
        assert flow.settings.idle_timeout_s == 45  # pinned on this kiosk
    finally:
        runner.stop()
        store.close()

    fresh = load_settings(environ={}, data_dir=str(tmp_path / "other"), site="South",
                          target_wait_min=12)
    other_store = Store(fresh.database_path)
    seeded_runner = KioskSync(embedded=True, port=0, announce=lambda _text: None)
    seeded_runner.start(other_store, fresh)
    try:
        assert get_site(seeded_runner.central.store.db, "South").target_wait_min == 12
    finally:
        seeded_runner.stop()
        other_store.close()
