"""The daily retention purge of a store with no timer (the embedded store of `python main.py`):
due from the audit trail, once a day, recorded like `purge`, and governed by the kiosk's own
retention settings, so data are purged on both sides for a single-desk practice too."""

from __future__ import annotations

import json
from datetime import timedelta

import requests

from kiosk.config import load_settings
from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central import audit
from sync.central.auth import add_device
from sync.central.embedded import start_embedded
from sync.central.retention_schedule import (
    PURGE_ACTION,
    DailyRetention,
    RetentionPolicy,
    last_purge,
)
from sync.runner import KioskSync
from tests.support.clock import FakeClock
from tests.support.waiting import wait_until
from tests.support.wire_events import WireEvents


def _purges(rows) -> list[dict]:
    return [json.loads(row["after_json"]) for row in rows
            if row["action"] == PURGE_ACTION]


def _post_ratings(central_server, *days_ago: int) -> None:
    """One rating (with a comment) per age, relative to the real now the store checks."""
    device = central_server.add_device("North")
    central_server.set_site("North", comments=True)
    kiosk = WireEvents()
    now = utc_now()
    events = [kiosk.event("rating.submitted", to_rfc3339(now - timedelta(days=age)), None,
                          {"score": 4, "scale": 5, "comment": f"Visit {age}"})
              for age in days_ago]
    results = central_server.post_events(device, events).json()["results"]
    assert {result["status"] for result in results} == {"stored"}


def test_it_purges_once_a_day_and_records_each_purge(central_server):
    _post_ratings(central_server, 40, 10, 1)
    clock = FakeClock(utc_now())
    daily = DailyRetention(central_server.embedded.store, RetentionPolicy(30, 5), clock=clock)

    first = daily.run_if_due()

    assert (first["ratings"], first["comments"]) == (1, 1)  # 40 days; the comment of 10 days
    assert central_server.rows("SELECT comment FROM rating_comments") == [{"comment": "Visit 1"}]
    (entry,) = _purges(central_server.rows("SELECT action, after_json FROM audit"))
    assert entry == {"retention_days": 30, "comment_retention_days": 5, "deleted": first,
                     "by": "embedded store"}

    clock.advance(minutes=23 * 60)
    assert daily.run_if_due() is None  # within the day: not again

    clock.advance(minutes=61)
    assert daily.run_if_due() is not None
    assert len(_purges(central_server.rows("SELECT action, after_json FROM audit"))) == 2


def test_a_purge_stamped_in_the_future_does_not_hold_the_next_one_off(central_server):
    store = central_server.embedded.store
    now = utc_now()
    with store.write() as db:  # a clock a week ahead, then put right
        audit.record(db, audit.command_actor(), PURGE_ACTION, after={"deleted": {}},
                     now=now + timedelta(days=7))
    clock = FakeClock(now)
    daily = DailyRetention(store, RetentionPolicy(400, 90), clock=clock)

    assert daily.run_if_due() is not None
    clock.advance(minutes=10)  # the next check: today's purge counts, the future one not
    assert daily.run_if_due() is None
    assert len(_purges(central_server.rows("SELECT action, after_json FROM audit"))) == 2


def test_a_purge_recorded_by_the_nightly_command_counts_as_the_days_purge(central_server,
                                                                         capsys):
    from sync.central import cli

    _post_ratings(central_server, 40)
    assert cli.main(["purge", *central_server.store_args(), "--days", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"]["ratings"] == 1
    daily = DailyRetention(central_server.embedded.store, RetentionPolicy(30, 5))

    assert daily.run_if_due() is None


def test_the_embedded_store_of_main_py_purges_by_the_kiosks_retention(tmp_path, monkeypatch):
    monkeypatch.setattr("sync.central.retention_schedule.FIRST_CHECK_AFTER_S", 0.0)
    central_dir = tmp_path / "central"
    now = utc_now()
    with start_embedded(central_dir, port=0) as before:  # what an earlier version left
        with before.store.write() as db:
            _device, token = add_device(db, "North", "desk-0")
        kiosk = WireEvents()
        answer = requests.post(
            before.url + "/api/v1/events", headers={"Authorization": f"Bearer {token}"},
            json={"events": [kiosk.rating(4, to_rfc3339(now - timedelta(days=age)))
                             for age in (45, 2)]}, timeout=10)
        assert answer.status_code == 200
    settings = load_settings(environ={}, data_dir=str(tmp_path), site="North",
                             device_name="desk-1", retention_days=30, comment_retention_days=7)
    runner = KioskSync(embedded=True, embedded_data_dir=central_dir, port=0,
                       announce=lambda _text: None)

    runner.prepare(settings)
    try:
        store = runner.central.store
        wait_until(lambda: last_purge(store, utc_now()) is not None)
        rows = store.db.execute("SELECT occurred_at FROM ratings").fetchall()
        entry = store.db.execute(
            "SELECT after_json FROM audit WHERE action = ?", [PURGE_ACTION]).fetchone()[0]
    finally:
        runner.stop()
    assert rows == [(to_rfc3339(now - timedelta(days=2)),)]
    assert json.loads(entry)["retention_days"] == 30
    assert json.loads(entry)["comment_retention_days"] == 7
    assert not runner.central.running


def test_the_embedded_store_of_main_py_backs_itself_up_daily(tmp_path):
    """So the sentence for a damaged store ("put a backup back") has a backup to name; a
    restore from it gives the store back."""
    from sync.central.backup import engine_for
    from sync.central.backup_schedule import backups_in
    from sync.central.migrations import SCHEMA_VERSION

    central_dir = tmp_path / "central"
    settings = load_settings(environ={}, data_dir=str(tmp_path), site="North",
                             device_name="desk-1")
    runner = KioskSync(embedded=True, embedded_data_dir=central_dir, port=0,
                       announce=lambda _text: None)
    runner.prepare(settings)
    try:
        made = wait_until(lambda: backups_in(central_dir / "backups"))
    finally:
        runner.stop()
    (_moment, backup), = made
    report = engine_for(central_dir).restore(backup, force=True)
    assert report.check.integrity == "ok"
    assert report.check.schema_version == SCHEMA_VERSION


def test_a_failing_purge_is_logged_and_the_thread_lives_on(central_server, caplog):
    store = central_server.embedded.store
    calls = []

    class Broken(DailyRetention):
        def run_if_due(self):
            calls.append(1)
            raise RuntimeError("disk gone")

    daily = Broken(store, RetentionPolicy(400, 90), check_every_s=0.01, first_check_after_s=0)
    daily.start()
    try:
        wait_until(lambda: len(calls) >= 3)
    finally:
        daily.stop()
    assert "the daily retention purge failed" in caplog.text
