"""The dashboard's routes: login/logout, one page per panel, the live queue, CSV downloads.

Routes stay thin: ``panels`` computes, ``charts`` shapes the figures, the templates show.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

import plotly
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from kiosk.shared import metrics
from kiosk.shared.fft import ANSWERS, QUESTION, fft_faces
from kiosk.shared.timeutil import parse_rfc3339, to_rfc3339, utc_now
from sync.central import audit, comments, fft
from sync.central.access import OwnAccount, View, actor_of, api_site_missing, client_origin
from sync.central.audit import Actor
from sync.central.dashboard import accounts, charts, export, panels
from sync.central.dashboard.form_text import FORM_TEXT_CHECKS
from sync.central.dashboard.language import N_
from sync.central.dashboard.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Filters,
    FiltersDep,
    SessionDep,
    check_csrf,
    new_login_csrf,
    safe_next,
    set_cookie,
    store_of,
    templates,
)
from sync.central.dashboard.windows import windows
from sync.central.metrics_query import InvalidRange, parse_range
from sync.central.people import manage
from sync.central.schemas import (
    CSV_RESPONSE,
    OPTIONAL_INSTANT,
    RANGE_ERROR,
    REPORTING_REFUSALS,
    SITE_MISSING,
    ErrorDetail,
)
from sync.central.sites import list_sites, site_exists

router = APIRouter(include_in_schema=False, dependencies=FORM_TEXT_CHECKS)
api_router = APIRouter(prefix="/api/v1/export", tags=["reporting"])

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
FONTS = Path(__file__).resolve().parents[3] / "assets" / "fonts"
STATIC = Path(__file__).parent / "static"
# (key, path, label, the action the page needs): a link is shown to those whose role has
# the action (a courtesy: every route checks it again, ``sync.central.access``).
NAV = (
    ("today", "/", N_("Today"), "view"),
    ("trends", "/trends", N_("Trends"), "view"),
    ("waits", "/rating-by-wait", N_("Rating by wait"), "view"),
    ("reasons", "/reasons", N_("Follow-up reasons"), "view"),
    ("compare", "/compare", N_("Compare"), "view"),
    ("devices", "/devices", N_("Devices"), "view"),
    ("alerts", "/alerts", N_("Alerts"), "view"),
    ("fft", "/fft", N_("FFT"), "view"),
    ("export", "/export", N_("Export"), "view"),
    ("people", "/people", N_("People"), "manage_people"),
    ("audit", "/audit", N_("Audit"), "read_audit"),
)


def limiter(request: Request) -> accounts.LoginRateLimiter:
    return request.app.state.login_limiter


def _page(request: Request, name: str, session, flt: Filters | None, **context) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"nav": NAV, "session": session, "filters": flt, "charts": {}, **context},
    )


# --- login ---------------------------------------------------------------------------------


def _login_form(request: Request, next_url: str, error: str | None = None, status: int = 200,
                note: str | None = None):
    token = new_login_csrf()
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"csrf": token, "next": next_url, "error": error, "note": note},
        status_code=status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/"):
    return _login_form(request, safe_next(next))


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
):
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), csrf)
    address = request.client.host if request.client else "unknown"
    refusal = None
    if wait := limiter(request).address_retry_after(address):
        refusal = "Too many failed logins from this computer's network address."
    elif wait := limiter(request).retry_after(username, address):
        refusal = "Too many failed logins for this name."
    if refusal:
        response = _login_form(
            request,
            safe_next(next),
            f"{refusal} Wait {wait} seconds, then try again.",
            status=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    store = store_of(request)
    user = accounts.verify_password(store.db, username, password)
    if user is None:
        limiter(request).failed(username, address)
        _record_failed_login(store, username, address, "password")
        return _login_form(
            request, safe_next(next), "The name or password is not right. Try again.", 401
        )
    limiter(request).succeeded(username, address)
    return _after_password(request, store, user, safe_next(next), "password")


PENDING_COOKIE = "dashboard_second_factor"


def _record_failed_login(store, name: str, origin: str, factor: str) -> None:
    """A failed login in the audit trail. The name tried is kept only when it is a login's
    (a password typed into the name field by mistake must never be stored)."""
    with store.write() as db:
        known = db.execute("SELECT name FROM users WHERE name = ?", [(name or "").strip()])
        row = known.fetchone()
        audit.record(db, Actor("anonymous", "anonymous", origin), "login.failed",
                     row[0] if row else "(not a login name)", after={"factor": factor})


def _after_password(request: Request, store, user: accounts.User, target: str, method: str):
    """Logged in, unless the login has a second factor: then a short-lived pending session
    that opens only the code's page."""
    if not user.totp:
        return _logged_in(request, store, user, target, method)
    with store.write() as db:
        pending_id = accounts.open_session(db, user, pending="totp")
    response = RedirectResponse("/login/totp?next=" + quote(target, safe=""), status_code=303)
    set_cookie(request, response, PENDING_COOKIE, pending_id,
               max_age=int(accounts.PENDING_LIFETIME.total_seconds()))
    return response


def _logged_in(request: Request, store, user: accounts.User, target: str, method: str):
    with store.write() as db:
        session_id = accounts.open_session(db, user)
        audit.record(db, Actor("user", f"user:{user.name}", client_origin(request)), "login",
                     user.name, after={"method": method})
    response = RedirectResponse(target, status_code=303)
    set_cookie(
        request,
        response,
        SESSION_COOKIE,
        session_id,
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    response.delete_cookie(PENDING_COOKIE, path="/")
    return response


def _code_form(request: Request, next_url: str, error: str | None = None, status: int = 200):
    token = new_login_csrf()
    response = templates.TemplateResponse(
        request, "login_code.html", {"csrf": token, "next": next_url, "error": error},
        status_code=status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get("/login/totp", response_class=HTMLResponse)
def login_code_page(request: Request, next: str = "/"):
    """The second step of a login with TOTP (the pending cookie says whose)."""
    pending = accounts.find_session(store_of(request).db, request.cookies.get(PENDING_COOKIE),
                                    pending="totp")
    if pending is None:
        return RedirectResponse("/login?next=" + quote(safe_next(next), safe=""), 303)
    return _code_form(request, safe_next(next))


@router.post("/login/totp")
def login_code(
    request: Request,
    code: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
):
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), csrf)
    store = store_of(request)
    pending_id = request.cookies.get(PENDING_COOKIE)
    pending = accounts.find_session(store.db, pending_id, pending="totp")
    if pending is None:
        return _login_form(request, safe_next(next),
                           "That took too long; log in again with your password.", 401)
    address = client_origin(request)
    name = pending.user.name
    # The address's cap first, as the password login does: codes guessed for many pending
    # logins from one address are guessing too.
    wait = limiter(request).address_retry_after(address) \
        or limiter(request).retry_after(name, address)
    if wait:
        response = _code_form(request, safe_next(next),
                              f"Too many wrong codes. Wait {wait} seconds, then try again.", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    with store.write() as db:
        factor = manage.check_second_factor(db, pending.user.id, code)
        if factor is not None:
            accounts.close_session(db, pending_id)
    if factor is None:
        limiter(request).failed(name, address)
        _record_failed_login(store, name, address, "totp")
        return _code_form(request, safe_next(next),
                          "That code is not right. Type the 6 digits your app shows now, or "
                          "one of your recovery codes.", 401)
    limiter(request).succeeded(name, address)
    method = "password+totp" if factor == "totp" else "password+recovery code"
    return _logged_in(request, store, pending.user, safe_next(next), method)


# The limiter's name for failed one-time links (no login name is typed); the address's cap
# is what bounds them.
LOGIN_LINK_NAME = "(login link)"


@router.get("/login/once")
def login_once(request: Request, token: str = ""):
    """The embedded store's one-time link: valid once, for a few minutes."""
    store = store_of(request)
    address = client_origin(request)
    # Over the address's cap, a link is not even looked at and nothing is recorded: the
    # limiter, not the audit table, absorbs a flood of made-up tokens.
    if wait := limiter(request).address_retry_after(address):
        response = _login_form(
            request, "/",
            f"Too many failed logins from this computer's network address. Wait {wait} "
            "seconds, then try again.", status=429)
        response.headers["Retry-After"] = str(wait)
        return response
    with store.write() as db:
        user = accounts.redeem_login_link(db, token)
    if user is None:
        limiter(request).failed(LOGIN_LINK_NAME, address)
        _record_failed_login(store, "", address, "login link")
        return _login_form(
            request,
            "/",
            "This login link has been used or has expired. Log in with a name and password, "
            "or start the kiosk again for a new link.",
            status=401,
        )
    return _after_password(request, store, user, "/", "one-time link")


@router.post("/logout")
def logout(request: Request, principal: OwnAccount, session: SessionDep,
           csrf: Annotated[str, Form()] = ""):
    check_csrf(session.csrf_token, csrf)
    with store_of(request).write() as db:
        accounts.close_session(db, request.cookies.get(SESSION_COOKIE))
        audit.record(db, actor_of(request, principal), "logout", principal.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- panels --------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def today_page(request: Request, session: SessionDep, flt: FiltersDep):
    now = utc_now()
    db = store_of(request).read_db
    figures = panels.today(db, flt.sites, None, now, flt.lang)
    queue = panels.live_queue(db, flt.sites, None, now)
    return _page(request, "today.html", session, flt, active="today", t=figures, queue=queue)


@router.get("/dashboard/queue.json")
def queue_json(request: Request, session: SessionDep, flt: FiltersDep) -> dict:
    return panels.live_queue(store_of(request).read_db, flt.sites, None, utc_now())


@router.get("/trends", response_class=HTMLResponse)
def trends_page(request: Request, session: SessionDep, flt: FiltersDep):
    data = panels.trends(store_of(request).read_db, flt.sites, flt.first, flt.last, None)
    target = data["target_wait_min"]
    figures = {
        "waits-by-day": charts.waits_by_day(data["days"], target),
        "satisfaction-by-day": charts.satisfaction_by_day(data["days"]),
        "by-hour": charts.by_hour(data["hours"], target),
    }
    return _page(request, "trends.html", session, flt, active="trends", data=data, charts=figures)


@router.get("/rating-by-wait", response_class=HTMLResponse)
def rating_by_wait_page(request: Request, session: SessionDep, flt: FiltersDep):
    data = panels.rating_by_wait(store_of(request).read_db, flt.sites, flt.first, flt.last, None)
    figures = {"rating-by-wait": charts.rating_by_wait(data["buckets"])}
    return _page(
        request, "rating_by_wait.html", session, flt, active="waits", data=data, charts=figures
    )


@router.get("/reasons", response_class=HTMLResponse)
def reasons_page(request: Request, session: SessionDep, flt: FiltersDep):
    data = panels.followup_reasons(store_of(request).read_db, flt.sites, flt.first, flt.last, None)
    tags = [row["tag"] for row in data["tags"]]
    figures = {"reasons": charts.reasons_over_time(data["days"], tags)} if tags else {}
    return _page(request, "reasons.html", session, flt, active="reasons", data=data, charts=figures)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, session: SessionDep, flt: FiltersDep):
    db = store_of(request).read_db
    names = {row[0]: row[1] for row in db.execute("SELECT id, name FROM devices")}
    site_of = {row[0]: row[1] for row in db.execute("SELECT id, site FROM devices")}
    labels = {key: f"{site_of[key]} · {name}" for key, name in names.items()}
    data = panels.compare(db, flt.sites, flt.first, flt.last, labels)
    figures = {
        "compare-happy": charts.compare_bars(
            data["desks"], "happy_index", "Happy Index", "", charts.GREEN
        ),
        "compare-wait": charts.compare_bars(
            data["desks"], "wait_median_min", "median wait (minutes)", " min", charts.BLUE
        ),
    }
    return _page(request, "compare.html", session, flt, active="compare", data=data, charts=figures)


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, session: SessionDep, flt: FiltersDep):
    now = utc_now()
    store = store_of(request)
    rows = panels.devices(store.read_db, flt.sites, now)
    return _page(
        request,
        "devices.html",
        session,
        flt,
        active="devices",
        devices=rows,
        silent_after=int(panels.SILENT_AFTER.total_seconds() // 60),
        replica_lag=store.replica_lag,
    )


@router.get("/export", response_class=HTMLResponse)
def export_page(request: Request, session: SessionDep, flt: FiltersDep):
    return _page(request, "export.html", session, flt, active="export")


def _csv_response(chunks, name: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _streamed(request: Request, make, ranges):
    """CSV rows read on a connection of their own (the stream is consumed in other threads),
    from the replica when there is one."""

    store = store_of(request)

    def chunks():
        with store.reader() as db:
            yield from make(db, ranges)

    return chunks()


def _local_ranges(flt: Filters) -> list[tuple[str | None, str, str]]:
    return [(w.site.name, w.start, w.end) for w in windows(flt.sites, flt.first, flt.last)]


@router.get("/export/visits.csv")
def export_visits(request: Request, session: SessionDep, flt: FiltersDep):
    chunks = _streamed(request, export.visits_csv, _local_ranges(flt))
    return _csv_response(chunks, f"visits_{flt.first}_{flt.last}.csv")


@router.get("/export/ratings.csv")
def export_ratings(request: Request, session: SessionDep, flt: FiltersDep):
    chunks = _streamed(request, export.ratings_csv, _local_ranges(flt))
    return _csv_response(chunks, f"ratings_{flt.first}_{flt.last}.csv")


# --- the NHS Friends and Family Test monthly return ------------------------------------------

HISTORY_MONTHS = 12
MONTH_HELP = ("The site's local calendar month, YYYY-MM (e.g. 2026-11), or a range "
              "YYYY-MM..YYYY-MM (at most 36 months); default: last month (on the site's "
              "clock for one site; on UTC's when several are asked for).")


def _months_zone(sites: list) -> str:
    """Whose calendar says which month is "last month" when none is given: the site's when
    there is one; UTC's for several (each could be in its own month around midnight of the
    1st, and one return lists one month for all of them). Each month is still counted on
    each site's own clock."""
    return sites[0].timezone if len(sites) == 1 else "UTC"


def _months(text: str | None, zone: str = "UTC") -> list[fft.Month]:
    """The months asked for; a bad ``month`` is a 400 with what to send instead."""
    try:
        return fft.parse_months(text, metrics.local_today(utc_now(), zone))
    except fft.InvalidMonth as error:
        message = str(error)
        raise HTTPException(400, f"{message[:1].upper()}{message[1:]}.") from None


def _fft_csv(db, rows_of) -> Iterator[str]:
    return export.csv_chunks(fft.CSV_COLUMNS, (fft.csv_row(row) for row in rows_of(db)))


@router.get("/fft", response_class=HTMLResponse)
def fft_page(request: Request, session: SessionDep, flt: FiltersDep, month: str | None = None):
    shown = _months(month, _months_zone(flt.sites))
    if len(shown) != 1:
        raise HTTPException(400, "The FFT page shows one month: send month=YYYY-MM.")
    chosen = shown[0]
    history = [chosen]
    while len(history) < HISTORY_MONTHS:
        history.insert(0, history[0].previous())
    db = store_of(request).read_db
    reads_comments = session.principal.can("read_comments")
    listed = []
    if reads_comments:
        for site in flt.sites:
            start, end = chosen.bounds(site.timezone)
            for comment in comments.comments_between(
                db, site.name, parse_rfc3339(start), parse_rfc3339(end)
            ):
                # Shown on the site's clock, as the month is counted.
                comment["local_time"] = parse_rfc3339(comment["occurred_at"]).astimezone(
                    ZoneInfo(site.timezone)).strftime("%Y-%m-%d %H:%M")
                listed.append(comment)
        listed.sort(key=lambda c: c["occurred_at"], reverse=True)
    return _page(
        request, "fft.html", session, flt, active="fft", month=chosen,
        rows=fft.monthly_return(db, flt.sites, [chosen]),
        history=fft.monthly_return(db, flt.sites, history),
        answers=ANSWERS, question=QUESTION, reads_comments=reads_comments,
        comments=listed, faces=dict(fft_faces()),
    )


@router.get("/export/fft.csv")
def export_fft(request: Request, session: SessionDep, flt: FiltersDep, month: str | None = None):
    months = _months(month, _months_zone(flt.sites))
    sites = flt.sites
    chunks = _streamed(request, lambda db, _: _fft_csv(
        db, lambda d: fft.monthly_return(d, sites, months)), None)
    return _csv_response(chunks, f"fft_{months[0]}_{months[-1]}.csv")


# --- static files (no CDN: a clinic network may have no internet) --------------------------


@router.get("/static/dashboard/plotly.min.js")
def plotly_js():
    return FileResponse(
        PLOTLY_JS,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/static/dashboard/fonts/{name}")
def font(name: str):
    if name not in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        raise HTTPException(404, "There is no such font here.")
    return FileResponse(
        FONTS / name, media_type="font/ttf", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/static/dashboard/{name}")
def static_file(name: str):
    types = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
    if name not in types:
        raise HTTPException(404, "There is no such file here.")
    return FileResponse(STATIC / name, media_type=types[name])


# --- the same exports for reporting tokens -------------------------------------------------

RANGE_HELP = "RFC 3339 instant like 2026-11-23T00:00:00Z; default: the 24 hours before 'to'."


def _api_ranges(
    request: Request,
    principal: View,
    site: Annotated[str | None, Query(description="Site name; all when left out.")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description=RANGE_HELP, json_schema_extra=OPTIONAL_INSTANT)
    ] = None,
    to: Annotated[
        str | None, Query(description="RFC 3339; default: now.", json_schema_extra=OPTIONAL_INSTANT)
    ] = None,
) -> list[tuple[str | None, str, str]]:
    """The export's (site, from, to) from the query string; a bad range is a 422. Without a
    site, a token of some sites reads each of its sites (never the others)."""
    try:
        start, end = parse_range(from_, to, utc_now())
    except InvalidRange as error:
        raise HTTPException(422, f"{error}.") from None
    bounds = (to_rfc3339(start), to_rfc3339(end))
    if site is not None and not site_exists(store_of(request).db, site):
        raise api_site_missing(site)  # as a site outside the token's scope answers
    if site is None and not principal.scope.everything:
        return [(name, *bounds) for name in sorted(principal.scope.sites)]
    return [(site, *bounds)]


ApiRangesDep = Annotated[list, Depends(_api_ranges)]


@api_router.get(
    "/visits.csv",
    response_class=StreamingResponse,
    responses={200: CSV_RESPONSE, 422: RANGE_ERROR, **REPORTING_REFUSALS, **SITE_MISSING},
    summary="Visits checked in within a range, as CSV",
)
async def api_export_visits(request: Request, ranges: ApiRangesDep):
    return _csv_response(_streamed(request, export.visits_csv, ranges), "visits.csv")


@api_router.get(
    "/fft.csv",
    response_class=StreamingResponse,
    responses={200: CSV_RESPONSE,
               400: {"model": ErrorDetail, "description": "A bad month, or a range of months "
                     "that ends before it starts or is longer than 36 months."},
               404: {"model": ErrorDetail, "description": "No such site."},
               422: {"model": ErrorDetail, "description": "An unknown query parameter."},
               **REPORTING_REFUSALS},
    summary="The NHS Friends and Family Test monthly return, as CSV",
    description=(
        "One row per site and month (the site's local calendar month): the count of each of the "
        "six answers (Very good, Good, Neither good nor poor, Poor, Very poor, Don't know), the "
        "total, % positive ((Very good + Good) / total) and % negative ((Poor + Very poor) / "
        "total), and the collection mode 'tablet/kiosk'. Months with no responses are rows of "
        "zeros. Counted: answers asked as the FFT question (sent with survey 'fft') and "
        "Don't know; misuse is left out; a faces site's faces, 4- or 5-point, are not FFT "
        "answers and are not counted. Without month: last month, on the site's clock for one "
        "site, on UTC's for several."
    ),
)
async def api_export_fft(
    request: Request,
    principal: View,
    month: Annotated[
        str | None, Query(description=MONTH_HELP, json_schema_extra=fft.MONTH_SCHEMA)
    ] = None,
    site: Annotated[str | None, Query(description="Site name; all sites when left out.")] = None,
):
    # A token of some sites reads only those; one outside its scope is as unknown as a
    # missing one (``require`` already answered that for a named site). Read in the thread
    # pool: on PostgreSQL a read is a round trip that must not hold up the event loop.
    every = await run_in_threadpool(lambda: list_sites(store_of(request).db))
    sites = [s for s in every if principal.scope.allows(s.name)]
    if site:
        sites = [s for s in sites if s.name == site]
        if not sites:
            raise api_site_missing(site)
    months = _months(month, _months_zone(sites))
    chunks = _streamed(request, lambda db, _: _fft_csv(
        db, lambda d: fft.monthly_return(d, sites, months)), None)
    return _csv_response(chunks, f"fft_{months[0]}_{months[-1]}.csv")


@api_router.get(
    "/ratings.csv",
    response_class=StreamingResponse,
    responses={200: CSV_RESPONSE, 422: RANGE_ERROR, **REPORTING_REFUSALS, **SITE_MISSING},
    summary="Ratings that occurred within a range, as CSV",
)
async def api_export_ratings(request: Request, ranges: ApiRangesDep):
    return _csv_response(_streamed(request, export.ratings_csv, ranges), "ratings.csv")
