"""The dashboard's Alerts page: live and closed alerts (acknowledge with a comment, close,
queue a failed delivery again), the site's rules and the channels, each with "send a test".

Every form carries the session's CSRF token and answers with a redirect back to the page
(post/redirect/get), so a reload never repeats an action.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from kiosk.shared.timeutil import utc_now
from sync.central.alerts import channels, lifecycle, outbox, rules
from sync.central.alerts.channels import RULE_TITLES
from sync.central.alerts.hours import format_hours, site_hours
from sync.central.dashboard.web import FiltersDep, SessionDep, check_csrf, store_of, templates

router = APIRouter(include_in_schema=False)
CLOSED_SHOWN_DAYS = 7
CsrfForm = Annotated[str, Form(max_length=200)]


def _back(site: str | None, note: str) -> RedirectResponse:
    query = f"?site={quote(site)}&" if site else "?"
    return RedirectResponse(f"/alerts{query}note={quote(note)}", status_code=303)


def _number(text: str, what: str) -> int:
    """A path's id, read only after the form's CSRF token was checked (a forged form is a
    403 whatever its path)."""
    if not text.isdigit():
        raise HTTPException(404, f"There is no {what} {text!r}.")
    return int(text)


def _refused(error: Exception) -> HTTPException:
    text = str(error.args[0] if error.args else error)
    return HTTPException(422, f"{text[:1].upper()}{text[1:]}.")


def _as_shown(delivery: dict) -> dict:
    # The page offers "Send again" on a failed delivery; one whose channel was removed has
    # nowhere to go, so it is shown under a status that offers nothing.
    if delivery["kind"] is None and delivery["status"] == "failed":
        return {**delivery, "status": "failed (channel removed)"}
    return delivery


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, session: SessionDep, flt: FiltersDep, note: str = ""):
    from sync.central.dashboard.pages import _page

    db = store_of(request).db
    now = utc_now()
    shown = lifecycle.list_alerts(db, now - timedelta(days=CLOSED_SHOWN_DAYS), now, flt.site)
    delivered: dict[int, list[dict]] = {}
    for delivery in outbox.deliveries(db):
        delivered.setdefault(delivery["alert_id"], []).append(_as_shown(delivery))
    site = flt.site or (flt.all_sites[0].name if flt.all_sites else None)
    return _page(
        request, "alerts.html", session, flt, active="alerts", note=note[:200],
        live=[a for a in shown if a["state"] != "closed"],
        closed=[a for a in shown if a["state"] == "closed"],
        delivered=delivered, titles=RULE_TITLES, rule_site=site,
        rules=list(rules.site_rules(db, site).values()) if site else [],
        hours=format_hours(site_hours(db, site)) if site else "",
        channel_list=[channels.public(c) for c in channels.list_channels(db)],
        closed_days=CLOSED_SHOWN_DAYS,
    )


@router.post("/alerts/{alert_id}/ack")
def acknowledge(request: Request, session: SessionDep, alert_id: str, csrf: CsrfForm = "",
                comment: Annotated[str, Form(max_length=2000)] = "", site: str = ""):
    check_csrf(session.csrf_token, csrf)
    alert_id = _number(alert_id, "alert")
    try:
        with store_of(request).write() as db:
            lifecycle.acknowledge(db, alert_id, session.user.name, utc_now(), comment)
    except (lifecycle.AlertStateError, lifecycle.AlertNotFound) as error:
        raise _refused(error) from None
    return _back(site, f"Alert {alert_id} acknowledged.")


@router.post("/alerts/{alert_id}/close")
def close(request: Request, session: SessionDep, alert_id: str, csrf: CsrfForm = "",
          site: str = ""):
    check_csrf(session.csrf_token, csrf)
    alert_id = _number(alert_id, "alert")
    try:
        with store_of(request).write() as db:
            lifecycle.close_by_hand(db, alert_id, session.user.name, utc_now())
    except (lifecycle.AlertStateError, lifecycle.AlertNotFound) as error:
        raise _refused(error) from None
    return _back(site, f"Alert {alert_id} closed.")


@router.post("/alerts/deliveries/{delivery_id}/retry")
def retry(request: Request, session: SessionDep, delivery_id: str, csrf: CsrfForm = "",
          site: str = ""):
    check_csrf(session.csrf_token, csrf)
    delivery_id = _number(delivery_id, "delivery")
    try:
        with store_of(request).write() as db:
            outbox.requeue(db, delivery_id, utc_now())
    except LookupError as error:
        raise _refused(error) from None
    request.app.state.alerts.wake_deliverer()
    return _back(site, f"Delivery {delivery_id} queued again.")


@router.post("/alerts/rules")
async def set_rule(request: Request, session: SessionDep):
    form = await request.form()
    check_csrf(session.csrf_token, str(form.get("csrf", "")))
    site, rule = str(form.get("site", "")), str(form.get("rule", ""))
    params = {name: form.get(name) or None for name in rules.BOUNDS}
    try:
        with store_of(request).write() as db:
            from sync.central.sites import get_site

            get_site(db, site)
            rules.set_rule(db, site, rules.check_rule(rule), form.get("enabled") == "on",
                           **params)
    except (ValueError, LookupError) as error:
        raise _refused(error) from None
    return _back(site, f"Rule {RULE_TITLES.get(rule, rule)} saved for {site}.")


@router.post("/alerts/channels")
async def add_channel(request: Request, session: SessionDep):
    form = await request.form()
    check_csrf(session.csrf_token, str(form.get("csrf", "")))
    fields = {key: str(value) for key, value in form.items() if value != ""}
    kind = fields.pop("kind", "")
    site = fields.pop("channel_site", None)
    fields.pop("csrf", None)
    try:
        with store_of(request).write() as db:
            channel = channels.add_channel(db, kind, site, fields, utc_now())
    except (ValueError, TypeError) as error:
        raise _refused(error) from None
    return _back(None, f"Channel {channel['id']} ({kind}) added.")


@router.post("/alerts/channels/{channel_id}/remove")
def remove_channel(request: Request, session: SessionDep, channel_id: str, csrf: CsrfForm = ""):
    check_csrf(session.csrf_token, csrf)
    channel_id = _number(channel_id, "channel")
    try:
        with store_of(request).write() as db:
            channels.remove_channel(db, channel_id)
    except LookupError as error:
        raise _refused(error) from None
    return _back(None, f"Channel {channel_id} removed.")


@router.post("/alerts/channels/{channel_id}/test")
def send_test(request: Request, session: SessionDep, channel_id: str, csrf: CsrfForm = ""):
    check_csrf(session.csrf_token, csrf)
    channel_id = _number(channel_id, "channel")
    try:
        channel = channels.get_channel(store_of(request).db, channel_id)
    except LookupError as error:
        raise _refused(error) from None
    now = utc_now()
    try:
        channels.send(channel, channels.sample_alert(channel, now), now, timeout_s=5.0)
    except channels.DeliveryFailed as error:
        return _back(None, f"The test message to channel {channel_id} failed: {error}.")
    return _back(None, f"A test message was sent to channel {channel_id}.")


def _live_alert_count(request: Request, site: str | None = None) -> int:
    return lifecycle.live_count(store_of(request).db, site)


def install(app: FastAPI) -> None:
    """Add the page's routes and the header's count (``live_alert_count`` in templates)."""
    templates.env.globals["live_alert_count"] = _live_alert_count
    app.include_router(router)
