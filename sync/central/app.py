"""The central store's FastAPI application: one data directory, one router per area.

The dashboard (login, HTML pages, CSV export) adds its own routers to what ``create_app``
returns; everything it needs is on ``app.state.store``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from kiosk.service_notify import ServiceNotifier
from kiosk.shared.wire import PROTOCOL_VERSION
from sync.central import database_down, disk_full
from sync.central.alerts import routes as alert_routes
from sync.central.alerts.scheduler import AlertService
from sync.central.backup_schedule import DailyBackups
from sync.central.dashboard import install_dashboard
from sync.central.query_params import refuse_unknown_query_parameters
from sync.central.retention_schedule import DailyRetention, RetentionPolicy
from sync.central.routes import audit, enrol, events, health, kiosk_config, metrics
from sync.central.security import AuthFailures
from sync.central.service_link import linked
from sync.central.storage import CentralStore, StoreUnavailable

API_ROUTERS = (events.router, kiosk_config.router, metrics.router, health.router,
               alert_routes.router, audit.router, enrol.router)
# Routes without a token check their query string here (the others after the token).
TOKENLESS_ROUTERS = (health.router, enrol.router)


def create_app(
    data_dir: Path | None,
    *,
    database_url: str | None = None,
    read_database_url: str | None = None,
    backups: DailyBackups | None = None,
    service: ServiceNotifier | None = None,
    retention: RetentionPolicy | None = None,
) -> FastAPI:
    """The app over ``data_dir`` (created, and its schema migrated, right away), or over the
    PostgreSQL database at ``database_url`` (reads that may lag from ``read_database_url``).
    ``backups``: the daily backup to run while serving; ``service``: systemd's notify socket,
    for ``main.py central`` under its unit (sync/central/service_link.py); ``retention``: a
    daily purge run while serving (the embedded store's; ``central`` has its timer)."""
    store = CentralStore(None if data_dir is None else Path(data_dir),
                         database_url=database_url, read_database_url=read_database_url)
    alerts = AlertService(store)
    daily_purge = DailyRetention(store, retention) if retention is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The alert evaluator (every <= 30 s, and at once after ingest) and the deliverer.
        alerts.start()
        if backups is not None:
            backups.start()
        if daily_purge is not None:
            daily_purge.start()
        async with linked(service):
            yield
        if daily_purge is not None:
            daily_purge.stop()
        if backups is not None:
            backups.stop()
        alerts.stop()
        store.close()

    app = FastAPI(
        title="Clinic kiosk central store",
        version=f"protocol {PROTOCOL_VERSION}",
        description=(
            "Kiosks push events (device token); reporting clients read metrics (reporting "
            "token). The wire format and the rules of delivery are in the README, 'HTTP API'."
        ),
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.alerts = alerts
    app.state.auth_failures = AuthFailures()
    app.state.enrol_code_limiter = enrol.code_limiter()
    for router in API_ROUTERS:
        # Routes with a token check their query string after the token (security.py);
        # the tokenless ones have it checked here.
        checks = [Depends(refuse_unknown_query_parameters)] if router in TOKENLESS_ROUTERS else []
        app.include_router(router, dependencies=checks)
    app.add_exception_handler(sqlite3.OperationalError, _database_error)
    # A thread that finds PostgreSQL down when it first needs a connection gets this one.
    app.add_exception_handler(StoreUnavailable, _database_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    install_dashboard(app)
    return app


async def _database_error(request: Request, error: Exception) -> Response:
    """A full disk is the operator's to fix and the client's to retry: 507 with a sentence
    and Retry-After; so is PostgreSQL out of reach, 503. Any other database error stays a
    500 (and is logged)."""
    if disk_full.is_disk_full(error):
        full = StarletteHTTPException(
            507, disk_full.SENTENCE, headers={"Retry-After": str(disk_full.RETRY_AFTER_S)}
        )
    elif database_down.is_database_unreachable(error):
        full = StarletteHTTPException(
            503, database_down.SENTENCE,
            headers={"Retry-After": str(database_down.RETRY_AFTER_S)},
        )
    else:
        raise error
    # The app's own handler: JSON for the API, the dashboard's error page for a browser.
    handler = request.app.exception_handlers.get(StarletteHTTPException)
    if handler is not None:
        return await handler(request, full)
    return JSONResponse({"detail": full.detail}, status_code=full.status_code,
                        headers=full.headers)


async def _client_gone(request: Request, error: Exception) -> Response:
    # The client left (or was cut off for sending too slowly) before its body was in: there
    # is nobody to answer and nothing to log.
    return Response(status_code=400)
