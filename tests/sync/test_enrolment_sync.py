"""The kiosk's enrolment requests against a real central store on 127.0.0.1: the store going
down while the kiosk polls, coming back, and a copied disk's events sent under the token they
were recorded with (each stored once)."""

from __future__ import annotations

from pathlib import Path

from kiosk.config import load_settings
from kiosk.enrolment import EnrolmentModel
from kiosk.enrolment_driver import EnrolmentDriver
from kiosk.store import Store
from sync.client import SyncClient
from sync.enrol_client import EnrolmentClient
from sync.runner import KioskSync
from tests.central.test_cli import run_in_process
from tests.support.central_server import running_central
from tests.support.clock import FakeClock
from tests.support.waiting import wait_until


def pump_until(driver: EnrolmentDriver, condition, what: str):
    def pumped():
        driver.pump()
        return condition()
    return wait_until(pumped, timeout=10, what=what)


def poll_now(driver: EnrolmentDriver, clock: FakeClock, data_dir: Path) -> None:
    """Move the kiosk's clock to its next poll, and let the store forget the last one (the
    store measures the interval on its own clock, which the test does not move)."""
    from sync.central.storage import connect, database_path

    db = connect(database_path(data_dir))
    db.execute("UPDATE enrolment_codes SET last_poll_at = NULL")
    db.close()
    clock.advance(seconds=driver.model.interval)


def test_a_store_down_while_polling_keeps_the_code_and_enrols_once_it_is_back(tmp_path,
                                                                                capsys):
    data = tmp_path / "central"
    clock = FakeClock()
    got = []
    with running_central(data) as server:
        url = server.base_url
        model = EnrolmentModel(address=url, device_name="desk-3", clock=clock)
        driver = EnrolmentDriver(model, EnrolmentClient(), got.append)
        pump_until(driver, lambda: model.stage == "code", "the code")
    poll_now(driver, clock, data)
    pump_until(driver, lambda: model.trouble, "the failed poll")
    assert model.stage == "code" and "Cannot reach the central store" in model.trouble
    with running_central(data, port=int(url.rsplit(":", 1)[1])) as server:
        status, _, err = run_in_process(capsys, "device", "approve", "--data", str(data),
                                        "--code", model.user_code, "--site", "North",
                                        "--name", "desk-3")
        assert status == 0, err
        poll_now(driver, clock, data)
        pump_until(driver, lambda: got, "the token")
        assert got[0].token.startswith("dev_") and model.trouble == ""
        [device] = server.rows("SELECT name, site, role FROM devices")
        assert device == {"name": "desk-3", "site": "North", "role": "desk"}
    driver.close()


def test_a_copied_disks_events_are_sent_under_their_own_kiosk_and_stored_once(tmp_path):
    with running_central(tmp_path / "central") as server:
        original = server.add_device(site="North", name="desk-1")
        settings = load_settings(environ={}, data_dir=str(tmp_path / "kiosk"))
        store = Store(settings.database_path)
        for score in (5, 4, 1):
            store.record("rating.submitted",
                         {"score": score, "scale": 5, "tags": [], "misuse": False})
        # The original kiosk sent its events itself after the image was taken...
        first = SyncClient(store, server.base_url, original.token)
        assert first.sync_once().stored == 3
        first.close()
        store.close()
        # ...and the copy, taken before, holds them unsent.
        copy = Store(settings.database_path)
        with copy._local.write() as conn:
            conn.execute("UPDATE events SET synced_at = NULL")
        assert copy.sync_status().backlog == 3
        left = KioskSync().drain(copy, server.base_url, original.token, None)
        assert left == 0
        copy.close()
        rows = server.rows("SELECT device_id, count(*) AS n FROM events GROUP BY device_id")
        assert rows == [{"device_id": original.device_id, "n": 3}]
        # No heartbeat: the copy never shows on the dashboard as the original kiosk.
        assert server.rows("SELECT count(*) AS n FROM events WHERE type = 'device.heartbeat'") \
            == [{"n": 0}]
