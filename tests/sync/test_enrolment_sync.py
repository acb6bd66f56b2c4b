"""The kiosk's enrolment requests against a real central store on 127.0.0.1: the store going
down while the kiosk polls, coming back, and a copied disk's events sent under the token they
were recorded with (each stored once); a poll that meets its kept-alive connection closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.config import load_settings
from kiosk.enrolment import EnrolmentModel, Request
from kiosk.enrolment_driver import EnrolmentDriver
from kiosk.store import Store
from sync.client import SyncClient
from sync.enrol_client import PATHS, EnrolmentClient
from sync.runner import KioskSync
from tests.central.test_cli import run_in_process
from tests.support.central_server import running_central
from tests.support.clock import FakeClock
from tests.support.waiting import wait_until
from tests.sync.scripted_server import Reply, ScriptedServer, dropped_when_reused

TOKEN_PATH = PATHS["token"]


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


def test_a_copied_disks_events_stranded_while_the_store_is_down_are_sent_once_it_is_back(
        tmp_path):
    from kiosk import enrolment_file, set_aside
    from kiosk.enrolment import Enrolled
    from kiosk.enrolment_start import keep, plan_start

    settings = load_settings(environ={}, data_dir=str(tmp_path / "kiosk"))
    with running_central(tmp_path / "central") as server:
        original = server.add_device(site="North", name="desk-1")
        url = server.base_url
    # The disk was enrolled on another machine, and recorded two ratings it never sent.
    keep(settings, Enrolled(url, original.token, original.device_id, "North", "desk-1",
                            "desk"), {"hardware": "0" * 64})
    store = Store(settings.database_path)
    for score in (5, 2):
        store.record("rating.submitted", {"score": score, "scale": 5, "tags": [],
                                          "misuse": False})
    store.close()
    drain = KioskSync().drain
    sending = lambda store, url, token: drain(store, url, token, None)  # noqa: E731
    plan = plan_start(settings, can_enrol=True, machine={"hardware": "1" * 64}, drain=sending)
    assert "2 events recorded before could not be sent yet" in plan.enrolment.reason
    assert set_aside.waiting(settings.data_dir) == [plan.copied_aside]
    assert enrolment_file.load(settings.data_dir) is None
    # Still down at the next start: nothing lost, nothing removed.
    assert set_aside.send_waiting(settings.data_dir, sending) == [
        set_aside.Sent(plan.copied_aside, 2)]
    said = []
    with running_central(tmp_path / "central", port=int(url.rsplit(":", 1)[1])) as server:
        sender = set_aside.Sender(settings.data_dir, sending, said.append, every_s=0.1)
        sender.start()
        wait_until(lambda: not set_aside.waiting(settings.data_dir), timeout=20,
                   what="the set-aside events sent")
        sender.stop()
        rows = server.rows("SELECT device_id, count(*) AS n FROM events "
                           "WHERE type = 'rating.submitted' GROUP BY device_id")
    assert rows == [{"device_id": original.device_id, "n": 2}]
    assert not plan.copied_aside.exists()
    assert not set_aside.enrolment_beside(plan.copied_aside).exists()
    assert said and "all its events are sent" in said[-1]


@pytest.mark.parametrize("rst", [False, True], ids=["closed", "reset"])
def test_a_poll_that_meets_its_kept_alive_connection_closed_is_sent_again(rst):
    """The store closes a connection idle for 5 s, the interval a kiosk polls at: a poll that
    meets that close is asked again on a new connection, not shown as "cannot reach"."""
    pending = Reply.of_json(400, {"error": "authorization_pending"})
    server = ScriptedServer(lambda request: pending, scripted_paths=(TOKEN_PATH,))
    server.script(dropped_when_reused(rst=rst))
    client = EnrolmentClient()
    poll = Request("token", server.url, device_code="never-shown")
    try:
        assert client.send(poll, None) == (400, {"error": "authorization_pending"})
        assert client.send(poll, None) == (400, {"error": "authorization_pending"})
    finally:
        client.close()
        server.close()
    assert [request.path for request in server.requests] == [TOKEN_PATH] * 3
