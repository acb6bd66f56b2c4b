"""The one check every route of people's (the dashboard, the reporting API) passes:
``Depends(require("action"))``.

It finds who is asking (the dashboard's session cookie on a page, form or download; the
reporting token's bearer header on ``/api/...``), refuses what their role may not do (403 with
a sentence), and answers a ``site`` outside their scope exactly as a site that does not exist
(404, the same body). What it returns is the :class:`~sync.central.permissions.Principal`;
routes scope what they read with ``principal.scope``. The table of who may do what is
``sync.central.permissions``; ``tests/central/test_route_permissions.py`` fails for a route
that declares no action (or is not listed as open to all, or as a kiosk's).

An admin whose store requires a second factor for admins (a site's ``admin_totp`` set to
``required``) and who has none yet may only reach their own account page until it is set up.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials

from sync.central.audit import Actor
from sync.central.auth import authenticate_reporter
from sync.central.permissions import ACTIONS, Principal
from sync.central.query_params import check_query_parameters
from sync.central.security import authenticate_with_limit, reporting_bearer
from sync.central.storage import CentralStore

API_PREFIX = "/api/"


class SecondFactorRequired(Exception):
    """An admin must set up TOTP before anything else (the store requires it for admins)."""


def api_site_missing(site: str) -> HTTPException:
    """What the API answers for a site it does not know, or one outside the token's scope."""
    return HTTPException(404, f"There is no site named {site!r}.")


def page_site_missing(site: str) -> HTTPException:
    """What the dashboard answers for a site it does not know or the login may not see."""
    return HTTPException(404, f"There is no site named {site!r}; choose one from the list.")


def admin_totp_required(store: CentralStore) -> bool:
    row = store.db.execute("SELECT 1 FROM sites WHERE admin_totp = 'required' LIMIT 1")
    return row.fetchone() is not None


def _from_token(request: Request, credentials) -> Principal:
    store: CentralStore = request.app.state.store
    token = credentials.credentials if credentials else None
    reporter = authenticate_with_limit(request, lambda: authenticate_reporter(store.db, token),
                              bool(token))
    check_query_parameters(request)
    return reporter.principal


def _from_session(request: Request, action: str) -> Principal:
    from sync.central.dashboard.web import current_session

    session = current_session(request)
    request.state.session = session
    user = session.user
    if (user.role == "admin" and not user.totp and action != "own_account"
            and admin_totp_required(request.app.state.store)):
        raise SecondFactorRequired()
    return session.principal


def require(action: str):
    """The dependency for a route that does ``action`` (a key of ``permissions.ACTIONS``)."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(reporting_bearer)],
    ) -> Principal:
        api = request.url.path.startswith(API_PREFIX)
        principal = _from_token(request, credentials) if api else _from_session(request, action)
        if not principal.can(action):
            what = "reporting token" if api else "login"
            raise HTTPException(
                403,
                f"This {what} ({principal.role}) may not do this; ask an admin "
                f"{'for a token that may' if api else 'to change your role'}.",
            )
        site = request.query_params.get("site")
        if site and not principal.scope.allows(site):
            raise api_site_missing(site) if api else page_site_missing(site)
        request.state.principal = principal
        return principal

    check.permission = action  # read by the route-table test
    return check


def declared_permission(route) -> str | None:
    """The action a route's dependencies declare (through ``require``), if any."""
    dependant = getattr(route, "dependant", None)
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dependant = pending.pop()
        permission = getattr(dependant.call, "permission", None)
        if permission:
            return permission
        pending.extend(dependant.dependencies)
    return None


View = Annotated[Principal, Depends(require("view"))]
OwnAccount = Annotated[Principal, Depends(require("own_account"))]
AcknowledgeAlerts = Annotated[Principal, Depends(require("acknowledge_alerts"))]
EditSiteSettings = Annotated[Principal, Depends(require("edit_site_settings"))]
ManageAlertChannels = Annotated[Principal, Depends(require("manage_alert_channels"))]
EnrolKiosks = Annotated[Principal, Depends(require("enrol_kiosks"))]
ManagePeople = Annotated[Principal, Depends(require("manage_people"))]
ReadAudit = Annotated[Principal, Depends(require("read_audit"))]


def client_origin(request: Request) -> str:
    """Where a request came from, for the audit trail: the client's address (the socket's
    peer, or what a ``--trusted-proxy`` forwards)."""
    return request.client.host if request.client else "unknown"


def actor_of(request: Request, principal: Principal) -> Actor:
    return Actor(principal.kind, principal.actor, client_origin(request))
