"""POST /api/v1/events: a kiosk's batch in, one answer per event out."""

from __future__ import annotations

import asyncio
import json
from functools import partial

from fastapi import APIRouter, Request, Response

from kiosk.shared.timeutil import utc_now
from sync.central.alerts.scheduler import after_ingest
from sync.central.batch import parse_batch, read_limited_body, require_json_content_type
from sync.central.ingest import prepare_batch, store_prepared
from sync.central.schemas import EVENT_BATCH_SCHEMA, BatchResults
from sync.central.security import DeviceDep, StoreDep

# What FastAPI's JSONResponse would write.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode

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
        400: {"description": "The body is not strict UTF-8 JSON."},
        401: {"description": "Missing, unknown or revoked device token."},
        429: {"description": "Too many refused tokens from this address; see Retry-After."},
        403: {"description": "A reporting token was sent; events need a device token."},
        413: {"description": "More than 1000 events or 1 MiB."},
        415: {"description": "The body is declared as something other than JSON, or is "
                             "compressed (Content-Encoding)."},
        507: {"description": "The store's disk is full; nothing was stored. See Retry-After."},
        503: {"description": "PostgreSQL cannot be reached right now; nothing was stored. "
                            "See Retry-After."},
        422: {"description": 'The body is not {"events": [...]}.'},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EVENT_BATCH_SCHEMA}},
        }
    },
)
async def post_events(request: Request, device: DeviceDep, store: StoreDep) -> Response:
    require_json_content_type(request)
    events = parse_batch(await read_limited_body(request))
    # Checking the events needs no database: done here, it overlaps the writer's work.
    prepared = prepare_batch(device, events, utc_now())
    # SQLite blocks, so the batch is written by the store's writer thread, off the event loop,
    # and shares a commit with the batches other kiosks sent meanwhile; the answer comes only
    # once that commit is done.
    future = store.group_writer.submit(partial(store_prepared, batch=prepared), size=len(events))
    results = await asyncio.wrap_future(future)
    after_ingest(request.app, device.site, results)  # wakes the alert rules; never blocks
    # The results are plain dicts of str already: encoding them directly, in the shape the
    # response model gives (which stays, for the OpenAPI spec), spares validating 1000 of them.
    shaped = [
        {"id": result["id"], "status": result["status"], "reason": result.get("reason")}
        for result in results
    ]
    return Response(_encode({"results": shaped}).encode("utf-8"), media_type="application/json")
