"""GET /api/v1/metrics: the headline figures for a site, a device and a time range."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from kiosk.shared.languages import BCP47_PATTERN
from kiosk.shared.timeutil import utc_now
from sync.central.access import View, api_site_missing
from sync.central.metrics_query import InvalidRange, MetricsQuery, compute_metrics, parse_range
from sync.central.schemas import RANGE_ERROR, Metrics, RangeFrom, RangeTo
from sync.central.security import StoreDep
from sync.central.sites import UnknownSite, get_site

router = APIRouter(prefix="/api/v1", tags=["reporting"])


@router.get(
    "/metrics",
    response_model=Metrics,
    response_model_by_alias=True,
    summary="Waits and satisfaction over a range",
    description=(
        "Definitions as in the README's Metrics section; misuse left out; percentages 0-100; "
        "null where n is 0. "
        "Visits are selected by check-in time, ratings by occurred_at, in [from, to)."
    ),
    responses={
        401: {"description": "Missing, unknown or revoked reporting token."},
        429: {"description": "Too many refused tokens from this address; see Retry-After."},
        403: {"description": "A device token was sent; metrics need a reporting token."},
        404: {"description": "No such site or device (or one outside this token's sites: "
                             "the same answer)."},
        422: RANGE_ERROR,
    },
)
def get_metrics(
    principal: View,
    store: StoreDep,
    site: Annotated[str | None, Query(description="Site name; all sites when left out.")] = None,
    device: Annotated[str | None, Query(description="Device id; all when left out.")] = None,
    from_: RangeFrom = None,
    to: RangeTo = None,
    lang: Annotated[
        str | None,
        Query(description="A language tag (BCP 47, e.g. es): the rating figures count only the "
                          "ratings given in that language; the visit and wait figures stay "
                          "every visit's. Left out: every rating.",
              pattern=f"^{BCP47_PATTERN.pattern}$", max_length=35),
    ] = None,
) -> dict:
    now = utc_now()
    try:
        start, end = parse_range(from_, to, now)
    except InvalidRange as error:
        raise HTTPException(422, f"{error}.") from None
    db = store.db
    if site is not None:
        try:
            get_site(db, site)
        except UnknownSite:
            raise api_site_missing(site) from None
    device_site = db.execute("SELECT site FROM devices WHERE id = ?", [device]).fetchone()
    # A kiosk of a site outside the token's scope is as unknown as one never enrolled.
    if device is not None and (device_site is None or not principal.scope.allows(device_site[0])):
        raise HTTPException(404, f"There is no device with id {device!r}.")
    query = MetricsQuery(start=start, end=end, site=site, device=device, scope=principal.scope,
                         lang=lang)
    # The figures may be a moment old (the replica, when there is one); the checks above read
    # the primary, so a site or kiosk added a moment ago is never refused as unknown.
    return compute_metrics(store.read_db, query, now)
