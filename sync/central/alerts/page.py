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
from starlette.concurrency import run_in_threadpool

from kiosk.shared.timeutil import utc_now
from sync.central import audit
from sync.central.access import (
    AcknowledgeAlerts,
    EditSiteSettings,
    ManageAlertChannels,
    actor_of,
)
from sync.central.alerts import channels, lifecycle, outbox, rules
from sync.central.alerts.channels import RULE_TITLES
from sync.central.alerts.hours import format_hours, site_hours
from sync.central.dashboard.form_text import FORM_TEXT_CHECKS
from sync.central.dashboard.web import FiltersDep, SessionDep, check_csrf, store_of, templates
from sync.central.permissions import Principal
from sync.central.sites import UnknownSite, get_site

router = APIRouter(include_in_schema=False, dependencies=FORM_TEXT_CHECKS)
CLOSED_SHOWN_DAYS = 7
CsrfForm = Annotated[str, Form(max_length=200)]


def _back(site: str | None, note: str) -> RedirectResponse:
    query = f"?site={quote(site)}&" if site else "?"
    return RedirectResponse(f"/alerts{query}note={quote(note)}", status_code=303)


MAX_ID = 2**63 - 1


def _number(text: str, what: str) -> int:
    """A path's id, read only after the form's CSRF token was checked (a forged form is a
    403 whatever its path)."""
    # ASCII digits only ("²" is a digit to str.isdigit, not to int), and an id the store can
    # hold (SQLite's integers are 64-bit): anything else names no row.
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
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
    scope = session.principal.scope
    shown = lifecycle.list_alerts(db, now - timedelta(days=CLOSED_SHOWN_DAYS), now, flt.site,
                                  sites=scope.sites)
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
        channel_list=[channels.public(c) for c in channels.list_channels(db)
                      if c["site"] is None or scope.allows(c["site"])],
        closed_days=CLOSED_SHOWN_DAYS,
        # Forms a role may not use are not shown (each route refuses them anyway).
        can_ack=session.principal.can("acknowledge_alerts"),
        can_edit_rules=session.principal.can("edit_site_settings"),
        can_manage_channels=session.principal.can("manage_alert_channels"),
    )


def _visible_alert(db, principal: Principal, alert_id: int) -> str:
    """The alert's site; an alert of a site outside the login's scope is as unknown as one
    that never was (the same refusal)."""
    site = lifecycle.alert_site(db, alert_id)
    if site is None or not principal.scope.allows(site):
        raise lifecycle.AlertNotFound(f"there is no alert with id {alert_id}")
    return site


def _alert_row(db, alert_id: int) -> dict:
    row = db.execute("SELECT state, acknowledged_by, closed_by FROM alerts WHERE id = ?",
                     [alert_id]).fetchone()
    return {"state": row[0], "acknowledged_by": row[1], "closed_by": row[2]}


@router.post("/alerts/{alert_id}/ack")
def acknowledge(request: Request, principal: AcknowledgeAlerts, session: SessionDep,
                alert_id: str, csrf: CsrfForm = "",
                comment: Annotated[str, Form(max_length=2000)] = "", site: str = ""):
    check_csrf(session.csrf_token, csrf)
    alert_id = _number(alert_id, "alert")
    try:
        with store_of(request).write() as db:
            alert_site = _visible_alert(db, principal, alert_id)
            before = _alert_row(db, alert_id)
            lifecycle.acknowledge(db, alert_id, session.user.name, utc_now(), comment)
            audit.record(db, actor_of(request, principal), "alert.acknowledge",
                         f"alert {alert_id}", alert_site, before,
                         {**_alert_row(db, alert_id), "comment": comment or None})
    except (lifecycle.AlertStateError, lifecycle.AlertNotFound) as error:
        raise _refused(error) from None
    return _back(site, f"Alert {alert_id} acknowledged.")


@router.post("/alerts/{alert_id}/close")
def close(request: Request, principal: AcknowledgeAlerts, session: SessionDep, alert_id: str,
          csrf: CsrfForm = "", site: str = ""):
    check_csrf(session.csrf_token, csrf)
    alert_id = _number(alert_id, "alert")
    try:
        with store_of(request).write() as db:
            alert_site = _visible_alert(db, principal, alert_id)
            before = _alert_row(db, alert_id)
            lifecycle.close_by_hand(db, alert_id, session.user.name, utc_now())
            audit.record(db, actor_of(request, principal), "alert.close", f"alert {alert_id}",
                         alert_site, before, _alert_row(db, alert_id))
    except (lifecycle.AlertStateError, lifecycle.AlertNotFound) as error:
        raise _refused(error) from None
    return _back(site, f"Alert {alert_id} closed.")


@router.post("/alerts/deliveries/{delivery_id}/retry")
def retry(request: Request, principal: AcknowledgeAlerts, session: SessionDep,
          delivery_id: str, csrf: CsrfForm = "", site: str = ""):
    check_csrf(session.csrf_token, csrf)
    delivery_id = _number(delivery_id, "delivery")
    try:
        with store_of(request).write() as db:
            row = db.execute("SELECT alert_id FROM alert_deliveries WHERE id = ?",
                             [delivery_id]).fetchone()
            if row is None:
                raise LookupError(f"there is no delivery {delivery_id}")
            try:
                alert_site = _visible_alert(db, principal, row[0])
            except lifecycle.AlertNotFound:
                raise LookupError(f"there is no delivery {delivery_id}") from None
            outbox.requeue(db, delivery_id, utc_now())
            audit.record(db, actor_of(request, principal), "alert.delivery_retry",
                         f"delivery {delivery_id}", alert_site)
    except LookupError as error:
        raise _refused(error) from None
    request.app.state.alerts.wake_deliverer()
    return _back(site, f"Delivery {delivery_id} queued again.")


@router.post("/alerts/rules")
async def set_rule(request: Request, principal: EditSiteSettings, session: SessionDep):
    form = await request.form()
    check_csrf(session.csrf_token, str(form.get("csrf", "")))
    site, rule = str(form.get("site", "")), str(form.get("rule", ""))
    params = {name: form.get(name) or None for name in rules.BOUNDS}

    def save() -> None:
        with store_of(request).write() as db:
            if not principal.scope.allows(site):
                raise UnknownSite(f"there is no site named {site!r}")
            get_site(db, site)
            checked = rules.check_rule(rule)
            before = rules.site_rules(db, site).get(checked)
            setting = rules.set_rule(db, site, checked, form.get("enabled") == "on", **params)
            audit.record(db, actor_of(request, principal), "alert_rule.set", checked, site,
                         before.as_dict() if before else None, setting.as_dict())

    try:
        # Async only to read the form: the write waits for the writer lock, off the event loop.
        await run_in_threadpool(save)
    except (ValueError, LookupError) as error:
        raise _refused(error) from None
    return _back(site, f"Rule {RULE_TITLES.get(rule, rule)} saved for {site}.")


@router.post("/alerts/channels")
async def add_channel(request: Request, principal: ManageAlertChannels, session: SessionDep):
    form = await request.form()
    check_csrf(session.csrf_token, str(form.get("csrf", "")))
    fields = {key: str(value) for key, value in form.items() if value != ""}
    kind = fields.pop("kind", "")
    site = fields.pop("channel_site", None)
    fields.pop("csrf", None)

    def save() -> dict:
        with store_of(request).write() as db:
            channel = channels.add_channel(db, kind, site, fields, utc_now())
            audit.record(db, actor_of(request, principal), "alert_channel.add",
                         f"channel {channel['id']}", site, None, channel)
        return channel

    try:
        channel = await run_in_threadpool(save)
    except (ValueError, TypeError, LookupError) as error:
        raise _refused(error) from None
    return _back(None, f"Channel {channel['id']} ({kind}) added.")


@router.post("/alerts/channels/{channel_id}/remove")
def remove_channel(request: Request, principal: ManageAlertChannels, session: SessionDep,
                   channel_id: str, csrf: CsrfForm = ""):
    check_csrf(session.csrf_token, csrf)
    channel_id = _number(channel_id, "channel")
    try:
        with store_of(request).write() as db:
            before = channels.public(channels.get_channel(db, channel_id))
            channels.remove_channel(db, channel_id)
            audit.record(db, actor_of(request, principal), "alert_channel.remove",
                         f"channel {channel_id}", before.get("site"), before, None)
    except LookupError as error:
        raise _refused(error) from None
    return _back(None, f"Channel {channel_id} removed.")


@router.post("/alerts/channels/{channel_id}/test")
def send_test(request: Request, principal: ManageAlertChannels, session: SessionDep,
              channel_id: str, csrf: CsrfForm = ""):
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
    principal = getattr(request.state, "principal", None)
    sites = principal.scope.sites if principal is not None else set()
    return lifecycle.live_count(store_of(request).db, site, sites=sites)


def install(app: FastAPI) -> None:
    """Add the page's routes and the header's count (``live_alert_count`` in templates)."""
    templates.env.globals["live_alert_count"] = _live_alert_count
    app.include_router(router)
