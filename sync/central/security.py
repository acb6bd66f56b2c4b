"""FastAPI dependencies that turn a bearer token into a device or a reporting client.

401 (with ``WWW-Authenticate``) when the token is missing, unknown or revoked; 403 when it is a
valid token of the other kind, so a person who pasted the wrong token is told which one to use.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sync.central.auth import (
    Device,
    Reporter,
    TokenRefused,
    authenticate_device,
    authenticate_reporter,
)
from sync.central.storage import Store

device_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="DeviceToken",
    description="A device token (dev_...) from `python main.py device add`.",
)
reporting_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ReportingToken",
    description="A read-only reporting token (rep_...) from `python main.py token add`.",
)


def get_store(request: Request) -> Store:
    return request.app.state.store


def _refused(error: TokenRefused) -> HTTPException:
    return HTTPException(error.status, error.message, headers={"WWW-Authenticate": "Bearer"})


StoreDep = Annotated[Store, Depends(get_store)]


def current_device(
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(device_bearer)],
) -> Device:
    try:
        return authenticate_device(store.db, credentials.credentials if credentials else None)
    except TokenRefused as error:
        raise _refused(error) from None


def current_reporter(
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(reporting_bearer)],
) -> Reporter:
    try:
        return authenticate_reporter(store.db, credentials.credentials if credentials else None)
    except TokenRefused as error:
        raise _refused(error) from None


DeviceDep = Annotated[Device, Depends(current_device)]
ReporterDep = Annotated[Reporter, Depends(current_reporter)]
