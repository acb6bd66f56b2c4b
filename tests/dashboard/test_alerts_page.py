"""The Alerts page in headless Chromium: an alert opened from real ingest is shown, counted in
the Today page's header, acknowledged with a comment and closed there; screenshots of each."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central import auth
from sync.central.alerts.scheduler import evaluate
from sync.central.ingest import ingest_batch
from sync.central.sites import ensure_site
from tests.dashboard.conftest import MANAGER, SCREENSHOTS
from tests.support.wire_events import wire_event

pytestmark = pytest.mark.browser


def test_an_alert_is_shown_counted_acknowledged_and_closed(logged_in, central):
    site = f"Alerts {uuid.uuid4().hex[:6]}"
    store = central.embedded.store
    with store.write() as db:
        device, _ = auth.add_device(db, site, "Desk 1")
    now = utc_now()
    ratings = [wire_event(seq, "rating.submitted", now, None,
                          {"score": score, "scale": 5, "tags": [], "misuse": False})
               for seq, score in enumerate([1, 2, 1, 5], start=1)]
    ingest_batch(store, device, ratings, now)
    evaluate(store, utc_now(), sites=[site], rules=("negative_burst",))
    (alert_id,) = [row["id"] for row in central.rows(
        "SELECT id FROM alerts WHERE site = ?", [site])]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = logged_in

    page.goto(f"/?site={site}")
    expect(page.locator("#open-alert-count")).to_have_text("1 open alert")
    page.screenshot(path=str(SCREENSHOTS / "alerts-today-header.png"))

    page.click("#open-alert-count")
    card = page.locator(f"#alert-{alert_id}")
    expect(card.locator(".state")).to_have_text("open")
    expect(card.locator(".summary")).to_contain_text("3 of 4 ratings negative")
    page.screenshot(path=str(SCREENSHOTS / "alerts-open.png"), full_page=True)

    card.locator("input[name=comment]").fill("second desk opened")
    card.locator(".ack-button").click()
    expect(page.locator(".flash")).to_have_text(f"Alert {alert_id} acknowledged.")
    card = page.locator(f"#alert-{alert_id}")
    expect(card.locator(".state")).to_have_text("acknowledged")
    expect(card).to_contain_text(f"acknowledged by {MANAGER}")
    expect(card).to_contain_text("“second desk opened”")
    page.screenshot(path=str(SCREENSHOTS / "alerts-acknowledged.png"), full_page=True)

    card.locator(".close-button").click()
    expect(page.locator(f"#closed-alerts #alert-{alert_id} .state")).to_have_text("closed")
    page.screenshot(path=str(SCREENSHOTS / "alerts-closed.png"), full_page=True)
    page.goto(f"/?site={site}")
    expect(page.locator("#open-alert-count")).to_have_text("0 open alerts")
    history = central.rows("SELECT action, actor, note FROM alert_history WHERE alert_id = ? "
                           "ORDER BY id", [alert_id])
    assert [(h["action"], h["actor"]) for h in history] == [
        ("opened", "system"), ("acknowledged", MANAGER), ("closed", MANAGER)]
    assert history[1]["note"] == "second desk opened"
    assert to_rfc3339(now)[:10] in central.rows(
        "SELECT opened_at FROM alerts WHERE id = ?", [alert_id])[0]["opened_at"]


def test_a_channel_added_on_the_page_gets_a_signed_test_message(logged_in, central):
    from tests.support.receivers import webhook_receiver

    page = logged_in
    # A site of its own: the session-wide server's evaluator keeps running, and an alert it
    # opens at another site meanwhile must not reach this receiver.
    site = f"Channel {uuid.uuid4().hex[:6]}"
    with central.embedded.store.write() as db:
        ensure_site(db, site)  # a channel names a site that exists
    with webhook_receiver() as hook:
        page.goto("/alerts")
        form = page.locator("form.channel").first
        form.locator("input[name=url]").fill(hook.url)
        form.locator("input[name=secret]").fill(hook.secret)
        form.locator("input[name=channel_site]").fill(site)
        form.locator("button").click()
        flash = page.locator(".flash")
        expect(flash).to_contain_text("(webhook) added.")
        channel_id = int(flash.inner_text().split()[1])
        row = page.locator(f"#channel-{channel_id}")
        expect(row).to_contain_text(hook.url.removesuffix("/hooks/alerts") + "/…")
        expect(row).not_to_contain_text("/hooks/alerts")  # a URL's path can be its secret
        page.locator(f"#channel-{channel_id} .test-button").click()
        expect(page.locator(".flash")).to_have_text(
            f"A test message was sent to channel {channel_id}.")
        page.locator(f"#channel-{channel_id} button", has_text="Remove").click()
        expect(page.locator(".flash")).to_have_text(f"Channel {channel_id} removed.")

    (request,) = [r for r in hook.received if r["body"]["alert"]["rule"] == "test"]
    assert request["body"]["alert"]["site"] == site and hook.bad_signatures == 0


def test_the_alert_email_as_received(page, central):
    """A real alert's e-mail, as a real SMTP server on 127.0.0.1 received it, shown in the
    browser for its screenshot (headers and the plain-text body)."""
    import html

    from sync.central.alerts import channels, outbox
    from tests.support.receivers import smtp_receiver

    site = f"Mail {uuid.uuid4().hex[:6]}"
    store = central.embedded.store
    with smtp_receiver() as mail:
        with store.write() as db:
            device, _ = auth.add_device(db, site, "Desk 1")
            channels.add_channel(db, "email", site, {
                "smtp_host": "127.0.0.1", "smtp_port": mail.port,
                "mail_to": "manager@example.org", "mail_from": "kiosk@example.org",
                "dashboard_url": central.base_url}, utc_now())
        now = utc_now()
        ingest_batch(store, device, [
            wire_event(seq, "rating.submitted", now, None,
                       {"score": score, "scale": 5, "tags": [], "misuse": False})
            for seq, score in enumerate([1, 1, 2, 4], start=1)], now)
        evaluate(store, utc_now(), sites=[site], rules=("negative_burst",))
        outbox.deliver_due(store, utc_now())  # unless the deliverer thread has claimed it
        deadline = time.monotonic() + 5.0
        while not mail.messages:
            assert time.monotonic() < deadline, "no mail within 5 s"
            time.sleep(0.02)
        assert len(mail.messages) == 1

    raw = mail.messages[0]
    text = "".join(f"{name}: {value}\n" for name, value in raw.items()
                   if name in ("Subject", "From", "To")) + "\n" + raw.get_content()
    assert "3 of 4 ratings negative" in text and "A-0" not in text
    page.set_content(f"<pre style='font: 15px monospace; padding: 1em'>{html.escape(text)}</pre>")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "alerts-email-as-received.png"))


def test_a_failed_delivery_of_a_removed_channel_offers_no_send_again(logged_in, central):
    from sync.central.alerts import channels

    site = f"Gone {uuid.uuid4().hex[:6]}"
    store = central.embedded.store
    with store.write() as db:
        device, _ = auth.add_device(db, site, "Desk 1")
        # Quiet all day: the running deliverer holds the delivery instead of attempting it.
        channel = channels.add_channel(db, "webhook", site, {
            "url": "http://127.0.0.1:9/", "secret": "s", "quiet_hours": "00:00-23:59"},
            utc_now())
    now = utc_now()
    ingest_batch(store, device, [
        wire_event(seq, "rating.submitted", now, None,
                   {"score": score, "scale": 5, "tags": [], "misuse": False})
        for seq, score in enumerate([1, 1, 2, 4], start=1)], now)
    (alert_id,) = evaluate(store, utc_now(), sites=[site], rules=("negative_burst",))
    with store.write() as db:
        db.execute("UPDATE alert_deliveries SET status = 'failed' WHERE alert_id = ?",
                   [alert_id])
        channels.remove_channel(db, channel["id"])

    logged_in.goto(f"/alerts?site={site}")
    card = logged_in.locator(f"#alert-{alert_id}")
    expect(card.locator(".delivery")).to_contain_text(
        f"removed channel {channel['id']}: failed (channel removed)")
    expect(card.locator("button", has_text="Send again")).to_have_count(0)
