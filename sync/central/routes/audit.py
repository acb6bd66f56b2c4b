"""GET /api/v1/audit: the audit trail, for an admin reporting token (``token add --admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central import audit
from sync.central.access import ReadAudit
from sync.central.metrics_query import InvalidRange, parse_range
from sync.central.schemas import (
    RANGE_ERROR,
    REPORTING_REFUSALS,
    RangeFrom,
    RangeTo,
)
from sync.central.security import StoreDep

router = APIRouter(prefix="/api/v1", tags=["audit"])
MAX_ENTRIES = audit.MAX_ROWS


class AuditEntry(BaseModel):
    id: int
    at: str = Field(description="When (RFC 3339, UTC).")
    actor: str = Field(description="'user:NAME', 'token:NAME', 'command:ACCOUNT' or "
                                   "'anonymous' (a failed login).")
    actor_kind: str = Field(description="user, token, command or anonymous.")
    origin: str | None = Field(description="The client's address, or 'local' for a command.")
    action: str = Field(description="What was done, e.g. user.change, device.revoke, login.")
    target: str | None = Field(description="What it was done to (a login, a device id, ...).")
    site: str | None
    before: dict | None = Field(description="The values before the change; never a secret.")
    after: dict | None = Field(description="The values after the change; never a secret.")


class AuditList(BaseModel):
    from_: str = Field(alias="from")
    to: str
    entries: list[AuditEntry] = Field(description=f"Newest first, at most {MAX_ENTRIES}.")

    model_config = {"populate_by_name": True}


@router.get(
    "/audit",
    response_model=AuditList,
    response_model_by_alias=True,
    summary="The audit trail (admin token)",
    description=(
        "Who changed what, when, from where, before and after: logins and failed logins, "
        "people and their roles, devices, tokens, site settings, alert rules, channels and "
        "acknowledgements, purges. Needs an admin reporting token (`token add --admin`); "
        "another reporting token gets 403. Entries in [from, to) (default the last 24 hours), "
        "newest first; `action` is exact, or a prefix ending in '.' (`user.`)."
    ),
    responses={**REPORTING_REFUSALS, 422: RANGE_ERROR},
)
def get_audit(
    principal: ReadAudit,
    store: StoreDep,
    from_: RangeFrom = None,
    to: RangeTo = None,
    actor: Annotated[str | None, Query(max_length=200, description="e.g. user:admin")] = None,
    action: Annotated[str | None, Query(max_length=100, description="e.g. user.change")] = None,
    site: Annotated[str | None, Query(max_length=100, description="Site name.")] = None,
) -> dict:
    try:
        start, end = parse_range(from_, to, utc_now())
    except InvalidRange as error:
        raise HTTPException(422, f"{error}.") from None
    flt = audit.AuditFilter(to_rfc3339(start), to_rfc3339(end), actor or None, action or None,
                            site or None)
    return {"from": to_rfc3339(start), "to": to_rfc3339(end),
            "entries": audit.entries(store.db, flt, MAX_ENTRIES)}
