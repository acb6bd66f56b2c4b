"""Deliveries to real receivers on 127.0.0.1: a webhook that checks the signature, an SMTP
server (aiosmtpd); and receivers that answer 500, hang or refuse: retried with backoff,
bounded, shown with their error, nothing lost and nothing sent twice."""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central.alerts import channels, outbox
from sync.central.alerts.scheduler import evaluate
from tests.alerts.conftest import SITE, minutes
from tests.support.receivers import smtp_receiver, webhook_receiver
from tests.support.wire_events import WireEvents

ROOT = Path(__file__).resolve().parents[2]
WAIT_LIMIT_S = 5.0


def add_channel(store, kind: str, **settings) -> int:
    with store.write() as db:
        return channels.add_channel(db, kind, None, settings, utc_now())["id"]


def burst(clinic, now) -> int:
    clinic.rate([1, 1, 2, 5], now - timedelta(minutes=1))
    (alert_id,) = evaluate(clinic.store, now, rules=("negative_burst",))
    return alert_id


def deliveries(clinic) -> list[dict]:
    return outbox.deliveries(clinic.store.db)


def test_a_webhook_gets_a_signed_body_once_and_the_alert_is_notified(clinic):
    with webhook_receiver() as hook:
        add_channel(clinic.store, "webhook", url=hook.url, secret=hook.secret)
        alert_id = burst(clinic, minutes(2))

        assert outbox.deliver_due(clinic.store, minutes(2)) == 1
        assert outbox.deliver_due(clinic.store, minutes(3)) == 0  # at most once

    assert hook.bad_signatures == 0
    (request,) = hook.received
    body = request["body"]
    assert (body["alert"]["id"], body["alert"]["rule"]) == (alert_id, "negative_burst")
    assert body["alert"]["figures"]["ratings"] == 4
    assert request["headers"]["X-Signature-Timestamp"] == str(body["sent_at_unix"])
    assert "A-0" not in str(body)
    (alert,) = clinic.alerts()
    assert (alert["state"], alert["notified_at"]) == ("notified", to_rfc3339(minutes(2)))
    assert [d["status"] for d in deliveries(clinic)] == ["sent"]


def test_a_wrong_secret_is_caught_by_the_receivers_check(clinic):
    with webhook_receiver() as hook:
        add_channel(clinic.store, "webhook", url=hook.url, secret="not-the-receivers")
        burst(clinic, minutes(2))
        outbox.deliver_due(clinic.store, minutes(2))

    assert hook.bad_signatures == 1 and hook.received == []
    (delivery,) = deliveries(clinic)
    assert (delivery["status"], delivery["last_error"]) == (
        "pending", "the webhook answered HTTP 401")


def test_the_slack_format_sends_the_text_and_the_signed_time(clinic):
    with webhook_receiver() as hook:
        add_channel(clinic.store, "webhook", url=hook.url, secret=hook.secret, format="slack",
                    dashboard_url="http://127.0.0.1:8700/")
        burst(clinic, minutes(2))
        outbox.deliver_due(clinic.store, minutes(2))

    (request,) = hook.received
    text = request["body"]["text"]
    assert set(request["body"]) == {"text", "sent_at_unix"}
    # The signed body holds the time, so a replay cannot pass with a fresh timestamp header.
    assert request["headers"]["X-Signature-Timestamp"] == str(request["body"]["sent_at_unix"])
    assert text.startswith(f"Negative burst at {SITE}\n") and "(n=4)" in text
    assert "Dashboard: http://127.0.0.1:8700/alerts" in text


def test_a_receiver_answering_500_is_retried_with_backoff_then_shown_as_failed(clinic):
    with webhook_receiver(status=500) as hook:
        add_channel(clinic.store, "webhook", url=hook.url, secret=hook.secret)
        burst(clinic, minutes(2))
        now = minutes(2)
        attempts_at = []
        # Walk the clock forward a second at a time, far past the last backoff.
        for _ in range(3600):
            if outbox.deliver_due(clinic.store, now):
                attempts_at.append(now)
            now += timedelta(seconds=1)

    assert len(hook.received) == outbox.MAX_ATTEMPTS == len(attempts_at)
    gaps = [(b - a).total_seconds() for a, b in pairwise(attempts_at)]
    assert gaps == [5, 10, 20, 40, 80, 160, 320]
    (delivery,) = deliveries(clinic)
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == (
        "failed", outbox.MAX_ATTEMPTS, "the webhook answered HTTP 500")
    assert clinic.alerts()[0]["state"] == "open"  # nobody was told: it says so


def test_a_failed_delivery_queued_again_is_sent_once_the_receiver_works(clinic):
    with webhook_receiver(status=500) as hook:
        add_channel(clinic.store, "webhook", url=hook.url, secret=hook.secret)
        burst(clinic, minutes(2))
        now = minutes(2)
        for _ in range(outbox.MAX_ATTEMPTS):
            outbox.deliver_due(clinic.store, now)
            now += outbox.MAX_BACKOFF
        (delivery,) = deliveries(clinic)
        assert delivery["status"] == "failed"
        hook.status = 200
        with clinic.store.write() as db:
            outbox.requeue(db, delivery["id"], now)
        outbox.deliver_due(clinic.store, now)

    assert [r["status"] for r in deliveries(clinic)] == ["sent"]
    assert clinic.alerts()[0]["state"] == "notified"


def test_a_hanging_receiver_is_given_up_on_within_the_timeout(clinic):
    with webhook_receiver(hang=True) as hook:
        add_channel(clinic.store, "webhook", url=hook.url, secret=hook.secret)
        burst(clinic, minutes(2))
        started = time.monotonic()
        outbox.deliver_due(clinic.store, minutes(2), timeout_s=0.3)
        took = time.monotonic() - started

    assert hook.arrived.is_set() and took < 15.0  # a bound, not a benchmark
    (delivery,) = deliveries(clinic)
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    assert delivery["last_error"] == "the webhook could not be reached: ReadTimeout"


def test_a_delivery_interrupted_mid_send_is_marked_failed_not_sent_again(clinic):
    add_channel(clinic.store, "webhook", url="http://127.0.0.1:9/", secret="s")
    burst(clinic, minutes(2))
    with clinic.store.write() as db:
        db.execute("UPDATE alert_deliveries SET status = 'sending'")
        assert outbox.recover_interrupted(db) == 1

    assert outbox.deliver_due(clinic.store, minutes(3)) == 0
    (delivery,) = deliveries(clinic)
    assert (delivery["status"], delivery["last_error"]) == ("failed", outbox.INTERRUPTED)


def test_an_email_arrives_in_plain_text_with_the_figures_and_no_ticket(clinic):
    clinic.send(clinic.kiosk.visit(checked_in=0, ticket="A-017")[1], minutes(0))
    with smtp_receiver() as mail:
        add_channel(clinic.store, "email", smtp_host="127.0.0.1", smtp_port=mail.port,
                    mail_to="manager@example.org", mail_from="kiosk@example.org",
                    dashboard_url="http://127.0.0.1:8700")
        (alert_id,) = evaluate(clinic.store, minutes(31), rules=("long_wait",))
        outbox.deliver_due(clinic.store, minutes(31))

    (message,) = mail.messages
    assert message["Subject"] == f"[Clinic kiosk] Long wait at {SITE}"
    assert (message["To"], message["From"]) == ("manager@example.org", "kiosk@example.org")
    body = message.get_content()
    assert "the longest has waited 31 min (n=1)" in body
    assert "Dashboard: http://127.0.0.1:8700/alerts" in body and "A-017" not in body
    assert clinic.alerts()[0]["state"] == "notified"
    shots = ROOT / "test-output" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "alert-email-as-received.eml").write_bytes(mail.raw[0])


def test_an_smtp_server_that_refuses_is_retried_and_the_refusal_shown(clinic):
    with smtp_receiver(refuse=True) as mail:
        add_channel(clinic.store, "email", smtp_host="127.0.0.1", smtp_port=mail.port,
                    mail_to="manager@example.org", mail_from="kiosk@example.org")
        burst(clinic, minutes(2))
        outbox.deliver_due(clinic.store, minutes(2))
        (delivery,) = deliveries(clinic)
        assert (delivery["status"], delivery["last_error"]) == (
            "pending", "the mail server refused it: 550")
        mail.refuse = False
        outbox.deliver_due(clinic.store, minutes(2) + outbox.backoff(1))

    assert len(mail.messages) == 1
    assert [d["status"] for d in deliveries(clinic)] == ["sent"]


def test_end_to_end_from_http_ingest_to_a_signed_webhook(central_server):
    desk = central_server.add_device()
    with webhook_receiver() as hook:
        with central_server.embedded.store.write() as db:
            channels.add_channel(db, "webhook", desk.site,
                                 {"url": hook.url, "secret": hook.secret}, utc_now())
        kiosk = WireEvents()
        now = utc_now()
        events = [kiosk.rating(score, to_rfc3339(now)) for score in (1, 1, 2, 4)]
        sent = time.monotonic()
        assert central_server.post_events(desk, events).status_code == 200
        assert hook.arrived.wait(WAIT_LIMIT_S), "no webhook within the limit"

    (request,) = hook.received
    assert request["body"]["alert"]["site"] == desk.site
    assert request["at"] - sent < 15.0  # a bound, not a benchmark
    # The receiver answers before the deliverer records the answer: wait for it, bounded.
    deadline = time.monotonic() + WAIT_LIMIT_S
    while central_server.rows("SELECT state FROM alerts") != [{"state": "notified"}]:
        assert time.monotonic() < deadline, central_server.rows("SELECT state FROM alerts")
        time.sleep(0.02)


def test_end_to_end_from_real_kiosk_taps_to_a_signed_webhook(central_server, tmp_path):
    from kiosk.store import Store as KioskStore
    from sync.client import SyncClient
    from sync.loop import SyncLoop

    desk = central_server.add_device()
    kiosk = KioskStore(tmp_path / "kiosk" / "kiosk.sqlite")
    client = SyncClient(kiosk, central_server.base_url, desk.token)
    loop = SyncLoop(kiosk, client)
    with webhook_receiver() as hook:
        with central_server.embedded.store.write() as db:
            channels.add_channel(db, "webhook", desk.site,
                                 {"url": hook.url, "secret": hook.secret}, utc_now())
        try:
            loop.start()
            for score in (1, 2, 1, 5):  # the kiosk's own taps, pushed on write
                kiosk.record("rating.submitted",
                             {"score": score, "scale": 5, "tags": [], "misuse": False})
            assert hook.arrived.wait(WAIT_LIMIT_S), "no webhook within the limit"
        finally:
            loop.stop()
            client.close()
            kiosk.close()

    (request,) = hook.received
    assert request["body"]["alert"]["figures"]["negative"] == 3
    assert hook.bad_signatures == 0


def test_quiet_hours_hold_a_delivery_until_they_end_then_send_it_once(clinic):
    # MORNING is 09:00 UTC: inside quiet hours of 08:30-09:10 UTC (the default zone), while
    # the same hours in Paris (UTC+1 in March) are 07:30-08:10 UTC, over by then.
    with webhook_receiver() as hook:
        add_channel(clinic.store, "webhook", url=hook.url, secret=hook.secret,
                    quiet_hours="08:30-09:10")
        burst(clinic, minutes(2))
        assert outbox.deliver_due(clinic.store, minutes(2)) == 0  # held: 09:02 is quiet
        (held,) = deliveries(clinic)
        assert (held["status"], held["attempts"]) == ("pending", 0)
        assert held["next_attempt_at"] == to_rfc3339(minutes(2) + outbox.QUIET_RECHECK)
        assert outbox.deliver_due(clinic.store, minutes(7)) == 0  # 09:07: still quiet
        assert outbox.deliver_due(clinic.store, minutes(12)) == 1  # 09:12: sent

    assert len(hook.received) == 1
    assert [d["status"] for d in deliveries(clinic)] == ["sent"]
    paris = {"quiet_hours": "08:30-09:10", "quiet_timezone": "Europe/Paris"}
    assert not channels.in_quiet_hours(paris, minutes(0))
    overnight = {"quiet_hours": "22:00-07:00", "quiet_timezone": "UTC"}
    assert channels.in_quiet_hours(overnight, minutes(-9 * 60 + 30))  # 00:30
    assert not channels.in_quiet_hours(overnight, minutes(0))


def test_bad_quiet_hours_are_refused_with_a_sentence():
    import pytest

    with pytest.raises(channels.InvalidChannel, match="must be a daily span like 22:00-07:00"):
        channels.check_quiet_hours("late evening", None)
    with pytest.raises(channels.InvalidChannel, match="'Mars/Base' is not an IANA zone"):
        channels.check_quiet_hours("22:00-07:00", "Mars/Base")


def test_a_removed_channels_delivery_never_blocks_the_others(clinic):
    with webhook_receiver() as hook:
        gone = add_channel(clinic.store, "webhook", url="http://127.0.0.1:9/", secret="s")
        add_channel(clinic.store, "webhook", url=hook.url, secret=hook.secret)
        burst(clinic, minutes(2))
        with clinic.store.write() as db:
            # The removed channel's failed row, queued again as the page used to allow: it
            # sorts first and is due.
            db.execute("UPDATE alert_deliveries SET status = 'failed', next_attempt_at = ? "
                       "WHERE channel_id = ?", [to_rfc3339(minutes(1)), gone])
            channels.remove_channel(db, gone)
            db.execute("UPDATE alert_deliveries SET status = 'pending' WHERE channel_id = ?",
                       [gone])

        assert outbox.deliver_due(clinic.store, minutes(2)) == 1

    assert len(hook.received) == 1
    by_channel = {d["channel_id"]: d for d in deliveries(clinic)}
    assert (by_channel[gone]["status"], by_channel[gone]["last_error"]) == (
        "failed", outbox.CHANNEL_GONE)
    assert [d["status"] for c, d in by_channel.items() if c != gone] == ["sent"]


def test_a_failed_delivery_of_a_removed_channel_cannot_be_queued_again(clinic):
    import pytest

    gone = add_channel(clinic.store, "webhook", url="http://127.0.0.1:9/", secret="s")
    burst(clinic, minutes(2))
    with clinic.store.write() as db:
        db.execute("UPDATE alert_deliveries SET status = 'failed'")
        channels.remove_channel(db, gone)
    (delivery,) = deliveries(clinic)

    with (pytest.raises(LookupError, match=f"its channel {gone} was removed"),
          clinic.store.write() as db):
        outbox.requeue(db, delivery["id"], minutes(3))
    assert deliveries(clinic)[0]["status"] == "failed"


def test_a_removed_channels_id_is_never_given_to_a_new_one(clinic):
    first = add_channel(clinic.store, "webhook", url="http://127.0.0.1:9/", secret="s")
    with clinic.store.write() as db:
        channels.remove_channel(db, first)
    assert add_channel(clinic.store, "webhook", url="http://127.0.0.1:9/", secret="s") > first


def three_channels_and_an_alert(clinic, url: str, secret: str) -> None:
    for _ in range(3):
        add_channel(clinic.store, "webhook", url=url, secret=secret)
    burst(clinic, minutes(2))


def test_a_stop_between_sends_leaves_the_unsent_deliveries_pending(clinic):
    stop = []

    def send_then_stop(channel, alert, now, timeout_s):
        stop.append(channel["id"])

    three_channels_and_an_alert(clinic, "http://127.0.0.1:9/", "s")
    attempted = outbox.deliver_due(clinic.store, minutes(2), send=send_then_stop,
                                   should_stop=lambda: bool(stop))

    assert attempted == 1
    assert sorted(d["status"] for d in deliveries(clinic)) == ["pending", "pending", "sent"]


class FailingSecondWrite:
    """The store, except that its second write transaction fails (a full disk, say)."""

    def __init__(self, store):
        self.store, self.db, self.writes = store, store.db, 0

    def write(self):
        self.writes += 1
        if self.writes == 2:
            raise OSError("disk full")
        return self.store.write()


def test_one_delivery_that_cannot_be_recorded_does_not_stop_the_rest(clinic):
    with webhook_receiver() as hook:
        three_channels_and_an_alert(clinic, hook.url, hook.secret)
        assert outbox.deliver_due(FailingSecondWrite(clinic.store), minutes(2)) == 3

    assert len(hook.received) == 3
    assert sorted(d["status"] for d in deliveries(clinic)) == ["sending", "sent", "sent"]


def readme_verify():
    """The receiver's check as the README shows it, run as written."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert "def verify(" in code
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the README's own example, checked against real bodies
    return scope["verify"]


def test_the_readme_receiver_refuses_a_replayed_or_unstamped_slack_body():
    import json

    import pytest

    verify = readme_verify()
    channel = {"id": 1, "kind": "webhook", "secret": "s3cret", "format": "slack"}
    now = utc_now()
    alert = channels.sample_alert(channel, now)
    body = channels.webhook_body(channel, alert, now)
    signed = {"X-Signature-256": channels.sign("s3cret", body),
              "X-Signature-Timestamp": str(int(now.timestamp()))}
    assert "text" in verify(b"s3cret", body, signed)

    old = now - timedelta(hours=1)
    replayed = channels.webhook_body(channel, alert, old)
    fresh_header = {"X-Signature-256": channels.sign("s3cret", replayed),
                    "X-Signature-Timestamp": str(int(now.timestamp()))}
    with pytest.raises(ValueError, match="stale or replayed"):
        verify(b"s3cret", replayed, fresh_header)
    unstamped = json.dumps({"text": "hello"}).encode()
    with pytest.raises(ValueError, match="stale or replayed"):
        verify(b"s3cret", unstamped, {**signed, "X-Signature-256": channels.sign(
            "s3cret", unstamped)})


def test_each_webhook_is_stamped_with_the_time_it_was_sent(clinic):
    ticks = iter(minutes(2) + timedelta(seconds=30 * n) for n in range(100))
    with webhook_receiver() as hook:
        three_channels_and_an_alert(clinic, hook.url, hook.secret)
        assert outbox.deliver_due(clinic.store, minutes(2), clock=lambda: next(ticks)) == 3

    stamps = [r["body"]["sent_at_unix"] for r in hook.received]
    assert [b - a for a, b in pairwise(stamps)] == [30, 30]
    assert [r["headers"]["X-Signature-Timestamp"] for r in hook.received] == [
        str(stamp) for stamp in stamps]
    assert hook.bad_signatures == 0
