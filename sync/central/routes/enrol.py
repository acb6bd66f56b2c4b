"""POST /api/v1/enrol and /api/v1/enrol/token: a kiosk with no token enrols by a short code.

The device authorization flow of RFC 8628 in the API's JSON: ``/enrol`` hands out a code pair,
``/enrol/token`` answers a poll with RFC 8628's error names (400 ``{"error": ...,
"error_description": ...}``) until a manager has approved, then with the device token once.

Neither route takes a token, so each is limited per client address with the store's one
failure limiter (``sync.central.rate_limit``): codes issued (10 per 10 minutes: a clinic
enrolling several kiosks at once stays well under it), and device codes that are not known
here, counted with the refused tokens (a guesser of device codes is a guesser of tokens).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kiosk.shared.timeutil import utc_now
from sync.central import enrolment
from sync.central.rate_limit import FailureLimiter
from sync.central.security import StoreDep, _client_address

router = APIRouter(prefix="/api/v1", tags=["enrolment"])

CODES_PER_ADDRESS = 10
CODES_WINDOW_S = 600.0
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ADD_KIOSK_PATH = "/devices/add"


def code_limiter() -> FailureLimiter:
    """Codes issued per client address (each issue is counted as a "failure")."""
    return FailureLimiter(CODES_PER_ADDRESS, CODES_WINDOW_S)


class EnrolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_name: str | None = Field(
        # No control characters: a NUL cannot be stored (PostgreSQL refuses it), and a line
        # break or escape has no place in a name shown on the Add a kiosk page.
        None, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$",
        description="A name the kiosk suggests for itself (its host name); the manager may "
        "change it when approving. No control characters.",
    )


class EnrolCodes(BaseModel):
    device_code: str = Field(description="Secret: the kiosk polls with it; never shown.")
    user_code: str = Field(description="Shown on the kiosk, typed or scanned by the manager, "
                           "e.g. BCDF-GHJK (case and hyphen do not matter).")
    verification_uri: str = Field(description="The dashboard's 'Add a kiosk' page.")
    verification_uri_complete: str = Field(description="The same page with the code filled "
                                           "in (the kiosk's QR code).")
    interval: int = Field(description="Seconds to wait between polls.")
    expires_in: int = Field(description="Seconds the code lives (900).")


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_code: str = Field(min_length=1, max_length=200)
    grant_type: Literal["urn:ietf:params:oauth:grant-type:device_code"] | None = None


class EnrolToken(BaseModel):
    access_token: str = Field(description="The device token (dev_...), shown this once.")
    token_type: Literal["Bearer"]
    device_id: str
    site: str
    device_name: str
    role: str = Field(description="desk, ratings or staff, as the manager chose.")


class EnrolError(BaseModel):
    error: Literal["authorization_pending", "slow_down", "access_denied", "expired_token",
                   "invalid_grant"]
    error_description: str
    interval: int = Field(description="Seconds to wait before the next poll.")


def _limited(limiter: FailureLimiter, address: str, sentence: str) -> None:
    if wait := limiter.retry_after(address):
        raise HTTPException(429, sentence.format(wait=wait), headers={"Retry-After": str(wait)})


@router.post(
    "/enrol",
    response_model=EnrolCodes,
    summary="Ask for an enrolment code (no token)",
    description="A kiosk with no device token asks for a code pair. It shows user_code (and "
    "a QR code of verification_uri_complete) and polls /api/v1/enrol/token with device_code "
    "every interval seconds until a manager approves or denies the code, or it expires.",
    responses={
        422: {"description": "The body has unknown fields or a name over 64 characters."},
        429: {"description": "Too many codes for this address (10 per 10 minutes); see "
                             "Retry-After."},
        503: {"description": "Too many codes are waiting for approval; try again later."},
    },
)
def ask_for_code(request: Request, store: StoreDep, body: EnrolRequest | None = None):
    limiter: FailureLimiter = request.app.state.enrol_code_limiter
    address = _client_address(request)
    # Counted before the code is made, in one step with the check: a burst of simultaneous
    # requests cannot all pass the check first.
    if wait := limiter.try_acquire(address):
        raise HTTPException(429, f"Too many enrolment codes from this address; try again in "
                            f"{wait} s.", headers={"Retry-After": str(wait)})
    try:
        with store.write() as db:
            issued = enrolment.issue(db, utc_now(), body.device_name if body else None)
    except enrolment.TooManyPendingCodes as error:
        raise HTTPException(503, str(error), headers={"Retry-After": "60"}) from None
    page = str(request.base_url).rstrip("/") + ADD_KIOSK_PATH
    codes = {
        "device_code": issued.device_code,
        "user_code": issued.user_code,
        "verification_uri": page,
        "verification_uri_complete": f"{page}?code={issued.user_code}",
        "interval": issued.interval,
        "expires_in": issued.expires_in,
    }
    # The device code is a secret: no proxy or browser cache may keep this answer.
    return JSONResponse(codes, headers={"Cache-Control": "no-store"})


@router.post(
    "/enrol/token",
    response_model=EnrolToken,
    summary="Poll for the device token (no token)",
    description="RFC 8628 3.4-3.5 in JSON: 400 with error authorization_pending (poll again "
    "after interval), slow_down (the interval grew by 5 s), access_denied, expired_token or "
    "invalid_grant (an unknown or already used code); 200 with the device token once.",
    responses={
        400: {"model": EnrolError, "description": "Not enrolled (yet): see error."},
        422: {"description": "The body is not {\"device_code\": \"...\"}."},
        429: {"description": "Too many unknown codes or tokens from this address; see "
                             "Retry-After."},
    },
)
def poll_for_token(request: Request, store: StoreDep, body: TokenRequest):
    failures = request.app.state.auth_failures
    address = _client_address(request)
    _limited(failures, address, "Too many refused codes or tokens from this address; try "
             "again in {wait} s.")
    with store.write() as db:
        answer = enrolment.poll(db, body.device_code, utc_now())
    if answer.error == "invalid_grant":
        failures.failed(address)
    if answer.token is None:
        return JSONResponse(
            {"error": answer.error, "error_description": answer.description,
             "interval": answer.interval},
            status_code=400,
            headers={"Cache-Control": "no-store"},
        )
    return JSONResponse(
        {
            "access_token": answer.token,
            "token_type": "Bearer",
            "device_id": answer.device.id,
            "site": answer.device.site,
            "device_name": answer.device.name,
            "role": answer.role,
        },
        headers={"Cache-Control": "no-store"},
    )
