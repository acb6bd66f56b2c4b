"""SyncLoop against the real central store behind a fault-injecting proxy: push on write,
heartbeats on the interval only, backoff with jitter and Retry-After, reset on success, one
recovery line, status, clean stop."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from kiosk.config import load_settings
from sync.client import SyncClient
from sync.loop import SyncLoop, sync_loop_for
from tests.support.waiting import wait_until
from tests.sync.conftest import TEST_TIMEOUTS, UNSENT_TOKEN, tap
from tests.sync.scripted_server import reply

HEARTBEAT = "device.heartbeat"


class RecordedPauses:
    """Stands in for the backoff wait: notes each delay, then returns at once or, when
    ``held``, only as the test lets it (``step()``, or ``release()`` for good)."""

    def __init__(self, held: bool = False):
        self.delays: list[float] = []
        self.held = held
        self._steps = threading.Semaphore(0)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.held:
            self._steps.acquire(timeout=5)

    def step(self) -> None:
        self._steps.release()

    def release(self) -> None:
        self.held = False
        self._steps.release()


@pytest.fixture
def make_loop(kiosk_store, client):
    loops: list[SyncLoop] = []

    def make(**options) -> SyncLoop:
        options.setdefault("random", lambda: 1.0)  # the top of the jitter range: exact delays
        loop = SyncLoop(kiosk_store, options.pop("with_client", client), **options)
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        assert loop.stop(timeout=3), "the sync loop did not stop"


def test_a_new_event_is_pushed_at_once(make_loop, kiosk_store, central):
    loop = make_loop(heartbeat_s=3600)
    loop.start()
    wait_until(lambda: central.stored_of_type(HEARTBEAT), what="the start-up heartbeat")

    started = time.monotonic()
    tap(kiosk_store)
    wait_until(lambda: central.stored_of_type("rating.submitted"), timeout=2,
               what="the tap to be pushed")
    assert time.monotonic() - started < 2


def test_a_heartbeat_is_recorded_on_the_interval_not_on_every_wake(make_loop, kiosk_store,
                                                                    central):
    loop = make_loop(heartbeat_s=3600)
    loop.start()
    for number in range(1, 4):
        tap(kiosk_store)
        wait_until(lambda n=number: len(central.stored_of_type("rating.submitted")) == n)
    heartbeats = [e for e in kiosk_store.events() if e["type"] == HEARTBEAT]
    assert len(heartbeats) == 1


def test_heartbeats_carry_backlog_version_and_rejected_count(make_loop, kiosk_store,
                                                             central, client):
    kiosk_store.record("rating.submitted", {"score": 3, "scale": 5, "colour": "red"})
    loop = make_loop(heartbeat_s=0.05)
    loop.start()
    wait_until(lambda: any(e["data"]["rejected"] == 1
                           for e in central.stored_of_type(HEARTBEAT)),
               what="a heartbeat counting the quarantined event")
    first = central.stored_of_type(HEARTBEAT)[0]["data"]
    assert first == {"backlog": 1, "version": client.version, "rejected": 0}


def test_failures_back_off_exponentially_and_recovery_is_logged_once(make_loop, kiosk_store,
                                                                     proxy, central,
                                                                     caplog):
    caplog.set_level(logging.INFO, logger="sync.loop")
    proxy.script(*[reply(500)] * 4)
    pauses = RecordedPauses()
    loop = make_loop(heartbeat_s=3600, pause=pauses)
    tap(kiosk_store)
    loop.start()
    wait_until(lambda: central.stored_of_type("rating.submitted"))
    tap(kiosk_store)
    wait_until(lambda: len(central.stored_of_type("rating.submitted")) == 2)
    wait_until(lambda: loop.status().backlog == 0 and loop.status().last_error is None)

    assert pauses.delays == [1, 2, 4, 8]
    recovered = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert recovered == ["sync recovered after 4 failures"]


def test_the_backoff_resets_after_a_success(make_loop, kiosk_store, proxy, central):
    proxy.script(reply(500), reply(500))
    pauses = RecordedPauses()
    loop = make_loop(heartbeat_s=3600, pause=pauses)
    tap(kiosk_store)
    loop.start()
    wait_until(lambda: central.stored_of_type("rating.submitted"))
    wait_until(lambda: loop.status().consecutive_failures == 0, what="the pass to end")
    proxy.script(reply(500))
    tap(kiosk_store)
    wait_until(lambda: len(central.stored_of_type("rating.submitted")) == 2)
    assert pauses.delays == [1, 2, 1]


@pytest.mark.parametrize("header, waited", [
    ("7", 7.0), ("3600", 60.0),
    # Never less than the base delay: these would otherwise send the next pass at once,
    # again and again (44 requests in 2 s against a 503).
    ("0", 1.0), ("-5", 1.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0),
])
def test_retry_after_is_honoured_up_to_the_cap(make_loop, kiosk_store, proxy, central,
                                               header, waited):
    proxy.script(reply(429, **{"Retry-After": header}))
    pauses = RecordedPauses()
    loop = make_loop(heartbeat_s=3600, pause=pauses, random=lambda: 0.5)
    tap(kiosk_store)
    loop.start()
    wait_until(lambda: central.stored_of_type("rating.submitted"))
    assert pauses.delays == [waited]


def test_a_refused_token_shows_on_the_status_and_retries_slowly(make_loop, kiosk_store, proxy):
    wrong = SyncClient(kiosk_store, proxy.url, "dev_not-enrolled", timeouts=TEST_TIMEOUTS)
    pauses = RecordedPauses(held=True)
    loop = make_loop(with_client=wrong, pause=pauses, max_delay=60)
    loop.start()
    wait_until(lambda: pauses.delays, what="the first backoff")
    status = loop.status()
    assert status.token_refused and status.consecutive_failures == 1
    assert "refused this kiosk's token" in status.last_error
    assert "not known" in status.last_error  # the store's own 401, passed on by the proxy
    assert pauses.delays == [60]
    pauses.release()


def test_status_reports_backlog_failures_and_the_last_success(make_loop, kiosk_store,
                                                              proxy, central_server):
    # Not the default target, so the figure read back can only be the store's setting.
    central_server.set_site(target_wait_min=20)
    pauses = RecordedPauses(held=True)
    loop = make_loop(heartbeat_s=3600, pause=pauses)
    tap(kiosk_store)
    before = loop.status()
    assert (before.configured, before.running, before.backlog) == (True, False, 1)
    assert before.last_synced_at is None and before.site_name is None

    proxy.script(reply(500), reply(500))
    loop.start()
    wait_until(lambda: loop.status().consecutive_failures == 1)
    during = loop.status()
    assert during.running and during.backlog == 2  # the tap and the start-up heartbeat
    assert "HTTP 500" in during.last_error
    pauses.step()
    wait_until(lambda: loop.status().consecutive_failures == 2)
    pauses.release()

    wait_until(lambda: loop.status().site_name == "Test Clinic", what="the site config")
    after = loop.status()
    assert (after.backlog, after.consecutive_failures, after.last_error) == (0, 0, None)
    assert after.last_synced_at is not None
    assert loop.site_config()["target_wait_min"] == 20


def test_stop_does_not_wait_out_a_backoff(make_loop, kiosk_store, proxy):
    proxy.default = reply(500)
    loop = make_loop(base_delay=30, max_delay=60)
    loop.start()
    wait_until(lambda: loop.status().consecutive_failures == 1)
    started = time.monotonic()
    assert loop.stop(timeout=2)
    assert time.monotonic() - started < 1
    assert not loop.status().running


def test_stop_is_prompt_when_idle(make_loop, central):
    loop = make_loop(heartbeat_s=3600)
    loop.start()
    wait_until(lambda: central.stored_of_type(HEARTBEAT))
    started = time.monotonic()
    assert loop.stop(timeout=2)
    assert time.monotonic() - started < 1


def test_without_a_central_store_the_kiosk_records_locally_and_says_so(kiosk_store, tmp_path):
    settings = load_settings(environ={}, data_dir=str(tmp_path))
    loop = sync_loop_for(kiosk_store, settings)
    loop.start()
    tap(kiosk_store)
    status = loop.status()
    assert (status.configured, status.running, status.backlog) == (False, False, 1)
    assert loop.stop()


def test_a_configured_kiosk_gets_a_client_with_its_settings(kiosk_store, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(environ={}, data_dir=str(tmp_path), central_url="https://c.example/",
                             central_token=UNSENT_TOKEN, ca_file=str(ca))
    loop = sync_loop_for(kiosk_store, settings)
    assert loop.status().configured
    assert (loop.client.url, loop.client.session.verify) == ("https://c.example", str(ca))


def test_the_loop_survives_a_server_that_is_not_there(kiosk_store, client, proxy):
    proxy.close()  # the port is now closed: connection refused
    pauses = RecordedPauses(held=True)
    loop = SyncLoop(kiosk_store, client, pause=pauses, random=lambda: 1.0)
    loop.start()
    try:
        wait_until(lambda: len(pauses.delays) == 1)
        assert loop.status().running and "Cannot reach" in loop.status().last_error
    finally:
        pauses.release()
        assert loop.stop(timeout=3)
