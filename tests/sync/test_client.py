"""SyncClient.sync_once against the real central store behind a fault-injecting proxy: order,
batching, and every way a server can fail or lie. Whatever goes wrong, nothing is marked unless
the answer fits, and every count of what arrived is read from the store's database."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from kiosk.shared.wire import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from sync.client import SyncClient
from tests.sync.conftest import TEST_TIMEOUTS, UNSENT_TOKEN, check_in, tap
from tests.sync.scripted_server import (
    Reply,
    ScriptedServer,
    answer,
    as_http10,
    cut_after_commit,
    dropped_when_reused,
    garbled,
    hang,
    kept_alive_then,
    over_limit,
    oversized,
    reply,
    reset,
    tamper,
    trickled,
)


def test_events_go_in_device_seq_order_in_batches_of_the_chosen_size(kiosk_store, proxy,
                                                                       central, device):
    recorded = [check_in(kiosk_store, number) for number in range(1, 8)]
    client = SyncClient(kiosk_store, proxy.url, device.token, batch_size=3, version="1.2.3")

    result = client.sync_once()

    assert (result.ok, result.sent, result.stored) == (True, 7, 7)
    assert proxy.batch_sizes() == [3, 3, 1]
    assert [event["device_seq"] for event in central.stored] == list(range(1, 8))
    assert [event["id"] for event in central.stored] == [event.id for event in recorded]
    assert kiosk_store.sync_status().backlog == 0
    headers = proxy.event_posts()[0].headers
    assert headers["authorization"] == f"Bearer {device.token}"
    assert headers["user-agent"] == "clinic-kiosk/1.2.3"


def test_an_empty_outbox_sends_nothing(client, proxy):
    result = client.sync_once()
    assert (result.ok, result.sent) == (True, 0)
    assert proxy.event_posts() == []


@pytest.mark.parametrize(
    "options",
    [{"batch_size": 0}, {"batch_size": MAX_BATCH_EVENTS + 1}, {"url": "ftp://x"}, {"token": ""}],
)
def test_bad_settings_are_refused_at_construction(kiosk_store, options):
    arguments = {"url": "http://127.0.0.1:1", "token": UNSENT_TOKEN, **options}
    with pytest.raises(ValueError):
        SyncClient(kiosk_store, **arguments)


def test_tls_verification_is_on_and_takes_a_ca_file(kiosk_store):
    assert SyncClient(kiosk_store, "https://central.example", UNSENT_TOKEN).session.verify is True
    with_ca = SyncClient(kiosk_store, "https://central.example", UNSENT_TOKEN,
                         ca_file="/etc/ca.pem")
    assert with_ca.session.verify == "/etc/ca.pem"


def test_a_server_error_marks_nothing_and_the_next_pass_delivers(client, kiosk_store,
                                                                   proxy, central):
    event = tap(kiosk_store)
    proxy.script(reply(500, b'{"detail": "database is locked"}'))

    failed = client.sync_once()

    assert not failed.ok
    assert "HTTP 500" in failed.error and "database is locked" in failed.error
    assert kiosk_store.sync_status().backlog == 1
    assert client.sync_once().stored == 1
    assert [stored["id"] for stored in central.stored] == [event.id]


def test_retry_after_in_seconds_is_reported(client, kiosk_store, proxy):
    tap(kiosk_store)
    proxy.script(reply(429, **{"Retry-After": "7"}))
    result = client.sync_once()
    assert result.retry_after == 7.0 and "busy" in result.error
    assert kiosk_store.sync_status().backlog == 1


def test_retry_after_as_an_http_date_is_reported(client, kiosk_store, proxy):
    tap(kiosk_store)
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    proxy.script(reply(503, **{"Retry-After": later}))
    assert 25 <= client.sync_once().retry_after <= 30


LIES = {
    "not JSON": (tamper(raw=b"<html>Gateway portal</html>"), "not JSON"),
    "a short results list": (
        tamper(lambda doc: {"results": doc["results"][:-1]}), "answered for 2 events instead of 3"
    ),
    "results for other ids": (
        tamper(lambda doc: {"results": doc["results"][::-1]}), "not for the event sent"
    ),
    "an unknown status": (
        tamper(lambda doc: {"results": [{**r, "status": "maybe"} for r in doc["results"]]}),
        "unknown status 'maybe'",
    ),
    "no results at all": (tamper(lambda doc: {"ok": True}), "no list of results"),
}


@pytest.mark.parametrize("lie", LIES.values(), ids=LIES.keys())
def test_an_answer_that_does_not_fit_the_batch_marks_nothing(client, kiosk_store, proxy,
                                                               central, lie):
    action, message = lie
    for number in range(1, 4):
        check_in(kiosk_store, number)
    proxy.script(action)

    result = client.sync_once()

    assert not result.ok and message in result.error
    assert kiosk_store.sync_status().backlog == 3
    # The server did commit: the honest retry finds duplicates and the central has one copy each.
    retry = client.sync_once()
    assert (retry.duplicate, kiosk_store.sync_status().backlog) == (3, 0)
    assert len(central.stored) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_reported_as_such(client, kiosk_store, proxy, status):
    tap(kiosk_store)
    proxy.script(reply(status, b'{"detail": "This device token has been revoked."}'))
    result = client.sync_once()
    assert result.token_refused
    assert f"refused this kiosk's token (HTTP {status})" in result.error
    assert "revoked" in result.error


def test_a_batch_too_large_is_split_until_it_fits(client, kiosk_store, proxy, central):
    proxy.default = over_limit(max_events=2)
    for number in range(1, 6):
        check_in(kiosk_store, number)
    result = client.sync_once()
    assert (result.ok, result.sent, result.stored) == (True, 5, 5)
    assert proxy.batch_sizes() == [5, 2, 2, 1]
    assert [event["device_seq"] for event in central.stored] == [1, 2, 3, 4, 5]


def test_an_event_too_large_on_its_own_is_quarantined_not_retried(client, kiosk_store, proxy,
                                                                   central):
    proxy.default = over_limit(max_body_bytes=MAX_BATCH_BYTES)  # the store's own limit
    first = check_in(kiosk_store, 1)
    huge = kiosk_store.record("visit.called", {"note": "x" * MAX_BATCH_BYTES}, visit_id=None)
    second = check_in(kiosk_store, 2)
    result = client.sync_once()
    assert (result.ok, result.stored, result.rejected) == (True, 2, 1)
    quarantined = kiosk_store.rejected_events()
    assert [row["id"] for row in quarantined] == [huge.id]
    assert "too large" in quarantined[0]["sync_error"]
    assert [event["id"] for event in central.stored] == [first.id, second.id]
    assert client.sync_once().sent == 0  # never retried


def test_a_proxy_refusing_even_one_small_event_sets_nothing_aside(client, kiosk_store, proxy,
                                                                  central):
    """A proxy whose body limit is below one event answers 413 to every event: the kiosk
    keeps them all and says what is wrong, then delivers them once the limit is raised."""
    proxy.default = over_limit(max_body_bytes=100)
    taps = [check_in(kiosk_store, number) for number in (1, 2, 3)]

    result = client.sync_once()

    assert not result.ok and result.rejected == 0
    assert "a proxy between this kiosk and the store" in result.error
    assert "The batch is larger than 100 bytes." in result.error
    assert kiosk_store.rejected_events() == [] and kiosk_store.sync_status().backlog == 3
    assert proxy.batch_sizes() == [3, 1]
    assert central.stored == []

    proxy.default = answer
    assert client.sync_once().stored == 3
    assert [event["id"] for event in central.stored] == [tap.id for tap in taps]


@pytest.mark.parametrize("with_length", [True, False], ids=["length given", "close-delimited"])
def test_an_answer_trickling_in_is_given_up_after_its_deadline(client, kiosk_store, proxy,
                                                               central, with_length):
    """A byte every 0.2 s keeps every read within the 2 s read timeout, and the whole answer
    would take minutes: the pass ends at the answer's own deadline, and the batch (which the
    store did take) goes again as a duplicate. A body whose end is the connection's close
    is not taken for whole when the deadline's shutdown ends it."""
    client.session.answer_within_s = 1.0
    event = tap(kiosk_store)
    proxy.script(trickled(every_s=0.2, with_length=with_length))
    started = time.monotonic()

    result = client.sync_once()

    assert time.monotonic() - started < 1.0 + TEST_TIMEOUTS[1]
    assert "did not arrive whole within 1 s" in result.error
    assert kiosk_store.sync_status().backlog == 1
    again = client.sync_once()
    assert (again.ok, again.duplicate, kiosk_store.sync_status().backlog) == (True, 1, 0)
    assert [stored["id"] for stored in central.stored] == [event.id]


def test_an_answer_far_too_large_is_not_read(client, kiosk_store, proxy, central):
    client.session.max_answer_bytes = 64 * 1024
    event = tap(kiosk_store)
    proxy.script(oversized(50 * 1024 * 1024))

    result = client.sync_once()

    assert "is over 64 KiB, far more than any answer to a kiosk" in result.error
    assert kiosk_store.sync_status().backlog == 1
    assert client.sync_once().stored == 1
    assert [stored["id"] for stored in central.stored] == [event.id]


def test_a_hanging_server_is_bounded_by_the_read_timeout(client, kiosk_store, proxy):
    tap(kiosk_store)
    proxy.script(hang)
    started = time.monotonic()
    result = client.sync_once()
    assert time.monotonic() - started < TEST_TIMEOUTS[1] + 1.0
    assert f"did not answer within {TEST_TIMEOUTS[1]} s" in result.error
    assert kiosk_store.sync_status().backlog == 1


def test_a_reset_connection_is_reported_not_raised(client, kiosk_store, proxy, central):
    event = tap(kiosk_store)
    proxy.script(reset)
    result = client.sync_once()
    assert "Cannot reach the central store" in result.error
    assert central.stored == []
    assert client.sync_once().stored == 1
    assert [stored["id"] for stored in central.stored] == [event.id]


@pytest.mark.parametrize("rst", [False, True], ids=["closed", "reset"])
def test_a_kept_alive_connection_dropped_as_it_is_reused_is_sent_again_at_once(
        client, kiosk_store, proxy, central, rst):
    first = tap(kiosk_store)
    proxy.script(dropped_when_reused(rst=rst))
    assert client.sync_once().stored == 1
    second = tap(kiosk_store)

    # The server closes the kept-alive connection as the next batch arrives on it: the batch
    # goes again on a new connection in the same pass, instead of "cannot reach".
    result = client.sync_once()

    assert (result.ok, result.stored) == (True, 1), result.error
    assert [len(post.json()["events"]) for post in proxy.event_posts()] == [1, 1, 1]
    assert [stored["id"] for stored in central.stored] == [first.id, second.id]
    assert kiosk_store.sync_status().backlog == 0


def test_a_batch_dropped_again_on_its_new_connection_is_reported_and_sent_later(
        client, kiosk_store, proxy, central):
    tap(kiosk_store)
    proxy.script(dropped_when_reused(), reset)
    client.sync_once()
    event = tap(kiosk_store)

    result = client.sync_once()  # dropped on the kept-alive connection, reset on the new one

    assert "Cannot reach the central store" in result.error
    assert kiosk_store.sync_status().backlog == 1
    assert len(proxy.event_posts()) == 3  # sent once more, not again and again
    assert client.sync_once().stored == 1
    assert central.stored[-1]["id"] == event.id


@pytest.mark.parametrize("first", [answer, as_http10], ids=["connection-close", "http-1.0"])
def test_a_reset_after_an_answer_that_closed_its_connection_is_not_sent_again(
        client, kiosk_store, proxy, central, first):
    tap(kiosk_store)
    proxy.script(first, reset)
    assert client.sync_once().stored == 1
    tap(kiosk_store)

    result = client.sync_once()  # a new connection, reset: the server's doing, not a race

    assert "Cannot reach the central store" in result.error
    assert len(proxy.event_posts()) == 2
    assert kiosk_store.sync_status().backlog == 1


def test_a_garbled_answer_on_a_kept_alive_connection_is_not_sent_again(client, kiosk_store,
                                                                        proxy, central):
    tap(kiosk_store)
    proxy.script(kept_alive_then(garbled))
    client.sync_once()
    tap(kiosk_store)

    result = client.sync_once()  # the server answered, with nonsense: not a dropped connection

    assert not result.ok and kiosk_store.sync_status().backlog == 1
    assert len(proxy.event_posts()) == 2


def test_a_reply_lost_after_commit_is_resent_and_counted_as_duplicate(client, kiosk_store,
                                                                        proxy, central):
    for _ in range(3):
        tap(kiosk_store)
    proxy.script(cut_after_commit)

    lost = client.sync_once()
    assert not lost.ok and kiosk_store.sync_status().backlog == 3
    retry = client.sync_once()

    assert (retry.stored, retry.duplicate) == (0, 3)
    assert len(central.stored) == 3
    assert kiosk_store.sync_status().backlog == 0


def test_a_rejected_event_is_quarantined_and_does_not_block_the_rest(client, kiosk_store,
                                                                      central):
    before = tap(kiosk_store)
    bad = kiosk_store.record("rating.submitted", {"score": 3, "scale": 5, "colour": "red"})
    after = tap(kiosk_store)

    result = client.sync_once()

    assert (result.ok, result.stored, result.rejected) == (True, 2, 1)
    quarantined = kiosk_store.rejected_events()
    assert [row["id"] for row in quarantined] == [bad.id]
    assert "unknown field" in quarantined[0]["sync_error"]
    assert [event["id"] for event in central.stored] == [before.id, after.id]
    assert client.sync_once().sent == 0  # never retried


def test_no_server_at_all_is_reported_not_raised(client, kiosk_store, proxy):
    proxy.close()  # the port is now closed: connection refused
    tap(kiosk_store)
    result = client.sync_once()
    assert "Cannot reach the central store" in result.error


def test_a_redirect_is_not_followed_and_says_where_to(client, kiosk_store, proxy):
    tap(kiosk_store)
    proxy.script(reply(302, Location="https://central.example/api/v1/events"))
    result = client.sync_once()
    assert "redirected to https://central.example" in result.error
    assert kiosk_store.sync_status().backlog == 1


def test_fetch_config_returns_the_site_config(client):
    assert client.fetch_config()["site"] == "Test Clinic"


def test_fetch_config_returns_none_when_the_server_fails(kiosk_store, device):
    server = ScriptedServer(lambda request: Reply(500, b"<html>oops</html>"))
    try:
        assert SyncClient(kiosk_store, server.url, device.token).fetch_config() is None
    finally:
        server.close()


def test_fetch_config_returns_none_when_the_server_is_gone(client, proxy):
    proxy.close()
    assert client.fetch_config() is None


def test_fetch_config_returns_none_for_a_refused_token(kiosk_store, proxy, central_server):
    stranger = SyncClient(kiosk_store, proxy.url, "dev_not-enrolled", timeouts=TEST_TIMEOUTS)
    assert stranger.fetch_config() is None
    [asked] = [r for r in proxy.requests if r.path == "/api/v1/config"]
    assert asked.headers["authorization"] == "Bearer dev_not-enrolled"
    # What the proxy passed on was refused by the store itself: asked directly, it says 401.
    refused = requests.get(central_server.url("/api/v1/config"), timeout=10,
                           headers={"Authorization": "Bearer dev_not-enrolled"})
    assert refused.status_code == 401 and "not known" in refused.json()["detail"]
