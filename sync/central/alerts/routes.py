"""GET /api/v1/alerts: the alerts live in a range, for a reporting token."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from kiosk.shared.timeutil import to_rfc3339, utc_now
from sync.central.access import View, api_site_missing
from sync.central.alerts.lifecycle import STATES, list_alerts
from sync.central.metrics_query import InvalidRange, parse_range
from sync.central.schemas import (
    RANGE_ERROR,
    REPORTING_REFUSALS,
    ErrorDetail,
    RangeFrom,
    RangeTo,
)
from sync.central.security import StoreDep
from sync.central.sites import UnknownSite, get_site

router = APIRouter(prefix="/api/v1", tags=["reporting"])
MAX_ALERTS = 1000
# An empty value means "every state", as an empty from= means the default.
STATE_PARAMETER = {"anyOf": [{"type": "string", "enum": list(STATES)},
                             {"type": "string", "maxLength": 0}]}


class Alert(BaseModel):
    id: int
    site: str
    rule: Literal["negative_burst", "low_happy_index", "long_wait", "waits_and_mood",
                  "kiosk_silent", "kiosk_backlog"]
    subject: str | None = Field(description="The device id for a kiosk's rule, else null.")
    state: Literal["open", "notified", "acknowledged", "closed"]
    summary: str = Field(description="One sentence: the site, the rule, the figures with n.")
    figures: dict[str, float | int | str | None]
    opened_at: str
    notified_at: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    comment: str | None = Field(description="The comment given when acknowledged.")
    closed_at: str | None
    closed_by: str | None = Field(description="Who closed it; 'system' when it cleared.")


class AlertList(BaseModel):
    site: str | None
    state: str | None
    from_: str = Field(alias="from")
    to: str
    alerts: list[Alert] = Field(description=f"Newest first, at most {MAX_ALERTS}.")

    model_config = {"populate_by_name": True}


@router.get(
    "/alerts",
    response_model=AlertList,
    response_model_by_alias=True,
    summary="Alerts live in a range",
    description=(
        "Alerts opened before 'to' and not closed before 'from' (so one still open is listed "
        "for any range after it opened), newest first, at most 1000. Figures only, with n; "
        "never a ticket."
    ),
    responses={
        **REPORTING_REFUSALS,
        404: {"model": ErrorDetail, "description": "No such site."},
        422: RANGE_ERROR | {"description": "A bad 'from', 'to' or 'state', or 'from' ≥ 'to'."},
    },
)
def get_alerts(
    principal: View,
    store: StoreDep,
    site: Annotated[str | None, Query(description="Site name; all sites when left out.")] = None,
    state: Annotated[
        str | None,
        Query(description="open, notified, acknowledged or closed; all when left out.",
              json_schema_extra=STATE_PARAMETER),
    ] = None,
    from_: RangeFrom = None,
    to: RangeTo = None,
) -> dict:
    try:
        start, end = parse_range(from_, to, utc_now())
    except InvalidRange as error:
        raise HTTPException(422, f"{error}.") from None
    state = state or None
    if state is not None and state not in STATES:
        raise HTTPException(
            422, f"Unknown state {state!r}; use one of {', '.join(STATES)} (or leave it out)."
        )
    db = store.db
    if site is not None:
        try:
            get_site(db, site)
        except UnknownSite:
            raise api_site_missing(site) from None
    return {
        "site": site, "state": state, "from": to_rfc3339(start), "to": to_rfc3339(end),
        "alerts": list_alerts(db, start, end, site, state, MAX_ALERTS,
                              sites=principal.scope.sites),
    }
