"""The dashboard's "Add a kiosk" page: approve (or deny) the code a new kiosk shows.

The kiosk's QR code opens this page with ``?code=`` filled in (after the login, which keeps
the address); a manager can also type the code. Approving chooses the kiosk's site, desk
name and role; the kiosk collects its token at its next poll (within a few seconds).

A wrong code counts against the manager's address in the store's failure limiter (10 a
minute), so a stolen session cannot run through the codes: typed in the form, or given in
the page's ``?code=`` (which fills in the kiosk's suggested name for a pending code).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from kiosk.shared.enrolment_codes import format_code, normalise_code
from kiosk.shared.timeutil import utc_now
from sync.central import audit, enrolment
from sync.central.access import EnrolKiosks, actor_of
from sync.central.dashboard.form_text import FORM_TEXT_CHECKS
from sync.central.dashboard.web import FiltersDep, SessionDep, check_csrf, store_of
from sync.central.rate_limit import FailureLimiter
from sync.central.security import _client_address
from sync.central.sites import list_sites

router = APIRouter(include_in_schema=False, dependencies=FORM_TEXT_CHECKS)
WRONG_CODES_PER_MINUTE = 10
Field = Annotated[str, Form(max_length=200)]


def install(app: FastAPI) -> None:
    app.state.wrong_code_limiter = FailureLimiter(WRONG_CODES_PER_MINUTE, 60.0)
    app.include_router(router)


def _form(request, session, flt, principal, *, status: int = 200, error: str = "", note: str = "",
          values: dict | None = None) -> HTMLResponse:
    from sync.central.dashboard.pages import _page

    db = store_of(request).db
    values = {"code": "", "site": "", "name": "", "role": "desk", **(values or {})}
    if values["code"] and not values["name"]:
        values["name"] = enrolment.pending_suggestion(db, values["code"], utc_now()) or ""
    response = _page(
        request, "add_kiosk.html", session, flt, active="devices", show_filters=False,
        error=error, note=note[:200], values=values, roles=enrolment.ROLES,
        site_names=principal.scope.visible(site.name for site in list_sites(db)),
    )
    response.status_code = status
    return response


def _refuse_if_limited(limiter: FailureLimiter, address: str) -> None:
    if wait := limiter.retry_after(address):
        raise HTTPException(429, f"Too many wrong codes from this address; try again in "
                            f"{wait} s.", headers={"Retry-After": str(wait)})


@router.get("/devices/add", response_class=HTMLResponse)
def add_kiosk_page(request: Request, session: SessionDep, flt: FiltersDep,
                   principal: EnrolKiosks, code: str = "", note: str = ""):
    if code.strip():
        limiter: FailureLimiter = request.app.state.wrong_code_limiter
        address = _client_address(request)
        _refuse_if_limited(limiter, address)
        if not enrolment.is_known(store_of(request).db, code[:40]):
            limiter.failed(address)
            code = ""  # nothing to pre-fill; the form is shown empty
    normal = normalise_code(code[:40])
    return _form(request, session, flt, principal, note=note,
                 values={"code": format_code(normal) if normal else code[:40]})


@router.post("/devices/add", response_class=HTMLResponse)
def decide(request: Request, session: SessionDep, flt: FiltersDep, principal: EnrolKiosks,
           csrf: Field = "",
           code: Field = "", site: Field = "", name: Field = "", role: Field = "desk",
           decision: Field = "approve"):
    check_csrf(session.csrf_token, csrf)
    values = {"code": code, "site": site, "name": name, "role": role}
    limiter: FailureLimiter = request.app.state.wrong_code_limiter
    address = _client_address(request)
    _refuse_if_limited(limiter, address)
    if decision not in ("approve", "deny"):
        return _form(request, session, flt, principal, status=422, values=values,
                     error=f"{decision[:20]!r} is not a decision: use Approve or Deny.")
    if decision == "approve" and (not site.strip() or not name.strip()):
        return _form(request, session, flt, principal, status=422, values=values,
                     error="Choose the kiosk's site and give it a desk name, then approve.")
    if decision == "approve" and not principal.scope.allows(site.strip()):
        # A site outside this login's scope is as unknown here as one that does not exist.
        return _form(request, session, flt, principal, status=422, values=values,
                     error=f"There is no site named {site.strip()!r}.")
    actor = actor_of(request, principal)
    try:
        with store_of(request).write() as db:
            if decision == "deny":
                enrolment.deny(db, code, utc_now())
                audit.record(db, actor, "device.deny", None, None, None,
                             {"code": format_code(normalise_code(code) or "")})
                shown = format_code(normalise_code(code) or "")
                done = f"The code {shown} was denied; that kiosk says so."
            else:
                device = enrolment.approve(db, code, site, name, role, utc_now())
                audit.record(db, actor, "device.approve", device.id, device.site, None,
                             {"name": device.name, "role": role})
                done = (f"Kiosk {device.name} at {device.site} approved; it starts work within a "
                        "few seconds and appears under Devices.")
    except enrolment.UnknownCode as error:
        limiter.failed(address)
        return _form(request, session, flt, principal, status=422, values=values, error=str(error))
    except (enrolment.EnrolmentError, ValueError) as error:
        return _form(request, session, flt, principal, status=422, values=values, error=str(error))
    return RedirectResponse(f"/devices/add?note={quote(done)}", status_code=303)
