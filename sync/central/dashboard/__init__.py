"""The practice manager's dashboard, served by the central store at ``/``.

``install_dashboard(app)`` adds its routes to the app ``sync.central.app.create_app`` made;
``one_time_login_url`` gives the embedded store's launcher a link to print.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the web stack is imported only when a dashboard is served, not by the CLI
    from fastapi import FastAPI, Request

# No inline scripts anywhere (figures travel as JSON data blocks), so scripts can be 'self'
# only; Plotly injects <style> elements, hence 'unsafe-inline' for styles alone.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/dashboard/", "/export/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def install_dashboard(app: FastAPI) -> FastAPI:
    """Add the dashboard to a central store app (once; a second call changes nothing)."""
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import JSONResponse, RedirectResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from sync.central.access import SecondFactorRequired
    from sync.central.dashboard import accounts
    from sync.central.dashboard.pages import api_router, router
    from sync.central.dashboard.people_pages import router as people_router
    from sync.central.dashboard.web import LoginRequired, login_redirect_url, templates
    from sync.central.response_headers import SecurityHeaders

    if getattr(app.state, "dashboard_installed", False):
        return app

    app.state.dashboard_installed = True
    app.state.login_limiter = accounts.LoginRateLimiter()
    app.include_router(router)
    app.include_router(api_router)  # its token check refuses unknown query parameters
    app.include_router(people_router)
    from sync.central.alerts.page import install as install_alerts_page

    install_alerts_page(app)
    from sync.central.dashboard.add_kiosk import install as install_add_kiosk_page

    install_add_kiosk_page(app)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired):
        if _wants_html(request) or request.method == "POST":
            return RedirectResponse(login_redirect_url(request), status_code=303)
        return JSONResponse(
            {"detail": "Log in to the dashboard first (your session may have expired)."},
            status_code=401,
        )

    @app.exception_handler(SecondFactorRequired)
    async def second_factor_required(request: Request, exc: SecondFactorRequired):
        if _wants_html(request) or request.method == "GET":
            return RedirectResponse("/account/totp", status_code=303)
        return JSONResponse(
            {"detail": "Admins of this store must use a second factor: set it up on your "
                       "account page (/account/totp) first."},
            status_code=403,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if not _wants_html(request):
            return await http_exception_handler(request, exc)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": exc.status_code, "message": exc.detail},
            status_code=exc.status_code,
        )

    # A pure ASGI middleware: BaseHTTPMiddleware would wrap every kiosk batch too.
    app.add_middleware(SecurityHeaders, content_security_policy=CONTENT_SECURITY_POLICY)

    return app


def one_time_login_url(data_dir: Path | None, base_url: str,
                       database_url: str | None = None) -> str:
    """A link that logs in once within a few minutes (as the first user; "admin" is made
    with a random password if there is no user yet). The embedded launcher prints it."""
    from sync.central.dashboard import accounts
    from sync.central.storage import CentralStore

    store = CentralStore(None if data_dir is None else Path(data_dir), database_url=database_url)
    try:
        with store.write() as db:
            token = accounts.create_login_link_token(db)
    finally:
        store.close()
    return f"{base_url.rstrip('/')}/login/once?token={token}"
