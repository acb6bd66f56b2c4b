"""Where alerts go: a webhook (JSON, signed) or e-mail over SMTP. Settings, message, one send.

A webhook's body is signed with HMAC-SHA256 under the channel's secret: ``X-Signature-256:
sha256=<hex>`` over the exact bytes sent, and ``X-Signature-Timestamp`` (Unix seconds) which
is also inside the signed body as ``sent_at_unix``, so a receiver can refuse a replayed old
request (see the README for a receiver's check). The ``slack`` format sends ``{"text": ...,
"sent_at_unix": ...}``; Slack and Teams incoming webhooks read the text and ignore the rest.

A message holds the site, the rule, the figures with their n and the dashboard link: never a
ticket code, never which face a visit pressed (the engine's findings hold neither).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import smtplib
import ssl
from datetime import datetime, time
from email.message import EmailMessage
from email.utils import parseaddr
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from sqlite_utils import Database

from kiosk.shared.timeutil import to_rfc3339
from sync.central.sites import get_site

KINDS = ("webhook", "email")
FORMATS = ("json", "slack")
SECURITY = ("none", "starttls", "tls")
SIGNATURE_HEADER = "X-Signature-256"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SEND_TIMEOUT_S = 10.0
RULE_TITLES = {
    "negative_burst": "Negative burst",
    "low_happy_index": "Low Happy Index",
    "long_wait": "Long wait",
    "waits_and_mood": "Waits and mood together",
    "kiosk_silent": "Kiosk silent",
    "kiosk_backlog": "Kiosk backlog growing",
    "test": "Test message",
}
SECRET_FIELDS = ("secret", "smtp_password")


class InvalidChannel(ValueError):
    """A channel setting that cannot be used; the message says which and why."""


class ChannelNotFound(LookupError):
    """No channel has that id."""


class DeliveryFailed(Exception):
    """One attempt at sending failed; the message is what the page and the log show."""


def _address(text: str, what: str) -> str:
    name, address = parseaddr(text or "")
    if "@" not in address or address != (text or "").strip():
        raise InvalidChannel(f"{what} {text!r} is not an e-mail address like desk@example.org")
    return address


def check_settings(kind: str, settings: dict) -> dict:
    """The channel's settings, checked; None values are left out."""
    given = {key: value for key, value in settings.items() if value is not None}
    if kind == "webhook":
        url = given.get("url", "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidChannel(f"webhook URL {url!r} must be an http:// or https:// address")
        if not given.get("secret"):
            raise InvalidChannel("a webhook needs a --secret (or --secret-stdin) to sign its "
                                 "requests with")
        fmt = given.get("format", "json")
        if fmt not in FORMATS:
            raise InvalidChannel(f"webhook format {fmt!r} must be one of {', '.join(FORMATS)}")
        checked = {"url": url, "secret": given["secret"], "format": fmt}
    elif kind == "email":
        if not given.get("smtp_host"):
            raise InvalidChannel("an e-mail channel needs --smtp-host")
        port = int(given.get("smtp_port", 25))
        if not 1 <= port <= 65535:
            raise InvalidChannel(f"SMTP port {port} must be from 1 to 65535")
        security = given.get("security", "none")
        if security not in SECURITY:
            raise InvalidChannel(f"SMTP security {security!r} must be one of {', '.join(SECURITY)}")
        recipients = [part.strip() for part in str(given.get("mail_to", "")).split(",")
                      if part.strip()]
        if not recipients:
            raise InvalidChannel("an e-mail channel needs --to (one address or several, "
                                 "comma-separated)")
        checked = {
            "smtp_host": given["smtp_host"], "smtp_port": port, "security": security,
            "mail_to": [_address(to, "--to") for to in recipients],
            "mail_from": _address(given.get("mail_from", ""), "--from"),
        }
        if given.get("smtp_user"):
            checked["smtp_user"] = given["smtp_user"]
            checked["smtp_password"] = given.get("smtp_password", "")
    else:
        raise InvalidChannel(f"channel kind {kind!r} must be one of {', '.join(KINDS)}")
    if given.get("dashboard_url"):
        checked["dashboard_url"] = given["dashboard_url"].rstrip("/")
    if given.get("quiet_hours"):
        checked.update(check_quiet_hours(given["quiet_hours"], given.get("quiet_timezone")))
    return checked


HH_MM = re.compile(r"[0-9]{2}:[0-9]{2}")


def check_quiet_hours(span: str, timezone: str | None) -> dict:
    """``22:00-07:00`` (daily, may pass midnight) in an IANA zone (default UTC)."""
    opens, _, closes = span.strip().partition("-")
    try:
        # Exactly HH:MM: fromisoformat also takes "T2200" and "2200Z", which the delivery's
        # comparison of "HH:MM" texts would then read wrongly (never, or at the wrong minute).
        if not (HH_MM.fullmatch(opens) and HH_MM.fullmatch(closes)) or opens == closes:
            raise ValueError
        time.fromisoformat(opens)
        time.fromisoformat(closes)
    except ValueError:
        raise InvalidChannel(
            f"quiet hours {span!r} must be a daily span like 22:00-07:00 (HH:MM-HH:MM, "
            "the two times different)"
        ) from None
    zone = timezone or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidChannel(f"quiet-hours time zone {zone!r} is not an IANA zone name like "
                             "'Europe/London'") from None
    return {"quiet_hours": f"{opens}-{closes}", "quiet_timezone": zone}


def in_quiet_hours(channel: dict, now: datetime) -> bool:
    """Whether ``now`` falls in the channel's quiet hours, on the channel's clock."""
    span = channel.get("quiet_hours")
    if not span:
        return False
    start, end = span.split("-")
    clock = now.astimezone(ZoneInfo(channel.get("quiet_timezone", "UTC"))).strftime("%H:%M")
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end  # the span passes midnight


def add_channel(db: Database, kind: str, site: str | None, settings: dict,
                now: datetime) -> dict:
    checked = check_settings(kind, settings)
    if site is not None:
        get_site(db, site)  # a channel for a site that does not exist would never be sent to
    channel_id = db.execute(
        "INSERT INTO alert_channels (kind, site, settings, created_at) VALUES (?, ?, ?, ?) "
        "RETURNING id",
        [kind, site, json.dumps(checked), to_rfc3339(now)],
    ).fetchone()[0]
    return public(get_channel(db, channel_id))


def get_channel(db: Database, channel_id: int) -> dict:
    rows = list(db.query("SELECT * FROM alert_channels WHERE id = ?", [channel_id]))
    if not rows:
        raise ChannelNotFound(f"there is no alert channel with id {channel_id}")
    return _loaded(rows[0])


def _loaded(row: dict) -> dict:
    return {"id": row["id"], "kind": row["kind"], "site": row["site"],
            "created_at": row["created_at"], **json.loads(row["settings"])}


def masked_url(url: str) -> str:
    """Scheme, host and port only: a Slack or Teams webhook's path (and any user, password or
    query) is itself the credential that lets anyone post to it."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if parts.path.strip("/") or parts.query else "/"
    return f"{parts.scheme}://{parts.hostname}{port}{rest}"


def public(channel: dict) -> dict:
    """The channel as listed: secrets replaced by whether one is set, a URL by its host."""
    shown = dict(channel)
    for name in SECRET_FIELDS:
        if name in shown:
            shown[name] = "(set)" if shown[name] else "(none)"
    if "url" in shown:
        shown["url"] = masked_url(shown["url"])
    return shown


def list_channels(db: Database) -> list[dict]:
    return [_loaded(row) for row in db.query("SELECT * FROM alert_channels ORDER BY id")]


def channels_for_site(db: Database, site: str) -> list[dict]:
    return [_loaded(row) for row in db.query(
        "SELECT * FROM alert_channels WHERE site IS NULL OR site = ? ORDER BY id", [site]
    )]


def remove_channel(db: Database, channel_id: int) -> None:
    get_channel(db, channel_id)
    # Its deliveries still waiting would have nowhere to go; those done stay as the record.
    db.execute("DELETE FROM alert_deliveries WHERE channel_id = ? AND status = 'pending'",
               [channel_id])
    db.execute("DELETE FROM alert_channels WHERE id = ?", [channel_id])


def message_text(alert: dict, dashboard_url: str | None) -> str:
    title = RULE_TITLES.get(alert["rule"], alert["rule"])
    lines = [
        f"{title} at {alert['site']}",
        "",
        alert["summary"],
        "",
        "Figures: " + ", ".join(f"{key} {value}" for key, value in sorted(
            alert["figures"].items())),
        f"Opened: {alert['opened_at']} (alert {alert['id']})",
    ]
    if dashboard_url:
        lines.append(f"Dashboard: {dashboard_url}/alerts")
    return "\n".join(lines) + "\n"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook_body(channel: dict, alert: dict, now: datetime) -> bytes:
    if channel.get("format") == "slack":
        # The time goes inside the signed body here too: otherwise the timestamp header is
        # not covered by the signature and a replayed body passes with a fresh one.
        payload: dict = {"text": message_text(alert, channel.get("dashboard_url")),
                         "sent_at_unix": int(now.timestamp())}
    else:
        payload = {
            "alert": {key: alert[key] for key in (
                "id", "site", "rule", "state", "summary", "figures", "opened_at")},
            "sent_at": to_rfc3339(now),
            "sent_at_unix": int(now.timestamp()),
            "dashboard_url": channel.get("dashboard_url"),
        }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


def send_webhook(channel: dict, alert: dict, now: datetime, timeout_s: float) -> None:
    body = webhook_body(channel, alert, now)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(channel["secret"], body),
        TIMESTAMP_HEADER: str(int(now.timestamp())),
    }
    try:
        reply = requests.post(channel["url"], data=body, headers=headers,
                              timeout=(min(timeout_s, 5.0), timeout_s), allow_redirects=False)
    except requests.RequestException as error:
        raise DeliveryFailed(f"the webhook could not be reached: {type(error).__name__}") from None
    if not 200 <= reply.status_code < 300:
        raise DeliveryFailed(f"the webhook answered HTTP {reply.status_code}")


def send_email(channel: dict, alert: dict, now: datetime, timeout_s: float) -> None:
    mail = EmailMessage()
    mail["Subject"] = (f"[Clinic kiosk] {RULE_TITLES.get(alert['rule'], alert['rule'])} "
                       f"at {alert['site']}")
    mail["From"] = channel["mail_from"]
    mail["To"] = ", ".join(channel["mail_to"])
    mail.set_content(message_text(alert, channel.get("dashboard_url")))
    host, port, security = channel["smtp_host"], channel["smtp_port"], channel["security"]
    try:
        if security == "tls":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout_s,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout_s)
        with smtp:
            if security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if channel.get("smtp_user"):
                smtp.login(channel["smtp_user"], channel.get("smtp_password", ""))
            smtp.send_message(mail)
    except smtplib.SMTPResponseException as error:
        raise DeliveryFailed(f"the mail server refused it: {error.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryFailed(f"the mail server could not be used: {type(error).__name__}") \
            from None


def send(channel: dict, alert: dict, now: datetime, timeout_s: float = SEND_TIMEOUT_S) -> None:
    """One attempt; raises :class:`DeliveryFailed` with a sentence for the page."""
    sender = send_webhook if channel["kind"] == "webhook" else send_email
    sender(channel, alert, now, timeout_s)


def sample_alert(channel: dict, now: datetime) -> dict:
    """What "send a test" sends: a made-up alert that says so."""
    site = channel.get("site") or "every site"
    return {"id": 0, "site": site, "rule": "test", "state": "open",
            "summary": f"Test message for alert channel {channel['id']} ({site}); "
                       "no action needed.",
            "figures": {}, "opened_at": to_rfc3339(now)}
