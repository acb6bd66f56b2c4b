"""The People page (admin), a person's own account page, the set-password page reached by a
one-time link, and the Audit page with its CSV.

Forms carry the session's CSRF token. Adding or resetting a person answers with the page
itself, not a redirect, because the one-time link is shown there once and must not travel in
a URL (a redirect's query string lands in logs).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from sync.central import audit
from sync.central.access import (
    ManagePeople,
    OwnAccount,
    ReadAudit,
    actor_of,
    admin_totp_required,
    client_origin,
)
from sync.central.dashboard import accounts
from sync.central.dashboard.accounts import MIN_PASSWORD_LENGTH, AccountError
from sync.central.dashboard.form_text import FORM_TEXT_CHECKS
from sync.central.dashboard.language import N_
from sync.central.dashboard.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SessionDep,
    check_csrf,
    new_login_csrf,
    parse_day,
    set_cookie,
    store_of,
    templates,
)
from sync.central.people import manage, totp
from sync.central.permissions import ROLES, Principal, Scope, permission_table
from sync.central.sites import list_sites

router = APIRouter(include_in_schema=False, dependencies=FORM_TEXT_CHECKS)
CsrfForm = Annotated[str, Form(max_length=200)]
Secret = Annotated[str, Form(max_length=1000)]
AUDIT_SHOWN = 500


def _page(request: Request, name: str, session, **context):
    from sync.central.dashboard.pages import _page as page

    return page(request, name, session, None, **context)


def _sentence(error: Exception) -> str:
    text = str(error.args[0] if error.args else error)
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# --- People (admin) --------------------------------------------------------------------------


def _people_page(request: Request, session, status: int = 200, **context):
    db = store_of(request).db
    response = _page(
        request, "people.html", session, active="people", people=manage.list_people(db),
        roles=ROLES, site_names=[s.name for s in list_sites(db)],
        min_length=MIN_PASSWORD_LENGTH, permission_rows=permission_table(),
        link_hours=int(manage.PASSWORD_LINK_LIFETIME.total_seconds() // 3600), **context,
    )
    response.status_code = status
    return response


def _link(request: Request, token: str) -> str:
    return str(request.base_url).rstrip("/") + manage.link_path(token)


def _scope_from(form) -> Scope:
    if form.get("all_sites"):
        return Scope(None)
    return Scope(frozenset(str(name) for name in form.getlist("sites")))


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request, principal: ManagePeople, session: SessionDep, note: str = ""):
    return _people_page(request, session, note=note[:200])


@router.post("/people", response_class=HTMLResponse)
async def add_person(request: Request, principal: ManagePeople, session: SessionDep):
    form = await request.form()
    check_csrf(session.csrf_token, str(form.get("csrf", "")))
    name = str(form.get("name", ""))[:200]

    def save():
        with store_of(request).write() as db:
            return manage.add_person(db, actor_of(request, principal), name,
                                     str(form.get("role", "")), _scope_from(form))

    try:
        # Async only to read the form: the write waits for the writer lock, off the event loop.
        user, token = await run_in_threadpool(save)
    except (ValueError, LookupError) as error:
        return _people_page(request, session, 422, error=_sentence(error))
    return _people_page(request, session, note=f"{user.name} added as {user.role}.",
                        link=_link(request, token), link_for=user.name)


@router.post("/people/{user_id}", response_class=HTMLResponse)
async def change_person(request: Request, principal: ManagePeople, session: SessionDep,
                        user_id: str):
    form = await request.form()
    check_csrf(session.csrf_token, str(form.get("csrf", "")))

    def save():
        with store_of(request).write() as db:
            return manage.change_person(db, actor_of(request, principal), user_id,
                                        str(form.get("role", "")), _scope_from(form))

    try:
        person = await run_in_threadpool(save)
    except manage.PersonNotFound as error:
        raise HTTPException(404, _sentence(error)) from None
    except (ValueError, LookupError) as error:
        return _people_page(request, session, 422, error=_sentence(error))
    return RedirectResponse(
        "/people?" + urlencode({"note": f"{person['name']} saved."}), status_code=303)


def _not_yourself(principal: Principal, user_id: str) -> RedirectResponse | None:
    """Disabling or resetting one's own login would lock oneself out mid-task."""
    if user_id != principal.id:
        return None
    note = "You cannot disable or reset your own login here; change your password on your " \
           "account page."
    return RedirectResponse("/people?" + urlencode({"note": note}), 303)


def _switch(request: Request, principal: Principal, user_id: str, disabled: bool):
    if refusal := _not_yourself(principal, user_id):
        return refusal
    try:
        with store_of(request).write() as db:
            person = manage.set_disabled(db, actor_of(request, principal), user_id, disabled)
    except manage.PersonNotFound as error:
        raise HTTPException(404, _sentence(error)) from None
    except AccountError as error:
        return RedirectResponse("/people?" + urlencode({"note": _sentence(error)}), 303)
    state = "disabled: their sessions have ended" if disabled else "enabled"
    return RedirectResponse(
        "/people?" + urlencode({"note": f"{person['name']} {state}."}), status_code=303)


@router.post("/people/{user_id}/disable")
def disable_person(request: Request, principal: ManagePeople, session: SessionDep,
                   user_id: str, csrf: CsrfForm = ""):
    check_csrf(session.csrf_token, csrf)
    return _switch(request, principal, user_id, True)


@router.post("/people/{user_id}/enable")
def enable_person(request: Request, principal: ManagePeople, session: SessionDep,
                  user_id: str, csrf: CsrfForm = ""):
    check_csrf(session.csrf_token, csrf)
    return _switch(request, principal, user_id, False)


@router.post("/people/{user_id}/reset", response_class=HTMLResponse)
def reset_person(request: Request, principal: ManagePeople, session: SessionDep, user_id: str,
                 csrf: CsrfForm = ""):
    check_csrf(session.csrf_token, csrf)
    if refusal := _not_yourself(principal, user_id):
        return refusal
    try:
        with store_of(request).write() as db:
            token = manage.reset_person(db, actor_of(request, principal), user_id)
            person = manage.get_person(db, user_id)
    except manage.PersonNotFound as error:
        raise HTTPException(404, _sentence(error)) from None
    return _people_page(
        request, session,
        note=f"{person['name']}'s password and second factor are cleared and their sessions "
             "ended.",
        link=_link(request, token), link_for=person["name"],
    )


# --- one's own account -----------------------------------------------------------------------


def _account_page(request: Request, session, status: int = 200, **context):
    store = store_of(request)
    user = session.user
    response = _page(
        request, "account.html", session, active="account", min_length=MIN_PASSWORD_LENGTH,
        scope_text=session.principal.scope.describe(),
        totp_required=user.role == "admin" and not user.totp and admin_totp_required(store),
        **context,
    )
    response.status_code = status
    return response


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, principal: OwnAccount, session: SessionDep, note: str = ""):
    return _account_page(request, session, note=note[:200])


def _setup(user_name: str, secret: str | None = None) -> dict:
    secret = secret or totp.new_secret()
    return {
        "secret": secret,
        "secret_groups": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
        "qr": totp.qr_svg(totp.provisioning_uri(secret, user_name)),
    }


@router.get("/account/totp", response_class=HTMLResponse)
def totp_setup_page(request: Request, principal: OwnAccount, session: SessionDep):
    if session.user.totp:
        return RedirectResponse("/account", status_code=303)
    return _account_page(request, session, setup=_setup(session.user.name))


@router.post("/account/totp", response_class=HTMLResponse)
def totp_enable(request: Request, principal: OwnAccount, session: SessionDep,
                csrf: CsrfForm = "", secret: Secret = "",
                code: Annotated[str, Form(max_length=40)] = ""):
    check_csrf(session.csrf_token, csrf)
    try:
        with store_of(request).write() as db:
            codes = manage.enable_totp(db, actor_of(request, principal), session.user, secret,
                                       code)
    except AccountError as error:
        if session.user.totp:  # already on: no new key to offer, the page says why
            return _account_page(request, session, 409, error=_sentence(error))
        setup = _setup(session.user.name, secret if totp.is_new_secret(secret) else None)
        return _account_page(request, session, 422, error=_sentence(error), setup=setup)
    # The page shows the login as it now is (its second factor on).
    session = accounts.find_session(store_of(request).db, request.cookies.get(SESSION_COOKIE))
    return _account_page(request, session,
                         note=N_("The second factor is on: every login now asks for a code."),
                         recovery_codes=codes)


def _password_wait(request: Request, session) -> HTMLResponse | None:
    """The login limiter guards a password typed on the account page as on the login form:
    a stolen session must not become a way to guess the password (and so remove the second
    factor). Over either cap, a 429 page and the password is not checked."""
    limiter = request.app.state.login_limiter
    address = client_origin(request)
    wait = limiter.address_retry_after(address) or limiter.retry_after(session.user.name, address)
    if not wait:
        return None
    response = _account_page(
        request, session, 429,
        error=f"Too many wrong passwords. Wait {wait} seconds, then try again.")
    response.headers["Retry-After"] = str(wait)
    return response


def _wrong_password(request: Request, session) -> None:
    request.app.state.login_limiter.failed(session.user.name, client_origin(request))


@router.post("/account/totp/disable")
def totp_disable(request: Request, principal: OwnAccount, session: SessionDep,
                 csrf: CsrfForm = "", password: Secret = ""):
    check_csrf(session.csrf_token, csrf)
    if refusal := _password_wait(request, session):
        return refusal
    try:
        with store_of(request).write() as db:
            manage.disable_totp(db, actor_of(request, principal), session.user, password)
    except AccountError as error:
        if isinstance(error, manage.WrongPassword):
            _wrong_password(request, session)
        return _account_page(request, session, 422, error=_sentence(error))
    return RedirectResponse("/account?" + urlencode({"note": N_("The second factor is off.")}), 303)


@router.post("/account/password")
def change_password(request: Request, principal: OwnAccount, session: SessionDep,
                    csrf: CsrfForm = "", current: Secret = "", new: Secret = "",
                    again: Secret = ""):
    check_csrf(session.csrf_token, csrf)
    if new != again:
        return _account_page(request, session, 422,
                             error=N_("The two new passwords differ; nothing was changed."))
    if refusal := _password_wait(request, session):
        return refusal
    try:
        with store_of(request).write() as db:
            manage.change_own_password(db, actor_of(request, principal), session.user,
                                       current, new, request.cookies.get(SESSION_COOKIE))
    except AccountError as error:
        if isinstance(error, manage.WrongPassword):
            _wrong_password(request, session)
        return _account_page(request, session, 422, error=_sentence(error))
    note = N_("Your password is changed; your other sessions have ended.")
    return RedirectResponse("/account?" + urlencode({"note": note}), 303)


@router.post("/account/language")
def change_language(request: Request, principal: OwnAccount, session: SessionDep,
                    csrf: CsrfForm = "", language: Annotated[str, Form(max_length=40)] = ""):
    check_csrf(session.csrf_token, csrf)
    try:
        with store_of(request).write() as db:
            manage.set_own_language(db, actor_of(request, principal), session.user, language)
    except ValueError as error:
        return _account_page(request, session, 422, error=str(error))
    note = N_("The dashboard now speaks the language you chose.")
    return RedirectResponse("/account?" + urlencode({"note": note}), 303)


# --- the set-password link (no login: the link is the proof) ---------------------------------


def _set_form(request: Request, error: str | None = None, status: int = 200,
              link_token: str = ""):
    """The form; after a refused password it keeps the (unspent) link's token, in the page
    only, so the person can try another password."""
    token = new_login_csrf()
    response = templates.TemplateResponse(
        request, "set_password.html",
        {"csrf": token, "error": error, "min_length": MIN_PASSWORD_LENGTH,
         "token": link_token},
        status_code=status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get(manage.SET_PASSWORD_PATH, response_class=HTMLResponse)
def set_password_page(request: Request):
    return _set_form(request)


@router.post(manage.SET_PASSWORD_PATH)
def set_password(request: Request, csrf: CsrfForm = "", token: Secret = "",
                 password: Secret = "", again: Secret = ""):
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), csrf)
    if password != again:
        return _set_form(request, "The two passwords differ; type them again.", 422, token)
    try:
        with store_of(request).write() as db:
            manage.redeem_password_link(db, token, password, client_origin(request))
    except AccountError as error:
        spent = "used or has expired" in str(error)
        return _set_form(request, _sentence(error), 422, "" if spent else token)
    from sync.central.dashboard.pages import _login_form

    return _login_form(request, "/", None, note="Your password is set. Log in with it now.")


# --- the audit trail -------------------------------------------------------------------------


def audit_filter(params) -> audit.AuditFilter:
    """From the page's query string: UTC days, inclusive at both ends."""
    # The dashboard's own day check (a real date between its first and last day): a 'to' of
    # 9999-12-31 would otherwise overflow the day after it.
    first, last = parse_day(params.get("from"), "from"), parse_day(params.get("to"), "to")
    end = (last + timedelta(days=1)).isoformat() if last else None
    return audit.AuditFilter(
        start=first.isoformat() if first else None, end=end, actor=params.get("actor") or None,
        action=params.get("action") or None, site=params.get("site") or None,
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, principal: ReadAudit, session: SessionDep):
    flt = audit_filter(request.query_params)
    db = store_of(request).db
    query = {k: v for k, v in request.query_params.items()
             if k in ("from", "to", "actor", "action", "site") and v}
    return _page(
        request, "audit.html", session, active="audit",
        entries=audit.entries(db, flt, AUDIT_SHOWN), action_choices=audit.actions(db),
        q=query, query=urlencode(query), limit=AUDIT_SHOWN,
    )


@router.get("/audit.csv")
def audit_csv(request: Request, principal: ReadAudit, session: SessionDep):
    from sync.central.dashboard.pages import _csv_response, _streamed

    flt = audit_filter(request.query_params)
    return _csv_response(_streamed(request, lambda db, _: audit.csv_chunks(db, flt), None),
                         "audit.csv")
