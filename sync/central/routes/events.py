"""POST /api/v1/events: a kiosk's batch in, one answer per event out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from kiosk.timeutil import utc_now
from sync.central.batch import parse_batch, read_limited_body
from sync.central.ingest import ingest_batch
from sync.central.schemas import EVENT_BATCH_SCHEMA, BatchResults
from sync.central.security import DeviceDep, StoreDep

router = APIRouter(prefix="/api/v1", tags=["sync"])


@router.post(
    "/events",
    response_model=BatchResults,
    summary="Send a batch of events",
    description=(
        "Stores each event at most once per (device, event id), commits, then answers per "
        "event: stored, duplicate or rejected with a reason. The device is the token's."
    ),
    responses={
        400: {"description": "The body is not JSON."},
        401: {"description": "Missing, unknown or revoked device token."},
        429: {"description": "Too many refused tokens from this address; see Retry-After."},
        403: {"description": "A reporting token was sent; events need a device token."},
        413: {"description": "More than 1000 events or 1 MiB."},
        422: {"description": 'The body is not {"events": [...]}.'},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EVENT_BATCH_SCHEMA}},
        }
    },
)
async def post_events(request: Request, device: DeviceDep, store: StoreDep) -> dict:
    events = parse_batch(await read_limited_body(request))
    # SQLite blocks; keep it off the event loop so other kiosks are served meanwhile.
    results = await run_in_threadpool(ingest_batch, store, device, events, utc_now())
    return {"results": results}
