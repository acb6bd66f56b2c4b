"""FastAPI dependencies that turn a bearer token into a device (a reporting token is read by
``sync.central.access.require``, the one check of every reporting and dashboard route).

401 (with ``WWW-Authenticate``) when the token is missing, unknown or revoked; 403 when it is a
valid token of the other kind, so a person who pasted the wrong token is told which one to use.
429 (with ``Retry-After``) once an address has had too many tokens refused in a minute: a
guesser gets a handful of wrong answers a minute, not thousands a second. A kiosk with a
revoked token retries at most once a minute (its backoff cap), so it never trips the limit.

A presented token is looked up before the address's failures are counted, so a working kiosk
is never refused because a neighbour behind the same NAT keeps sending a wrong token; a valid
token cannot be found by guessing anyway (``secrets.token_urlsafe``, 256 bits). The address is
the socket's peer: uvicorn replaces it from ``X-Forwarded-For`` only for a proxy the operator
names (``central --trusted-proxy``), so a client cannot pick its own address.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sync.central.auth import (
    Device,
    TokenRefused,
    authenticate_device,
)
from sync.central.query_params import check_query_parameters
from sync.central.rate_limit import MAX_TRACKED_KEYS, FailureLimiter
from sync.central.storage import CentralStore

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


AUTH_FAILURE_LIMIT = 20
AUTH_FAILURE_WINDOW_S = 60.0
MAX_TRACKED_ADDRESSES = MAX_TRACKED_KEYS


class AuthFailures(FailureLimiter):
    """Refused tokens per client address over a sliding window; thread-safe."""

    def __init__(
        self,
        limit: int = AUTH_FAILURE_LIMIT,
        window_s: float = AUTH_FAILURE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
    ):
        super().__init__(limit, window_s, clock, max_keys=max_addresses)


async def get_store(request: Request) -> CentralStore:
    # async: FastAPI would run a plain function in the thread pool, a hop per request for an
    # attribute read.
    return request.app.state.store


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticate_with_limit(request: Request, check: Callable[[], object], guessed: bool):
    """Run ``check``; a wrong token counts against the caller's address, 429 past the limit."""
    try:
        return check()
    except TokenRefused as error:
        failures: AuthFailures | None = getattr(request.app.state, "auth_failures", None)
        # A guess is a token that was sent and is wrong; no token at all guesses nothing.
        if failures is not None and error.status == 401 and guessed:
            address = _client_address(request)
            if wait := failures.retry_after(address):
                raise HTTPException(
                    429,
                    f"Too many refused tokens from this address; try again in {wait} s.",
                    headers={"Retry-After": str(wait)},
                ) from None
            failures.failed(address)
        raise _refused(error) from None


def _refused(error: TokenRefused) -> HTTPException:
    return HTTPException(error.status, error.message, headers={"WWW-Authenticate": "Bearer"})


StoreDep = Annotated[CentralStore, Depends(get_store)]


async def current_device(
    request: Request,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(device_bearer)],
) -> Device:
    token = credentials.credentials if credentials else None
    # Every kiosk request passes here. On SQLite the lookup is one indexed read, cheaper on
    # the event loop than a hop to the thread pool, so it is tried there on a connection that
    # never waits; only if SQLite would have to wait (or the store is on PostgreSQL, a round
    # trip that may stall) does it go to the thread pool.
    device = None
    try:
        reader = store.quick_reader
        if reader is not None:
            device = authenticate_with_limit(
                request, lambda: authenticate_device(reader, token), bool(token)
            )
    except sqlite3.OperationalError:
        pass
    if device is None:
        device = await run_in_threadpool(
            authenticate_with_limit,
            request,
            lambda: authenticate_device(store.db, token),
            bool(token),
        )
    check_query_parameters(request)
    return device


DeviceDep = Annotated[Device, Depends(current_device)]
