"""The sync client and loop against the real central server on 127.0.0.1, directly or through
a fault-injecting proxy. Every assertion is on what the server actually stored."""

from __future__ import annotations

import time

import pytest

from sync.client import SyncClient
from sync.loop import SyncLoop
from tests.support.waiting import wait_until
from tests.sync.conftest import TEST_TIMEOUTS, tap
from tests.sync.scripted_server import answer, cut_after_commit, hang, reply, reset

RATINGS = "SELECT id, device_seq FROM events WHERE type = 'rating.submitted' ORDER BY rowid"


class RecordedPauses:
    """The loop's backoff wait, made instant; keeps the delays asked for."""

    def __init__(self):
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        time.sleep(0.01)  # yields to the test thread while the proxy is "down"


@pytest.fixture
def direct_client(kiosk_store, central_server, device):
    made = SyncClient(kiosk_store, central_server.base_url, device.token, timeouts=TEST_TIMEOUTS)
    yield made
    made.close()


@pytest.fixture
def proxied_client(kiosk_store, proxy, device):
    made = SyncClient(kiosk_store, proxy.url, device.token, timeouts=TEST_TIMEOUTS)
    yield made
    made.close()


@pytest.fixture
def run_loop(kiosk_store):
    loops: list[SyncLoop] = []

    def run(client: SyncClient, **options) -> SyncLoop:
        loop = SyncLoop(kiosk_store, client, heartbeat_s=3600, **options)
        loops.append(loop)
        loop.start()
        return loop

    yield run
    for loop in loops:
        assert loop.stop(timeout=3)


def test_a_tap_is_stored_centrally(kiosk_store, direct_client, central_server, device):
    event = tap(kiosk_store, score=4)

    result = direct_client.sync_once()

    assert (result.ok, result.stored) == (True, 1)
    rows = central_server.rows("SELECT device_id, id, type, data FROM events")
    assert rows == [{"device_id": device.device_id, "id": event.id, "type": "rating.submitted",
                     "data": '{"score":4,"scale":5,"tags":[],"misuse":false}'}]
    assert kiosk_store.sync_status().backlog == 0


def test_the_same_batch_sent_twice_is_stored_once(kiosk_store, direct_client, central_server):
    for _ in range(5):
        tap(kiosk_store)
    assert direct_client.sync_once().stored == 5
    # As if the kiosk lost its "synced" marks (restored from a backup): everything goes again.
    with kiosk_store._write() as conn:
        conn.execute("UPDATE events SET synced_at = NULL")

    again = direct_client.sync_once()

    assert (again.stored, again.duplicate) == (0, 5)
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 5}]


def test_a_long_offline_run_arrives_exactly_once_and_in_order(kiosk_store, proxy,
                                                              proxied_client, central_server,
                                                              run_loop):
    proxy.default = reset  # the network is down
    pauses = RecordedPauses()
    run_loop(proxied_client, pause=pauses, random=lambda: 1.0)

    taps = [tap(kiosk_store, score=1 + n % 5) for n in range(2000)]
    wait_until(lambda: pauses.delays, what="the loop to try while offline")
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]

    proxy.default = answer  # the network is back
    wait_until(lambda: kiosk_store.sync_status().backlog == 0, timeout=20,
               what="the backlog to drain")

    stored = central_server.rows(RATINGS)
    assert [row["id"] for row in stored] == [event.id for event in taps]
    seqs = [row["device_seq"] for row in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2000
    assert max(proxy.batch_sizes()) <= 500
    assert central_server.rows("SELECT COUNT(*) AS n FROM ratings") == [{"n": 2000}]


def test_a_reply_lost_after_commit_causes_no_duplicate(kiosk_store, proxy, proxied_client,
                                                       central_server):
    for _ in range(3):
        tap(kiosk_store)
    proxy.script(cut_after_commit)

    lost = proxied_client.sync_once()
    assert not lost.ok
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 3}]
    assert kiosk_store.sync_status().backlog == 3

    retry = proxied_client.sync_once()

    assert (retry.stored, retry.duplicate) == (0, 3)
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 3}]
    assert kiosk_store.sync_status().backlog == 0


FAILURES = {
    "HTTP 500": reply(500, b'{"detail": "boom"}'),
    "HTTP 429 with Retry-After": reply(429, **{"Retry-After": "2"}),
    "a hanging server": hang,
    "a reset connection": reset,
}


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
def test_each_failure_is_survived_and_then_delivered(kiosk_store, proxy, proxied_client,
                                                     central_server, run_loop, failure):
    taps = [tap(kiosk_store) for _ in range(3)]
    proxy.script(failure, failure)
    pauses = RecordedPauses()

    loop = run_loop(proxied_client, pause=pauses, random=lambda: 0.5)
    wait_until(lambda: kiosk_store.sync_status().backlog == 0, timeout=10)

    assert [row["id"] for row in central_server.rows(RATINGS)] == [e.id for e in taps]
    assert len(pauses.delays) == 2
    if failure is FAILURES["HTTP 429 with Retry-After"]:
        assert pauses.delays == [2.0, 2.0]
    else:
        assert pauses.delays == [0.5, 1.0]  # full jitter drawn at 0.5 of 1 s, then of 2 s
    wait_until(lambda: loop.status().consecutive_failures == 0)


def test_a_rejected_event_is_quarantined_and_the_rest_delivered(kiosk_store, direct_client,
                                                                central_server):
    before = tap(kiosk_store)
    bad = kiosk_store.record("rating.submitted", {"score": 3, "scale": 5, "colour": "red"})
    after = tap(kiosk_store)

    result = direct_client.sync_once()

    assert (result.stored, result.rejected) == (2, 1)
    assert [row["id"] for row in central_server.rows(RATINGS)] == [before.id, after.id]
    quarantined = kiosk_store.rejected_events()
    assert [row["id"] for row in quarantined] == [bad.id]
    assert "colour" in quarantined[0]["sync_error"]
    assert direct_client.sync_once().sent == 0


def test_push_on_write_reaches_the_server_quickly(kiosk_store, direct_client, central_server,
                                                  run_loop):
    loop = run_loop(direct_client)
    wait_until(lambda: loop.status().site_name == "Test Clinic", what="the loop to settle")

    started = time.monotonic()
    event = tap(kiosk_store)
    wait_until(lambda: central_server.rows("SELECT 1 FROM events WHERE id = ?", [event.id]),
               timeout=2, what="the tap on the central store")
    assert time.monotonic() - started < 1


def test_a_revoked_device_sees_token_refused(kiosk_store, direct_client, central_server,
                                             device):
    central_server.revoke_device(device.device_id)
    tap(kiosk_store)
    result = direct_client.sync_once()
    assert result.token_refused and "revoked" in result.error
    assert kiosk_store.sync_status().backlog == 1


def test_an_unknown_token_sees_token_refused(kiosk_store, central_server):
    tap(kiosk_store)
    stranger = SyncClient(kiosk_store, central_server.base_url, "dev_not-enrolled")
    result = stranger.sync_once()
    assert result.token_refused and "not known" in result.error


def test_fetch_config_gives_the_site_name(direct_client):
    assert direct_client.fetch_config()["site"] == "Test Clinic"
